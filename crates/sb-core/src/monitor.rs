//! Calls to outside systems, as the monitoring console sees them.
//!
//! Every call Switchboard makes to a system it does not own (an SFTP server, a source
//! database, a billing or charging back end) is worth one [`CallEvent`]: which system, which
//! method, how long it took, how it ended and, for cached reads, whether the cache answered.
//! Domain crates record events through the [`Monitor`] trait and know nothing of where they
//! go; the binary hands them the real one (a bus to per-minute rollups, in `sb-web`), tests
//! and tools hand them [`NoMonitor`].
//!
//! ```
//! use sb_core::monitor::{CallTimer, Monitor, NoMonitor, Outcome};
//! let monitor: &dyn Monitor = &NoMonitor;
//! let call = CallTimer::start("sftp:med01", "list");
//! // … the call …
//! monitor.record(call.finish(Outcome::Ok));
//! ```
//!
//! Events carry no personal data: `system` and `method` are names from configuration and
//! code (`sftp:med01`, `crm_db`, `list`, `get_balance`), never a number or a customer id.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It answered as expected.
    Ok,
    /// It answered with an error, or the connection failed.
    Error,
    /// It did not answer in time.
    Timeout,
}

impl Outcome {
    /// The name used in metrics and rollups.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
        }
    }
}

/// What a cache in front of a read did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheStatus {
    /// Answered from the cache, fresh.
    Hit,
    /// Not in the cache: the outside system was asked.
    Miss,
    /// Answered from the cache past its freshness (the system was slow or down).
    Stale,
}

impl CacheStatus {
    /// The name used in metrics and rollups.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
        }
    }
}

/// One call to an outside system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEvent {
    /// The system called, as named in configuration (`sftp:med01`, `crm_db`, `charging`).
    pub system: String,
    /// The operation (`list`, `fetch`, `query`, `get_balance`).
    pub method: String,
    /// When the call started.
    pub at: DateTime<Utc>,
    /// How long it took, in microseconds.
    pub latency_us: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// For reads behind a cache: what the cache did. `None` for uncached calls.
    pub cache: Option<CacheStatus>,
}

/// Where call events go. Implementations must not block or fail the caller: a monitoring
/// outage never stops the work being monitored (events are dropped and counted instead).
pub trait Monitor: Send + Sync + 'static {
    /// Records one call.
    fn record(&self, event: CallEvent);
}

/// A monitor that forgets everything: for tools, tests and embedded uses without a console.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMonitor;

impl Monitor for NoMonitor {
    fn record(&self, _event: CallEvent) {}
}

/// Measures one call from [`CallTimer::start`] to [`CallTimer::finish`].
#[derive(Debug)]
pub struct CallTimer {
    system: String,
    method: String,
    at: DateTime<Utc>,
    started: Instant,
}

impl CallTimer {
    /// Starts timing a call of `method` on `system`.
    pub fn start(system: impl Into<String>, method: impl Into<String>) -> Self {
        Self { system: system.into(), method: method.into(), at: Utc::now(), started: Instant::now() }
    }

    /// The event for a call that ended with `outcome`.
    pub fn finish(self, outcome: Outcome) -> CallEvent {
        self.finish_cached(outcome, None)
    }

    /// The event for a cached read that ended with `outcome`, the cache having done `cache`.
    pub fn finish_cached(self, outcome: Outcome, cache: Option<CacheStatus>) -> CallEvent {
        let latency_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        CallEvent { system: self.system, method: self.method, at: self.at, latency_us, outcome, cache }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_call_carries_its_names_outcome_and_cache_status() {
        let e = CallTimer::start("crm_db", "query").finish_cached(Outcome::Timeout, Some(CacheStatus::Stale));
        assert_eq!((e.system.as_str(), e.method.as_str()), ("crm_db", "query"));
        assert_eq!((e.outcome, e.cache), (Outcome::Timeout, Some(CacheStatus::Stale)));
        assert_eq!((Outcome::Timeout.as_str(), CacheStatus::Stale.as_str()), ("timeout", "stale"));
    }
}
