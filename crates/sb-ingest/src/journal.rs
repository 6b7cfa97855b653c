//! The file journal: every file's state, keyed by source and name and by content hash.

use sb_store::sqlx::{self, Row, any::AnyRow};
use sb_store::{Db, StoreError, time};
use serde::Serialize;

/// Where a file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileState {
    /// Seen in the source's listing.
    Listed,
    /// Copied into the inbox; its content hash is known.
    Fetched,
    /// Its rows are committed to the lake; consumers not all served yet.
    Loaded,
    /// Done: in the lake, consumers served.
    Committed,
    /// Unreadable as a whole; nothing of it loaded.
    Rejected,
    /// The same content as a file already loaded, under another name; nothing loaded.
    Duplicate,
}

impl FileState {
    /// The name stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Listed => "LISTED",
            Self::Fetched => "FETCHED",
            Self::Loaded => "LOADED",
            Self::Committed => "COMMITTED",
            Self::Rejected => "REJECTED",
            Self::Duplicate => "DUPLICATE",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Listed, Self::Fetched, Self::Loaded, Self::Committed, Self::Rejected, Self::Duplicate]
            .into_iter()
            .find(|x| x.as_str() == s.to_ascii_uppercase())
    }

    /// Whether nothing more will happen to the file (unless replayed).
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Committed | Self::Rejected | Self::Duplicate)
    }
}

/// What a file's load counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    /// Data rows read (header excluded).
    pub rows_read: i64,
    /// Records written to the lake.
    pub rows_loaded: i64,
    /// Records dropped as duplicates of a record id in the window.
    pub duplicates: i64,
    /// Rows sent to quarantine.
    pub quarantined: i64,
}

impl Counts {
    /// Adds another file's counts.
    pub fn add(&mut self, o: &Counts) {
        self.rows_read += o.rows_read;
        self.rows_loaded += o.rows_loaded;
        self.duplicates += o.duplicates;
        self.quarantined += o.quarantined;
    }
}

/// One journal row.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    /// Its id.
    pub id: i64,
    /// The source.
    pub source: String,
    /// The file name.
    pub name: String,
    /// The layout it is read with.
    pub layout: String,
    /// The local copy the load reads (the inbox copy, or the file given to `ingest file`).
    pub path: Option<String>,
    /// Bytes.
    pub size: Option<i64>,
    /// SHA-256 of the content, once fetched.
    pub sha256: Option<String>,
    /// Where it stands.
    pub state: FileState,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// The file whose duplicate it is.
    pub duplicate_of: Option<i64>,
    /// The lake commit holding its rows.
    pub commit_id: Option<String>,
    /// Its counts.
    pub counts: Counts,
    /// Milliseconds the load took.
    pub took_ms: i64,
    /// How many times it was replayed on purpose.
    pub replays: i64,
    /// When it was listed (epoch ms).
    pub listed_at_ms: i64,
    /// When it was committed (epoch ms).
    pub committed_at_ms: Option<i64>,
}

const COLUMNS: &str = "id, source, name, layout, path, size, sha256, state, reason, duplicate_of, commit_id, \
                       rows_read, rows_loaded, duplicates, quarantined, took_ms, replays, listed_at_ms, committed_at_ms";

fn from_row(r: &AnyRow) -> Result<JournalEntry, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(JournalEntry {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        name: r.try_get("name")?,
        layout: r.try_get("layout")?,
        path: r.try_get("path")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        state: FileState::parse(&state).ok_or_else(|| StoreError::Other(format!("unknown file state `{state}`")))?,
        reason: r.try_get("reason")?,
        duplicate_of: r.try_get("duplicate_of")?,
        commit_id: r.try_get("commit_id")?,
        counts: Counts {
            rows_read: r.try_get("rows_read")?,
            rows_loaded: r.try_get("rows_loaded")?,
            duplicates: r.try_get("duplicates")?,
            quarantined: r.try_get("quarantined")?,
        },
        took_ms: r.try_get("took_ms")?,
        replays: r.try_get("replays")?,
        listed_at_ms: r.try_get("listed_at_ms")?,
        committed_at_ms: r.try_get("committed_at_ms")?,
    })
}

/// The journal over the store.
#[derive(Debug, Clone)]
pub struct Journal {
    db: Db,
}

fn now() -> i64 {
    time::to_ms(chrono::Utc::now())
}

impl Journal {
    /// The journal in `db` (migrated with [`crate::MIGRATIONS`]).
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The entry of (`source`, `name`), created as LISTED when new.
    pub async fn listed(
        &self,
        source: &str,
        name: &str,
        layout: &str,
        size: Option<i64>,
    ) -> Result<JournalEntry, StoreError> {
        sqlx::query(
            "INSERT INTO ingest_files (source, name, layout, size, state, listed_at_ms) VALUES ($1, $2, $3, $4, 'LISTED', $5) \
             ON CONFLICT (source, name) DO NOTHING",
        )
        .bind(source)
        .bind(name)
        .bind(layout)
        .bind(size)
        .bind(now())
        .execute(self.db.pool())
        .await?;
        self.get(source, name).await?.ok_or(StoreError::NotFound)
    }

