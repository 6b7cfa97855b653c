//! Back-office users: names, roles, password hashes, lockout state.

use chrono::{DateTime, Duration, Utc};
use sb_store::sqlx::{self, Row, any::AnyRow};
use sb_store::{Db, StoreError, time};
use serde::Serialize;

use crate::auth::{password, sessions};
use crate::rbac::Roles;

/// A back-office user (never with the password hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Its id.
    pub id: i64,
    /// The sign-in name.
    pub name: String,
    /// Its role (see [`crate::rbac`]).
    pub role: String,
    /// Whether the next sign-in must set a new password (a one-time password was issued).
    pub must_change_password: bool,
    /// Whether sign-in is refused.
    pub disabled: bool,
    /// Failed sign-ins since the last success or lockout.
    pub failed_sign_ins: i64,
    /// Locked until then after too many failed sign-ins.
    pub locked_until: Option<DateTime<Utc>>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// The last successful sign-in.
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// What can go wrong managing users; messages are fit to show to an administrator.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name is not acceptable.
    #[error("a user name is 2 to 64 characters: lower-case letters, digits, `.`, `_`, `-`")]
    InvalidName,
    /// The role does not exist.
    #[error("no role named `{0}`; roles: {1}")]
    UnknownRole(String, String),
    /// The name is taken.
    #[error("a user with this name exists already")]
    Taken,
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(_) => Self::Taken,
            other => Self::Store(other),
        }
    }
}

const COLUMNS: &str = "id, name, role, must_change_password, disabled, failed_sign_ins, locked_until_ms, \
                       created_at_ms, last_sign_in_at_ms";

fn from_row(r: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        must_change_password: r.try_get::<i64, _>("must_change_password")? != 0,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        failed_sign_ins: r.try_get("failed_sign_ins")?,
        locked_until: r.try_get::<Option<i64>, _>("locked_until_ms")?.map(time::from_ms),
        created_at: time::from_ms(r.try_get("created_at_ms")?),
        last_sign_in_at: r.try_get::<Option<i64>, _>("last_sign_in_at_ms")?.map(time::from_ms),
    })
}

/// Checks a user name: 2–64 of `a-z 0-9 . _ -`.
pub fn check_name(name: &str) -> Result<(), UserError> {
    let ok = (2..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(()) } else { Err(UserError::InvalidName) }
}

fn check_role(roles: &Roles, role: &str) -> Result<(), UserError> {
    if roles.contains(role) { Ok(()) } else { Err(UserError::UnknownRole(role.to_owned(), roles.names().join(", "))) }
}

/// Adds a user with a one-time password that must be changed at first sign-in; returns the
/// user and the password (to be shown once, never stored).
pub async fn add(
    db: &Db,
    roles: &Roles,
    name: &str,
    role: &str,
    now: DateTime<Utc>,
) -> Result<(User, String), UserError> {
    check_name(name)?;
    check_role(roles, role)?;
    let one_time = password::one_time();
    let hash = password::hash(&one_time);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO web_users (name, role, password_hash, must_change_password, created_at_ms) \
         VALUES ($1, $2, $3, 1, $4) RETURNING id",
    )
    .bind(name)
    .bind(role)
    .bind(&hash)
    .bind(time::to_ms(now))
    .fetch_one(db.pool())
    .await
    .map_err(StoreError::from)?;
    Ok((get(db, id).await?, one_time))
}

/// The user with this id.
pub async fn get(db: &Db, id: i64) -> Result<User, UserError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM web_users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await
        .map_err(StoreError::from)?
        .ok_or(UserError::NotFound)?;
    Ok(from_row(&row).map_err(StoreError::from)?)
}

/// The user with this name.
pub async fn find(db: &Db, name: &str) -> Result<Option<User>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM web_users WHERE name = $1"))
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// How many users exist.
pub async fn count(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM web_users").fetch_one(db.pool()).await?)
}

/// Columns a user list can be sorted by.
pub const SORTABLE: &[&str] = &["name", "role", "created", "last_sign_in"];

/// One page of users whose name or role contains `filter`, sorted by `sort` (one of
/// [`SORTABLE`]), and the number of matching users.
pub async fn list(
    db: &Db,
    filter: &str,
    sort: &str,
    descending: bool,
    offset: i64,
    limit: i64,
) -> Result<(Vec<User>, i64), StoreError> {
    let column = match sort {
        "role" => "role",
        "created" => "created_at_ms",
        "last_sign_in" => "last_sign_in_at_ms",
        _ => "name",
    };
    let dir = if descending { "DESC" } else { "ASC" };
    let pattern = format!("%{}%", filter.replace(['%', '_'], ""));
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM web_users WHERE name LIKE $1 OR role LIKE $1 ORDER BY {column} {dir}, id LIMIT $2 OFFSET $3"
    ))
    .bind(&pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(db.pool())
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_users WHERE name LIKE $1 OR role LIKE $1")
        .bind(&pattern)
        .fetch_one(db.pool())
        .await?;
    Ok((rows.iter().map(from_row).collect::<Result<_, _>>()?, total))
}

/// Gives user `name` another role.
pub async fn set_role(db: &Db, roles: &Roles, name: &str, role: &str) -> Result<User, UserError> {
    check_role(roles, role)?;
    let done = sqlx::query("UPDATE web_users SET role = $1 WHERE name = $2")
        .bind(role)
        .bind(name)
        .execute(db.pool())
        .await
        .map_err(StoreError::from)?;
    if done.rows_affected() == 0 {
        return Err(UserError::NotFound);
    }
    find(db, name).await?.ok_or(UserError::NotFound)
}

