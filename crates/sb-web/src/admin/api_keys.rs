//! API keys: the list, creating one (shown once), revoking.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Duration;

use super::{Layout, Pairs, render, render_with, when};
use crate::app::AppState;
use crate::auth::apikeys::{self, ApiKey};
use crate::error::{FieldErrors, WebError, WebResult};
use crate::rbac;
use crate::routes::CallerExt;

/// A row of the keys table.
pub struct KeyRow {
    /// Public id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Scopes.
    pub permissions: String,
    /// Creator.
    pub created_by: String,
    /// Created.
    pub created: String,
    /// Expiry.
    pub expires: String,
    /// Last use.
    pub last_used: String,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    layout: Layout,
    keys: Vec<KeyRow>,
    permissions: Vec<String>,
    can_manage: bool,
    errors: FieldErrors,
    created: Option<(String, String)>,
}

fn row(k: ApiKey, now: chrono::DateTime<chrono::Utc>) -> KeyRow {
    let state = if k.revoked_at.is_some() {
        "revoked"
    } else if k.is_active(now) {
        "active"
    } else {
        "expired"
    };
    KeyRow {
        permissions: k.permissions.join(", "),
        created: when(Some(k.created_at)),
        expires: k.expires_at.map_or_else(|| "never".into(), |t| when(Some(t))),
        last_used: when(k.last_used_at),
        id: k.id,
        name: k.name,
        created_by: k.created_by,
        state,
    }
}

async fn page(
    state: &AppState,
    caller: &CallerExt,
    errors: FieldErrors,
    created: Option<(String, String)>,
) -> WebResult<KeysPage> {
    let now = state.now();
    Ok(KeysPage {
        layout: Layout::new(caller, "API keys", "/admin/api-keys"),
        keys: apikeys::list(state.db()).await?.into_iter().map(|k| row(k, now)).collect(),
        permissions: rbac::all_permissions().into_iter().filter(|p| p != "customer.self").collect(),
        can_manage: caller.permissions().allows("apikeys.manage"),
        errors,
        created,
    })
}

/// `GET /admin/api-keys`.
pub async fn list(State(state): State<AppState>, caller: CallerExt) -> WebResult<Response> {
    render(&page(&state, &caller, FieldErrors::new(), None).await?)
}

/// `POST /admin/api-keys`: fields `name`, `permission` (repeated), `expires_days`.
pub async fn create(State(state): State<AppState>, caller: CallerExt, form: Pairs) -> WebResult<Response> {
    let mut errors = FieldErrors::new();
    let field = |k: &str| form.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let name = field("name");
    if name.is_empty() || name.len() > 100 {
        errors.insert("name".into(), "A name of 1 to 100 characters: who the key is for.".into());
    }
    let known = rbac::all_permissions();
    let permissions: Vec<String> = form
        .0
        .iter()
        .filter(|(k, _)| k == "permission")
        .map(|(_, v)| v.clone())
        .filter(|p| known.contains(p))
        .collect();
    if permissions.is_empty() {
        errors.insert("permission".into(), "Choose at least one permission.".into());
    }
    let days = field("expires_days");
    let expires_at = match days.parse::<i64>() {
        _ if days.is_empty() => None,
        Ok(d) if (1..=3650).contains(&d) => Some(state.now() + Duration::days(d)),
        _ => {
            errors.insert("expires_days".into(), "A number of days from 1 to 3650, or empty for no expiry.".into());
            None
        }
    };
    if !errors.is_empty() {
        return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page(&state, &caller, errors, None).await?);
    }
    let (key, secret) =
        apikeys::create(state.db(), &name, &permissions, expires_at, &caller.audit_id(), state.now()).await?;
    tracing::info!(key_id = %key.id, by = %caller.audit_id(), "API key created");
    render_with(StatusCode::CREATED, &page(&state, &caller, FieldErrors::new(), Some((key.name, secret))).await?)
}

/// `POST /admin/api-keys/{id}/revoke`.
pub async fn revoke(State(state): State<AppState>, caller: CallerExt, Path(id): Path<String>) -> WebResult<Response> {
    apikeys::revoke(state.db(), &id, state.now()).await.map_err(|e| match e {
        sb_store::StoreError::NotFound => WebError::NotFound,
        other => other.into(),
    })?;
    tracing::info!(key_id = %id, by = %caller.audit_id(), "API key revoked");
    Ok(Redirect::to("/admin/api-keys").into_response())
}
