//! Monitoring: events recorded through the bus end up in the rollups and on the console.

use std::time::Duration;

use axum::http::StatusCode;
use sb_core::Clock;
use sb_core::monitor::{CacheStatus, CallEvent, Monitor, Outcome};
use sb_web::config::{BusKind, MonitorConfig};
use sb_web::monitor::MonitorHub;
use sb_web::testing;

use crate::common::*;

fn events(at: chrono::DateTime<chrono::Utc>) -> Vec<CallEvent> {
    let mut out = Vec::new();
    for i in 0..100u64 {
        out.push(CallEvent {
            system: "sftp:med01".into(),
            method: "fetch".into(),
            at,
            latency_us: if i < 90 { 2_000 } else { 200_000 },
            outcome: if i % 25 == 0 { Outcome::Error } else { Outcome::Ok },
            cache: None,
        });
    }
    for i in 0..10 {
        out.push(CallEvent {
            system: "crm_db".into(),
            method: "query".into(),
            at,
            latency_us: 5_000,
            outcome: Outcome::Ok,
            cache: Some(if i < 8 { CacheStatus::Hit } else { CacheStatus::Miss }),
        });
    }
    out
}

async fn check_console(h: &Harness) {
    let key = testing::api_key(h.app.state(), &["monitoring.view".into()]).await;
    let r = h.call(bearer(get("/api/v1/monitoring/summary"), &key)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let stats: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    let sftp = stats.as_array().unwrap().iter().find(|s| s["system"] == "sftp:med01").expect("sftp row");
    assert_eq!(sftp["calls"], 100);
    assert_eq!(sftp["errors"], 4);
    let p50 = sftp["p50_ms"].as_f64().unwrap();
    let p99 = sftp["p99_ms"].as_f64().unwrap();
    assert!((2.0..2.6).contains(&p50), "p50 {p50}");
    assert!((200.0..260.0).contains(&p99), "p99 {p99}");
    let crm = stats.as_array().unwrap().iter().find(|s| s["system"] == "crm_db").expect("crm row");
    assert!((crm["cache_hit_ratio"].as_f64().unwrap() - 0.8).abs() < 1e-9);

    let r = h.call(bearer(get("/api/v1/monitoring/series?system=sftp:med01"), &key)).await;
    let series: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    let calls: i64 = series.as_array().unwrap().iter().map(|p| p["calls"].as_i64().unwrap()).sum();
    assert_eq!(calls, 100);

    let s = testing::session(h.app.state(), "ops", "operations").await;
    let page = text(h.call(with_cookie(get("/admin/monitoring"), &s.cookie)).await).await;
    assert!(page.contains("sftp:med01") && page.contains("crm_db") && page.contains("80.0 %"), "{page}");
}

#[tokio::test]
async fn events_recorded_in_process_appear_in_the_rollups_and_on_the_console() {
    let h = harness().await;
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let (hub, _tasks) = MonitorHub::start((*h.db).clone(), &MonitorConfig::default(), shutdown).await.unwrap();
    for e in events(h.clock.now() - chrono::Duration::minutes(5)) {
        hub.record(e);
    }
    hub.flush().await;
    check_console(&h).await;
    assert_eq!(hub.dropped(), 0);
}

/// Runs when `SWITCHBOARD_TEST_NATS` names a NATS server with JetStream (scripts/test.sh
/// sets it to the local server); says so and passes otherwise.
#[tokio::test]
async fn events_travel_through_nats_jetstream_to_the_same_rollups() {
    let Some(url) = std::env::var("SWITCHBOARD_TEST_NATS").ok().filter(|u| !u.is_empty()) else {
        eprintln!("SWITCHBOARD_TEST_NATS is not set: the NATS path is not exercised in this run");
        return;
    };
    let h = harness().await;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let config = MonitorConfig {
        bus: BusKind::Nats,
        nats_url: url.clone(),
        nats_stream: format!("SB_TEST_{unique}"),
        nats_subject: format!("sbtest.{unique}.calls"),
        flush_ms: 100,
        ..MonitorConfig::default()
    };
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (hub, tasks) = MonitorHub::start((*h.db).clone(), &config, shutdown).await.unwrap();
    for e in events(h.clock.now() - chrono::Duration::minutes(5)) {
        hub.record(e);
    }
    hub.flush().await;
    // The consumer applies what JetStream holds; wait for it with a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 =
            sb_store::sqlx::query_scalar("SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) FROM monitor_rollups")
                .fetch_one(h.db.pool())
                .await
                .unwrap();
        if n == 110 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {n} of 110 events arrived through NATS");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check_console(&h).await;
    stop.send(true).unwrap();
    tasks.join().await;
    let client = async_nats::connect(url).await.unwrap();
    let _ = async_nats::jetstream::new(client).delete_stream(&config.nats_stream).await;
}

#[tokio::test]
async fn a_redelivered_batch_is_not_counted_twice() {
    let h = harness().await;
    let mut batch = sb_web::monitor::rollup::Batch::default();
    for e in events(h.clock.now()) {
        batch.add(&e);
    }
    assert_eq!(batch.write(&h.db, Some(("c", 7))).await.unwrap(), 110);
    for e in events(h.clock.now()) {
        batch.add(&e);
    }
    assert_eq!(batch.write(&h.db, Some(("c", 7))).await.unwrap(), 0);
    let n: i64 = sb_store::sqlx::query_scalar("SELECT CAST(SUM(calls) AS BIGINT) FROM monitor_rollups")
        .fetch_one(h.db.pool())
        .await
        .unwrap();
    assert_eq!(n, 110);
}
