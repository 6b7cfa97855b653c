//! Health, readiness and metrics: what load balancers and Prometheus ask.

use std::sync::OnceLock;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::app::AppState;
use crate::error::WebError;

/// The process's Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
            .expect("non-empty buckets");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows only what reaches this one");
        }
        handle
    })
}

/// `/healthz`: the process answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `/readyz`: the store answers and every migration is applied.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, WebError> {
    state.db().ping().await.map_err(|e| WebError::Unavailable(e.to_string()))?;
    let migrated =
        state.db().is_migrated(state.migrations()).await.map_err(|e| WebError::Unavailable(e.to_string()))?;
    if !migrated {
        return Err(WebError::Unavailable("migrations are pending".into()));
    }
    Ok(Json(serde_json::json!({ "status": "ready", "store": state.db().backend().as_str() })))
}

/// `/metrics`: Prometheus text format.
pub async fn metrics() -> Response {
    let mut r = prometheus().render().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}

/// `/`: the back office.
pub async fn root() -> Redirect {
    Redirect::to("/admin")
}

/// Anything else.
pub async fn not_found() -> WebError {
    WebError::NotFound
}
