use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::StoreError;

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`, as used for migration folders and in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// The backend a URL names, from its scheme.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(StoreError::Other(format!(
                "unsupported database URL scheme `{scheme}` in {}: expected sqlite:// or postgres://",
                redact_url(url)
            ))),
        }
    }
}

/// A transaction from [`Db::begin_write`]: used as the connection it runs on
/// (`&mut *tx` is an executor), it ends with [`WriteTx::commit`], or rolls back when dropped.
#[derive(Debug)]
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    _gate: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits the transaction (and opens the handle's write gate).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// Tuning of a connection pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// How long a SQLite writer waits for a lock.
    pub busy_timeout: Duration,
    /// How long to wait for a pooled connection.
    pub acquire_timeout: Duration,
    /// PostgreSQL only: a schema of its own (created when missing) that every connection
    /// works in, so that two domains (the store and the vault) can share a server apart.
    pub schema: Option<String>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(10),
            schema: None,
        }
    }
}

impl From<&crate::StoreConfig> for PoolOptions {
    fn from(c: &crate::StoreConfig) -> Self {
        Self {
            max_connections: c.max_connections.max(1),
            busy_timeout: Duration::from_millis(c.busy_timeout_ms),
            acquire_timeout: Duration::from_millis(c.acquire_timeout_ms),
            schema: None,
        }
    }
}

/// A handle on the operational database; cheap to clone (it shares one pool).
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: held by this handle's write transactions, one at a time (see
    /// [`Db::begin_write`]).
    write_gate: Arc<Mutex<()>>,
}

impl Db {
    /// Opens a pool on `url`. A SQLite file is created (with its folder) when missing and
    /// set to WAL mode with foreign keys on and a busy timeout.
    pub async fn connect(url: &str, options: &crate::StoreConfig) -> Result<Self, StoreError> {
        Self::connect_with(url, &PoolOptions::from(options)).await
    }

    /// Like [`Db::connect`], with explicit pool options.
    pub async fn connect_with(url: &str, options: &PoolOptions) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let busy_ms = options.busy_timeout.as_millis();
        let schema = match (&options.schema, backend) {
            (Some(s), Backend::Postgres) => Some(checked_identifier(s)?),
            _ => None,
        };
        if let Some(schema) = &schema {
            // Created once with a throwaway connection, so pooled connections can just use it.
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.map_err(|e| {
                StoreError::Unavailable(format!("cannot connect to {}: {}", redact_url(&url), StoreError::from(e)))
            })?;
            conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str()).await?;
            let _ = sqlx::Connection::close(conn).await;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let schema = schema.clone();
                Box::pin(async move {
                    if let Some(schema) = schema {
                        conn.execute(format!("SET search_path TO {schema}").as_str()).await?;
                    }
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; NORMAL sync is durable
                        // at each checkpoint and safe against corruption in WAL mode.
                        let pragmas = format!(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {busy_ms}; PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 16384;"
                        );
                        conn.execute(sqlx::raw_sql(&pragmas)).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Other(m) | StoreError::Unavailable(m) => {
                    StoreError::Unavailable(format!("cannot connect to {}: {m}", redact_url(&url)))
                }
                other => other,
            })?;
        Ok(Self { pool, backend, write_gate: Arc::new(Mutex::new(())) })
    }

    /// The engine behind this handle.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for domain crates' queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so it waits on the busy timeout instead of failing later when
    /// a read would have to be upgraded. SQLite has one writer at a time anyway, so this
    /// handle's write transactions first queue on a gate of their own: a second writer of
    /// this process is woken when the first ends, instead of polling the busy timeout's
    /// sleeps (up to 100 ms each). Other processes still meet the busy timeout. A task must
    /// not hold one write transaction while it begins another on the same handle.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let (tx, gate) = match self.backend {
            Backend::Sqlite => {
                let gate = Arc::clone(&self.write_gate).lock_owned().await;
                (self.pool.begin_with("BEGIN IMMEDIATE").await?, Some(gate))
            }
            Backend::Postgres => (self.pool.begin().await?, None),
        };
        Ok(WriteTx { tx, _gate: gate })
    }

    /// Placeholders for parameters `first ..= first + n - 1`, comma-separated: `$3, $4` on
    /// PostgreSQL, `?, ?` on SQLite, whose driver finds numbered parameters by a linear search
    /// (quadratic in a multi-row statement of thousands of values). Statements built with it
    /// must number their parameters in order of appearance.
    pub fn params(&self, first: usize, n: usize) -> String {
        let mut out = String::with_capacity(n * 6);
        for i in first..first + n {
            if i > first {
                out.push_str(", ");
            }
            match self.backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => {
                    out.push('$');
                    out.push_str(&i.to_string());
                }
            }
        }
        out
    }

    /// `(…), (…)` for a multi-row `VALUES` of `rows` × `cols` parameters from `first` on.
    pub fn values(&self, first: usize, rows: usize, cols: usize) -> String {
        (0..rows).map(|r| format!("({})", self.params(first + r * cols, cols))).collect::<Vec<_>>().join(", ")
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection; further use fails with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// How `rows` rows are split into multi-row statements of at most `max` rows each: `max` as
/// often as it fits, then the rest in powers of two, largest first.
///
/// A connection keeps the statements it prepared (sqlx's cache, 100 a connection), and SQLite
/// holds a prepared statement of a few hundred rows in tens of KB. With one statement for each
/// remainder a bulk load met, that cache held about 38 MB of them during the ingestion of a
/// 2-million-line operator's hours; sized from this fixed set, a statement's shape is prepared
/// at most about log2(`max`) + 1 times.
pub fn statement_rows(rows: usize, max: usize) -> impl Iterator<Item = usize> {
    let max = max.max(1);
    let rest = rows % max;
    std::iter::repeat_n(max, rows / max)
        .chain((0..usize::BITS).rev().map(|bit| 1usize << bit).filter(move |size| rest & size != 0))
}

/// The text of each statement size [`statement_rows`] gives for `rows` rows, made once per size
/// by `sql(size)`: look a chunk's statement up by its length.
pub fn statement_texts(
    rows: usize,
    max: usize,
    sql: impl Fn(usize) -> String,
) -> std::collections::HashMap<usize, String> {
    let mut texts = std::collections::HashMap::new();
    for n in statement_rows(rows, max) {
        texts.entry(n).or_insert_with(|| sql(n));
    }
    texts
}

/// `rows` in consecutive slices of the sizes [`statement_rows`] gives: one multi-row statement each.
pub fn statement_chunks<T>(rows: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    statement_rows(rows.len(), max).map(move |n| {
        let (part, after) = rest.split_at(n);
        rest = after;
        part
    })
}

/// A schema name safe to splice into SQL: lower-case letters, digits and `_`.
fn checked_identifier(name: &str) -> Result<String, StoreError> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63;
    if ok {
        Ok(name.to_owned())
    } else {
        Err(StoreError::Other(format!("`{name}` is not a valid schema name (lower-case letters, digits, _)")))
    }
}

/// Creates the SQLite file's folder and asks the driver to create the file when missing.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty() && path != ":memory:") {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Unavailable(format!("cannot create folder {}: {e}", parent.display())))?;
    }
    let mut out = format!("sqlite://{path}");
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    out.push('?');
    out.push_str(&params.join("&"));
    Ok(out)
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://sb:s3cret@db.example:5432/sb?sslmode=require"),
            "postgres://sb:***@db.example:5432/sb?sslmode=require"
        );
        assert_eq!(redact_url("postgres://sb@db/sb"), "postgres://sb@db/sb");
        assert_eq!(redact_url("sqlite://data/switchboard.db"), "sqlite://data/switchboard.db");
    }

    #[test]
    fn statements_cover_every_row_with_few_sizes() {
        assert_eq!(statement_rows(0, 400).count(), 0);
        assert_eq!(statement_rows(1_000, 400).collect::<Vec<_>>(), [400, 400, 128, 64, 8]);
        assert_eq!(statement_rows(800, 400).collect::<Vec<_>>(), [400, 400]);
        assert_eq!(statement_rows(3, 0).collect::<Vec<_>>(), [1, 1, 1]);
        let mut sizes = std::collections::BTreeSet::new();
        for rows in 0..2_000 {
            let split: Vec<usize> = statement_rows(rows, 400).collect();
            assert_eq!(split.iter().sum::<usize>(), rows);
            assert!(split.iter().all(|&n| n == 400 || (n.is_power_of_two() && n < 400)), "{rows}: {split:?}");
            sizes.extend(split);
        }
        // 400 and the powers of two below it: ten statements, not one per remainder.
        assert_eq!(sizes.len(), 10);
        let rows: Vec<u32> = (0..1_000).collect();
        let chunks: Vec<&[u32]> = statement_chunks(&rows, 400).collect();
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [400, 400, 128, 64, 8]);
        assert_eq!(chunks.concat(), rows);
        let texts = statement_texts(1_000, 400, |n| format!("{n} rows"));
        assert_eq!(texts.len(), 4);
        assert!(chunks.iter().all(|c| texts[&c.len()] == format!("{} rows", c.len())));
    }

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = std::env::temp_dir().join(format!("sb-store-url-{}", std::process::id()));
        let url = format!("sqlite://{}/x/db.sqlite", dir.display());
        let prepared = prepare_sqlite_url(&url).unwrap();
        assert!(prepared.ends_with("db.sqlite?mode=rwc"), "{prepared}");
        assert!(dir.join("x").is_dir());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unknown_scheme_is_refused_with_the_url_redacted() {
        let e = Backend::from_url("mysql://u:pw@h/db").unwrap_err().to_string();
        assert!(e.contains("`mysql`") && !e.contains("pw@"), "{e}");
    }
}
