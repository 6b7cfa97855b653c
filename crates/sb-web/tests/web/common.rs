//! Shared set-up of the web tests: an app over a fresh database (SQLite, or PostgreSQL when
//! SWITCHBOARD_TEST_PG is set) with the vault, the scheduler and a clock the test moves.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use sb_core::{Clock, ManualClock};
use sb_jobs::{Housekeeping, JobSpec, JobsConfig, Scheduler};
use sb_privacy::{MasterKey, PrivacyConfig, Vault};
use sb_store::TestDb;
use sb_web::{WebApp, WebConfig};
use tower::ServiceExt;

pub struct Harness {
    pub db: TestDb,
    pub app: WebApp,
    pub clock: Arc<ManualClock>,
    pub vault: Arc<Vault>,
}

pub async fn harness() -> Harness {
    harness_with(WebConfig::default()).await
}

pub async fn harness_with(config: WebConfig) -> Harness {
    let db = TestDb::new().await;
    db.migrate(&[&sb_jobs::MIGRATIONS, &sb_web::MIGRATIONS, &sb_web::monitor::MIGRATIONS]).await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()));
    let master = MasterKey::parse(&"ab".repeat(32)).unwrap();
    let vault = Arc::new(Vault::open((*db).clone(), master, PrivacyConfig::default()).await.unwrap());
    let mut scheduler = Scheduler::new((*db).clone(), &JobsConfig::default()).unwrap().with_clock(clock.clone());
    scheduler
        .register(
            JobSpec::new(Housekeeping::NAME, Housekeeping::SCHEDULE, "Prunes old job history").unwrap(),
            Arc::new(Housekeeping::new((*db).clone(), clock.clone() as Arc<dyn Clock>, 90)),
        )
        .unwrap();
    let app = WebApp::builder((*db).clone(), config)
        .vault(vault.clone())
        .scheduler(Arc::new(scheduler))
        .clock(clock.clone())
        .migrations(vec![&sb_jobs::MIGRATIONS, &sb_web::MIGRATIONS, &sb_web::monitor::MIGRATIONS])
        .build()
        .unwrap();
    Harness { db, app, clock, vault }
}

impl Harness {
    pub async fn call(&self, req: Request<Body>) -> Response<Body> {
        self.app.router().oneshot(req).await.unwrap()
    }
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

pub fn with_cookie(mut req: Request<Body>, cookie: &HeaderValue) -> Request<Body> {
    req.headers_mut().append(header::COOKIE, cookie.clone());
    req
}

pub fn bearer(mut req: Request<Body>, token: &str) -> Request<Body> {
    req.headers_mut().insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    req
}

pub fn form(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

pub fn json(method: &str, path: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

pub async fn text(r: Response<Body>) -> String {
    String::from_utf8_lossy(&r.into_body().collect().await.unwrap().to_bytes()).into_owned()
}

pub fn location(r: &Response<Body>) -> String {
    r.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

pub fn content_type(r: &Response<Body>) -> String {
    r.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// The value a `Set-Cookie` header of `r` gives cookie `name`.
pub fn set_cookie(r: &Response<Body>, name: &str) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next()?.trim().strip_prefix(&format!("{name}=")).map(str::to_owned))
}
