//! The route-permission walk and the shape of every answer.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode, header};
use sb_web::rbac::{all_permissions, grants};
use sb_web::routes::{Access, Surface};
use sb_web::{WebConfig, testing};

use crate::common::*;

fn role_name(prefix: &str, permission: &str) -> String {
    format!("{prefix}_{}", permission.replace(['.', '*'], "_"))
}

fn concrete(path: &str) -> String {
    path.replace("{name}", "housekeeping").replace("{id}", "abcdef123456").replace("{file}", "app.css")
}

#[tokio::test]
async fn every_route_refuses_anonymous_and_under_privileged_callers_and_admits_the_permitted() {
    // For each permission a route needs: a role holding everything that does not grant it,
    // and a role holding exactly it.
    let routes_needing: Vec<&'static str> = {
        let h = harness().await;
        let mut p: Vec<_> = h
            .app
            .routes()
            .iter()
            .filter_map(|r| match r.access {
                Access::Permission(p) => Some(p),
                _ => None,
            })
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let mut config = WebConfig::default();
    let catalog = all_permissions();
    for p in &routes_needing {
        config.auth.roles.insert(role_name("all_but", p), catalog.iter().filter(|h| !grants(h, p)).cloned().collect());
        config.auth.roles.insert(role_name("only", p), vec![(*p).to_owned()]);
    }
    config.auth.roles.insert("nothing".into(), vec![]);
    let h = harness_with(config).await;
    let state = h.app.state().clone();
    let mut sessions = BTreeMap::new();
    let mut keys = BTreeMap::new();
    for p in &routes_needing {
        for prefix in ["all_but", "only"] {
            let role = role_name(prefix, p);
            sessions.insert(role.clone(), testing::session(&state, &role.replace('_', "-"), &role).await);
            let perms: Vec<String> = state.roles().permissions(&role).iter().map(str::to_owned).collect();
            keys.insert(role.clone(), testing::api_key(&state, &perms).await);
        }
    }
    let nobody = testing::session(&state, "nobody", "nothing").await;

    let mut checked = 0;
    for route in h.app.routes() {
        let path = concrete(route.path);
        let request = |extra: Option<&str>| {
            let mut req = match (route.method.clone(), route.surface) {
                (Method::GET, _) => get(&path),
                (_, Surface::Admin) => form(&path, &format!("_csrf={}", extra.unwrap_or(""))),
                (m, Surface::Api) => {
                    let mut r = json(m.as_str(), &path, "{}");
                    if let Some(token) = extra {
                        r.headers_mut().insert("x-csrf-token", token.parse().unwrap());
                    }
                    r
                }
            };
            *req.method_mut() = route.method.clone();
            req
        };
        let what = format!("{} {}", route.method, route.path);
        match route.access {
            Access::Public => continue,
            Access::SignedIn | Access::Permission(_) => {
                let r = h.call(request(None)).await;
                match route.surface {
                    Surface::Admin => {
                        assert_eq!(r.status(), StatusCode::SEE_OTHER, "anonymous {what}");
                        assert!(location(&r).starts_with("/admin/sign-in"), "anonymous {what}: {}", location(&r));
                    }
                    Surface::Api => {
                        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "anonymous {what}");
                        assert_eq!(content_type(&r), "application/problem+json", "{what}");
                    }
                }
            }
        }
        let Access::Permission(p) = route.access else {
            // Signed-in routes admit any user, even one whose role holds nothing (a user of
            // their own: one of these routes signs out).
            let own = testing::session(&state, &format!("nobody-{checked}"), "nothing").await;
            let r = h.call(with_cookie(request(Some(&own.csrf)), &own.cookie)).await;
            assert!(!matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), "{what}: {}", r.status());
            checked += 1;
            continue;
        };
        let under = &sessions[&role_name("all_but", p)];
        let r = h.call(with_cookie(request(Some(&under.csrf)), &under.cookie)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what} with every permission but {p}");
        let r = h.call(bearer(request(None), &keys[&role_name("all_but", p)])).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what} with an API key holding every permission but {p}");
        let r = h.call(with_cookie(request(Some(&nobody.csrf)), &nobody.cookie)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what} with a role holding nothing");
        if p != "customer.self" {
            let only = &sessions[&role_name("only", p)];
            let r = h.call(with_cookie(request(Some(&only.csrf)), &only.cookie)).await;
            let refused = matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                || (r.status() == StatusCode::SEE_OTHER && location(&r).starts_with("/admin/sign-in"));
            assert!(!refused, "{what} refused a user holding exactly {p}: {}", r.status());
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} guarded routes");
}

