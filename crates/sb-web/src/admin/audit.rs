//! The privacy audit log and the verification of its hash chain.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use sb_privacy::{AuditEntry, AuditReport};
use serde::Deserialize;

use super::{Layout, PER_PAGE, PageQuery, render};
use crate::app::AppState;
use crate::error::WebResult;
use crate::routes::CallerExt;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    report: AuditReport,
    entries: Vec<AuditEntry>,
    filter: String,
    next_before: Option<i64>,
}

impl AuditPage {
    fn at(&self, ms: &i64) -> String {
        super::when(Some(sb_store::time::from_ms(*ms)))
    }
}

/// `?before=` (paging by sequence number) and `?q=` (filter on action, actor, outcome).
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
    #[serde(default)]
    q: String,
}

/// `GET /admin/audit`: newest first, with the chain's verification.
pub async fn page(
    State(state): State<AppState>,
    caller: CallerExt,
    PageQuery(q): PageQuery<AuditQuery>,
) -> WebResult<Response> {
    let vault = state.vault()?;
    let report = vault.verify_audit().await?;
    let filter = q.q.trim().to_ascii_lowercase();
    let page = vault.audit_log(q.before, PER_PAGE).await?;
    let next_before = (page.len() == PER_PAGE as usize).then(|| page.last().map(|e| e.seq)).flatten();
    let entries = page
        .into_iter()
        .filter(|e| {
            filter.is_empty()
                || [e.action.as_str(), e.actor.as_str(), e.outcome.as_str()]
                    .iter()
                    .any(|f| f.to_ascii_lowercase().contains(&filter))
        })
        .collect();
    render(&AuditPage {
        layout: Layout::new(&caller, "Audit log", "/admin/audit"),
        report,
        entries,
        filter,
        next_before,
    })
}
