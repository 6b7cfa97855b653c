//! Usage and master-data ingestion into the GDPR-safe lake.
//!
//! Every hour an operator's mediation drops files of usage records (calls, SMS, data,
//! top-ups) on a server; each batch must be loaded before the next arrives. A [`Source`]
//! (a folder, or SFTP with a pinned host key and failover) offers the files; the
//! [`Journal`] tracks each one from LISTED to COMMITTED (or REJECTED, or DUPLICATE by
//! content hash); a layout declared as data maps its columns onto the usage record; every
//! row is validated (bad rows go to an encrypted quarantine with their reason), deduplicated
//! against a window of record ids, and protected by the privacy vault before anything is
//! written; the rows become Parquet in the lake in one atomic commit; per-line aggregates go
//! to every registered consumer exactly once. A crash at any step is finished by the next run.
//!
//! See `docs/ingest.md`.

mod aggregate;
pub mod alerts;
mod config;
mod consumer;
mod dedup;
mod journal;
pub mod layout;
pub mod master;
mod outbox;
mod pipeline;
mod protect;
mod quarantine;
pub mod record;
mod rows;
mod runner;
pub mod source;

pub use alerts::{Alert, AlertKind, Alerts};
pub use config::{AfterCommit, IngestConfig, SftpConfig, SourceConfig, SourceKind};
pub use consumer::DailyCounters;
pub use journal::{Counts, FileState, Journal, JournalEntry};
pub use layout::{LayoutConfig, built_in as built_in_layouts};
pub use master::{MasterConfig, MasterData, MasterSummary};
pub use runner::{FileOutcome, Ingestor, RunSummary};
pub use source::{RemoteFile, Source, SourceError};

/// Hash maps looked up once per record (hours, line-days, cells): foldhash instead of the
/// standard SipHash, whose cost per lookup showed in the loading and writing threads.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The tables of the ingestion domain.
pub static MIGRATIONS: sb_store::MigrationSet = sb_store::MigrationSet {
    domain: "ingest",
    migrations: &[sb_store::migration!(1, "0001_ingest"), sb_store::migration!(2, "0002_master")],
};

/// What can go wrong in ingestion. Messages never hold personal data.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] sb_store::StoreError),
    /// The vault failed.
    #[error(transparent)]
    Privacy(#[from] sb_privacy::PrivacyError),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] sb_lake::LakeError),
    /// A source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// Configuration is wrong (unknown source or layout, bad pattern).
    #[error("{0}")]
    Config(String),
}

/// Test-only crash points: when `SWITCHBOARD_CRASH_AT` names `stage`, the process kills
/// itself with SIGKILL there, so tests can prove a re-run finishes the work.
pub(crate) fn crash_point(stage: &str) {
    if std::env::var("SWITCHBOARD_CRASH_AT").is_ok_and(|s| s == stage) {
        let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
        // SIGKILL is delivered asynchronously; never continue past a crash point.
        std::process::abort();
    }
}
