//! Sign-in sessions: a random token in an HttpOnly cookie, its SHA-256 in `web_sessions`.

use chrono::{DateTime, Duration, Utc};
use sb_store::sqlx::{self, Row};
use sb_store::{Db, StoreError, time};

use crate::auth::{random_token, sha256_hex};

/// The name of the session cookie.
pub const COOKIE: &str = "sb_session";

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie's token: the row's key.
    pub token_hash: String,
    /// Whose.
    pub user_id: i64,
    /// The token every form of this session carries.
    pub csrf_token: String,
}

/// When sessions end.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    /// After this long unused.
    pub idle: Duration,
    /// After this long in any case.
    pub max: Duration,
}

/// Starts a session for `user_id`; returns the cookie's token (shown to the browser only).
pub async fn create(db: &Db, user_id: i64, now: DateTime<Utc>) -> Result<(String, Session), StoreError> {
    let token = random_token();
    let session = Session { token_hash: sha256_hex(&token), user_id, csrf_token: random_token() };
    sqlx::query(
        "INSERT INTO web_sessions (token_hash, user_id, csrf_token, created_at_ms, last_seen_at_ms) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(&session.token_hash)
    .bind(user_id)
    .bind(&session.csrf_token)
    .bind(time::to_ms(now))
    .execute(db.pool())
    .await?;
    Ok((token, session))
}

/// The live session of a cookie token, refreshed; `None` when unknown or expired (an expired
/// one is deleted).
pub async fn lookup(
    db: &Db,
    token: &str,
    lifetime: Lifetime,
    now: DateTime<Utc>,
) -> Result<Option<Session>, StoreError> {
    let token_hash = sha256_hex(token);
    let row = sqlx::query(
        "SELECT user_id, csrf_token, created_at_ms, last_seen_at_ms FROM web_sessions WHERE token_hash = $1",
    )
    .bind(&token_hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let created = time::from_ms(row.try_get("created_at_ms")?);
    let seen = time::from_ms(row.try_get("last_seen_at_ms")?);
    if now - seen > lifetime.idle || now - created > lifetime.max {
        delete(db, &token_hash).await?;
        return Ok(None);
    }
    // Refreshing at most once a minute keeps reads from turning into writes.
    if now - seen > Duration::minutes(1) {
        sqlx::query("UPDATE web_sessions SET last_seen_at_ms = $1 WHERE token_hash = $2")
            .bind(time::to_ms(now))
            .bind(&token_hash)
            .execute(db.pool())
            .await?;
    }
    Ok(Some(Session { token_hash, user_id: row.try_get("user_id")?, csrf_token: row.try_get("csrf_token")? }))
}

/// Ends every session of a user, but the one whose token hash is `keep` (a password change
/// keeps the session it was made from), inside the caller's transaction.
pub(crate) async fn end_all(tx: &mut sb_store::WriteTx, user_id: i64, keep: Option<&str>) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Ends a session.
pub async fn delete(db: &Db, token_hash: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1").bind(token_hash).execute(db.pool()).await?;
    Ok(())
}

/// Deletes sessions past their lifetime; returns how many.
pub async fn prune(db: &Db, lifetime: Lifetime, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM web_sessions WHERE last_seen_at_ms < $1 OR created_at_ms < $2")
        .bind(time::to_ms(now - lifetime.idle))
        .bind(time::to_ms(now - lifetime.max))
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}
