//! Where files come from. One trait; one file per kind of source (`source/folder.rs`,
//! `source/sftp.rs`), chosen by `kind` in `[ingest.sources.NAME]`.

use std::path::Path;

use chrono::{DateTime, Utc};

pub mod folder;
pub mod sftp;

/// A file offered by a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Its name in the source (no folders).
    pub name: String,
    /// Its size in bytes, as listed.
    pub size: u64,
    /// When it was last modified, as listed.
    pub modified: Option<DateTime<Utc>>,
}

/// Why a source failed. Messages name the source, host and path, never file contents.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Cannot reach or log in to the source (after retries and failover).
    #[error("source {source_name}: unavailable: {reason}")]
    Unavailable {
        /// The source.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// The server's host key is not the pinned one: refused, nothing transferred.
    #[error("source {source_name}: host key of {host} does not match the pinned key ({detail})")]
    HostKeyMismatch {
        /// The source.
        source_name: String,
        /// The host.
        host: String,
        /// What was expected and found (fingerprints only).
        detail: String,
    },
    /// A transfer or file operation failed.
    #[error("source {source_name}: {what} {path}: {reason}")]
    Io {
        /// The source.
        source_name: String,
        /// What was being done.
        what: &'static str,
        /// The path concerned.
        path: String,
        /// Why.
        reason: String,
    },
    /// The source is configured wrongly.
    #[error("source {source_name}: {reason}")]
    Config {
        /// The source.
        source_name: String,
        /// Why.
        reason: String,
    },
}

/// A place files are fetched from.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// The source's name (from config).
    fn name(&self) -> &str;

    /// Files ready to fetch — matching the source's pattern and older than its minimum
    /// age, so that files still being written are left alone — sorted by name.
    async fn list(&self) -> Result<Vec<RemoteFile>, SourceError>;

    /// Copies `file` to `dest`: to a temporary name beside it first, synced, then renamed,
    /// so `dest` appears only complete. A failed or cut transfer leaves no `dest`.
    async fn fetch(&self, file: &RemoteFile, dest: &Path) -> Result<(), SourceError>;

    /// Called once `file` is committed: moves or deletes it on the source, as configured
    /// (`after_commit = "keep" | "delete" | "move"`). Must be harmless to repeat.
    async fn after_commit(&self, file: &RemoteFile) -> Result<(), SourceError>;
}

/// A source whose every call is recorded for the monitoring console (system
/// `sftp:<source>`, methods `list`, `fetch`, `after_commit`).
pub(crate) struct Monitored {
    pub inner: Box<dyn Source>,
    pub monitor: std::sync::Arc<dyn sb_core::monitor::Monitor>,
    pub system: String,
}

impl Monitored {
    fn record<T>(&self, call: sb_core::monitor::CallTimer, result: &Result<T, SourceError>) {
        let outcome = match result {
            Ok(_) => sb_core::monitor::Outcome::Ok,
            Err(_) => sb_core::monitor::Outcome::Error,
        };
        self.monitor.record(call.finish(outcome));
    }
}

#[async_trait::async_trait]
impl Source for Monitored {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn list(&self) -> Result<Vec<RemoteFile>, SourceError> {
        let call = sb_core::monitor::CallTimer::start(&self.system, "list");
        let r = self.inner.list().await;
        self.record(call, &r);
        r
    }

    async fn fetch(&self, file: &RemoteFile, dest: &Path) -> Result<(), SourceError> {
        let call = sb_core::monitor::CallTimer::start(&self.system, "fetch");
        let r = self.inner.fetch(file, dest).await;
        self.record(call, &r);
        r
    }

    async fn after_commit(&self, file: &RemoteFile) -> Result<(), SourceError> {
        let call = sb_core::monitor::CallTimer::start(&self.system, "after_commit");
        let r = self.inner.after_commit(file).await;
        self.record(call, &r);
        r
    }
}

/// Whether `name` matches a glob `pattern` (`*` any run, `?` one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn m(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], n) || (!n.is_empty() && m(p, &n[1..])),
            (Some(b'?'), Some(_)) => m(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &n[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs_match_names() {
        assert!(super::glob_match("MED01_*.cdr*", "MED01_20261122_13_001.cdr.gz"));
        assert!(super::glob_match("*.cdr", "a.cdr"));
        assert!(!super::glob_match("*.cdr", "a.cdr.part"));
        assert!(super::glob_match("MED0?_*", "MED02_x"));
    }
}
