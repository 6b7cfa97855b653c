//! The monitoring console's back end: call events travel over a bus to a consumer that keeps
//! per-minute rollups in the store.
//!
//! [`MonitorHub`] is the [`sb_core::monitor::Monitor`] the binary hands to domain crates.
//! Recording never blocks: events go into a bounded queue (dropped and counted when it is
//! full). With `bus = "in_process"` a task adds them up and writes rollups every `flush_ms`;
//! with `bus = "nats"` a task publishes them to a JetStream stream and a durable consumer
//! (one per deployment, shared by every instance) writes the rollups, recording the stream
//! sequence it applied in the same transaction, so a redelivery is not counted twice.

pub mod histogram;
mod nats;
pub mod rollup;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sb_core::monitor::{CallEvent, Monitor};
use sb_store::Db;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::config::{BusKind, MonitorConfig};

/// The monitoring tables.
pub static MIGRATIONS: sb_store::MigrationSet =
    sb_store::MigrationSet { domain: "monitor", migrations: &[sb_store::migration!(1, "0001_rollups")] };

/// What can stop the monitoring bus from starting.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The NATS server or its JetStream could not be used.
    #[error("NATS JetStream at {url}: {reason}")]
    Nats {
        /// The server's URL.
        url: String,
        /// Why.
        reason: String,
    },
}

enum Msg {
    Event(CallEvent),
    Flush(oneshot::Sender<()>),
}

/// The monitor handed to domain crates; records into the bus.
#[derive(Debug)]
pub struct MonitorHub {
    tx: mpsc::Sender<Msg>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Event(_) => "Event",
            Self::Flush(_) => "Flush",
        })
    }
}

/// The bus's tasks; they end when the shutdown signal turns true, after a last write.
#[derive(Debug)]
pub struct MonitorTasks(JoinSet<()>);

impl MonitorTasks {
    /// Waits for every task to end.
    pub async fn join(mut self) {
        while self.0.join_next().await.is_some() {}
    }
}

impl MonitorHub {
    /// Starts the bus configured in `config` over `db` (migrated with [`MIGRATIONS`]).
    pub async fn start(
        db: Db,
        config: &MonitorConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Arc<Self>, MonitorTasks), MonitorError> {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(16));
        let flush = Duration::from_millis(config.flush_ms.max(10));
        let mut tasks = JoinSet::new();
        match config.bus {
            BusKind::InProcess => {
                tasks.spawn(in_process(db, rx, flush, shutdown));
            }
            BusKind::Nats => {
                let bus = nats::Bus::connect(config).await?;
                tasks.spawn(nats::publish(bus.clone(), rx, flush, shutdown.clone()));
                tasks.spawn(nats::consume(bus, db, flush, shutdown));
            }
        }
        Ok((Arc::new(Self { tx, dropped: AtomicU64::new(0) }), MonitorTasks(tasks)))
    }

    /// Waits until every event recorded before this call is written (in process) or
    /// accepted by JetStream (NATS).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Monitor for MonitorHub {
    fn record(&self, event: CallEvent) {
        let labels = [
            ("system", event.system.clone()),
            ("method", event.method.clone()),
            ("outcome", event.outcome.as_str().to_owned()),
        ];
        metrics::counter!("switchboard_monitor_calls_total", &labels).increment(1);
        if self.tx.try_send(Msg::Event(event)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("switchboard_monitor_dropped_events_total").increment(1);
        }
    }
}

async fn in_process(db: Db, mut rx: mpsc::Receiver<Msg>, flush: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut batch = rollup::Batch::default();
    let mut tick = tokio::time::interval(flush);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Event(e)) => batch.add(&e),
                Some(Msg::Flush(done)) => {
                    write(&db, &mut batch).await;
                    let _ = done.send(());
                }
                None => break,
            },
            _ = tick.tick() => write(&db, &mut batch).await,
            _ = shutdown.changed() => {
                while let Ok(msg) = rx.try_recv() {
                    if let Msg::Event(e) = msg {
                        batch.add(&e);
                    }
                }
                break;
            }
        }
    }
    write(&db, &mut batch).await;
}

async fn write(db: &Db, batch: &mut rollup::Batch) {
    if batch.is_empty() {
        return;
    }
    if let Err(e) = batch.write(db, None).await {
        // The batch is kept and written with the next one.
        tracing::warn!(error = %e, events = batch.len(), "could not write monitoring rollups; will retry");
    }
}

/// The job that deletes rollups older than `monitor.retention_days`.
pub struct RetentionJob {
    db: Db,
    days: u32,
    clock: Arc<dyn sb_core::Clock>,
}

impl RetentionJob {
    /// The job name.
    pub const NAME: &'static str = "monitor.retention";
    /// Its built-in schedule: 04:10 every day.
    pub const SCHEDULE: &'static str = "10 4 * * *";

    /// Retention over `db`, keeping `days` of rollups.
    pub fn new(db: Db, days: u32, clock: Arc<dyn sb_core::Clock>) -> Self {
        Self { db, days, clock }
    }
}

#[async_trait::async_trait]
impl sb_jobs::Job for RetentionJob {
    async fn run(&self, _ctx: sb_jobs::JobContext) -> sb_jobs::JobResult {
        let cutoff = self.clock.now() - chrono::Duration::days(i64::from(self.days.max(1)));
        let pruned = rollup::prune(&self.db, cutoff).await?;
        let mut counters = sb_jobs::Counters::default();
        counters.add("rows_pruned", i64::try_from(pruned).unwrap_or(i64::MAX));
        Ok(counters)
    }
}
