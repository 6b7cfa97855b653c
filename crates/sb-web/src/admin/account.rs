//! Sign-in, sign-out and one's own password.

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Duration;
use serde::Deserialize;

use super::{Layout, PageQuery, ValidForm, render, render_with};
use crate::app::AppState;
use crate::auth::users::{self, Lockout, SignInFailure};
use crate::auth::{constant_time_eq, cookie, password, random_token, sessions, set_cookie};
use crate::error::{FieldErrors, WebError, WebResult};
use crate::routes::{CallerExt, PASSWORD};

/// The cookie carrying the sign-in form's CSRF token (double submit: no session exists yet).
const PRE_CSRF: &str = "sb_signin_csrf";

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    layout: Layout,
    csrf: String,
    next: String,
    name: String,
    error: Option<String>,
    notice: Option<String>,
}

/// `?next=`: where to go after signing in.
#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

/// Only pages of the back office, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if (n == "/admin" || n.starts_with("/admin/")) && !n.contains("//") && !n.contains('\\') => {
            n.to_owned()
        }
        _ => "/admin".to_owned(),
    }
}

fn sign_in_form(
    state: &AppState,
    csrf: String,
    next: String,
    name: String,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> WebResult<Response> {
    let page = SignInPage {
        layout: Layout { title: "Sign in".into(), ..Layout::default() },
        csrf: csrf.clone(),
        next,
        name,
        error,
        notice,
    };
    let mut r = render_with(status, &page)?;
    r.headers_mut().append(header::SET_COOKIE, set_cookie(PRE_CSRF, &csrf, Some(3600), state.secure_cookies()));
    Ok(r)
}

/// The sign-in page, with a fresh form token unless the browser has one.
async fn sign_in_page_get(state: &AppState, headers: &HeaderMap, q: SignInQuery) -> WebResult<Response> {
    let csrf = cookie(headers, PRE_CSRF).filter(|c| c.len() == 64).map_or_else(random_token, str::to_owned);
    let notice = q.next.as_ref().map(|_| "Please sign in to continue.".to_owned());
    sign_in_form(state, csrf, safe_next(q.next.as_deref()), String::new(), None, notice, StatusCode::OK)
}

/// `GET /admin/sign-in`.
pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageQuery(q): PageQuery<SignInQuery>,
) -> WebResult<Response> {
    sign_in_page_get(&state, &headers, q).await
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    _csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// `POST /admin/sign-in`: checks the form's token, the address's rate, the account's lock
/// and the password; on success starts a session.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    ValidForm(form): ValidForm<SignInForm>,
) -> WebResult<Response> {
    let expected = cookie(&headers, PRE_CSRF).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form._csrf.as_bytes()) {
        return Err(WebError::Csrf);
    }
    let now = state.now();
    let addr = peer.map_or(IpAddr::from([0, 0, 0, 0]), |Extension(ConnectInfo(a))| a.ip());
    let next = safe_next(Some(&form.next));
    let name = form.name.trim().to_ascii_lowercase();
    if let Err(wait) = state.limiter().check(addr, now) {
        let msg = format!("Too many sign-in attempts from this address. Try again in {wait} seconds.");
        return sign_in_form(&state, form._csrf, next, name, Some(msg), None, StatusCode::TOO_MANY_REQUESTS);
    }
    let auth = &state.config().auth;
    let lockout = Lockout {
        after: auth.lockout_after,
        duration: Duration::minutes(i64::try_from(auth.lockout_minutes).unwrap_or(15)),
    };
    match users::authenticate(state.db(), &name, &form.password, lockout, now).await? {
        Ok(user) => {
            let (token, _) = sessions::create(state.db(), user.id, now).await?;
            let to = if user.must_change_password { PASSWORD.to_owned() } else { next };
            let mut r = Redirect::to(&to).into_response();
            let secure = state.secure_cookies();
            r.headers_mut().append(header::SET_COOKIE, set_cookie(sessions::COOKIE, &token, None, secure));
            r.headers_mut().append(header::SET_COOKIE, set_cookie(PRE_CSRF, "", Some(0), secure));
            tracing::info!(user_id = user.id, "signed in");
            Ok(r)
        }
        Err(SignInFailure::Invalid) => sign_in_form(
            &state,
            form._csrf,
            next,
            name,
            Some("Wrong user name or password.".into()),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        Err(SignInFailure::Locked(until)) => {
            let msg = format!(
                "This account is locked after too many failed sign-ins. Try again after {}.",
                until.format("%H:%M UTC")
            );
            sign_in_form(&state, form._csrf, next, name, Some(msg), None, StatusCode::LOCKED)
        }
    }
}

/// `POST /admin/sign-out`: ends the session and clears the cookie.
pub async fn sign_out(State(state): State<AppState>, caller: CallerExt) -> WebResult<Response> {
    if let Some(u) = caller.user() {
        sessions::delete(state.db(), &u.session.token_hash).await?;
    }
    let mut r = Redirect::to(crate::routes::SIGN_IN).into_response();
    r.headers_mut().append(header::SET_COOKIE, set_cookie(sessions::COOKIE, "", Some(0), state.secure_cookies()));
    Ok(r)
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    layout: Layout,
    must_change: bool,
    done: bool,
    min_length: usize,
    errors: FieldErrors,
}

/// `GET /admin/account/password`.
pub async fn password_page(State(state): State<AppState>, caller: CallerExt) -> WebResult<Response> {
    let u = caller.user().ok_or_else(|| WebError::Forbidden("a back-office user".into()))?;
    render(&PasswordPage {
        layout: Layout::new(&caller, "Change password", PASSWORD),
        must_change: u.user.must_change_password,
        done: false,
        min_length: state.config().auth.password_min_length,
        errors: FieldErrors::new(),
    })
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/account/password`.
pub async fn change_password(
    State(state): State<AppState>,
    caller: CallerExt,
    ValidForm(form): ValidForm<PasswordForm>,
) -> WebResult<Response> {
    let u = caller.user().ok_or_else(|| WebError::Forbidden("a back-office user".into()))?;
    let min_length = state.config().auth.password_min_length;
    let mut errors = FieldErrors::new();
    if !users::check_password(state.db(), u.user.id, &form.current).await? {
        errors.insert("current".into(), "This is not your current password.".into());
    }
    if let Err(why) = password::check_new(&form.new, min_length) {
        errors.insert("new".into(), format!("The new password needs {why}."));
    } else if form.new == form.current {
        errors.insert("new".into(), "Choose a password different from the current one.".into());
    }
    if form.confirm != form.new {
        errors.insert("confirm".into(), "The two new passwords differ.".into());
    }
    let done = errors.is_empty();
    if done {
        users::set_password(state.db(), u.user.id, &form.new, Some(&u.session.token_hash), state.now()).await?;
        if u.user.must_change_password {
            return Ok(Redirect::to("/admin").into_response());
        }
    }
    let status = if done { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render_with(
        status,
        &PasswordPage {
            layout: Layout::new(&caller, "Change password", PASSWORD),
            must_change: u.user.must_change_password && !done,
            done,
            min_length,
            errors,
        },
    )
}
