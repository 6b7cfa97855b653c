//! Switchboard's warehouse: a folder of Parquet datasets any engine can read.
//!
//! ```text
//! lake/
//!   usage/date=2026-11-22/hour=13/<commit>-0.parquet     facts, partitioned by event date and hour
//!   topups/date=…/hour=…/…
//!   dim_line/<commit>-0.parquet                           dimensions (SCD type 2), unpartitioned
//!   _commits/00000000000000000042.json                    one manifest per commit
//! ```
//!
//! A commit stages its Parquet files under hidden temporary names, then writes its manifest
//! (the commit point: written to a temp file, synced, and linked into place exclusively), then
//! gives the files their final names. Readers see only files listed by manifests, so a commit
//! is visible whole or not at all; [`Lake::recover`] finishes the renames of a commit
//! interrupted after its manifest and deletes the staging left by one interrupted before.
//! A commit can also remove files (re-ingesting a file replaces its rows).
//!
//! Facts hold tokens, never cleartext personal data: the privacy vault has protected every
//! personal field before anything reaches this crate.

mod commit;
pub mod schema;
mod sql;

pub use commit::{Commit, FileEntry, FinishedPart, Lake, PartWriter, Snapshot, Staged};
pub use sql::{OutputFormat, run_sql};

/// What can go wrong in the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// A file or folder could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Parquet or Arrow refused the data.
    #[error("parquet: {0}")]
    Parquet(String),
    /// A manifest is unreadable, or a committed file is missing.
    #[error("lake is inconsistent: {0}")]
    Corrupt(String),
    /// A commit with this id exists already.
    #[error("commit {0} exists already")]
    AlreadyCommitted(String),
    /// The SQL failed (a syntax error, an unknown table or column).
    #[error("{0}")]
    Sql(String),
}

impl LakeError {
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io { what, path: path.display().to_string(), source }
    }
}
