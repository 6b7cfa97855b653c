//! The one error type of the HTTP adapter, and the one place it becomes a response.
//!
//! The API answers `application/problem+json` (RFC 9457) with a stable `type` per error; the
//! back office turns the same problem into a friendly page ([`crate::pages`]). Internal
//! causes are logged with the request id and never sent: a client sees the title, the
//! status and, for its own mistakes, what to fix.

use std::collections::BTreeMap;

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Field name → what is wrong with it, for forms and JSON bodies.
pub type FieldErrors = BTreeMap<String, String>;

/// Everything a request can end with other than success.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No valid credentials were presented.
    #[error("sign-in required")]
    Unauthenticated,
    /// The caller is known but lacks the permission.
    #[error("permission `{0}` required")]
    Forbidden(String),
    /// A form or API call that changes state came without a valid CSRF token.
    #[error("the form has expired or did not come from this site; reload the page and try again")]
    Csrf,
    /// Nothing here.
    #[error("not found")]
    NotFound,
    /// The request is malformed; the message says how (never quoting stored data).
    #[error("{0}")]
    BadRequest(String),
    /// Some fields are invalid.
    #[error("some fields are invalid")]
    Validation(FieldErrors),
    /// The request conflicts with the current state (a name taken, a job already running).
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than `server.body_limit_bytes`.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// Too many attempts; try again after this many seconds.
    #[error("too many attempts; try again in {0} s")]
    RateLimited(u64),
    /// A dependency (the store, the vault) is unavailable; retrying later may work.
    #[error("temporarily unavailable")]
    Unavailable(String),
    /// A bug or an unexpected failure; the cause is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl WebError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable problem slug; the `type` is `urn:switchboard:problem:<slug>`.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::Csrf => "csrf",
            Self::NotFound => "not-found",
            Self::BadRequest(_) => "bad-request",
            Self::Validation(_) => "validation",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload-too-large",
            Self::RateLimited(_) => "rate-limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// What may be told to the client: internal causes stay in the log.
    fn public_detail(&self) -> Option<String> {
        match self {
            Self::Unavailable(_) | Self::Internal(_) | Self::Validation(_) => None,
            other => Some(other.to_string()),
        }
    }
}

/// A problem document (RFC 9457).
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A stable URI per kind of error: `urn:switchboard:problem:<slug>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of error.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this case, when it is safe to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Invalid fields and why, for `validation` problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<FieldErrors>,
}

impl Problem {
    /// The problem for a bare status (used for errors raised outside handlers: 404, 405,
    /// 408, 413).
    pub fn for_status(status: StatusCode) -> Self {
        let slug = match status {
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            s if s.is_server_error() => "internal",
            _ => "bad-request",
        };
        Self {
            kind: format!("urn:switchboard:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: None,
            errors: None,
        }
    }

    /// The response carrying this problem.
    pub fn into_response_with(self, status: StatusCode) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (status, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        r
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(cause) => tracing::error!(cause = %cause, "request failed"),
            Self::Unavailable(cause) => tracing::warn!(cause = %cause, "request failed: a dependency is unavailable"),
            _ => {}
        }
        let problem = Problem {
            kind: format!("urn:switchboard:problem:{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.public_detail(),
            errors: match &self {
                Self::Validation(e) => Some(e.clone()),
                _ => None,
            },
        };
        let mut r = problem.into_response_with(status);
        match self {
            Self::Unauthenticated => {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited(s) => {
                if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        r
    }
}

impl From<sb_store::StoreError> for WebError {
    fn from(e: sb_store::StoreError) -> Self {
        use sb_store::StoreError as S;
        match e {
            S::NotFound => Self::NotFound,
            S::Conflict(c) => Self::Conflict(format!("conflicts with existing data ({})", constraint_hint(&c))),
            S::Unavailable(m) => Self::Unavailable(m),
            S::Other(m) => Self::Internal(m),
        }
    }
}

/// Only the kind of constraint, never the database's message (which may quote a value).
fn constraint_hint(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("unique") || m.contains("duplicate") { "already exists" } else { "a constraint refused it" }
}

impl From<sb_jobs::JobsError> for WebError {
    fn from(e: sb_jobs::JobsError) -> Self {
        use sb_jobs::JobsError as J;
        match e {
            J::Store(s) => s.into(),
            J::UnknownJob(_) => Self::NotFound,
            J::AlreadyRunning(name) => Self::Conflict(format!("job `{name}` is already running")),
            J::Config(m) => Self::Internal(m),
        }
    }
}

impl From<sb_privacy::PrivacyError> for WebError {
    fn from(e: sb_privacy::PrivacyError) -> Self {
        use sb_privacy::PrivacyError as P;
        match e {
            P::Store(s) => s.into(),
            P::Denied(reason) => Self::Forbidden(reason),
            P::UnknownToken => Self::NotFound,
            P::Invalid(m) => Self::BadRequest(m),
            P::AuditUnavailable(m) => Self::Unavailable(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<JsonRejection> for WebError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::PayloadTooLarge;
        }
        Self::BadRequest(format!("the JSON body is not valid: {}", r.body_text()))
    }
}

impl From<FormRejection> for WebError {
    fn from(r: FormRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::PayloadTooLarge;
        }
        Self::BadRequest(format!("the form is not valid: {}", r.body_text()))
    }
}

impl From<QueryRejection> for WebError {
    fn from(r: QueryRejection) -> Self {
        Self::BadRequest(format!("the query string is not valid: {}", r.body_text()))
    }
}

impl From<PathRejection> for WebError {
    fn from(_: PathRejection) -> Self {
        Self::NotFound
    }
}

/// Result of handlers.
pub type WebResult<T> = Result<T, WebError>;
