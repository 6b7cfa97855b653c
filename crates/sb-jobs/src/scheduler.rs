use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sb_core::{Clock, SystemClock};
use sb_store::sqlx;
use sb_store::{Db, StoreError, time};
use serde::Serialize;
use tokio::sync::watch;
use tracing::{Instrument, info, info_span, warn};

use crate::lock::RunLock;
use crate::runs::{self, NewRun, RunRecord, RunStatus, Trigger};
use crate::{CatchUp, Counters, Job, JobContext, JobOverride, JobSpec, JobsConfig, JobsError};

/// At most this many missed slots are counted when reporting a catch-up.
const MISSED_COUNT_CAP: u32 = 100_000;
/// Extra lease time beyond a job's timeout on SQLite, for the time to record the end.
const LEASE_MARGIN: Duration = Duration::from_secs(60);

struct Registered {
    spec: JobSpec,
    job: Arc<dyn Job>,
}

/// Runs registered jobs on their schedules, and by hand.
pub struct Scheduler {
    db: Db,
    clock: Arc<dyn Clock>,
    tz: Tz,
    grace: chrono::Duration,
    poll: Duration,
    overrides: BTreeMap<String, JobOverride>,
    jobs: Vec<Registered>,
    instance: String,
}

/// A registered job and where it stands, for `switchboard jobs list`.
#[derive(Debug, Clone, Serialize)]
pub struct JobInfo {
    /// The job's name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Its cron expression.
    pub schedule: String,
    /// The timezone the schedule is read in.
    pub timezone: String,
    /// Its catch-up policy.
    pub catch_up: CatchUp,
    /// Its timeout in seconds.
    pub timeout_s: u64,
    /// Whether the scheduler runs it.
    pub enabled: bool,
    /// Its next slot, when enabled.
    pub next_run: Option<DateTime<Utc>>,
    /// Its newest run.
    pub last_run: Option<RunRecord>,
}

