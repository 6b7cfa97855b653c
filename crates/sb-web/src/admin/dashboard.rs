//! The dashboard: ingestion freshness, last runs, open alerts, records per hour.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::Duration;

use super::{Layout, render, when};
use crate::app::AppState;
use crate::error::WebResult;
use crate::ingestion::SourceFreshness;
use crate::routes::CallerExt;

/// A row of the last-runs table.
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// Job.
    pub job: String,
    /// Status.
    pub status: String,
    /// Started.
    pub started: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    sources: Vec<SourceFreshness>,
    sources_error: bool,
    records_json: String,
    has_records: bool,
    runs: Vec<RunRow>,
    alerts: Vec<String>,
}

/// `GET /admin`.
pub async fn page(State(state): State<AppState>, caller: CallerExt) -> WebResult<Response> {
    let now = state.now();
    let (sources, sources_error) = match state.ingestion().sources().await {
        Ok(s) => (s, false),
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: ingestion sources unavailable");
            (Vec::new(), true)
        }
    };
    let hours = state.ingestion().records_per_hour(now - Duration::hours(24)).await.unwrap_or_default();
    // Every hour of the last day, empty ones at zero, so the chart's axis is the day.
    let first = (now.timestamp() / 3600 - 23) * 3600;
    let slots: Vec<(i64, i64)> = (0..24)
        .map(|i| {
            let at = first + i * 3600;
            (at, hours.iter().filter(|h| h.hour.timestamp().div_euclid(3600) * 3600 == at).map(|h| h.records).sum())
        })
        .collect();
    let records_json = serde_json::to_string(&slots).unwrap_or_else(|_| "[]".into());
    let mut alerts: Vec<String> = sources
        .iter()
        .filter(|s| s.late)
        .map(|s| format!("Source {} is late: no new data since {}", s.source, when(s.last_loaded_at)))
        .collect();
    match state.ingestion().open_alerts(20).await {
        Ok(open) => alerts.extend(
            open.into_iter().map(|a| format!("{} · {} · {}: {}", when(Some(a.at)), a.source, a.kind, a.message)),
        ),
        Err(e) => tracing::warn!(error = %e, "dashboard: ingestion alerts unavailable"),
    }
    let mut runs = Vec::new();
    if let Ok(scheduler) = state.scheduler() {
        for j in scheduler.list().await? {
            if let Some(r) = j.last_run.filter(|r| matches!(r.status.as_str(), "failed" | "timed_out" | "abandoned")) {
                alerts.push(format!("Job {}: last run {} at {}", j.name, r.status, when(Some(r.started_at))));
            }
        }
        runs = scheduler
            .history(None, 10)
            .await?
            .into_iter()
            .map(|r| RunRow { id: r.id, job: r.job, status: r.status.to_string(), started: when(Some(r.started_at)) })
            .collect();
    }
    render(&DashboardPage {
        layout: Layout::new(&caller, "Dashboard", "/admin"),
        has_records: !hours.is_empty(),
        sources,
        sources_error,
        records_json,
        runs,
        alerts,
    })
}