    /// The entry of (`source`, `name`).
    pub async fn get(&self, source: &str, name: &str) -> Result<Option<JournalEntry>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM ingest_files WHERE source = $1 AND name = $2"))
            .bind(source)
            .bind(name)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The entry with this id.
    pub async fn by_id(&self, id: i64) -> Result<JournalEntry, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM ingest_files WHERE id = $1"))
            .bind(id)
            .fetch_one(self.db.pool())
            .await?;
        from_row(&row)
    }

    /// A loaded or committed file with this content, other than `except`.
    pub async fn loaded_with_hash(&self, sha256: &str, except: i64) -> Result<Option<JournalEntry>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM ingest_files WHERE sha256 = $1 AND id <> $2 AND state IN ('LOADED', 'COMMITTED') ORDER BY id LIMIT 1"
        ))
        .bind(sha256)
        .bind(except)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// LISTED → FETCHED: the file is at `path` locally; its hash when known.
    pub async fn fetched(&self, id: i64, path: &str, sha256: Option<&str>, size: i64) -> Result<(), StoreError> {
        self.exec(
            "UPDATE ingest_files SET state = 'FETCHED', path = $1, sha256 = COALESCE($2, sha256), size = $3, \
             fetched_at_ms = COALESCE(fetched_at_ms, $4) WHERE id = $5",
            |q| q.bind(path.to_owned()).bind(sha256.map(str::to_owned)).bind(size).bind(now()).bind(id),
        )
        .await
    }

    /// Records the content hash learnt while loading.
    pub async fn hashed(&self, id: i64, sha256: &str, size: i64) -> Result<(), StoreError> {
        self.exec("UPDATE ingest_files SET sha256 = $1, size = $2 WHERE id = $3", |q| {
            q.bind(sha256.to_owned()).bind(size).bind(id)
        })
        .await
    }

    /// → DUPLICATE of `of`.
    pub async fn duplicate(&self, id: i64, of: i64) -> Result<(), StoreError> {
        self.exec("UPDATE ingest_files SET state = 'DUPLICATE', duplicate_of = $1 WHERE id = $2", |q| {
            q.bind(of).bind(id)
        })
        .await
    }

    /// → REJECTED, with the reason.
    pub async fn rejected(&self, id: i64, reason: &str) -> Result<(), StoreError> {
        self.exec("UPDATE ingest_files SET state = 'REJECTED', reason = $1 WHERE id = $2", |q| {
            q.bind(reason.to_owned()).bind(id)
        })
        .await
    }

    /// → LOADED: the lake commit `commit_id` holds its rows.
    pub async fn loaded(&self, id: i64, commit_id: &str, counts: &Counts, took_ms: i64) -> Result<(), StoreError> {
        self.exec(
            "UPDATE ingest_files SET state = 'LOADED', commit_id = $1, rows_read = $2, rows_loaded = $3, duplicates = $4, \
             quarantined = $5, took_ms = $6, loaded_at_ms = $7, reason = NULL WHERE id = $8",
            |q| {
                q.bind(commit_id.to_owned())
                    .bind(counts.rows_read)
                    .bind(counts.rows_loaded)
                    .bind(counts.duplicates)
                    .bind(counts.quarantined)
                    .bind(took_ms)
                    .bind(now())
                    .bind(id)
            },
        )
        .await
    }

    /// LOADED → COMMITTED.
    pub async fn committed(&self, id: i64) -> Result<(), StoreError> {
        self.exec("UPDATE ingest_files SET state = 'COMMITTED', committed_at_ms = $1 WHERE id = $2", |q| {
            q.bind(now()).bind(id)
        })
        .await
    }

    /// Counts one more replay.
    pub async fn replayed(&self, id: i64) -> Result<(), StoreError> {
        self.exec("UPDATE ingest_files SET replays = replays + 1 WHERE id = $1", |q| q.bind(id)).await
    }

    /// Entries, newest first, optionally in one state and of one source.
    pub async fn list(
        &self,
        state: Option<FileState>,
        source: Option<&str>,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM ingest_files WHERE ($1 = '' OR state = $1) AND ($2 = '' OR source = $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(state.map_or("", FileState::as_str))
        .bind(source.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Files of `source` not final yet, oldest first (to finish after a crash).
    pub async fn unfinished(&self, source: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM ingest_files WHERE source = $1 AND state IN ('LISTED', 'FETCHED', 'LOADED') ORDER BY id"
        ))
        .bind(source)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    async fn exec<'q>(
        &self,
        sql: &'q str,
        bind: impl FnOnce(
            sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<(), StoreError> {
        bind(sqlx::query(sql)).execute(self.db.pool()).await?;
        Ok(())
    }
}
