//! Wiring: the store with every domain's migrations, the vault, and the scheduler with
//! every job.

use std::sync::Arc;

use anyhow::Context as _;
use sb_core::monitor::{Monitor, NoMonitor};
use sb_core::{Clock, SystemClock};
use sb_ingest::{DailyCounters, Ingestor, MasterData};
use sb_jobs::{Counters, Housekeeping, Job, JobContext, JobResult, JobSpec, Scheduler};
use sb_privacy::Vault;
use sb_store::{Db, MigrationSet, PoolOptions};
use sb_web::monitor::{MonitorHub, MonitorTasks};
use tokio::sync::watch;

use crate::config::Config;

/// Every domain's migrations of the operational store, in dependency order. (The vault's
/// live in its own database and are applied by `Vault::open`.)
pub fn migrations() -> Vec<&'static MigrationSet> {
    vec![&sb_jobs::MIGRATIONS, &sb_ingest::MIGRATIONS, &sb_web::MIGRATIONS, &sb_web::monitor::MIGRATIONS]
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

/// Opens the vault. With the embedded defaults, a missing master key file is created in the
/// data directory (mode 0600) — a vault made under another key still refuses to open.
pub async fn open_vault(config: &Config) -> anyhow::Result<Vault> {
    if config.privacy.master_key.is_none() && config.privacy.master_key_file.is_none() {
        let path = config.master_key_file();
        if sb_privacy::ensure_master_key_file(&path)? {
            tracing::warn!(path = %path.display(), "created a new master key: back it up, the vault cannot be opened without it");
        }
    }
    let master = sb_privacy::load_master_key(&config.privacy, &config.data_dir)?;
    let url = config.vault_url();
    let store = PoolOptions::from(&config.store);
    let max_connections = match config.privacy.vault_max_connections {
        Some(n) => n.max(1),
        None if matches!(sb_store::Backend::from_url(&url), Ok(sb_store::Backend::Sqlite)) => {
            store.max_connections.min(2)
        }
        None => store.max_connections,
    };
    let options = PoolOptions { schema: config.vault_schema(), max_connections, ..store };
    let db = Db::connect_with(&url, &options)
        .await
        .with_context(|| format!("opening the vault at {}", sb_store::redact_url(&url)))?;
    Vault::open(db, master, config.privacy.clone()).await.context("opening the vault")
}

/// The age recipients of Switchboard's own encrypted files (quarantine): the configured ones,
/// else the public key of its files identity (created when missing).
pub fn file_recipients(config: &Config) -> anyhow::Result<Vec<sb_privacy::files::Recipient>> {
    let recipients = if config.privacy.file_recipients.is_empty() {
        vec![sb_privacy::files::ensure_identity(&config.files_identity())?]
    } else {
        config.privacy.file_recipients.clone()
    };
    Ok(sb_privacy::files::parse_recipients(&recipients)?)
}

/// The monitoring bus of a command: calls to outside systems (SFTP servers, the operator's
/// database) go to the console's rollups in the store. Stop it to write the last events.
pub struct MonitorHandle {
    /// What services record into.
    pub monitor: Arc<dyn Monitor>,
    stop: Option<(watch::Sender<bool>, MonitorTasks)>,
}

impl MonitorHandle {
    /// Starts the configured bus; when it cannot start (NATS unreachable), the command runs
    /// unmonitored with a warning rather than not at all.
    pub async fn start(db: &Db, config: &Config) -> Self {
        let (stop, shutdown) = watch::channel(false);
        match MonitorHub::start(db.clone(), &config.monitor, shutdown).await {
            Ok((hub, tasks)) => Self { monitor: hub, stop: Some((stop, tasks)) },
            Err(e) => {
                tracing::warn!(error = %e, "the monitoring bus did not start: calls are not recorded");
                Self { monitor: Arc::new(NoMonitor), stop: None }
            }
        }
    }

    /// No bus, for commands that call no outside system (listings): nothing to start.
    pub fn none() -> Self {
        Self { monitor: Arc::new(NoMonitor), stop: None }
    }

    /// Writes what was recorded and stops the bus.
    pub async fn stop(self) {
        if let Some((stop, tasks)) = self.stop {
            let _ = stop.send(true);
            tasks.join().await;
        }
    }
}

/// The ingestor with every consumer of usage aggregates registered.
pub fn ingestor(
    db: &Db,
    vault: &Arc<Vault>,
    config: &Config,
    monitor: &Arc<dyn Monitor>,
) -> anyhow::Result<Arc<Ingestor>> {
    let mut ingestor = Ingestor::new(
        db.clone(),
        Arc::clone(vault),
        &config.data_dir,
        config.ingest.clone(),
        file_recipients(config)?,
    )?;
    ingestor.add_consumer(Arc::new(DailyCounters::new(db.clone())));
    ingestor.set_monitor(Arc::clone(monitor));
    if config.privacy.file_recipients.is_empty() {
        ingestor.set_files_identity(config.files_identity());
    }
    Ok(Arc::new(ingestor))
}

