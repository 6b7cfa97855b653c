//! Per-minute rollups of call events in the store, and the console's queries over them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sb_core::monitor::{CacheStatus, CallEvent, Outcome};
use sb_store::sqlx::{self, Row};
use sb_store::{Db, StoreError, time};
use serde::Serialize;

use super::histogram;

/// Counters of one (minute, system, method).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls.
    pub calls: i64,
    /// Calls that ended in error.
    pub errors: i64,
    /// Calls that timed out.
    pub timeouts: i64,
    /// Cached reads answered fresh from the cache.
    pub cache_hits: i64,
    /// Cached reads that asked the system.
    pub cache_misses: i64,
    /// Cached reads answered stale.
    pub cache_stale: i64,
    /// Sum of latencies, µs.
    pub latency_sum_us: i64,
    /// Largest latency, µs.
    pub latency_max_us: i64,
    /// Calls per latency bucket.
    pub buckets: BTreeMap<u32, i64>,
}

type Key = (i64, String, String);

/// Events added up in memory until the next write.
#[derive(Debug, Default)]
pub struct Batch {
    rollups: HashMap<Key, Counts>,
    events: usize,
}

impl Batch {
    /// Adds one event to its minute.
    pub fn add(&mut self, e: &CallEvent) {
        let minute = time::to_ms(e.at).div_euclid(60_000) * 60_000;
        let c = self.rollups.entry((minute, e.system.clone(), e.method.clone())).or_default();
        let latency = i64::try_from(e.latency_us).unwrap_or(i64::MAX);
        c.calls += 1;
        match e.outcome {
            Outcome::Ok => {}
            Outcome::Error => c.errors += 1,
            Outcome::Timeout => c.timeouts += 1,
        }
        match e.cache {
            Some(CacheStatus::Hit) => c.cache_hits += 1,
            Some(CacheStatus::Miss) => c.cache_misses += 1,
            Some(CacheStatus::Stale) => c.cache_stale += 1,
            None => {}
        }
        c.latency_sum_us = c.latency_sum_us.saturating_add(latency);
        c.latency_max_us = c.latency_max_us.max(latency);
        *c.buckets.entry(histogram::bucket(e.latency_us)).or_default() += 1;
        self.events += 1;
    }

