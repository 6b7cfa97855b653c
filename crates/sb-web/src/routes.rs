//! The route table: every route with the access it needs, and the guard that enforces it.
//!
//! Routes are only added through [`Table::add`], which registers the handler behind the
//! guard and records the route in the table, so the table is the whole truth: the test
//! `tests/routes.rs` walks it and proves that every non-public route refuses anonymous and
//! under-privileged callers.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodFilter, on};
use axum::{Extension, Router};

use crate::app::AppState;
use crate::auth::{self, Caller, constant_time_eq};
use crate::error::WebError;
use crate::{admin, api, assets, middleware, ops};

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, assets, sign-in, the API description).
    Public,
    /// Any valid credentials (sign-out, own password).
    SignedIn,
    /// Credentials whose role or scopes grant this permission.
    Permission(&'static str),
}

/// Which face of the app a route belongs to: it decides how refusals look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `/admin`: HTML; anonymous callers are sent to sign-in.
    Admin,
    /// Everything else: problem+json.
    Api,
}

impl Surface {
    fn of(path: &str) -> Self {
        if path == "/admin" || path.starts_with("/admin/") { Self::Admin } else { Self::Api }
    }
}

/// One row of the route table.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// The HTTP method.
    pub method: Method,
    /// The path pattern (`/admin/jobs/{name}`).
    pub path: &'static str,
    /// What it requires.
    pub access: Access,
    /// Admin or API.
    pub surface: Surface,
}

/// The path of the sign-in page.
pub const SIGN_IN: &str = "/admin/sign-in";
/// The path of the password page (the only page a user with a one-time password may open).
pub const PASSWORD: &str = "/admin/account/password";

struct Table {
    router: Router<AppState>,
    infos: Vec<RouteInfo>,
    state: AppState,
}

impl Table {
    fn add<H, T>(mut self, method: Method, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        let surface = Surface::of(path);
        let guard = axum::middleware::from_fn_with_state(
            self.state.clone(),
            move |State(state): State<AppState>, req: Request, next: Next| guard(state, access, surface, req, next),
        );
        self.router = self.router.route(path, on(filter, handler).route_layer(guard));
        self.infos.push(RouteInfo { method, path, access, surface });
        self
    }
}

/// Builds the router and its table.
pub(crate) fn build(state: AppState) -> (Router, Vec<RouteInfo>) {
    use Access::{Permission as P, Public, SignedIn};
    let (get, post) = (Method::GET, Method::POST);
    let t = Table { router: Router::new(), infos: Vec::new(), state: state.clone() }
        // Operations.
        .add(get.clone(), "/healthz", Public, ops::healthz)
        .add(get.clone(), "/readyz", Public, ops::readyz)
        .add(get.clone(), "/metrics", Public, ops::metrics)
        .add(get.clone(), "/", Public, ops::root)
        .add(get.clone(), "/assets/{file}", Public, assets::serve)
        // The API and its description.
        .add(get.clone(), "/api/openapi.json", Public, crate::openapi::spec)
        .add(get.clone(), "/api/docs", Public, crate::openapi::viewer)
        .add(get.clone(), "/api/v1/me", SignedIn, api::me)
        .add(get.clone(), "/api/v1/jobs", P("jobs.view"), api::jobs)
        .add(get.clone(), "/api/v1/jobs/{name}/runs", P("jobs.view"), api::job_runs)
        .add(post.clone(), "/api/v1/jobs/{name}/runs", P("jobs.run"), api::run_job)
        .add(get.clone(), "/api/v1/monitoring/summary", P("monitoring.view"), api::monitoring_summary)
        .add(get.clone(), "/api/v1/monitoring/series", P("monitoring.view"), api::monitoring_series)
        .add(post.clone(), "/api/v1/privacy/tokens", P("privacy.tokenize"), api::tokenize)
        .add(post.clone(), "/api/v1/privacy/reveal", P("privacy.reveal"), api::reveal)
        .add(get.clone(), "/api/v1/audit", P("audit.view"), api::audit)
        .add(get.clone(), "/api/v1/customer/me", P("customer.self"), api::customer_me)
        // The back office.
        .add(get.clone(), SIGN_IN, Public, admin::account::sign_in_page)
        .add(post.clone(), SIGN_IN, Public, admin::account::sign_in)
        .add(post.clone(), "/admin/sign-out", SignedIn, admin::account::sign_out)
        .add(get.clone(), PASSWORD, SignedIn, admin::account::password_page)
        .add(post.clone(), PASSWORD, SignedIn, admin::account::change_password)
        .add(get.clone(), "/admin", P("dashboard.view"), admin::dashboard::page)
        .add(get.clone(), "/admin/jobs", P("jobs.view"), admin::jobs::list)
        .add(get.clone(), "/admin/jobs/{name}", P("jobs.view"), admin::jobs::history)
        .add(post.clone(), "/admin/jobs/{name}/run", P("jobs.run"), admin::jobs::run_now)
        .add(get.clone(), "/admin/monitoring", P("monitoring.view"), admin::monitoring::page)
        .add(get.clone(), "/admin/users", P("users.view"), admin::users::list)
        .add(post.clone(), "/admin/users", P("users.manage"), admin::users::add)
        .add(post.clone(), "/admin/users/{name}/role", P("users.manage"), admin::users::set_role)
        .add(post.clone(), "/admin/users/{name}/disable", P("users.manage"), admin::users::disable)
        .add(get.clone(), "/admin/api-keys", P("apikeys.view"), admin::api_keys::list)
        .add(post.clone(), "/admin/api-keys", P("apikeys.manage"), admin::api_keys::create)
        .add(post.clone(), "/admin/api-keys/{id}/revoke", P("apikeys.manage"), admin::api_keys::revoke)
        .add(get.clone(), "/admin/privacy", P("privacy.view"), admin::privacy::show)
        .add(post.clone(), "/admin/privacy/reveal", P("privacy.reveal"), admin::privacy::reveal)
        .add(post.clone(), "/admin/privacy/erasures", P("privacy.erase"), admin::privacy::erase)
        .add(get.clone(), "/admin/audit", P("audit.view"), admin::audit::page);
    let server = &state.config().server;
    let router = middleware::apply(
        t.router.fallback(ops::not_found),
        &state,
        server.body_limit_bytes,
        Duration::from_secs(server.request_timeout_s.max(1)),
    )
    .with_state(state);
    (router, t.infos)
}

