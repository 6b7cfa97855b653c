//! Jobs: the list, a job's run history, and running a job now.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::{Layout, PER_PAGE, PageQuery, Pager, TableQuery, render, when};
use crate::app::AppState;
use crate::error::{WebError, WebResult};
use crate::routes::CallerExt;

/// A row of the jobs table.
pub struct JobRow {
    /// Name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Schedule and timezone.
    pub schedule: String,
    /// Next run.
    pub next: String,
    /// Last run's status.
    pub last_status: String,
    /// Last run's start.
    pub last_started: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    layout: Layout,
    jobs: Vec<JobRow>,
    can_run: bool,
}

/// `GET /admin/jobs`.
pub async fn list(State(state): State<AppState>, caller: CallerExt) -> WebResult<Response> {
    let jobs = state
        .scheduler()?
        .list()
        .await?
        .into_iter()
        .map(|j| JobRow {
            next: if j.enabled { when(j.next_run) } else { "disabled".into() },
            last_status: j.last_run.as_ref().map_or_else(|| "never run".into(), |r| r.status.to_string()),
            last_started: j.last_run.as_ref().map_or_else(String::new, |r| when(Some(r.started_at))),
            schedule: format!("{} ({})", j.schedule, j.timezone),
            name: j.name,
            description: j.description,
        })
        .collect();
    render(&JobsPage {
        layout: Layout::new(&caller, "Jobs", "/admin/jobs"),
        jobs,
        can_run: caller.permissions().allows("jobs.run"),
    })
}

/// A row of a job's history.
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// Trigger.
    pub trigger: String,
    /// Started.
    pub started: String,
    /// Duration.
    pub took: String,
    /// Status.
    pub status: String,
    /// Counters.
    pub counters: String,
    /// Error.
    pub error: String,
}

#[derive(Template)]
#[template(path = "job_runs.html")]
struct HistoryPage {
    layout: Layout,
    job: String,
    description: String,
    runs: Vec<RunRow>,
    pager: Pager,
    running: bool,
    can_run: bool,
}

/// Runs are shown newest first; history keeps a bounded number.
const HISTORY_CAP: u32 = 2_000;

/// `GET /admin/jobs/{name}`: the job's runs, newest first, with paging and a filter on status.
pub async fn history(
    State(state): State<AppState>,
    caller: CallerExt,
    Path(name): Path<String>,
    PageQuery(q): PageQuery<TableQuery>,
) -> WebResult<Response> {
    let scheduler = state.scheduler()?;
    let job = scheduler.list().await?.into_iter().find(|j| j.name == name).ok_or(WebError::NotFound)?;
    let all = scheduler.history(Some(&name), HISTORY_CAP).await?;
    let filter = q.q.trim().to_ascii_lowercase();
    let mut runs: Vec<_> =
        all.into_iter().filter(|r| filter.is_empty() || r.status.as_str().contains(&filter)).collect();
    let running = runs.iter().any(|r| r.status.as_str() == "running");
    let pager = Pager::new("", &q, runs.len() as i64, "started", &["started", "status"]);
    match (pager.sort.as_str(), pager.desc) {
        ("status", d) => runs.sort_by(|a, b| {
            if d { b.status.as_str().cmp(a.status.as_str()) } else { a.status.as_str().cmp(b.status.as_str()) }
        }),
        (_, false) => runs.reverse(),
        _ => {}
    }
    let rows = runs
        .into_iter()
        .skip(((pager.page - 1) * PER_PAGE) as usize)
        .take(PER_PAGE as usize)
        .map(|r| RunRow {
            id: r.id,
            trigger: r.trigger.to_string(),
            started: when(Some(r.started_at)),
            took: r.ended_at.map_or_else(|| "—".into(), |e| format!("{:.1} s", (e - r.started_at).as_seconds_f64())),
            status: r.status.to_string(),
            counters: r.counters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "),
            error: r.error.unwrap_or_default(),
        })
        .collect();
    render(&HistoryPage {
        layout: Layout::new(&caller, &format!("Job {name}"), "/admin/jobs"),
        description: job.description,
        job: name,
        runs: rows,
        pager,
        running,
        can_run: caller.permissions().allows("jobs.run"),
    })
}

/// `POST /admin/jobs/{name}/run`: starts a run and shows the job's history.
pub async fn run_now(State(state): State<AppState>, Path(name): Path<String>) -> WebResult<Response> {
    crate::api::start_run(&state, &name).await?;
    Ok(Redirect::to(&format!("/admin/jobs/{}", crate::routes::urlencode(&name))).into_response())
}
