//! Wiring: the store with every domain's migrations, and the scheduler with every job.

use std::sync::Arc;

use anyhow::Context as _;
use sb_core::{Clock, SystemClock};
use sb_jobs::{Housekeeping, JobSpec, Scheduler};
use sb_store::{Db, MigrationSet};

use crate::config::Config;

/// Every domain's migrations, in dependency order.
pub fn migrations() -> Vec<&'static MigrationSet> {
    vec![&sb_jobs::MIGRATIONS]
}

/// Connects to the configured store without touching its schema.
pub async fn connect_store(config: &Config) -> anyhow::Result<Db> {
    let url = config.store_url();
    Db::connect(&url, &config.store)
        .await
        .with_context(|| format!("opening the store at {}", sb_store::redact_url(&url)))
}

/// Connects to the store and applies pending migrations, as every command does on start.
pub async fn open_store(config: &Config) -> anyhow::Result<Db> {
    let db = connect_store(config).await?;
    let applied = db.migrate(&migrations()).await.context("applying migrations")?;
    if applied > 0 {
        tracing::info!(applied, "migrations applied");
    }
    Ok(db)
}

/// The scheduler with every job Switchboard has, overrides applied and checked.
pub fn scheduler(db: &Db, config: &Config) -> anyhow::Result<Scheduler> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut s = Scheduler::new(db.clone(), &config.jobs)?;
    s.register(
        JobSpec::new(Housekeeping::NAME, Housekeeping::SCHEDULE, "Prunes old job history; optimises the SQLite store")?
            .timeout(std::time::Duration::from_secs(600)),
        Arc::new(Housekeeping::new(db.clone(), clock, config.jobs.history_days)),
    )?;
    s.check_overrides()?;
    Ok(s)
}
