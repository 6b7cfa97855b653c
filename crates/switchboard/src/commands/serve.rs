//! `switchboard serve`: the back office and the API, the scheduler and the monitoring bus in
//! one process, until SIGTERM or Ctrl-C.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sb_ingest::{FileState, Ingestor};
use sb_web::ingestion::{HourCount, IngestAlert, IngestionOverview, SourceFreshness};
use sb_web::monitor::MonitorHub;
use sb_web::{WebApp, WebConfig, server};
use tokio::sync::watch;

use crate::app;
use crate::cli::ServeArgs;
use crate::config::{Config, ConfigError};

pub async fn run(args: &ServeArgs, config: &Config) -> anyhow::Result<()> {
    let db = app::open_store(config).await?;
    let vault = Arc::new(app::open_vault(config).await?);
    let (stop, shutdown) = watch::channel(false);
    // The monitor is what domain services calling outside systems record into (ingestion's
    // SFTP and database sources, then self-care's back ends); it lives as long as the server.
    let (monitor, monitor_tasks) = MonitorHub::start(db.clone(), &config.monitor, shutdown.clone())
        .await
        .context("starting the monitoring bus")?;
    let ingestor = app::ingestor(&db, &vault, config, &(Arc::clone(&monitor) as Arc<dyn sb_core::monitor::Monitor>))?;
    let scheduler = Arc::new(app::scheduler(&db, &vault, &ingestor, config)?);
    let web_config =
        WebConfig { server: config.server.clone(), auth: config.auth.clone(), monitor: config.monitor.clone() };
    let web = WebApp::builder(db.clone(), web_config)
        .vault(Arc::clone(&vault))
        .scheduler(Arc::clone(&scheduler))
        .ingestion(Arc::new(IngestOverview { ingestor: Arc::clone(&ingestor) }))
        .migrations(app::migrations())
        .build()
        .map_err(ConfigError)?;
    let listener = tokio::net::TcpListener::bind(config.server.address)
        .await
        .with_context(|| format!("listening on {} (server.address)", config.server.address))?;
    let addr = listener.local_addr()?;
    let scheme = if server::is_tls(&web) { "https" } else { "http" };
    // The first line on stdout says where to connect (port 0 picks a free port).
    println!("listening on {scheme}://{addr}");
    tracing::info!(address = %addr, jobs = !args.no_jobs, "serving");

    let grace = Duration::from_secs(config.server.shutdown_grace_s);
    let jobs = (!args.no_jobs).then(|| tokio::spawn(Arc::clone(&scheduler).run_until(shutdown.clone(), grace)));
    tokio::spawn(async move {
        server::termination().await;
        tracing::info!("stopping: finishing requests and runs in progress");
        let _ = stop.send(true);
    });
    server::serve(&web, listener, shutdown).await.context("serving")?;
    if let Some(jobs) = jobs {
        let _ = jobs.await;
    }
    monitor_tasks.join().await;
    drop(monitor);
    db.close().await;
    vault.db().close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Files of the journal the dashboard looks at (the newest ones).
const RECENT_FILES: i64 = 5_000;

/// The dashboard's view of ingestion, from the file journal: every source configured or
/// seen in the journal, the newest file committed from each, files not finished yet, and
/// rows loaded per hour.
struct IngestOverview {
    ingestor: Arc<Ingestor>,
}

#[async_trait::async_trait]
impl IngestionOverview for IngestOverview {
    async fn sources(&self) -> Result<Vec<SourceFreshness>, String> {
        let journal = self.ingestor.journal();
        let recent = journal.list(None, None, RECENT_FILES).await.map_err(|e| e.to_string())?;
        let mut names: BTreeSet<String> = self.ingestor.sources().keys().cloned().collect();
        names.extend(recent.iter().map(|e| e.source.clone()));
        let now = Utc::now();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let last_loaded_at = recent
                .iter()
                .filter(|e| e.source == name && e.state == FileState::Committed)
                .filter_map(|e| e.committed_at_ms)
                .max()
                .map(sb_store::time::from_ms);
            let pending = journal.unfinished(&name).await.map_err(|e| e.to_string())?.len();
            // Late: the hour's file is past the source's deadline (0: no deadline).
            let deadline = self.ingestor.sources().get(&name).map_or(0, |s| i64::from(s.expected_deadline_min));
            let late =
                deadline > 0 && last_loaded_at.is_none_or(|t| now - t > chrono::Duration::minutes(60 + deadline));
            out.push(SourceFreshness {
                source: name,
                last_loaded_at,
                pending: i64::try_from(pending).unwrap_or(i64::MAX),
                late,
            });
        }
        Ok(out)
    }

    async fn open_alerts(&self, limit: i64) -> Result<Vec<IngestAlert>, String> {
        let open = self.ingestor.alerts().open(limit).await.map_err(|e| e.to_string())?;
        Ok(open
            .into_iter()
            .map(|a| IngestAlert {
                at: sb_store::time::from_ms(a.at_ms),
                source: a.source,
                kind: a.kind,
                message: a.message,
            })
            .collect())
    }

    async fn records_per_hour(&self, since: DateTime<Utc>) -> Result<Vec<HourCount>, String> {
        let files = self
            .ingestor
            .journal()
            .list(Some(FileState::Committed), None, RECENT_FILES)
            .await
            .map_err(|e| e.to_string())?;
        let since = sb_store::time::to_ms(since);
        let mut hours: BTreeMap<i64, i64> = BTreeMap::new();
        for f in files {
            if let Some(at) = f.committed_at_ms.filter(|at| *at >= since) {
                *hours.entry(at.div_euclid(3_600_000) * 3_600_000).or_default() += f.counts.rows_loaded;
            }
        }
        Ok(hours.into_iter().map(|(h, records)| HourCount { hour: sb_store::time::from_ms(h), records }).collect())
    }
}