impl Scheduler {
    /// A scheduler over `db` (migrated with [`crate::MIGRATIONS`]) reading the wall clock.
    pub fn new(db: Db, config: &JobsConfig) -> Result<Self, JobsError> {
        Ok(Self {
            db,
            clock: Arc::new(SystemClock),
            tz: config.timezone,
            grace: chrono::Duration::seconds(i64::try_from(config.grace_s).unwrap_or(i64::MAX / 1000)),
            poll: Duration::from_secs(config.poll_s.max(1)),
            overrides: config.overrides.clone(),
            jobs: Vec::new(),
            instance: format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple()),
        })
    }

    /// Reads time from `clock` instead of the wall clock (tests, simulations).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a job, applying its `[jobs.overrides.NAME]` if any. Names are unique.
    pub fn register(&mut self, mut spec: JobSpec, job: Arc<dyn Job>) -> Result<(), JobsError> {
        if self.jobs.iter().any(|r| r.spec.name == spec.name) {
            return Err(JobsError::Config(format!("job `{}` is registered twice", spec.name)));
        }
        if let Some(o) = self.overrides.get(&spec.name) {
            if let Some(s) = &o.schedule {
                spec.schedule = s.clone();
            }
            if let Some(c) = o.catch_up {
                spec.catch_up = c;
            }
            if let Some(t) = o.timeout_s {
                spec.timeout = Duration::from_secs(t);
            }
            if let Some(e) = o.enabled {
                spec.enabled = e;
            }
        }
        self.jobs.push(Registered { spec, job });
        Ok(())
    }

    /// Fails when `[jobs.overrides]` names a job nobody registered (a typo would otherwise
    /// be silently ignored). Call once every job is registered.
    pub fn check_overrides(&self) -> Result<(), JobsError> {
        for name in self.overrides.keys() {
            if !self.jobs.iter().any(|r| &r.spec.name == name) {
                let known: Vec<&str> = self.jobs.iter().map(|r| r.spec.name.as_str()).collect();
                return Err(JobsError::Config(format!(
                    "jobs.overrides.{name}: no job named `{name}`; known jobs: {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Every registered job with its next slot and newest run.
    pub async fn list(&self) -> Result<Vec<JobInfo>, JobsError> {
        let now = self.clock.now();
        let mut out = Vec::with_capacity(self.jobs.len());
        for r in &self.jobs {
            let s = &r.spec;
            let last_run = runs::history(&self.db, Some(&s.name), 1).await?.into_iter().next();
            out.push(JobInfo {
                name: s.name.clone(),
                description: s.description.clone(),
                schedule: s.schedule.as_str().to_owned(),
                timezone: self.tz.name().to_owned(),
                catch_up: s.catch_up,
                timeout_s: s.timeout.as_secs(),
                enabled: s.enabled,
                next_run: if s.enabled { s.schedule.next_after(now, self.tz) } else { None },
                last_run,
            });
        }
        Ok(out)
    }

    /// The newest `limit` runs, of one job or of all, newest first.
    pub async fn history(&self, job: Option<&str>, limit: u32) -> Result<Vec<RunRecord>, JobsError> {
        if let Some(name) = job {
            self.find(name)?;
        }
        Ok(runs::history(&self.db, job, i64::from(limit)).await?)
    }

    /// Runs `name` now, by hand, whatever its schedule. Fails with `AlreadyRunning` when a
    /// run of it is in progress here or on another instance.
    pub async fn run_now(&self, name: &str) -> Result<RunRecord, JobsError> {
        let r = self.find(name)?;
        let now = self.clock.now();
        let lock = RunLock::try_acquire(&self.db, name, &self.instance, now, r.spec.timeout + LEASE_MARGIN)
            .await?
            .ok_or_else(|| JobsError::AlreadyRunning(name.to_owned()))?;
        let result = async {
            runs::abandon_stale(&self.db, name, now).await?;
            let counters = Counters::default();
            let id = runs::insert(
                self.db.pool(),
                NewRun {
                    job: name,
                    trigger: Trigger::Manual,
                    scheduled_for: None,
                    started_at: now,
                    status: RunStatus::Running,
                    counters: &counters,
                    error: None,
                    instance: &self.instance,
                },
            )
            .await?;
            self.execute(r, id, None, counters).await
        }
        .await;
        release(lock, name).await;
        result
    }

    /// Looks at every enabled job once and runs those whose slot has come, one after the
    /// other. Returns the runs it made (including `skipped` records). The long-running loop
    /// is [`Scheduler::run_until`]; this is its unit step, and what tests drive.
    pub async fn tick(&self) -> Result<Vec<RunRecord>, JobsError> {
        let mut done = Vec::new();
        for r in self.jobs.iter().filter(|r| r.spec.enabled) {
            if let Some(run) = self.run_if_due(r).await? {
                done.push(run);
            }
        }
        Ok(done)
    }

    /// Runs the schedule until `shutdown` turns true: one task per enabled job, each waking
    /// at its next slot (or every `poll_s` at most). On shutdown no new run starts; runs in
    /// progress get `grace` to finish, then are stopped (and found abandoned on next start).
    pub async fn run_until(self: Arc<Self>, shutdown: watch::Receiver<bool>, grace: Duration) {
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..self.jobs.len() {
            if !self.jobs[index].spec.enabled {
                continue;
            }
            let me = Arc::clone(&self);
            let mut stop = shutdown.clone();
            tasks.spawn(async move {
                let r = &me.jobs[index];
                loop {
                    if *stop.borrow() {
                        break;
                    }
                    if let Err(e) = me.run_if_due(r).await {
                        warn!(job = %r.spec.name, error = %e, "scheduler could not run the job; will retry");
                    }
                    let now = me.clock.now();
                    let wait = r
                        .spec
                        .schedule
                        .next_after(now, me.tz)
                        .and_then(|t| (t - now).to_std().ok())
                        .map_or(me.poll, |d| d.min(me.poll));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                }
            });
        }
        let mut stop = shutdown;
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
            warn!("runs still in progress at shutdown were stopped");
            tasks.abort_all();
        }
    }

    fn find(&self, name: &str) -> Result<&Registered, JobsError> {
        self.jobs.iter().find(|r| r.spec.name == name).ok_or_else(|| JobsError::UnknownJob(name.to_owned()))
    }

    async fn last_slot(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let ms: Option<i64> = sqlx::query_scalar("SELECT last_slot_ms FROM jobs_state WHERE job = $1")
            .bind(job)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(ms.map(time::from_ms))
    }

    async fn run_if_due(&self, r: &Registered) -> Result<Option<RunRecord>, JobsError> {
        let spec = &r.spec;
        let now = self.clock.now();
        let Some(latest) = spec.schedule.latest_at_or_before(now, self.tz) else {
            return Ok(None);
        };
        match self.last_slot(&spec.name).await? {
            None => {
                // First sight of this job: its schedule starts now, not at some past slot.
                sqlx::query("INSERT INTO jobs_state (job, last_slot_ms) VALUES ($1, $2) ON CONFLICT (job) DO NOTHING")
                    .bind(&spec.name)
                    .bind(time::to_ms(now))
                    .execute(self.db.pool())
                    .await
                    .map_err(StoreError::from)?;
                return Ok(None);
            }
            Some(last) if latest <= last => return Ok(None),
            Some(_) => {}
        }
        let Some(lock) =
            RunLock::try_acquire(&self.db, &spec.name, &self.instance, now, spec.timeout + LEASE_MARGIN).await?
        else {
            return Ok(None);
        };
        let result = self.claim_and_run(r, now, latest).await;
        release(lock, &spec.name).await;
        result
    }

    /// Under the job's lock: claims the slot (so no other instance runs it), then runs it.
    async fn claim_and_run(
        &self,
        r: &Registered,
        now: DateTime<Utc>,
        latest: DateTime<Utc>,
    ) -> Result<Option<RunRecord>, JobsError> {
        let spec = &r.spec;
        runs::abandon_stale(&self.db, &spec.name, now).await?;
        // Read again under the lock: another instance may have run this slot meanwhile.
        let Some(last) = self.last_slot(&spec.name).await? else {
            return Ok(None);
        };
        if latest <= last {
            return Ok(None);
        }
        let on_time = now - latest <= self.grace;
        let missed = spec.schedule.count_between(last, now, self.tz, MISSED_COUNT_CAP);
        let (trigger, status, error) = match (on_time, spec.catch_up) {
            (true, _) => (Trigger::Schedule, RunStatus::Running, None),
            (false, CatchUp::Once) => (Trigger::CatchUp, RunStatus::Running, None),
            (false, CatchUp::Skip) => (
                Trigger::CatchUp,
                RunStatus::Skipped,
                Some(format!("{missed} slot(s) missed while no scheduler ran; catch-up is `skip`")),
            ),
        };
        let mut counters = Counters::default();
        if trigger == Trigger::CatchUp {
            counters.add("missed_slots", i64::from(missed));
        }

        let mut tx = self.db.begin_write().await?;
        let claimed = sqlx::query("UPDATE jobs_state SET last_slot_ms = $1 WHERE job = $2 AND last_slot_ms = $3")
            .bind(time::to_ms(latest))
            .bind(&spec.name)
            .bind(time::to_ms(last))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        if claimed.rows_affected() != 1 {
            return Ok(None);
        }
        let new_run = NewRun {
            job: &spec.name,
            trigger,
            scheduled_for: Some(latest),
            started_at: now,
            status,
            counters: &counters,
            error: error.as_deref(),
            instance: &self.instance,
        };
        let id = match runs::insert(&mut *tx, new_run).await {
            Ok(id) => id,
            Err(e) if e.is_conflict() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        tx.commit().await.map_err(StoreError::from)?;

        if status == RunStatus::Skipped {
            info!(job = %spec.name, missed, "missed slots skipped");
            return Ok(Some(runs::get(&self.db, id).await?));
        }
        if trigger == Trigger::CatchUp {
            info!(job = %spec.name, missed, "catching up once for missed slots");
        }
        self.execute(r, id, Some(latest), counters).await.map(Some)
    }

    /// Runs the job body in its own task, bounded by its timeout, and records the outcome
    /// with the job's counters added to the scheduler's own (`missed_slots`).
    async fn execute(
        &self,
        r: &Registered,
        id: i64,
        scheduled_for: Option<DateTime<Utc>>,
        mut counters: Counters,
    ) -> Result<RunRecord, JobsError> {
        let spec = &r.spec;
        let span = info_span!("job", job = %spec.name, run = id);
        let job = Arc::clone(&r.job);
        let ctx = JobContext { run_id: id, scheduled_for };
        let started = std::time::Instant::now();
        info!(job = %spec.name, run = id, "run started");
        let mut handle = tokio::spawn(async move { job.run(ctx).await }.instrument(span));
        let (status, error) = match tokio::time::timeout(spec.timeout, &mut handle).await {
            Ok(Ok(Ok(reported))) => {
                counters.merge(&reported);
                (RunStatus::Succeeded, None)
            }
            Ok(Ok(Err(e))) => (RunStatus::Failed, Some(e.to_string())),
            Ok(Err(join)) if join.is_panic() => (RunStatus::Failed, Some("the job panicked".to_owned())),
            Ok(Err(_)) => (RunStatus::Failed, Some("the job was cancelled".to_owned())),
            Err(_) => {
                handle.abort();
                (RunStatus::TimedOut, Some(format!("stopped at its timeout of {}s", spec.timeout.as_secs_f64())))
            }
        };
        let ended = self.clock.now();
        runs::finish(&self.db, id, ended, status, &counters, error.as_deref()).await?;
        let seconds = started.elapsed().as_secs_f64();
        match status {
            RunStatus::Succeeded => info!(job = %spec.name, run = id, seconds, "run succeeded"),
            _ => warn!(
                job = %spec.name,
                run = id,
                seconds,
                status = %status,
                error = error.as_deref().unwrap_or(""),
                "run did not succeed"
            ),
        }
        Ok(runs::get(&self.db, id).await?)
    }
}

async fn release(lock: RunLock, job: &str) {
    if let Err(e) = lock.release().await {
        // The lock still ends: the advisory connection is closed on drop, a lease expires.
        warn!(job, error = %e, "could not release the job lock");
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "switchboard".to_owned())
}
