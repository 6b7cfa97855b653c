use std::fmt;

use chrono::{DateTime, Utc};
use sb_store::sqlx::{self, Row, any::AnyRow};
use sb_store::{Db, StoreError, time};
use serde::Serialize;

use crate::Counters;

/// Why a run happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Its slot came while the scheduler was up.
    Schedule,
    /// Its slot was missed during downtime and run late, once.
    CatchUp,
    /// Someone ran it by hand.
    Manual,
}

/// How a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going.
    Running,
    /// Finished without error.
    Succeeded,
    /// Finished with an error, or panicked.
    Failed,
    /// Stopped at its timeout.
    TimedOut,
    /// Its process stopped while it ran; found later by the next runner.
    Abandoned,
    /// Missed slots not run, by the job's catch-up policy.
    Skipped,
}

macro_rules! names {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            /// The name stored in `jobs_runs`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }

            fn parse(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($s => Ok(Self::$v),)*
                    other => Err(StoreError::Other(format!(concat!("unknown ", stringify!($t), " `{}` in jobs_runs"), other))),
                }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(Trigger { Schedule = "schedule", CatchUp = "catch_up", Manual = "manual" });
names!(RunStatus {
    Running = "running",
    Succeeded = "succeeded",
    Failed = "failed",
    TimedOut = "timed_out",
    Abandoned = "abandoned",
    Skipped = "skipped",
});

/// One row of the run history.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Its id.
    pub id: i64,
    /// The job's name.
    pub job: String,
    /// Why it ran.
    pub trigger: Trigger,
    /// The slot it served, for scheduled and caught-up runs.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub status: RunStatus,
    /// What it counted.
    pub counters: Counters,
    /// Why it failed, timed out, was abandoned or skipped.
    pub error: Option<String>,
    /// Which scheduler instance ran it.
    pub instance: String,
}

const COLUMNS: &str =
    "id, job, trigger, scheduled_for_ms, started_at_ms, ended_at_ms, status, counters, error, instance";

fn from_row(r: &AnyRow) -> Result<RunRecord, StoreError> {
    let counters: String = r.try_get("counters")?;
    Ok(RunRecord {
        id: r.try_get("id")?,
        job: r.try_get("job")?,
        trigger: Trigger::parse(&r.try_get::<String, _>("trigger")?)?,
        scheduled_for: r.try_get::<Option<i64>, _>("scheduled_for_ms")?.map(time::from_ms),
        started_at: time::from_ms(r.try_get("started_at_ms")?),
        ended_at: r.try_get::<Option<i64>, _>("ended_at_ms")?.map(time::from_ms),
        status: RunStatus::parse(&r.try_get::<String, _>("status")?)?,
        counters: serde_json::from_str(&counters)
            .map_err(|e| StoreError::Other(format!("run counters are not JSON: {e}")))?,
        error: r.try_get("error")?,
        instance: r.try_get("instance")?,
    })
}

/// A run to insert.
pub(crate) struct NewRun<'a> {
    pub job: &'a str,
    pub trigger: Trigger,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub status: RunStatus,
    pub counters: &'a Counters,
    pub error: Option<&'a str>,
    pub instance: &'a str,
}

pub(crate) async fn insert<'c, E>(exec: E, run: NewRun<'_>) -> Result<i64, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let ended = (run.status != RunStatus::Running).then(|| time::to_ms(run.started_at));
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO jobs_runs (job, trigger, scheduled_for_ms, started_at_ms, ended_at_ms, status, counters, error, instance) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(run.job)
    .bind(run.trigger.as_str())
    .bind(run.scheduled_for.map(time::to_ms))
    .bind(time::to_ms(run.started_at))
    .bind(ended)
    .bind(run.status.as_str())
    .bind(counters_json(run.counters))
    .bind(run.error)
    .bind(run.instance)
    .fetch_one(exec)
    .await?;
    Ok(id)
}

pub(crate) async fn finish(
    db: &Db,
    id: i64,
    ended_at: DateTime<Utc>,
    status: RunStatus,
    counters: &Counters,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE jobs_runs SET ended_at_ms = $1, status = $2, counters = $3, error = $4 WHERE id = $5")
        .bind(time::to_ms(ended_at))
        .bind(status.as_str())
        .bind(counters_json(counters))
        .bind(error)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Marks runs left `running` by a stopped process. Only called while holding the job's lock,
/// so no live run can be among them.
pub(crate) async fn abandon_stale(db: &Db, job: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE jobs_runs SET status = 'abandoned', ended_at_ms = $1, \
         error = 'the process running it stopped before it finished' WHERE job = $2 AND status = 'running'",
    )
    .bind(time::to_ms(now))
    .bind(job)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn get(db: &Db, id: i64) -> Result<RunRecord, StoreError> {
    let row =
        sqlx::query(&format!("SELECT {COLUMNS} FROM jobs_runs WHERE id = $1")).bind(id).fetch_one(db.pool()).await?;
    from_row(&row)
}

/// The newest runs, of one job or of all, newest first.
pub(crate) async fn history(db: &Db, job: Option<&str>, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
    let rows = match job {
        Some(job) => {
            sqlx::query(&format!("SELECT {COLUMNS} FROM jobs_runs WHERE job = $1 ORDER BY id DESC LIMIT $2"))
                .bind(job)
                .bind(limit)
                .fetch_all(db.pool())
                .await?
        }
        None => {
            sqlx::query(&format!("SELECT {COLUMNS} FROM jobs_runs ORDER BY id DESC LIMIT $1"))
                .bind(limit)
                .fetch_all(db.pool())
                .await?
        }
    };
    rows.iter().map(from_row).collect()
}

fn counters_json(c: &Counters) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| "{}".to_owned())
}
