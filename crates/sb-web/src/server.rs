//! Serving the app: plain HTTP, or HTTPS with rustls when a certificate is configured, and a
//! graceful stop (requests in progress get `server.shutdown_grace_s` to finish).

use std::net::SocketAddr;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::WebApp;

/// Waits for SIGTERM or Ctrl-C.
pub async fn termination() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Whether the app serves HTTPS.
pub fn is_tls(app: &WebApp) -> bool {
    app.state().config().server.tls_cert_file.is_some()
}

/// Serves `app` on `listener` until `shutdown` turns true, then lets requests in progress
/// finish for the configured grace period.
pub async fn serve(app: &WebApp, listener: TcpListener, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    let server = &app.state().config().server;
    let grace = Duration::from_secs(server.shutdown_grace_s);
    let service = app.router().into_make_service_with_connect_info::<SocketAddr>();
    match (&server.tls_cert_file, &server.tls_key_file) {
        (Some(cert), Some(key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("server.tls_cert_file / tls_key_file: {e}")))?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                let _ = shutdown.wait_for(|s| *s).await;
                stopper.graceful_shutdown(Some(grace));
            });
            axum_server::from_tcp_rustls(listener.into_std()?, tls)?.handle(handle).serve(service).await
        }
        (None, None) => {
            let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
            let mut stop = shutdown.clone();
            let serving = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                    let _ = stopped_tx.send(());
                })
                .into_future();
            tokio::pin!(serving);
            tokio::select! {
                r = &mut serving => return r,
                _ = stopped_rx => {}
            }
            match tokio::time::timeout(grace, serving).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!("requests still in progress after the shutdown grace period were cut");
                    let _ = shutdown.borrow_and_update();
                    Ok(())
                }
            }
        }
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "server.tls_cert_file and server.tls_key_file go together: set both or neither",
        )),
    }
}
