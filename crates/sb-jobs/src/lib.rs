//! Switchboard's scheduler.
//!
//! Domain crates register named [`Job`]s with a cron [`Schedule`] (timezone-aware, Europe/Rome
//! by default). The [`Scheduler`] runs each slot once, whichever instance gets there first,
//! never two runs of one job at once (a PostgreSQL advisory lock, or a lease row on SQLite),
//! stops a run past its timeout, records every run with its counters or error in
//! `jobs_runs`, and after downtime catches up missed slots once, or skips them, as the job says.
//!
//! ```no_run
//! # async fn demo(db: sb_store::Db) -> Result<(), sb_jobs::JobsError> {
//! use std::sync::Arc;
//! use sb_jobs::{Counters, Job, JobContext, JobResult, JobSpec, JobsConfig, Scheduler};
//!
//! struct Hello;
//! #[async_trait::async_trait]
//! impl Job for Hello {
//!     async fn run(&self, _ctx: JobContext) -> JobResult {
//!         let mut c = Counters::default();
//!         c.add("greetings", 1);
//!         Ok(c)
//!     }
//! }
//!
//! let mut scheduler = Scheduler::new(db, &JobsConfig::default())?;
//! scheduler.register(JobSpec::new("hello", "0 * * * *", "Says hello every hour")?, Arc::new(Hello))?;
//! scheduler.tick().await?;
//! # Ok(()) }
//! ```

mod config;
mod housekeeping;
mod job;
mod lock;
mod runs;
mod schedule;
mod scheduler;

pub use config::{JobOverride, JobsConfig};
pub use housekeeping::Housekeeping;
pub use job::{CatchUp, Counters, Job, JobContext, JobResult, JobSpec};
pub use runs::{RunRecord, RunStatus, Trigger};
pub use schedule::Schedule;
pub use scheduler::{JobInfo, Scheduler};

/// The tables of the jobs domain.
pub static MIGRATIONS: sb_store::MigrationSet =
    sb_store::MigrationSet { domain: "jobs", migrations: &[sb_store::migration!(1, "0001_runs")] };

/// What can go wrong when scheduling or running jobs.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] sb_store::StoreError),
    /// No job has this name.
    #[error("no job named `{0}` (see `switchboard jobs list`)")]
    UnknownJob(String),
    /// The job is running already, here or on another instance.
    #[error("job `{0}` is already running")]
    AlreadyRunning(String),
    /// A schedule, timezone or override is invalid.
    #[error("{0}")]
    Config(String),
}
