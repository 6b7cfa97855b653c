//! Scheduler behaviour on a real store: SQLite, or PostgreSQL when `SWITCHBOARD_TEST_PG` is set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use sb_core::ManualClock;
use sb_jobs::{
    CatchUp, Counters, Job, JobContext, JobResult, JobSpec, JobsConfig, JobsError, RunStatus, Scheduler, Trigger,
};
use sb_store::{Db, PoolOptions, TestDb};

/// Counts its runs and reports the count.
#[derive(Default)]
struct Counting(AtomicUsize);

#[async_trait::async_trait]
impl Job for Counting {
    async fn run(&self, _ctx: JobContext) -> JobResult {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let mut c = Counters::default();
        c.add("runs", n as i64);
        Ok(c)
    }
}

struct Failing;

#[async_trait::async_trait]
impl Job for Failing {
    async fn run(&self, _ctx: JobContext) -> JobResult {
        Err("the source folder /srv/inbox does not exist".into())
    }
}

/// Never finishes by itself; records that it was stopped when its future is dropped.
struct Hanging(Arc<AtomicBool>);

struct SetOnDrop(Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Job for Hanging {
    async fn run(&self, _ctx: JobContext) -> JobResult {
        let _guard = SetOnDrop(Arc::clone(&self.0));
        std::future::pending::<()>().await;
        Ok(Counters::default())
    }
}

fn utc_config() -> JobsConfig {
    JobsConfig { timezone: chrono_tz::UTC, ..JobsConfig::default() }
}

async fn migrated() -> TestDb {
    let db = TestDb::new().await;
    db.migrate(&[&sb_jobs::MIGRATIONS]).await.unwrap();
    db
}

fn clock_at(h: u32, m: u32) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 22, h, m, 0).unwrap()))
}

#[tokio::test]
async fn a_missed_schedule_is_caught_up_exactly_once() {
    let db = migrated().await;
    let clock = clock_at(10, 5);
    let job = Arc::new(Counting::default());
    let mut s = Scheduler::new(db.clone(), &utc_config()).unwrap().with_clock(clock.clone());
    s.register(JobSpec::new("hourly", "0 * * * *", "test").unwrap(), job.clone()).unwrap();

    assert!(s.tick().await.unwrap().is_empty(), "first sight starts the schedule, runs nothing");
    // Five hours of downtime: slots 11:00 … 15:00 are missed.
    clock.set(Utc.with_ymd_and_hms(2026, 11, 22, 15, 30, 0).unwrap());
    let runs = s.tick().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger, Trigger::CatchUp);
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(runs[0].counters.get("missed_slots"), 5);
    assert_eq!(runs[0].scheduled_for, Some(Utc.with_ymd_and_hms(2026, 11, 22, 15, 0, 0).unwrap()));
    assert!(s.tick().await.unwrap().is_empty(), "the catch-up is not repeated");
    assert_eq!(job.0.load(Ordering::SeqCst), 1);

    // The next slot, on time, runs as scheduled.
    clock.set(Utc.with_ymd_and_hms(2026, 11, 22, 16, 0, 10).unwrap());
    let runs = s.tick().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger, Trigger::Schedule);
    assert_eq!(job.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn missed_slots_of_a_skip_job_are_recorded_as_skipped_not_run() {
    let db = migrated().await;
    let clock = clock_at(10, 5);
    let job = Arc::new(Counting::default());
    let mut s = Scheduler::new(db.clone(), &utc_config()).unwrap().with_clock(clock.clone());
    s.register(JobSpec::new("hourly", "0 * * * *", "test").unwrap().catch_up(CatchUp::Skip), job.clone()).unwrap();
    s.tick().await.unwrap();
    clock.set(Utc.with_ymd_and_hms(2026, 11, 22, 13, 30, 0).unwrap());
    let runs = s.tick().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Skipped);
    assert!(runs[0].error.as_deref().unwrap().contains("3 slot(s) missed"));
    assert_eq!(job.0.load(Ordering::SeqCst), 0);
    assert!(s.tick().await.unwrap().is_empty());
}

#[tokio::test]
async fn two_runners_started_together_produce_one_run() {
    let db = migrated().await;
    // A second, independent pool on the same database stands for a second instance.
    let other = Db::connect_with(db.url(), &PoolOptions::default()).await.unwrap();
    let clock = clock_at(10, 5);
    let job = Arc::new(Counting::default());
    let mut a = Scheduler::new(db.clone(), &utc_config()).unwrap().with_clock(clock.clone());
    let mut b = Scheduler::new(other.clone(), &utc_config()).unwrap().with_clock(clock.clone());
    a.register(JobSpec::new("hourly", "0 * * * *", "test").unwrap(), job.clone()).unwrap();
    b.register(JobSpec::new("hourly", "0 * * * *", "test").unwrap(), job.clone()).unwrap();
    a.tick().await.unwrap();
    clock.set(Utc.with_ymd_and_hms(2026, 11, 22, 11, 0, 5).unwrap());

    let (ra, rb) = tokio::join!(
        async {
            let mut n = 0;
            for _ in 0..10 {
                n += a.tick().await.unwrap().len();
            }
            n
        },
        async {
            let mut n = 0;
            for _ in 0..10 {
                n += b.tick().await.unwrap().len();
            }
            n
        }
    );
    assert_eq!(ra + rb, 1);
    assert_eq!(job.0.load(Ordering::SeqCst), 1);
    assert_eq!(a.history(Some("hourly"), 10).await.unwrap().len(), 1);
    other.close().await;
}

