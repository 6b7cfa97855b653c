//! `switchboard serve`: the back office and the API, the scheduler and the monitoring bus in
//! one process, until SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sb_web::monitor::MonitorHub;
use sb_web::{WebApp, WebConfig, server};
use tokio::sync::watch;

use crate::app;
use crate::cli::ServeArgs;
use crate::config::{Config, ConfigError};

pub async fn run(args: &ServeArgs, config: &Config) -> anyhow::Result<()> {
    let db = app::open_store(config).await?;
    let vault = Arc::new(app::open_vault(config).await?);
    let ingestor = app::ingestor(&db, &vault, config)?;
    let scheduler = Arc::new(app::scheduler(&db, &vault, &ingestor, config)?);
    let (stop, shutdown) = watch::channel(false);
    // The monitor is what domain services calling outside systems record into (ingestion's
    // SFTP and database sources, then self-care's back ends); it lives as long as the server.
    let (monitor, monitor_tasks) = MonitorHub::start(db.clone(), &config.monitor, shutdown.clone())
        .await
        .context("starting the monitoring bus")?;
    let web_config =
        WebConfig { server: config.server.clone(), auth: config.auth.clone(), monitor: config.monitor.clone() };
    let web = WebApp::builder(db.clone(), web_config)
        .vault(Arc::clone(&vault))
        .scheduler(Arc::clone(&scheduler))
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
