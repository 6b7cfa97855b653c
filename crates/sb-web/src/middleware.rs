//! Layers every response goes through: request ids, an access log without personal data,
//! metrics, security headers, timeouts, body limits, and one shape for every error.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Redirect, Response};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::AppState;
use crate::error::{PROBLEM_JSON, Problem};

/// The Content-Security-Policy of every response: scripts only from our own files (no inline
/// script anywhere), nothing may frame us.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                       img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; \
                       base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in every layer, outermost last.
pub(crate) fn apply(
    router: Router<AppState>,
    state: &AppState,
    body_limit: usize,
    timeout: Duration,
) -> Router<AppState> {
    let secure = state.secure_cookies();
    let mut r = router
        .layer(from_fn(problems))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(from_fn(access_log));
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        r = r.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    }
    if secure {
        r = r.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    r.layer(PropagateRequestIdLayer::new(REQUEST_ID)).layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// One line per request: method, route pattern (never the concrete path or query, which
/// may carry identifiers), status, duration and request id. No address, cookie or header.
async fn access_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let response = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    tracing::info!(target: "sb_web::access", method = %method, route = %route, status, ms = seconds * 1000.0, request_id = %id, "request");
    let labels = [("method", method.to_string()), ("route", route), ("status", status.to_string())];
    metrics::counter!("switchboard_http_requests_total", &labels).increment(1);
    metrics::histogram!("switchboard_http_request_duration_seconds", &labels[..2]).record(seconds);
    response
}

/// Every error leaves as a problem (API) or a friendly page (back office): responses made
/// outside handlers (404, 405, 408, 413) are given that shape here.
async fn problems(req: Request, next: Next) -> Response {
    let admin = req.uri().path() == "/admin" || req.uri().path().starts_with("/admin/");
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if content_type.starts_with("text/html") {
        return response;
    }
    let problem = if content_type.starts_with(PROBLEM_JSON) {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(p) if admin => p,
            _ => return Response::from_parts(parts, axum::body::Body::from(bytes)),
        }
    } else {
        Problem::for_status(status)
    };
    if !admin {
        return problem.into_response_with(status);
    }
    if status == StatusCode::UNAUTHORIZED {
        return Redirect::to(crate::routes::SIGN_IN).into_response();
    }
    crate::admin::error_page(status, &problem)
}
