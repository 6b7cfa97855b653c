//! API keys of partners and integrations: `sbk_<id>_<secret>`, shown once, stored as the
//! SHA-256 of the secret, scoped to permissions, optionally expiring, revocable.
//!
//! The secret is 256 random bits, so a plain SHA-256 suffices (nothing to brute-force), and
//! checking a key costs one indexed read and one hash: cheap enough for every API call.

use chrono::{DateTime, Duration, Utc};
use sb_store::sqlx::{self, Row, any::AnyRow};
use sb_store::{Db, StoreError, time};
use serde::Serialize;

use crate::auth::{constant_time_eq, random_token, sha256_hex};

/// The prefix of every key.
pub const PREFIX: &str = "sbk_";

/// An API key's record (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    /// The public part, shown in lists and logs.
    pub id: String,
    /// Who it is for (`billing`, `partner-acme`).
    pub name: String,
    /// What it may do.
    pub permissions: Vec<String>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Its last use (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether it works at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

const COLUMNS: &str = "id, name, permissions, created_by, created_at_ms, expires_at_ms, revoked_at_ms, last_used_at_ms";

fn from_row(r: &AnyRow) -> Result<ApiKey, StoreError> {
    let perms: String = r.try_get("permissions")?;
    Ok(ApiKey {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        permissions: serde_json::from_str(&perms)
            .map_err(|e| StoreError::Other(format!("api key permissions: {e}")))?,
        created_by: r.try_get("created_by")?,
        created_at: time::from_ms(r.try_get("created_at_ms")?),
        expires_at: r.try_get::<Option<i64>, _>("expires_at_ms")?.map(time::from_ms),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at_ms")?.map(time::from_ms),
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at_ms")?.map(time::from_ms),
    })
}

/// Creates a key; returns its record and the whole key, which is shown once and never again.
pub async fn create(
    db: &Db,
    name: &str,
    permissions: &[String],
    expires_at: Option<DateTime<Utc>>,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<(ApiKey, String), StoreError> {
    let id = random_token()[..12].to_owned();
    let secret = random_token();
    sqlx::query(
        "INSERT INTO web_api_keys (id, name, secret_hash, permissions, created_by, created_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(name)
    .bind(sha256_hex(&secret))
    .bind(serde_json::to_string(permissions).unwrap_or_else(|_| "[]".into()))
    .bind(created_by)
    .bind(time::to_ms(now))
    .bind(expires_at.map(time::to_ms))
    .execute(db.pool())
    .await?;
    let key = get(db, &id).await?;
    Ok((key, format!("{PREFIX}{id}_{secret}")))
}

/// The key with this id.
pub async fn get(db: &Db, id: &str) -> Result<ApiKey, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM web_api_keys WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

/// Every key, newest first.
pub async fn list(db: &Db) -> Result<Vec<ApiKey>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM web_api_keys ORDER BY created_at_ms DESC, id"))
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// Revokes a key at `now`; revoking twice keeps the first instant.
pub async fn revoke(db: &Db, id: &str, now: DateTime<Utc>) -> Result<ApiKey, StoreError> {
    sqlx::query("UPDATE web_api_keys SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL")
        .bind(time::to_ms(now))
        .bind(id)
        .execute(db.pool())
        .await?;
    get(db, id).await
}

/// The active key `presented` is, or `None` (malformed, unknown, wrong secret, revoked,
/// expired).
pub async fn verify(db: &Db, presented: &str, now: DateTime<Utc>) -> Result<Option<ApiKey>, StoreError> {
    let Some((id, secret)) = presented.strip_prefix(PREFIX).and_then(|r| r.split_once('_')) else {
        return Ok(None);
    };
    if id.len() != 12 || secret.len() != 64 {
        return Ok(None);
    }
    let row = sqlx::query(&format!("SELECT {COLUMNS}, secret_hash FROM web_api_keys WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: String = row.try_get("secret_hash")?;
    if !constant_time_eq(stored.as_bytes(), sha256_hex(secret).as_bytes()) {
        return Ok(None);
    }
    let key = from_row(&row)?;
    if !key.is_active(now) {
        return Ok(None);
    }
    if key.last_used_at.is_none_or(|t| now - t > Duration::minutes(1)) {
        sqlx::query("UPDATE web_api_keys SET last_used_at_ms = $1 WHERE id = $2")
            .bind(time::to_ms(now))
            .bind(id)
            .execute(db.pool())
            .await?;
    }
    Ok(Some(key))
}
