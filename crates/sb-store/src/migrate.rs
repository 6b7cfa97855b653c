use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection, Executor, Row};

use crate::{Backend, Db, StoreError, time};

/// One schema change, written once per backend.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Order within its set, from 1.
    pub version: i64,
    /// A short name (`0001_runs`).
    pub name: &'static str,
    /// The SQL for SQLite.
    pub sqlite: &'static str,
    /// The SQL for PostgreSQL.
    pub postgres: &'static str,
}

impl Migration {
    fn sql(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }

    fn checksum(&self, backend: Backend) -> String {
        hex::encode(Sha256::digest(self.sql(backend).as_bytes()))
    }
}

/// The migrations of one domain (`jobs`, `ingest`, …), tracked separately from the others.
#[derive(Debug, Clone, Copy)]
pub struct MigrationSet {
    /// The domain that owns these tables.
    pub domain: &'static str,
    /// Its migrations, in version order.
    pub migrations: &'static [Migration],
}

/// Declares a [`Migration`] from `migrations/sqlite/NAME.sql` and `migrations/postgres/NAME.sql`
/// in the calling crate, embedded at compile time.
#[macro_export]
macro_rules! migration {
    ($version:literal, $name:literal) => {
        $crate::Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres/", $name, ".sql")),
        }
    };
}

/// Where one migration stands in a database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    /// Not applied yet.
    Pending,
    /// Applied, at this instant (epoch milliseconds).
    Applied {
        /// When it was applied.
        at_ms: i64,
    },
    /// Applied, but the SQL embedded now differs from what was applied.
    Changed,
}

/// One row of `switchboard db status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationStatus {
    /// The owning domain.
    pub domain: &'static str,
    /// The version within the domain.
    pub version: i64,
    /// The migration's name.
    pub name: &'static str,
    /// Where it stands.
    pub state: MigrationState,
}

const TRACKING_TABLE: &str = "CREATE TABLE IF NOT EXISTS store_migrations (
    domain TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at_ms BIGINT NOT NULL,
    PRIMARY KEY (domain, version)
)";

/// Serialises migrations of concurrent instances on PostgreSQL ("sb_migr" in ASCII).
const PG_MIGRATION_LOCK: i64 = 0x73625f6d69677200;

impl Db {
    /// Applies every pending migration of `sets`, each in its own transaction, and returns
    /// how many were applied. Running it again applies nothing. A migration changed after it
    /// was applied is an error: schemas only move forward through new migrations.
    pub async fn migrate(&self, sets: &[&MigrationSet]) -> Result<usize, StoreError> {
        let mut conn = self.pool().acquire().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await?;
        }
        let result = self.migrate_on(&mut conn, sets).await;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await?;
        }
        result
    }

    async fn migrate_on(&self, conn: &mut AnyConnection, sets: &[&MigrationSet]) -> Result<usize, StoreError> {
        conn.execute(TRACKING_TABLE).await?;
        let mut applied = 0;
        for set in sets {
            for m in set.migrations {
                let checksum = m.checksum(self.backend());
                let mut tx = match self.backend() {
                    Backend::Sqlite => Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?,
                    Backend::Postgres => Connection::begin(&mut *conn).await?,
                };
                let existing: Option<String> =
                    sqlx::query_scalar("SELECT checksum FROM store_migrations WHERE domain = $1 AND version = $2")
                        .bind(set.domain)
                        .bind(m.version)
                        .fetch_optional(&mut *tx)
                        .await?;
                match existing {
                    Some(c) if c == checksum => continue,
                    Some(_) => {
                        return Err(StoreError::Other(format!(
                            "migration {}/{} ({}) was changed after it was applied",
                            set.domain, m.version, m.name
                        )));
                    }
                    None => {}
                }
                tracing::info!(domain = set.domain, version = m.version, name = m.name, "applying migration");
                tx.execute(sqlx::raw_sql(m.sql(self.backend()))).await.map_err(|e| {
                    StoreError::Other(format!(
                        "migration {}/{} ({}) failed: {}",
                        set.domain,
                        m.version,
                        m.name,
                        StoreError::from(e)
                    ))
                })?;
                sqlx::query(
                    "INSERT INTO store_migrations (domain, version, name, checksum, applied_at_ms) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(set.domain)
                .bind(m.version)
                .bind(m.name)
                .bind(&checksum)
                .bind(time::to_ms(chrono::Utc::now()))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                applied += 1;
            }
        }
        Ok(applied)
    }

    /// Where each migration of `sets` stands, without changing anything.
    pub async fn migration_status(&self, sets: &[&MigrationSet]) -> Result<Vec<MigrationStatus>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let applied = applied_migrations(&mut conn).await?;
        let mut out = Vec::new();
        for set in sets {
            for m in set.migrations {
                let state = match applied.iter().find(|a| a.0 == set.domain && a.1 == m.version) {
                    None => MigrationState::Pending,
                    Some(a) if a.2 == m.checksum(self.backend()) => MigrationState::Applied { at_ms: a.3 },
                    Some(_) => MigrationState::Changed,
                };
                out.push(MigrationStatus { domain: set.domain, version: m.version, name: m.name, state });
            }
        }
        Ok(out)
    }

    /// Whether every migration of `sets` is applied unchanged (for readiness checks).
    pub async fn is_migrated(&self, sets: &[&MigrationSet]) -> Result<bool, StoreError> {
        let status = self.migration_status(sets).await?;
        Ok(status.iter().all(|s| matches!(s.state, MigrationState::Applied { .. })))
    }
}

async fn applied_migrations(conn: &mut AnyConnection) -> Result<Vec<(String, i64, String, i64)>, StoreError> {
    let exists = match sqlx::query("SELECT domain, version, checksum, applied_at_ms FROM store_migrations")
        .fetch_all(&mut *conn)
        .await
    {
        Ok(rows) => rows,
        // No tracking table yet: nothing is applied.
        Err(sqlx::Error::Database(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    exists
        .into_iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
