use chrono::Duration;
use sb_core::Clock;
use sb_store::sqlx;
use sb_store::{Backend, Db, time};

use crate::{Counters, Job, JobContext, JobResult};

/// Daily upkeep of the store: prunes old run history and lets SQLite refresh its query
/// statistics and fold its write-ahead log back into the database file.
pub struct Housekeeping {
    db: Db,
    clock: std::sync::Arc<dyn Clock>,
    history_days: u32,
}

impl Housekeeping {
    /// The job name.
    pub const NAME: &'static str = "housekeeping";
    /// Its built-in schedule: 03:30 every day.
    pub const SCHEDULE: &'static str = "30 3 * * *";

    /// Housekeeping over `db`, keeping `history_days` of run history.
    pub fn new(db: Db, clock: std::sync::Arc<dyn Clock>, history_days: u32) -> Self {
        Self { db, clock, history_days }
    }
}

#[async_trait::async_trait]
impl Job for Housekeeping {
    async fn run(&self, ctx: JobContext) -> JobResult {
        let cutoff = self.clock.now() - Duration::days(i64::from(self.history_days));
        let pruned = sqlx::query("DELETE FROM jobs_runs WHERE started_at_ms < $1 AND status <> 'running' AND id <> $2")
            .bind(time::to_ms(cutoff))
            .bind(ctx.run_id)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        let mut counters = Counters::default();
        counters.add("runs_pruned", i64::try_from(pruned).unwrap_or(i64::MAX));
        if self.db.backend() == Backend::Sqlite {
            sqlx::raw_sql("PRAGMA optimize; PRAGMA wal_checkpoint(TRUNCATE);").execute(self.db.pool()).await?;
            counters.add("sqlite_optimized", 1);
        }
        Ok(counters)
    }
}
