//! The JSON API under `/api/v1`. Every handler here is described in the OpenAPI document
//! ([`crate::openapi`]); its permission is declared in the route table ([`crate::routes`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use sb_privacy::{PiiKind, Subject};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{WebError, WebResult};
use crate::monitor::rollup::{self, CallStats, SeriesPoint};
use crate::routes::CallerExt;

/// A JSON body whose rejection is a problem document.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(WebError))]
pub struct ApiJson<T>(pub T);

/// A query string whose rejection is a problem document.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(WebError))]
pub struct ApiQuery<T>(pub T);

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `user`, `api_client` or `customer`.
    pub kind: &'static str,
    /// The caller's name as audited (`user:ann`, `api:<key id>`, `customer`).
    pub id: String,
    /// What the caller may do.
    pub permissions: Vec<String>,
}

/// The caller and their permissions.
#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, body = Me), (status = 401, body = crate::error::Problem)))]
pub async fn me(caller: CallerExt) -> Json<Me> {
    let kind = match &caller.0 {
        Caller::User(_) => "user",
        Caller::Api(_) => "api_client",
        Caller::Customer(_) => "customer",
    };
    Json(Me { kind, id: caller.audit_id(), permissions: caller.permissions().iter().map(str::to_owned).collect() })
}

/// A job and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Its cron expression.
    pub schedule: String,
    /// The schedule's timezone.
    pub timezone: String,
    /// Whether the scheduler runs it.
    pub enabled: bool,
    /// Its next slot.
    pub next_run: Option<DateTime<Utc>>,
    /// Its newest run.
    pub last_run: Option<RunView>,
}

/// One run of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// The run's id.
    pub id: i64,
    /// The job.
    pub job: String,
    /// `schedule`, `catch_up` or `manual`.
    pub trigger: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// `running`, `succeeded`, `failed`, `timed_out`, `abandoned` or `skipped`.
    pub status: String,
    /// What it counted.
    pub counters: BTreeMap<String, i64>,
    /// Why it did not succeed.
    pub error: Option<String>,
}

impl From<sb_jobs::RunRecord> for RunView {
    fn from(r: sb_jobs::RunRecord) -> Self {
        Self {
            id: r.id,
            trigger: r.trigger.to_string(),
            started_at: r.started_at,
            ended_at: r.ended_at,
            status: r.status.to_string(),
            counters: r.counters.iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            error: r.error,
            job: r.job,
        }
    }
}

/// Every job with its next and last run.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", security(("api_key" = [])),
    responses((status = 200, body = [JobView]), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn jobs(State(state): State<AppState>) -> WebResult<Json<Vec<JobView>>> {
    let jobs = state.scheduler()?.list().await?;
    Ok(Json(
        jobs.into_iter()
            .map(|j| JobView {
                name: j.name,
                description: j.description,
                schedule: j.schedule,
                timezone: j.timezone,
                enabled: j.enabled,
                next_run: j.next_run,
                last_run: j.last_run.map(Into::into),
            })
            .collect(),
    ))
}

/// Paging of run history.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RunsQuery {
    /// How many runs (at most 500).
    pub limit: Option<u32>,
}

/// A job's runs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs/{name}/runs", tag = "jobs", security(("api_key" = [])),
    params(("name" = String, Path, description = "The job's name"), RunsQuery),
    responses((status = 200, body = [RunView]), (status = 404, body = crate::error::Problem)))]
pub async fn job_runs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> WebResult<Json<Vec<RunView>>> {
    let runs = state.scheduler()?.history(Some(&name), q.limit.unwrap_or(50).min(500)).await?;
    Ok(Json(runs.into_iter().map(Into::into).collect()))
}

/// A run started.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    /// The job.
    pub job: String,
    /// Where to follow it.
    pub runs: String,
}

