//! Users and roles: the list, adding a user (with a one-time password shown once), changing
//! a role, disabling.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Layout, PageQuery, Pager, TableQuery, ValidForm, render, render_with, when};
use crate::app::AppState;
use crate::auth::users::{self, User, UserError};
use crate::error::{FieldErrors, WebError, WebResult};
use crate::routes::{CallerExt, urlencode};

/// A role and what it may do.
pub struct RoleRow {
    /// Name.
    pub name: String,
    /// Permissions, comma-separated.
    pub permissions: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<User>,
    pager: Pager,
    roles: Vec<RoleRow>,
    role_names: Vec<String>,
    can_manage: bool,
    errors: FieldErrors,
    name: String,
    created: Option<(String, String)>,
}

impl UsersPage {
    fn last_sign_in(&self, u: &User) -> String {
        when(u.last_sign_in_at)
    }
}

async fn page(
    state: &AppState,
    caller: &CallerExt,
    q: &TableQuery,
    errors: FieldErrors,
    name: String,
    created: Option<(String, String)>,
) -> WebResult<UsersPage> {
    let (_, total) = users::list(state.db(), q.q.trim(), "name", false, 0, 0).await?;
    let pager = Pager::new("/admin/users", q, total, "name", users::SORTABLE);
    let (list, _) = users::list(state.db(), &pager.q, &pager.sort, pager.desc, pager.offset(), pager.limit()).await?;
    Ok(UsersPage {
        layout: Layout::new(caller, "Users & roles", "/admin/users"),
        users: list,
        pager,
        roles: state.roles().iter().map(|(n, p)| RoleRow { name: n.to_owned(), permissions: p.join(", ") }).collect(),
        role_names: state.roles().names(),
        can_manage: caller.permissions().allows("users.manage"),
        errors,
        name,
        created,
    })
}

/// `GET /admin/users`.
pub async fn list(
    State(state): State<AppState>,
    caller: CallerExt,
    PageQuery(q): PageQuery<TableQuery>,
) -> WebResult<Response> {
    render(&page(&state, &caller, &q, FieldErrors::new(), String::new(), None).await?)
}

/// The add-user form.
#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

/// `POST /admin/users`: adds a user and shows their one-time password, once.
pub async fn add(
    State(state): State<AppState>,
    caller: CallerExt,
    ValidForm(form): ValidForm<AddForm>,
) -> WebResult<Response> {
    let name = form.name.trim().to_owned();
    let mut errors = FieldErrors::new();
    match users::add(state.db(), state.roles(), &name, &form.role, state.now()).await {
        Ok((user, password)) => {
            tracing::info!(user_id = user.id, by = %caller.audit_id(), "user added");
            let p = page(&state, &caller, &TableQuery::default(), errors, String::new(), Some((user.name, password)))
                .await?;
            return render_with(StatusCode::CREATED, &p);
        }
        Err(e @ (UserError::InvalidName | UserError::Taken)) => errors.insert("name".into(), e.to_string()),
        Err(e @ UserError::UnknownRole(..)) => errors.insert("role".into(), e.to_string()),
        Err(UserError::NotFound) => return Err(WebError::NotFound),
        Err(UserError::Store(e)) => return Err(e.into()),
    };
    render_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        &page(&state, &caller, &TableQuery::default(), errors, name, None).await?,
    )
}

/// The set-role form.
#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

fn user_error(e: UserError) -> WebError {
    match e {
        UserError::NotFound => WebError::NotFound,
        UserError::Store(s) => s.into(),
        UserError::UnknownRole(..) => WebError::Validation(FieldErrors::from([("role".into(), e.to_string())])),
        other => WebError::BadRequest(other.to_string()),
    }
}

/// `POST /admin/users/{name}/role`.
pub async fn set_role(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ValidForm(form): ValidForm<RoleForm>,
) -> WebResult<Response> {
    users::set_role(state.db(), state.roles(), &name, &form.role).await.map_err(user_error)?;
    Ok(Redirect::to(&format!("/admin/users?q={}", urlencode(&name))).into_response())
}

/// `POST /admin/users/{name}/disable`: disables the user and ends their sessions.
pub async fn disable(
    State(state): State<AppState>,
    caller: CallerExt,
    Path(name): Path<String>,
) -> WebResult<Response> {
    if caller.user().is_some_and(|u| u.user.name == name) {
        return Err(WebError::Conflict("you cannot disable yourself".into()));
    }
    users::set_disabled(state.db(), &name, true).await.map_err(user_error)?;
    Ok(Redirect::to("/admin/users").into_response())
}
