//! The monitoring console: calls, errors, latency percentiles and cache hit ratio per
//! system and method over a chosen range, with charts fed by the console's JSON endpoints.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::Duration;
use serde::Deserialize;

use super::{Layout, PageQuery, render};
use crate::app::AppState;
use crate::error::WebResult;
use crate::monitor::rollup::{self, CallStats};
use crate::routes::{CallerExt, urlencode};

/// The ranges offered: label, query value, length.
const RANGES: &[(&str, &str, i64)] =
    &[("1 hour", "1h", 60), ("6 hours", "6h", 360), ("24 hours", "24h", 1440), ("7 days", "7d", 10080)];

/// A range link.
pub struct RangeLink {
    /// Label.
    pub label: &'static str,
    /// Link.
    pub href: String,
    /// Whether chosen.
    pub active: bool,
}

#[derive(Template)]
#[template(path = "monitoring.html")]
struct MonitoringPage {
    layout: Layout,
    ranges: Vec<RangeLink>,
    stats: Vec<CallStats>,
    series_url: String,
    system: String,
}

impl MonitoringPage {
    fn ms(&self, v: &Option<f64>) -> String {
        v.map_or_else(|| "—".into(), |v| format!("{v:.1}"))
    }

    fn pct(&self, v: &Option<f64>) -> String {
        v.map_or_else(|| "—".into(), |v| format!("{:.1} %", v * 100.0))
    }

    fn rate(&self, v: &f64) -> String {
        format!("{:.2} %", v * 100.0)
    }

    fn system_link(&self, s: &str) -> String {
        format!("?system={}", urlencode(s))
    }
}

/// `?range=1h|6h|24h|7d&system=…`.
#[derive(Debug, Deserialize)]
pub struct ConsoleQuery {
    range: Option<String>,
    #[serde(default)]
    system: String,
}

/// `GET /admin/monitoring`.
pub async fn page(
    State(state): State<AppState>,
    caller: CallerExt,
    PageQuery(q): PageQuery<ConsoleQuery>,
) -> WebResult<Response> {
    let chosen = q.range.as_deref().unwrap_or("1h");
    let minutes = RANGES.iter().find(|r| r.1 == chosen).map_or(60, |r| r.2);
    let to = state.now();
    let from = to - Duration::minutes(minutes);
    let system = q.system.trim().to_owned();
    let stats = rollup::summary(state.db(), from, to).await?;
    let mut series_url = format!(
        "/api/v1/monitoring/series?from={}&to={}",
        urlencode(&from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        urlencode(&to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    if !system.is_empty() {
        series_url.push_str(&format!("&system={}", urlencode(&system)));
    }
    let ranges = RANGES
        .iter()
        .map(|(label, v, _)| RangeLink {
            label,
            href: if system.is_empty() {
                format!("?range={v}")
            } else {
                format!("?range={v}&system={}", urlencode(&system))
            },
            active: *v == chosen,
        })
        .collect();
    render(&MonitoringPage {
        layout: Layout::new(&caller, "Monitoring", "/admin/monitoring"),
        ranges,
        stats,
        series_url,
        system,
    })
}
