//! What the dashboard shows of ingestion, read through a trait so that this crate does not
//! reach into ingestion's tables (the binary connects the real source when ingestion runs).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One ingestion source and how fresh its data is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceFreshness {
    /// The source's name (`med01`).
    pub source: String,
    /// The newest file or batch loaded from it.
    pub last_loaded_at: Option<DateTime<Utc>>,
    /// Files waiting or failed.
    pub pending: i64,
    /// Whether the source is later than its schedule allows.
    pub late: bool,
}

/// Records loaded in one hour.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HourCount {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    /// Records loaded in it.
    pub records: i64,
}

/// An alert ingestion raised and nobody resolved yet (a missing hour, a rejected file, a run
/// over its time budget, an unreachable source).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IngestAlert {
    /// When it was raised.
    pub at: DateTime<Utc>,
    /// The source it is about.
    pub source: String,
    /// What happened (`missing_file`, `rejected_file`, `over_budget`, …).
    pub kind: String,
    /// For people (never personal data).
    pub message: String,
}

/// Ingestion's state as the dashboard shows it.
#[async_trait::async_trait]
pub trait IngestionOverview: Send + Sync + 'static {
    /// Every configured source; empty when none is configured.
    async fn sources(&self) -> Result<Vec<SourceFreshness>, String>;
    /// Records loaded per hour since `since`, oldest first.
    async fn records_per_hour(&self, since: DateTime<Utc>) -> Result<Vec<HourCount>, String>;
    /// Open alerts, newest first, at most `limit`.
    async fn open_alerts(&self, _limit: i64) -> Result<Vec<IngestAlert>, String> {
        Ok(Vec::new())
    }
}

/// No ingestion configured: the dashboard says so rather than show invented numbers.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoIngestion;

#[async_trait::async_trait]
impl IngestionOverview for NoIngestion {
    async fn sources(&self) -> Result<Vec<SourceFreshness>, String> {
        Ok(Vec::new())
    }

    async fn records_per_hour(&self, _since: DateTime<Utc>) -> Result<Vec<HourCount>, String> {
        Ok(Vec::new())
    }
}