/// Starts a run of a job now; follow it in its runs.
#[utoipa::path(post, path = "/api/v1/jobs/{name}/runs", tag = "jobs", security(("api_key" = [])),
    params(("name" = String, Path, description = "The job's name")),
    responses((status = 202, body = RunStarted), (status = 404, body = crate::error::Problem)))]
pub async fn run_job(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> WebResult<(StatusCode, Json<RunStarted>)> {
    start_run(&state, &name).await?;
    Ok((StatusCode::ACCEPTED, Json(RunStarted { runs: format!("/api/v1/jobs/{name}/runs"), job: name })))
}

/// Starts `name` in the background (the request does not wait for the run).
pub(crate) async fn start_run(state: &AppState, name: &str) -> WebResult<()> {
    let scheduler = state.scheduler()?.clone();
    if !scheduler.list().await?.iter().any(|j| j.name == name) {
        return Err(WebError::NotFound);
    }
    let newest = |runs: Vec<sb_jobs::RunRecord>| runs.first().map_or(0, |r| r.id);
    let before = newest(scheduler.history(Some(name), 1).await?);
    let job = name.to_owned();
    let runner = Arc::clone(&scheduler);
    let task = tokio::spawn(async move { runner.run_now(&job).await });
    // Answer once the run is recorded, so the page the caller goes to next shows it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !task.is_finished() && tokio::time::Instant::now() < deadline {
        if newest(scheduler.history(Some(name), 1).await?) > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if task.is_finished() {
        match task.await {
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(_)) => {}
            Err(e) => return Err(WebError::Internal(format!("the run's task failed: {e}"))),
        }
    } else {
        let name = name.to_owned();
        tokio::spawn(async move {
            if let Ok(Err(e)) = task.await {
                tracing::warn!(job = %name, error = %e, "run started from the web failed to start");
            }
        });
    }
    Ok(())
}

/// A time range; default: the last hour.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RangeQuery {
    /// Start, RFC 3339 (default: `to` minus one hour).
    pub from: Option<DateTime<Utc>>,
    /// End, RFC 3339 (default: now).
    pub to: Option<DateTime<Utc>>,
    /// Only this system (series).
    pub system: Option<String>,
    /// Only this method (series).
    pub method: Option<String>,
}

impl RangeQuery {
    pub(crate) fn resolve(&self, now: DateTime<Utc>) -> WebResult<(DateTime<Utc>, DateTime<Utc>)> {
        let to = self.to.unwrap_or(now);
        let from = self.from.unwrap_or(to - Duration::hours(1));
        if from >= to {
            return Err(WebError::BadRequest("`from` must be before `to`".into()));
        }
        if to - from > Duration::days(93) {
            return Err(WebError::BadRequest("a range is at most 93 days".into()));
        }
        Ok((from, to))
    }
}

/// Calls, errors, latency percentiles and cache hit ratio per system and method.
#[utoipa::path(get, path = "/api/v1/monitoring/summary", tag = "monitoring", security(("api_key" = [])),
    params(RangeQuery), responses((status = 200, body = [CallStats])))]
pub async fn monitoring_summary(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> WebResult<Json<Vec<CallStats>>> {
    let (from, to) = q.resolve(state.now())?;
    Ok(Json(rollup::summary(state.db(), from, to).await?))
}

/// Calls, errors and p95 latency over time, of one system or all.
#[utoipa::path(get, path = "/api/v1/monitoring/series", tag = "monitoring", security(("api_key" = [])),
    params(RangeQuery), responses((status = 200, body = [SeriesPoint])))]
pub async fn monitoring_series(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> WebResult<Json<Vec<SeriesPoint>>> {
    let (from, to) = q.resolve(state.now())?;
    Ok(Json(rollup::series(state.db(), from, to, q.system.as_deref(), q.method.as_deref()).await?))
}

/// A value to protect.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenizeRequest {
    /// The kind of data (`msisdn`, `imsi`, `email`, …).
    pub kind: String,
    /// The value in clear.
    pub value: String,
    /// The operator's customer id it belongs to, when known.
    pub customer: Option<String>,
}