#[tokio::test]
async fn the_public_routes_are_only_health_metrics_assets_docs_and_sign_in() {
    let h = harness().await;
    let public: Vec<String> = h
        .app
        .routes()
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        public,
        [
            "GET /healthz",
            "GET /readyz",
            "GET /metrics",
            "GET /",
            "GET /assets/{file}",
            "GET /api/openapi.json",
            "GET /api/docs",
            "GET /admin/sign-in",
            "POST /admin/sign-in"
        ]
    );
}

#[tokio::test]
async fn every_api_route_is_in_the_openapi_document_and_it_is_version_3_1() {
    let h = harness().await;
    let r = h.call(get("/api/openapi.json")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    for route in h.app.routes().iter().filter(|r| r.path.starts_with("/api/v1/")) {
        let method = route.method.as_str().to_ascii_lowercase();
        assert!(doc["paths"][route.path][&method].is_object(), "{} {} is not documented", route.method, route.path);
    }
    let viewer = h.call(get("/api/docs")).await;
    let html = text(viewer).await;
    assert!(html.contains("/assets/rapidoc-min.js") && !html.contains("http://") && !html.contains("https://"));
}

#[tokio::test]
async fn errors_are_problem_documents_with_a_stable_type_and_no_internals() {
    let h = harness().await;
    let r = h.call(get("/api/v1/nope")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(content_type(&r), "application/problem+json");
    let p: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    assert_eq!(p["type"], "urn:switchboard:problem:not-found");

    let r = h.call(json("DELETE", "/healthz", "")).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(content_type(&r), "application/problem+json");

    let key = testing::api_key(h.app.state(), &["privacy.tokenize".into()]).await;
    let r = h.call(bearer(json("POST", "/api/v1/privacy/tokens", "{not json"), &key)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let p: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
    assert_eq!(p["type"], "urn:switchboard:problem:bad-request");

    // The back office shows the same errors as a page.
    let s = testing::session(h.app.state(), "ops", "operations").await;
    let r = h.call(with_cookie(get("/admin/users"), &s.cookie)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(content_type(&r).starts_with("text/html"));
    assert!(text(r).await.contains("Your role does not allow this page"));

    // The vault's database gone: a 503 that names no database, URL or SQL.
    h.vault.db().close().await;
    let r = h
        .call(bearer(json("POST", "/api/v1/privacy/tokens", r#"{"kind":"msisdn","value":"393401234567"}"#), &key))
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = text(r).await;
    let p: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(p["type"], "urn:switchboard:problem:unavailable");
    for leak in ["sqlite", "postgres", "pool", "SELECT", "393401234567"] {
        assert!(!body.contains(leak), "{body}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_a_request_id() {
    let h = harness().await;
    for path in ["/healthz", "/admin/sign-in", "/api/v1/jobs", "/assets/app.js", "/nope"] {
        let r = h.call(get(path)).await;
        let hd = r.headers();
        let csp = hd.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
        assert!(csp.contains("script-src 'self';") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval") && !csp.contains("script-src 'self' 'unsafe-inline'"));
        assert_eq!(hd.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff", "{path}");
        assert_eq!(hd.get(header::REFERRER_POLICY).unwrap(), "no-referrer", "{path}");
        assert!(hd.get("x-request-id").is_some(), "{path}");
    }
    let page = text(h.call(get("/admin/sign-in")).await).await;
    assert!(!page.contains("<script>") && !page.contains(" on"), "inline script in the sign-in page");
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let h = harness().await;
    assert_eq!(h.call(get("/healthz")).await.status(), StatusCode::OK);
    let r = h.call(get("/readyz")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("ready"));
    let r = h.call(get("/metrics")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("switchboard_http_requests_total"));
}

#[tokio::test]
async fn readiness_fails_while_migrations_are_pending() {
    let db = sb_store::TestDb::new().await;
    db.migrate(&[&sb_web::MIGRATIONS]).await.unwrap();
    let app = sb_web::WebApp::builder((*db).clone(), WebConfig::default()).build().unwrap();
    let r = tower::ServiceExt::oneshot(app.router(), get("/readyz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let mut config = WebConfig::default();
    config.server.body_limit_bytes = 1024;
    let h = harness_with(config).await;
    let key = testing::api_key(h.app.state(), &["privacy.tokenize".into()]).await;
    let big = format!(r#"{{"kind":"msisdn","value":"{}"}}"#, "9".repeat(4096));
    let r = h.call(bearer(json("POST", "/api/v1/privacy/tokens", &big), &key)).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(content_type(&r), "application/problem+json");
    assert!(text(r).await.contains("urn:switchboard:problem:payload-too-large"));
}