/// Authenticates, authorises, sends a user with a one-time password to the password page,
/// and checks the CSRF token of state-changing back-office requests.
async fn guard(state: AppState, access: Access, surface: Surface, req: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    match check(&state, access, surface, req).await {
        Ok(req) => next.run(req).await,
        Err(refusal) => refusal,
    }
}

async fn check(state: &AppState, access: Access, surface: Surface, req: Request) -> Result<Request, Response> {
    let caller = auth::authenticate(state, req.headers()).await.map_err(IntoResponse::into_response)?;
    let Some(caller) = caller else {
        return Err(match surface {
            Surface::Admin => sign_in_redirect(&req),
            Surface::Api => WebError::Unauthenticated.into_response(),
        });
    };
    if let Caller::User(u) = &caller
        && u.user.must_change_password
        && surface == Surface::Admin
        && access != Access::SignedIn
    {
        return Err(Redirect::to(PASSWORD).into_response());
    }
    if let Access::Permission(p) = access
        && !caller.permissions().allows(p)
    {
        return Err(WebError::Forbidden(p.to_owned()).into_response());
    }
    let mut req = req;
    if let Caller::User(u) = &caller
        && !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
    {
        req = check_csrf(req, &u.session.csrf_token, state.config().server.body_limit_bytes).await?;
    }
    req.extensions_mut().insert(caller);
    Ok(req)
}

fn sign_in_redirect(req: &Request) -> Response {
    let path = req.uri().path();
    let next = if req.method() == Method::GET { path } else { "/admin" };
    Redirect::to(&format!("{SIGN_IN}?next={}", urlencode(next))).into_response()
}

/// Percent-encodes everything but unreserved characters and `/`.
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The CSRF token comes in the `X-CSRF-Token` header (scripts) or the `_csrf` form field
/// (forms); the body is read to find it and handed on untouched.
async fn check_csrf(req: Request, expected: &str, limit: usize) -> Result<Request, Response> {
    if let Some(h) = req.headers().get("x-csrf-token") {
        return if constant_time_eq(h.as_bytes(), expected.as_bytes()) {
            Ok(req)
        } else {
            Err(WebError::Csrf.into_response())
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(WebError::Csrf.into_response());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        crate::error::Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE)
            .into_response_with(StatusCode::PAYLOAD_TOO_LARGE)
    })?;
    let found = form_field(&bytes, "_csrf");
    if !found.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes())) {
        return Err(WebError::Csrf.into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The first value of `name` in a URL-encoded form body.
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| decode(v))
}

fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The caller a guarded handler runs for.
pub type CallerExt = Extension<Caller>;
