//! Static files, embedded in the binary: the vendored npm libraries (see
//! `assets/refresh.sh`) and the back office's own stylesheet and script. Nothing is fetched
//! from anywhere at run time.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::WebError;

macro_rules! asset {
    ($name:literal, $dir:literal, $type:literal) => {
        ($name, $type, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $dir, "/", $name)).as_slice())
    };
}

/// Every embedded file: name, media type, bytes.
pub static FILES: &[(&str, &str, &[u8])] = &[
    asset!("htmx.min.js", "vendor", "text/javascript; charset=utf-8"),
    asset!("uPlot.iife.min.js", "vendor", "text/javascript; charset=utf-8"),
    asset!("uPlot.min.css", "vendor", "text/css; charset=utf-8"),
    asset!("rapidoc-min.js", "vendor", "text/javascript; charset=utf-8"),
    asset!("app.css", "app", "text/css; charset=utf-8"),
    asset!("app.js", "app", "text/javascript; charset=utf-8"),
];

/// `/assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Result<Response, WebError> {
    let (_, media_type, bytes) = FILES.iter().find(|(n, _, _)| *n == file).ok_or(WebError::NotFound)?;
    let mut r = bytes.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    Ok(r)
}