#[tokio::test]
async fn a_failing_job_is_recorded_with_its_error() {
    let db = migrated().await;
    let mut s = Scheduler::new(db.clone(), &utc_config()).unwrap();
    s.register(JobSpec::new("broken", "0 * * * *", "test").unwrap(), Arc::new(Failing)).unwrap();
    let run = s.run_now("broken").await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.trigger, Trigger::Manual);
    assert_eq!(run.error.as_deref(), Some("the source folder /srv/inbox does not exist"));
    assert!(run.ended_at.is_some());
    let history = s.history(Some("broken"), 10).await.unwrap();
    assert_eq!(history[0].id, run.id);
}

#[tokio::test]
async fn a_job_past_its_timeout_is_stopped_and_recorded_as_timed_out() {
    let db = migrated().await;
    let stopped = Arc::new(AtomicBool::new(false));
    let mut s = Scheduler::new(db.clone(), &utc_config()).unwrap();
    let spec = JobSpec::new("slow", "0 * * * *", "test").unwrap().timeout(Duration::from_millis(200));
    s.register(spec, Arc::new(Hanging(stopped.clone()))).unwrap();
    let run = s.run_now("slow").await.unwrap();
    assert_eq!(run.status, RunStatus::TimedOut);
    assert!(run.error.as_deref().unwrap().contains("timeout"));
    // The aborted task is dropped by the runtime shortly after; poll with a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !stopped.load(Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "the job body was not stopped");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_job_cannot_be_started_by_hand_while_it_runs() {
    let db = migrated().await;
    let stopped = Arc::new(AtomicBool::new(false));
    let mut s = Scheduler::new(db.clone(), &utc_config()).unwrap();
    // The timeout leaves the second attempt ten seconds at least, even on a loaded machine.
    let spec = JobSpec::new("slow", "0 * * * *", "test").unwrap().timeout(Duration::from_secs(20));
    s.register(spec, Arc::new(Hanging(stopped))).unwrap();
    let s = Arc::new(s);
    let first = tokio::spawn({
        let s = Arc::clone(&s);
        async move { s.run_now("slow").await }
    });
    // Wait until the first run is recorded as running, then try a second one.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let h = s.history(Some("slow"), 1).await.unwrap();
        if h.first().is_some_and(|r| r.status == RunStatus::Running) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "first run never started");
        tokio::task::yield_now().await;
    }
    let second = s.run_now("slow").await;
    assert!(matches!(second, Err(JobsError::AlreadyRunning(_))), "{second:?}");
    assert_eq!(first.await.unwrap().unwrap().status, RunStatus::TimedOut);
}

#[tokio::test]
async fn a_run_left_running_by_a_dead_process_is_marked_abandoned() {
    let db = migrated().await;
    sb_store::sqlx::query(
        "INSERT INTO jobs_runs (job, trigger, started_at_ms, status, instance) VALUES ('hourly', 'manual', 1, 'running', 'gone')",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let mut s = Scheduler::new(db.clone(), &utc_config()).unwrap();
    s.register(JobSpec::new("hourly", "0 * * * *", "test").unwrap(), Arc::new(Counting::default())).unwrap();
    s.run_now("hourly").await.unwrap();
    let h = s.history(Some("hourly"), 10).await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].status, RunStatus::Abandoned);
    assert_eq!(h[0].status, RunStatus::Succeeded);
}

#[tokio::test]
async fn overrides_change_a_job_and_a_typo_in_a_name_is_refused() {
    let db = migrated().await;
    let mut config = utc_config();
    config.overrides.insert(
        "hourly".into(),
        sb_jobs::JobOverride { schedule: Some(sb_jobs::Schedule::parse("*/5 * * * *").unwrap()), ..Default::default() },
    );
    let mut s = Scheduler::new(db.clone(), &config).unwrap();
    s.register(JobSpec::new("hourly", "0 * * * *", "test").unwrap(), Arc::new(Counting::default())).unwrap();
    s.check_overrides().unwrap();
    assert_eq!(s.list().await.unwrap()[0].schedule, "*/5 * * * *");

    config.overrides.insert("hourlly".into(), sb_jobs::JobOverride::default());
    let mut s = Scheduler::new(db.clone(), &config).unwrap();
    s.register(JobSpec::new("hourly", "0 * * * *", "test").unwrap(), Arc::new(Counting::default())).unwrap();
    let e = s.check_overrides().unwrap_err().to_string();
    assert!(e.contains("jobs.overrides.hourlly"), "{e}");
}

#[tokio::test]
async fn an_unknown_job_is_named_in_the_error() {
    let db = migrated().await;
    let s = Scheduler::new(db.clone(), &utc_config()).unwrap();
    let e = s.run_now("nope").await.unwrap_err().to_string();
    assert!(e.contains("`nope`"), "{e}");
}

#[tokio::test]
async fn housekeeping_prunes_old_history() {
    let db = migrated().await;
    sb_store::sqlx::query(
        "INSERT INTO jobs_runs (job, trigger, started_at_ms, ended_at_ms, status, instance) VALUES ('x', 'manual', 1000, 2000, 'succeeded', 'i')",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let clock: Arc<dyn sb_core::Clock> = Arc::new(sb_core::SystemClock);
    let mut s = Scheduler::new(db.clone(), &utc_config()).unwrap();
    let hk = sb_jobs::Housekeeping::new(db.clone(), clock, 90);
    s.register(
        JobSpec::new(sb_jobs::Housekeeping::NAME, sb_jobs::Housekeeping::SCHEDULE, "upkeep").unwrap(),
        Arc::new(hk),
    )
    .unwrap();
    let run = s.run_now("housekeeping").await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.counters.get("runs_pruned"), 1);
    assert_eq!(s.history(None, 10).await.unwrap().len(), 1);
}
