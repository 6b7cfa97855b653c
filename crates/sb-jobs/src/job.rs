use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{JobsError, Schedule};

/// What a job reports: named counters (rows loaded, files fetched, …) stored with its run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counters(BTreeMap<String, i64>);

impl Counters {
    /// Adds `n` to counter `name`, creating it at zero.
    pub fn add(&mut self, name: &str, n: i64) {
        *self.0.entry(name.to_owned()).or_default() += n;
    }

    /// The value of counter `name`, zero when never set.
    pub fn get(&self, name: &str) -> i64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// Every counter, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Adds every counter of `other` to this one.
    pub fn merge(&mut self, other: &Counters) {
        for (k, v) in other.iter() {
            self.add(k, v);
        }
    }

    /// Whether no counter was set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The outcome of one run: its counters, or an error whose message is recorded.
/// Messages are stored and shown to operators: they must not carry personal data.
pub type JobResult = Result<Counters, Box<dyn std::error::Error + Send + Sync>>;

/// What a run knows about itself.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The run's id in `jobs_runs`.
    pub run_id: i64,
    /// The schedule slot this run serves; `None` for a run started by hand.
    pub scheduled_for: Option<DateTime<Utc>>,
}

/// A unit of work the scheduler runs. Implementations must be idempotent: a slot may be
/// retried after a crash, and a job may be run by hand at any time.
#[async_trait::async_trait]
pub trait Job: Send + Sync + 'static {
    /// Does the work once.
    async fn run(&self, ctx: JobContext) -> JobResult;
}

/// What to do with slots missed while no scheduler was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run once for the newest missed slot, however many were missed.
    Once,
    /// Do not run; record the missed slots as skipped and wait for the next one.
    Skip,
}

/// How a job is scheduled: its built-in defaults, which `[jobs.overrides.NAME]` can change.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Unique name, used in the CLI and the run history (`ingest.med01`).
    pub name: String,
    /// One line for `switchboard jobs list`.
    pub description: String,
    /// When it runs.
    pub schedule: Schedule,
    /// What happens to slots missed during downtime.
    pub catch_up: CatchUp,
    /// Longest run before it is stopped and recorded as timed out.
    pub timeout: Duration,
    /// Whether the scheduler runs it (a disabled job still runs by hand).
    pub enabled: bool,
}

impl JobSpec {
    /// A job with catch-up `once` and a one-hour timeout.
    pub fn new(name: &str, schedule: &str, description: &str) -> Result<Self, JobsError> {
        let schedule = Schedule::parse(schedule).map_err(|e| JobsError::Config(format!("job `{name}`: {e}")))?;
        Ok(Self {
            name: name.to_owned(),
            description: description.to_owned(),
            schedule,
            catch_up: CatchUp::Once,
            timeout: Duration::from_secs(3600),
            enabled: true,
        })
    }

    /// Sets the catch-up policy.
    pub fn catch_up(mut self, catch_up: CatchUp) -> Self {
        self.catch_up = catch_up;
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}