    /// Events added since the last write.
    pub fn len(&self) -> usize {
        self.events
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Adds the batch to the store in one transaction and empties it. With `consumer`, also
    /// records `(name, last_seq)` in the same transaction, and skips the write when that
    /// sequence was applied already (a redelivery).
    pub async fn write(&mut self, db: &Db, consumer: Option<(&str, i64)>) -> Result<usize, StoreError> {
        let mut tx = db.begin_write().await?;
        if let Some((name, seq)) = consumer {
            let applied: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM monitor_consumers WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            if applied.is_some_and(|a| a >= seq) {
                self.rollups.clear();
                self.events = 0;
                return Ok(0);
            }
            sqlx::query(
                "INSERT INTO monitor_consumers (name, last_seq) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq",
            )
            .bind(name)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        for ((minute, system, method), c) in &self.rollups {
            sqlx::query(
                "INSERT INTO monitor_rollups (minute_ms, system, method, calls, errors, timeouts, cache_hits, \
                 cache_misses, cache_stale, latency_sum_us, latency_max_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (minute_ms, system, method) DO UPDATE SET \
                 calls = monitor_rollups.calls + excluded.calls, \
                 errors = monitor_rollups.errors + excluded.errors, \
                 timeouts = monitor_rollups.timeouts + excluded.timeouts, \
                 cache_hits = monitor_rollups.cache_hits + excluded.cache_hits, \
                 cache_misses = monitor_rollups.cache_misses + excluded.cache_misses, \
                 cache_stale = monitor_rollups.cache_stale + excluded.cache_stale, \
                 latency_sum_us = monitor_rollups.latency_sum_us + excluded.latency_sum_us, \
                 latency_max_us = CASE WHEN excluded.latency_max_us > monitor_rollups.latency_max_us \
                     THEN excluded.latency_max_us ELSE monitor_rollups.latency_max_us END",
            )
            .bind(minute)
            .bind(system)
            .bind(method)
            .bind(c.calls)
            .bind(c.errors)
            .bind(c.timeouts)
            .bind(c.cache_hits)
            .bind(c.cache_misses)
            .bind(c.cache_stale)
            .bind(c.latency_sum_us)
            .bind(c.latency_max_us)
            .execute(&mut *tx)
            .await?;
            for (bucket, n) in &c.buckets {
                sqlx::query(
                    "INSERT INTO monitor_latency (minute_ms, system, method, bucket, calls) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (minute_ms, system, method, bucket) DO UPDATE SET calls = monitor_latency.calls + excluded.calls",
                )
                .bind(minute)
                .bind(system)
                .bind(method)
                .bind(i64::from(*bucket))
                .bind(n)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        let written = self.events;
        self.rollups.clear();
        self.events = 0;
        Ok(written)
    }
}

/// One system and method over a time range, as the console shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallStats {
    /// The system called.
    pub system: String,
    /// The operation.
    pub method: String,
    /// Calls.
    pub calls: i64,
    /// Calls that ended in error or timed out.
    pub errors: i64,
    /// Of which timeouts.
    pub timeouts: i64,
    /// errors / calls.
    pub error_rate: f64,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// Largest latency, ms.
    pub max_ms: f64,
    /// Cached reads answered from the cache (fresh or stale) / all cached reads; `None`
    /// when no call was cached.
    pub cache_hit_ratio: Option<f64>,
    /// Cached reads answered stale.
    pub cache_stale: i64,
}

/// Per system and method, over `[from, to)`.
pub async fn summary(db: &Db, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<CallStats>, StoreError> {
    let (from, to) = (time::to_ms(from), time::to_ms(to));
    let rows = sqlx::query(
        "SELECT system, method, CAST(SUM(calls) AS BIGINT) AS calls, CAST(SUM(errors) AS BIGINT) AS errors, \
         CAST(SUM(timeouts) AS BIGINT) AS timeouts, CAST(SUM(cache_hits) AS BIGINT) AS hits, \
         CAST(SUM(cache_misses) AS BIGINT) AS misses, CAST(SUM(cache_stale) AS BIGINT) AS stale, \
         CAST(MAX(latency_max_us) AS BIGINT) AS max_us \
         FROM monitor_rollups WHERE minute_ms >= $1 AND minute_ms < $2 GROUP BY system, method ORDER BY system, method",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db.pool())
    .await?;
    let buckets = sqlx::query(
        "SELECT system, method, bucket, CAST(SUM(calls) AS BIGINT) AS calls FROM monitor_latency \
         WHERE minute_ms >= $1 AND minute_ms < $2 GROUP BY system, method, bucket",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db.pool())
    .await?;
    let mut hist: HashMap<(String, String), Vec<(u32, i64)>> = HashMap::new();
    for r in &buckets {
        let b: i64 = r.try_get("bucket")?;
        hist.entry((r.try_get("system")?, r.try_get("method")?))
            .or_default()
            .push((u32::try_from(b).unwrap_or(0), r.try_get("calls")?));
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let (system, method): (String, String) = (r.try_get("system")?, r.try_get("method")?);
        let (calls, errors, timeouts): (i64, i64, i64) =
            (r.try_get("calls")?, r.try_get("errors")?, r.try_get("timeouts")?);
        let (hits, misses, stale): (i64, i64, i64) = (r.try_get("hits")?, r.try_get("misses")?, r.try_get("stale")?);
        let h = hist.remove(&(system.clone(), method.clone())).unwrap_or_default();
        let cached = hits + misses + stale;
        out.push(CallStats {
            error_rate: if calls > 0 { (errors + timeouts) as f64 / calls as f64 } else { 0.0 },
            p50_ms: histogram::quantile_ms(&h, 0.50),
            p95_ms: histogram::quantile_ms(&h, 0.95),
            p99_ms: histogram::quantile_ms(&h, 0.99),
            max_ms: r.try_get::<i64, _>("max_us")? as f64 / 1000.0,
            cache_hit_ratio: (cached > 0).then(|| (hits + stale) as f64 / cached as f64),
            cache_stale: stale,
            system,
            method,
            calls,
            errors: errors + timeouts,
            timeouts,
        });
    }
    Ok(out)
}

/// One step of a time series.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// The step's start (epoch ms).
    pub at_ms: i64,
    /// Calls in the step.
    pub calls: i64,
    /// Errors and timeouts in the step.
    pub errors: i64,
    /// 95th percentile latency in the step, ms.
    pub p95_ms: Option<f64>,
}

/// Calls, errors and p95 per step over `[from, to)`, of one system (and method) or of all,
/// with steps of at least a minute and at most 240 points.
pub async fn series(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    system: Option<&str>,
    method: Option<&str>,
) -> Result<Vec<SeriesPoint>, StoreError> {
    let (from, to) = (time::to_ms(from), time::to_ms(to));
    let step = ((to - from) / 240).max(60_000).div_euclid(60_000) * 60_000;
    let filter = "minute_ms >= $1 AND minute_ms < $2 AND ($3 = '' OR system = $3) AND ($4 = '' OR method = $4)";
    let rows = sqlx::query(&format!(
        "SELECT minute_ms, CAST(SUM(calls) AS BIGINT) AS calls, CAST(SUM(errors + timeouts) AS BIGINT) AS errors \
         FROM monitor_rollups WHERE {filter} GROUP BY minute_ms"
    ))
    .bind(from)
    .bind(to)
    .bind(system.unwrap_or(""))
    .bind(method.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    let buckets = sqlx::query(&format!(
        "SELECT minute_ms, bucket, CAST(SUM(calls) AS BIGINT) AS calls FROM monitor_latency WHERE {filter} \
         GROUP BY minute_ms, bucket"
    ))
    .bind(from)
    .bind(to)
    .bind(system.unwrap_or(""))
    .bind(method.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    let slot = |minute: i64| from + (minute - from).div_euclid(step) * step;
    /// Calls, errors and latency buckets of one step.
    type Step = (i64, i64, Vec<(u32, i64)>);
    let mut points: BTreeMap<i64, Step> = BTreeMap::new();
    for r in &rows {
        let p = points.entry(slot(r.try_get("minute_ms")?)).or_default();
        p.0 += r.try_get::<i64, _>("calls")?;
        p.1 += r.try_get::<i64, _>("errors")?;
    }
    for r in &buckets {
        let b: i64 = r.try_get("bucket")?;
        points
            .entry(slot(r.try_get("minute_ms")?))
            .or_default()
            .2
            .push((u32::try_from(b).unwrap_or(0), r.try_get("calls")?));
    }
    Ok(points
        .into_iter()
        .map(|(at_ms, (calls, errors, h))| SeriesPoint {
            at_ms,
            calls,
            errors,
            p95_ms: histogram::quantile_ms(&h, 0.95),
        })
        .collect())
}

/// Deletes rollups older than `before`; returns how many rows went.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let cutoff = time::to_ms(before);
    let a = sqlx::query("DELETE FROM monitor_rollups WHERE minute_ms < $1").bind(cutoff).execute(db.pool()).await?;
    let b = sqlx::query("DELETE FROM monitor_latency WHERE minute_ms < $1").bind(cutoff).execute(db.pool()).await?;
    Ok(a.rows_affected() + b.rows_affected())
}
