//! The `[ingest]` section: sources, layouts, dedup, alerts, master data.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::layout::LayoutConfig;

/// The `[ingest]` section of `switchboard.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Timezone of partitions and of "the hour" of a file (IANA name).
    pub timezone: chrono_tz::Tz,
    /// Days a record id is remembered: the same id again within the window is a duplicate.
    /// Counted back from the newest event day of the latest file (at most today): each commit
    /// removes its source's `_dedup` parts of earlier days. 0 compares within the same day only.
    pub dedup_window_days: u32,
    /// Record ids of the window held in memory at most (about 12 bytes each); the hours used
    /// least recently beyond it are read again from the lake when needed. An hour of more
    /// than half as many ids is not held as a set: its ids go, sorted, to unnamed temporary
    /// files under `DATA/ingest/tmp`, and memory keeps about 2 bytes an id to find them.
    pub dedup_memory_ids: usize,
    /// Rows per batch through validation, protection and Parquet (bounds memory).
    pub batch_rows: usize,
    /// Record ids of the file being loaded held in memory at most (about 12 bytes each); beyond
    /// them the ids go, sorted, to unnamed temporary files under `DATA/ingest/tmp`, and memory
    /// keeps about 2 bytes an id to find them, at most about 26 bytes × this in all whatever the
    /// file's size (fewer bits an id past 6 × this, paid for with disk reads).
    pub pending_memory_ids: usize,
    /// Per-line daily totals of the file being loaded held in memory at most (about 100–250
    /// bytes each); beyond them they go, sorted, to unnamed temporary files under
    /// `DATA/ingest/tmp` and are merged when the file's outbox is written.
    pub aggregate_memory_lines: usize,
    /// Lake parts (Parquet files, one per dataset and event hour) a file writes at once. An
    /// hourly file needs a few (its hour and an hour or two of late records); the rows of a
    /// file spread over more hours (a late backlog) wait, for the hours beyond these, in
    /// temporary files under `DATA/ingest/tmp`, and are written once the rest is. At least 1.
    pub open_parts: usize,
    /// Megabytes the open parts' row groups in progress hold in memory at most (encoded
    /// pages, about 60–300 bytes a row); beyond it the largest parts are finished early, and
    /// more rows of their hour go to a new part. An hourly file's parts hold about 40 MB; 0
    /// finishes every open part after each batch (a file's rows then make many small parts).
    pub parts_memory_mb: usize,
    /// Line-days per delivery to a consumer: a file's per-line totals go to each consumer in
    /// batches of at most this many (one transaction of the consumer's each), read from the
    /// commit's outbox as they go, so memory does not grow with the operator's size.
    pub delivery_lines: usize,
    /// A URL that receives alerts as JSON (`POST`); unset: alerts go to the log and the store.
    pub alert_webhook: Option<String>,
    /// Named sources: `[ingest.sources.MED01]`.
    pub sources: BTreeMap<String, SourceConfig>,
    /// Extra layouts beside the built-in `reference` and `asterisk`: `[ingest.layouts.NAME]`.
    pub layouts: BTreeMap<String, LayoutConfig>,
    /// The daily master data: `[ingest.master]`.
    pub master: crate::master::MasterConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            timezone: chrono_tz::Europe::Rome,
            dedup_window_days: 7,
            dedup_memory_ids: crate::dedup::DEFAULT_MAX_IDS,
            batch_rows: 65_536,
            pending_memory_ids: crate::dedup::DEFAULT_PENDING_IDS,
            aggregate_memory_lines: crate::aggregate::DEFAULT_MEMORY_LINES,
            open_parts: 24,
            parts_memory_mb: 128,
            delivery_lines: 50_000,
            alert_webhook: None,
            sources: BTreeMap::new(),
            layouts: BTreeMap::new(),
            master: crate::master::MasterConfig::default(),
        }
    }
}

/// What to do with a source file once it is committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterCommit {
    /// Leave it (the journal remembers it).
    #[default]
    Keep,
    /// Delete it from the source.
    Delete,
    /// Move it into `move_to` on the source.
    Move,
}

/// Where a source's files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A local (or mounted) folder.
    Folder,
    /// An SFTP server, with an optional backup host.
    Sftp,
}

/// `[ingest.sources.NAME]`: one place files come from, and how to read them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `folder` or `sftp`.
    pub kind: SourceKind,
    /// The layout its files are in (`reference`, `asterisk`, or one of `[ingest.layouts]`).
    #[serde(default = "default_layout")]
    pub layout: String,
    /// Glob of the file names to take (`*.cdr*`).
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// Files younger than this (seconds since last modified) are still being written: skipped.
    #[serde(default = "default_min_age")]
    pub min_age_s: u64,
    /// `keep`, `delete` or `move` once committed.
    #[serde(default)]
    pub after_commit: AfterCommit,
    /// Folder (relative to the source's folder) files are moved into with `after_commit = "move"`.
    #[serde(default = "default_move_to")]
    pub move_to: String,
    /// When the source is polled (cron, in `jobs.timezone`).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Alert when the file of an hour has not arrived this many minutes after the hour ends.
    /// 0: no such alert.
    #[serde(default = "default_deadline")]
    pub expected_deadline_min: u32,
    /// Alert when one run takes longer than this, in seconds (the next batch is coming).
    #[serde(default = "default_budget")]
    pub time_budget_s: u64,
    /// `folder`: the folder to read.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `sftp`: the server settings.
    #[serde(default)]
    pub sftp: Option<SftpConfig>,
}

fn default_layout() -> String {
    "reference".into()
}
fn default_pattern() -> String {
    "*".into()
}
fn default_min_age() -> u64 {
    60
}
fn default_move_to() -> String {
    "processed".into()
}
fn default_schedule() -> String {
    "*/10 * * * *".into()
}
fn default_deadline() -> u32 {
    30
}
fn default_budget() -> u64 {
    3000
}

/// `[ingest.sources.NAME.sftp]`: an SFTP server with key-based login and a pinned host key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SftpConfig {
    /// `host:port` of the primary server, then backups tried in order when it fails.
    pub hosts: Vec<String>,
    /// The login.
    pub user: String,
    /// The private key file (OpenSSH format; ed25519 or RSA), readable by Switchboard only.
    pub private_key_file: PathBuf,
    /// A known_hosts file holding the servers' keys; or use `host_key_fingerprints`.
    #[serde(default)]
    pub known_hosts_file: Option<PathBuf>,
    /// Pinned host key fingerprints (`SHA256:…`, as `ssh-keygen -lf` prints them).
    #[serde(default)]
    pub host_key_fingerprints: Vec<String>,
    /// The remote folder to list.
    #[serde(default = "default_remote_dir")]
    pub remote_dir: String,
    /// Seconds to wait for a connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_s: u64,
    /// Attempts per host before failing over to the next.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// First pause between attempts, in milliseconds; doubles each time.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
}

fn default_remote_dir() -> String {
    ".".into()
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_attempts() -> u32 {
    3
}
fn default_backoff() -> u64 {
    500
}
