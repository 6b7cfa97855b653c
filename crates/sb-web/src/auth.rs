//! Who is calling: back-office users (session cookie), API clients (API key) and customers
//! (JWT), resolved into one [`Caller`] that routes check against their permission.
//!
//! Sessions are rows in the store rather than signed cookies, so that signing out, disabling
//! a user or changing a password ends sessions at once, on every instance.

pub mod apikeys;
pub mod jwt;
pub mod password;
pub mod ratelimit;
pub mod sessions;
pub mod users;

use axum::http::{HeaderMap, HeaderValue, header};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::error::WebError;
use crate::rbac::Permissions;

/// A caller that presented valid credentials.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A back-office user with a session cookie.
    User(SignedIn),
    /// An integration with an API key.
    Api(ApiClient),
    /// A customer of the app with a bearer token.
    Customer(CustomerCaller),
}

/// A signed-in back-office user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user.
    pub user: users::User,
    /// Their session.
    pub session: sessions::Session,
    /// What their role allows.
    pub permissions: Permissions,
}

/// An API client.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// The key's public id.
    pub key_id: String,
    /// The key's name.
    pub name: String,
    /// Its scopes.
    pub permissions: Permissions,
}

/// A customer of the app.
#[derive(Debug, Clone)]
pub struct CustomerCaller {
    /// The token's subject: the customer's id at the operator.
    pub subject: String,
    /// `customer.self`.
    pub permissions: Permissions,
}

impl Caller {
    /// What the caller may do.
    pub fn permissions(&self) -> &Permissions {
        match self {
            Self::User(u) => &u.permissions,
            Self::Api(a) => &a.permissions,
            Self::Customer(c) => &c.permissions,
        }
    }

    /// The caller as recorded in audit entries: `user:<name>`, `api:<key id>`, `customer`.
    pub fn audit_id(&self) -> String {
        match self {
            Self::User(u) => format!("user:{}", u.user.name),
            Self::Api(a) => format!("api:{}", a.key_id),
            Self::Customer(_) => "customer".to_owned(),
        }
    }

    /// The signed-in user, for back-office callers.
    pub fn user(&self) -> Option<&SignedIn> {
        match self {
            Self::User(u) => Some(u),
            _ => None,
        }
    }
}

/// 32 random bytes as hex.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 as hex.
pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Equality that takes the same time wherever the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, whole site, `Secure` under TLS; `max_age`
/// in seconds (`Some(0)` deletes the cookie, `None` lasts for the browser session).
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Resolves the caller from an `Authorization: Bearer` header (API key or customer JWT) or
/// the session cookie. `Ok(None)`: no credentials, or credentials that are no longer valid.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, WebError> {
    let now = state.now();
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).unwrap_or_default();
        if token.starts_with(apikeys::PREFIX) {
            return Ok(apikeys::verify(state.db(), token, now).await?.map(|k| {
                Caller::Api(ApiClient { key_id: k.id, name: k.name, permissions: Permissions::new(k.permissions) })
            }));
        }
        return Ok(state.jwt().and_then(|v| v.verify(token)).map(|claims| {
            Caller::Customer(CustomerCaller { subject: claims.sub, permissions: Permissions::new(["customer.self"]) })
        }));
    }
    let Some(token) = cookie(headers, sessions::COOKIE) else { return Ok(None) };
    let Some(session) = sessions::lookup(state.db(), token, state.session_lifetime(), now).await? else {
        return Ok(None);
    };
    let user = match users::get(state.db(), session.user_id).await {
        Ok(u) if !u.disabled => u,
        Ok(_) | Err(users::UserError::NotFound) => return Ok(None),
        Err(users::UserError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(WebError::Internal(e.to_string())),
    };
    let permissions = state.roles().permissions(&user.role);
    Ok(Some(Caller::User(SignedIn { user, session, permissions })))
}