/// Disables (or enables again) user `name`; disabling ends their sessions.
pub async fn set_disabled(db: &Db, name: &str, disabled: bool) -> Result<User, UserError> {
    let mut tx = db.begin_write().await?;
    // Enabling also lifts a lockout: an operator vouched for the account.
    let sql = if disabled {
        "UPDATE web_users SET disabled = $1 WHERE name = $2 RETURNING id"
    } else {
        "UPDATE web_users SET disabled = $1, failed_sign_ins = 0, locked_until_ms = NULL WHERE name = $2 RETURNING id"
    };
    let id: Option<i64> = sqlx::query_scalar(sql)
        .bind(i64::from(disabled))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    let id = id.ok_or(UserError::NotFound)?;
    if disabled {
        sessions::end_all(&mut tx, id, None).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    get(db, id).await
}

/// Gives a user a new one-time password (to be changed at next sign-in), lifts any lockout
/// and ends their sessions: for a forgotten password. Returns the password, to be shown once.
pub async fn reset_password(db: &Db, name: &str, now: DateTime<Utc>) -> Result<(User, String), UserError> {
    let one_time = password::one_time();
    let given = one_time.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&given))
        .await
        .map_err(|e| StoreError::Other(format!("hashing failed: {e}")))?;
    let mut tx = db.begin_write().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE web_users SET password_hash = $1, must_change_password = 1, failed_sign_ins = 0, \
         locked_until_ms = NULL, password_changed_at_ms = $2 WHERE name = $3 RETURNING id",
    )
    .bind(&hash)
    .bind(time::to_ms(now))
    .bind(name)
    .fetch_optional(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let id = id.ok_or(UserError::NotFound)?;
    sessions::end_all(&mut tx, id, None).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((get(db, id).await?, one_time))
}

/// Why a sign-in failed. Unknown names, disabled users and wrong passwords look alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInFailure {
    /// Wrong name or password (or a disabled user).
    Invalid,
    /// Too many failures: locked until then.
    Locked(DateTime<Utc>),
}

/// Lockout policy: after `after` consecutive failures, the account is locked for `for_`.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    /// Failures that lock.
    pub after: u32,
    /// For how long.
    pub duration: Duration,
}

/// Checks a name and password, counting failures and locking the account after too many.
pub async fn authenticate(
    db: &Db,
    name: &str,
    password_given: &str,
    lockout: Lockout,
    now: DateTime<Utc>,
) -> Result<Result<User, SignInFailure>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS}, password_hash FROM web_users WHERE name = $1"))
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else {
        password::verify_nothing(password_given);
        return Ok(Err(SignInFailure::Invalid));
    };
    let user = from_row(&row)?;
    let hash: String = row.try_get("password_hash")?;
    if let Some(until) = user.locked_until.filter(|u| *u > now) {
        return Ok(Err(SignInFailure::Locked(until)));
    }
    let ok = {
        let (hash, given) = (hash.clone(), password_given.to_owned());
        tokio::task::spawn_blocking(move || password::verify(&hash, &given)).await.unwrap_or(false)
    };
    if ok && !user.disabled {
        sqlx::query(
            "UPDATE web_users SET failed_sign_ins = 0, locked_until_ms = NULL, last_sign_in_at_ms = $1 WHERE id = $2",
        )
        .bind(time::to_ms(now))
        .bind(user.id)
        .execute(db.pool())
        .await?;
        return Ok(Ok(get(db, user.id).await.map_err(|e| match e {
            UserError::Store(s) => s,
            _ => StoreError::NotFound,
        })?));
    }
    if user.disabled {
        return Ok(Err(SignInFailure::Invalid));
    }
    let failures: i64 = sqlx::query_scalar(
        "UPDATE web_users SET failed_sign_ins = failed_sign_ins + 1 WHERE id = $1 RETURNING failed_sign_ins",
    )
    .bind(user.id)
    .fetch_one(db.pool())
    .await?;
    if failures >= i64::from(lockout.after.max(1)) {
        let until = now + lockout.duration;
        sqlx::query("UPDATE web_users SET failed_sign_ins = 0, locked_until_ms = $1 WHERE id = $2")
            .bind(time::to_ms(until))
            .bind(user.id)
            .execute(db.pool())
            .await?;
        tracing::warn!(user_id = user.id, "account locked after repeated failed sign-ins");
        return Ok(Err(SignInFailure::Locked(until)));
    }
    Ok(Err(SignInFailure::Invalid))
}

/// Whether `password_given` is user `id`'s current password.
pub async fn check_password(db: &Db, id: i64, password_given: &str) -> Result<bool, StoreError> {
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM web_users WHERE id = $1").bind(id).fetch_one(db.pool()).await?;
    let given = password_given.to_owned();
    Ok(tokio::task::spawn_blocking(move || password::verify(&hash, &given)).await.unwrap_or(false))
}

/// Sets a new password (no longer one-time) and ends the user's other sessions.
pub async fn set_password(
    db: &Db,
    id: i64,
    new_password: &str,
    keep_session: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let given = new_password.to_owned();
    let hash = tokio::task::spawn_blocking(move || password::hash(&given))
        .await
        .map_err(|e| StoreError::Other(format!("hashing failed: {e}")))?;
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE web_users SET password_hash = $1, must_change_password = 0, password_changed_at_ms = $2 WHERE id = $3",
    )
    .bind(&hash)
    .bind(time::to_ms(now))
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sessions::end_all(&mut tx, id, keep_session).await?;
    tx.commit().await?;
    Ok(())
}
