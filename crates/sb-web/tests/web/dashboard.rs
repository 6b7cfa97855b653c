//! The dashboard shows what ingestion reports: freshness per source and open alerts.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use sb_core::ManualClock;
use sb_web::ingestion::{HourCount, IngestAlert, IngestionOverview, SourceFreshness};
use sb_web::{WebApp, WebConfig, testing};
use tower::ServiceExt;

use crate::common::{get, text, with_cookie};

struct Reported;

#[async_trait::async_trait]
impl IngestionOverview for Reported {
    async fn sources(&self) -> Result<Vec<SourceFreshness>, String> {
        Ok(vec![SourceFreshness { source: "MED01".into(), last_loaded_at: None, pending: 1, late: false }])
    }

    async fn records_per_hour(&self, _since: DateTime<Utc>) -> Result<Vec<HourCount>, String> {
        Ok(Vec::new())
    }

    async fn open_alerts(&self, _limit: i64) -> Result<Vec<IngestAlert>, String> {
        Ok(vec![IngestAlert {
            at: Utc.with_ymd_and_hms(2026, 11, 23, 8, 40, 0).unwrap(),
            source: "MED01".into(),
            kind: "rejected_file".into(),
            message: "MED01_20261123_07_001.cdr rejected: truncated gzip".into(),
        }])
    }
}

#[tokio::test]
async fn the_dashboard_lists_ingestion_s_open_alerts() {
    let db = sb_store::TestDb::new().await;
    let sets = vec![&sb_jobs::MIGRATIONS, &sb_web::MIGRATIONS, &sb_web::monitor::MIGRATIONS];
    db.migrate(&sets).await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()));
    let app = WebApp::builder((*db).clone(), WebConfig::default())
        .ingestion(Arc::new(Reported))
        .clock(clock)
        .migrations(sets)
        .build()
        .unwrap();
    let ops = testing::session(app.state(), "ops", "operations").await;
    let r = app.router().oneshot(with_cookie(get("/admin"), &ops.cookie)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = text(r).await;
    assert!(
        body.contains("rejected_file") && body.contains("MED01_20261123_07_001.cdr rejected: truncated gzip"),
        "{body}"
    );
    assert!(!body.contains("No open alerts."), "{body}");
}