/// A protected value.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenizeResponse {
    /// The kind.
    pub kind: String,
    /// The token (or protected form) to store instead of the value.
    pub token: Option<String>,
}

/// Protects one value by its kind's policy (a token for identifiers), so an integration can
/// store and join without holding personal data.
#[utoipa::path(post, path = "/api/v1/privacy/tokens", tag = "privacy", security(("api_key" = [])),
    request_body = TokenizeRequest, responses((status = 200, body = TokenizeResponse), (status = 400, body = crate::error::Problem)))]
pub async fn tokenize(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenizeRequest>,
) -> WebResult<Json<TokenizeResponse>> {
    let kind: PiiKind = req.kind.parse().map_err(WebError::BadRequest)?;
    let subject = req.customer.map_or(Subject::Provisional, Subject::Customer);
    let token = state.vault()?.protect(kind, &req.value, &subject).await?;
    Ok(Json(TokenizeResponse { kind: kind.to_string(), token }))
}

/// A reveal asked for.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevealRequest {
    /// The token or encrypted value.
    pub handle: String,
    /// Why it is needed (recorded in the audit log).
    pub purpose: String,
}

/// A revealed value.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevealResponse {
    /// The kind.
    pub kind: String,
    /// The value in clear.
    pub value: String,
}

/// Reveals the value behind a token for a stated purpose; needs `privacy.reveal.<kind>`;
/// every reveal and refusal is audited.
#[utoipa::path(post, path = "/api/v1/privacy/reveal", tag = "privacy", security(("api_key" = [])),
    request_body = RevealRequest,
    responses((status = 200, body = RevealResponse), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn reveal(
    State(state): State<AppState>,
    caller: CallerExt,
    ApiJson(req): ApiJson<RevealRequest>,
) -> WebResult<Json<RevealResponse>> {
    let principal = caller.permissions().principal(&caller.audit_id());
    let revealed = state.vault()?.reveal(&principal, req.handle.trim(), &req.purpose).await?;
    Ok(Json(RevealResponse { kind: revealed.kind.to_string(), value: revealed.value.expose_secret().to_owned() }))
}

/// Paging of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Entries before this sequence number (the next page).
    pub before: Option<i64>,
    /// How many (at most 500).
    pub limit: Option<u32>,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in the chain.
    pub seq: i64,
    /// When (epoch ms).
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Kind of data.
    pub kind: Option<String>,
    /// Token concerned.
    pub target: Option<String>,
    /// Purpose stated.
    pub purpose: Option<String>,
    /// How it ended.
    pub outcome: String,
}

/// The privacy audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "privacy", security(("api_key" = [])),
    params(AuditQuery), responses((status = 200, body = [AuditEntryView])))]
pub async fn audit(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> WebResult<Json<Vec<AuditEntryView>>> {
    let entries = state.vault()?.audit_log(q.before, q.limit.unwrap_or(50).min(500)).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditEntryView {
                seq: e.seq,
                at_ms: e.at_ms,
                actor: e.actor,
                action: e.action,
                kind: e.kind,
                target: e.target,
                purpose: e.purpose,
                outcome: e.outcome,
            })
            .collect(),
    ))
}

/// The customer a token names.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerMe {
    /// The token's subject.
    pub customer: String,
}

/// The customer app's caller (bearer JWT issued by self-care).
#[utoipa::path(get, path = "/api/v1/customer/me", tag = "customer", security(("customer_jwt" = [])),
    responses((status = 200, body = CustomerMe), (status = 401, body = crate::error::Problem)))]
pub async fn customer_me(caller: CallerExt) -> WebResult<Json<CustomerMe>> {
    match &caller.0 {
        Caller::Customer(c) => Ok(Json(CustomerMe { customer: c.subject.clone() })),
        _ => Err(WebError::Forbidden("customer.self".into())),
    }
}
