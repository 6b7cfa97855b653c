//! A real server on port 0: it answers, and stops gracefully when told.

use std::time::Duration;

use sb_web::server;

use crate::common::*;

#[tokio::test]
async fn the_server_answers_on_port_0_and_stops_when_told() {
    let h = harness().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let app = h.app;
    let serving = tokio::spawn(async move { server::serve(&app, listener, shutdown).await });

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"ok\""));

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), serving).await.expect("stopped in time").unwrap().unwrap();
}

/// Runs `curl` against the server, trusting the test certificate; returns the status line,
/// headers and body.
fn curl(url: &str) -> String {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let out = std::process::Command::new("curl")
        .args(["-s", "-i", "--max-time", "10", "--cacert", &format!("{fixtures}/localhost.cert.pem"), url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn with_a_certificate_the_server_speaks_https_only_and_cookies_are_secure() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut config = sb_web::WebConfig::default();
    config.server.tls_cert_file = Some(fixtures.join("localhost.cert.pem"));
    config.server.tls_key_file = Some(fixtures.join("localhost.key.pem"));
    let h = harness_with(config).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let app = h.app;
    let serving = tokio::spawn(async move { server::serve(&app, listener, shutdown).await });

    let (health, sign_in, plain) = tokio::task::spawn_blocking(move || {
        (
            curl(&format!("https://localhost:{port}/healthz")),
            curl(&format!("https://localhost:{port}/admin/sign-in")),
            curl(&format!("http://localhost:{port}/healthz")),
        )
    })
    .await
    .unwrap();
    assert!(health.starts_with("HTTP/1.1 200") || health.starts_with("HTTP/2 200"), "{health}");
    let lower = sign_in.to_ascii_lowercase();
    assert!(lower.contains("strict-transport-security: max-age="), "{sign_in}");
    let cookie = lower.lines().find(|l| l.starts_with("set-cookie: sb_signin_csrf=")).expect("form cookie");
    assert!(cookie.contains("; secure") && cookie.contains("httponly"), "{cookie}");
    assert!(!plain.contains("200 OK"), "plain HTTP must not be served: {plain}");

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), serving).await.expect("stopped in time").unwrap().unwrap();
}