/// The master-data loader, writing the same lake as `ingestor`.
pub fn master_data(db: &Db, vault: &Arc<Vault>, ingestor: &Ingestor, config: &Config) -> MasterData {
    MasterData::new(db.clone(), Arc::clone(vault), ingestor.lake().clone(), config.ingest.master.clone())
        .with_monitor(ingestor.monitor())
}

/// The scheduler with every job Switchboard has, overrides applied and checked.
pub fn scheduler(db: &Db, vault: &Arc<Vault>, ingestor: &Arc<Ingestor>, config: &Config) -> anyhow::Result<Scheduler> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut s = Scheduler::new(db.clone(), &config.jobs)?;
    s.register(
        JobSpec::new(Housekeeping::NAME, Housekeeping::SCHEDULE, "Prunes old job history; optimises the SQLite store")?
            .timeout(std::time::Duration::from_secs(600)),
        Arc::new(Housekeeping::new(db.clone(), Arc::clone(&clock), config.jobs.history_days)),
    )?;
    s.register(
        JobSpec::new(
            "privacy.retention",
            "15 2 * * *",
            "Destroys other-party numbers of non-customers past their retention period",
        )?
        .timeout(std::time::Duration::from_secs(1800)),
        Arc::new(Retention { vault: Arc::clone(vault), clock: Arc::clone(&clock) }),
    )?;
    s.register(
        JobSpec::new(
            sb_web::monitor::RetentionJob::NAME,
            sb_web::monitor::RetentionJob::SCHEDULE,
            "Deletes monitoring rollups older than monitor.retention_days",
        )?
        .timeout(std::time::Duration::from_secs(600)),
        Arc::new(sb_web::monitor::RetentionJob::new(db.clone(), config.monitor.retention_days, clock)),
    )?;
    if config.ingest.master.url.is_some() {
        s.register(
            JobSpec::new(
                "ingest.master",
                &config.ingest.master.schedule,
                "Loads customers, lines and plans from the operator's database (SCD2 in the store and the lake)",
            )?
            .timeout(std::time::Duration::from_secs(3600)),
            Arc::new(MasterJob(master_data(db, vault, ingestor, config))),
        )?;
    }
    for (name, source) in ingestor.sources() {
        s.register(
            JobSpec::new(&format!("ingest.{name}"), &source.schedule, &format!("Fetches and loads new {name} files"))?
                .timeout(std::time::Duration::from_secs(source.time_budget_s.saturating_mul(2).max(60))),
            Arc::new(IngestSource { ingestor: Arc::clone(ingestor), source: name.clone() }),
        )?;
    }
    s.check_overrides()?;
    Ok(s)
}

/// The job of one ingestion source.
struct IngestSource {
    ingestor: Arc<Ingestor>,
    source: String,
}

#[async_trait::async_trait]
impl Job for IngestSource {
    async fn run(&self, _ctx: JobContext) -> JobResult {
        let s = self.ingestor.run_source(&self.source, &|_| {}).await?;
        let mut c = Counters::default();
        for (k, v) in [
            ("files", s.files as i64),
            ("committed", s.committed as i64),
            ("duplicate_files", s.duplicate_files as i64),
            ("rejected", s.rejected as i64),
            ("rows_read", s.rows_read),
            ("rows_loaded", s.rows_loaded),
            ("duplicates", s.duplicates),
            ("quarantined", s.quarantined),
        ] {
            c.add(k, v);
        }
        Ok(c)
    }
}

/// The daily master-data job.
struct MasterJob(MasterData);

#[async_trait::async_trait]
impl Job for MasterJob {
    async fn run(&self, _ctx: JobContext) -> JobResult {
        let s = self.0.run().await?;
        let mut c = Counters::default();
        for (name, d) in [("customers", &s.customers), ("lines", &s.lines), ("plans", &s.plans)] {
            c.add(&format!("{name}_read"), d.read as i64);
            c.add(&format!("{name}_changed"), (d.new + d.changed + d.closed) as i64);
            c.add(&format!("{name}_rejected"), d.rejected as i64);
        }
        c.add("linked", s.linked as i64);
        Ok(c)
    }
}

/// The retention job: `Vault::apply_retention` on the clock.
struct Retention {
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
}

#[async_trait::async_trait]
impl Job for Retention {
    async fn run(&self, _ctx: JobContext) -> JobResult {
        let report = self.vault.apply_retention(self.clock.now()).await?;
        let mut c = Counters::default();
        c.add("months_destroyed", report.months.len() as i64);
        c.add("tokens_destroyed", report.tokens_destroyed);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_vault_keeps_two_connections_unless_configured_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        let vault = open_vault(&config).await.unwrap();
        assert_eq!(vault.db().pool().options().get_max_connections(), 2);
        vault.db().close().await;

        config.privacy.vault_max_connections = Some(5);
        let vault = open_vault(&config).await.unwrap();
        assert_eq!(vault.db().pool().options().get_max_connections(), 5);
    }
}
