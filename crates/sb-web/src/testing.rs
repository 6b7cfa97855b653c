//! Helpers for tests of the app (feature `testing`): users and sessions without going
//! through the sign-in form, and API keys.

use axum::http::HeaderValue;

use crate::app::AppState;
use crate::auth::{apikeys, sessions, users};

/// A signed-in back-office user: the headers a browser would send.
#[derive(Debug, Clone)]
pub struct TestSession {
    /// The user's name.
    pub name: String,
    /// `Cookie: sb_session=…`.
    pub cookie: HeaderValue,
    /// The session's CSRF token.
    pub csrf: String,
}

/// Adds user `name` with `role` (password changed already) and signs them in.
pub async fn session(state: &AppState, name: &str, role: &str) -> TestSession {
    let (user, _) = users::add(state.db(), state.roles(), name, role, state.now()).await.expect("add user");
    users::set_password(state.db(), user.id, "a test password of length", None, state.now())
        .await
        .expect("set password");
    let (token, session) = sessions::create(state.db(), user.id, state.now()).await.expect("create session");
    TestSession {
        name: name.to_owned(),
        cookie: HeaderValue::from_str(&format!("{}={token}", sessions::COOKIE)).expect("cookie"),
        csrf: session.csrf_token,
    }
}

/// A new API key holding `permissions`; returns the whole key.
pub async fn api_key(state: &AppState, permissions: &[String]) -> String {
    apikeys::create(state.db(), "test", permissions, None, "test", state.now()).await.expect("api key").1
}
