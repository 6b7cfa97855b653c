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
