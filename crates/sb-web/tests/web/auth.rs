//! Sign-in, sessions, CSRF, lockout, passwords, API keys and customer tokens.

use axum::http::StatusCode;
use chrono::Duration;
use sb_core::Clock;
use sb_web::auth::users;
use sb_web::config::JwtAlgorithm;
use sb_web::{WebConfig, testing};

use crate::common::*;

/// Opens the sign-in page and returns its form token and the cookie carrying it.
async fn sign_in_form(h: &Harness) -> (String, String) {
    let r = h.call(get("/admin/sign-in")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = set_cookie(&r, "sb_signin_csrf").expect("form cookie");
    (token.clone(), format!("sb_signin_csrf={token}"))
}

async fn sign_in(h: &Harness, name: &str, password: &str) -> axum::http::Response<axum::body::Body> {
    let (token, cookie) = sign_in_form(h).await;
    let req = form("/admin/sign-in", &format!("_csrf={token}&name={name}&password={password}&next=%2Fadmin%2Fjobs"));
    h.call(with_cookie(req, &cookie.parse().unwrap())).await
}

#[tokio::test]
async fn a_new_user_signs_in_with_the_one_time_password_and_must_change_it_first() {
    let h = harness().await;
    let (_, one_time) = users::add(&h.db, h.app.state().roles(), "ann", "operations", h.clock.now()).await.unwrap();
    let r = sign_in(&h, "ann", &one_time).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin/account/password");
    let raw = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    let session_cookie = raw.iter().find(|c| c.starts_with("sb_session=")).unwrap();
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"), "{session_cookie}");
    assert!(!session_cookie.contains("Secure"), "no TLS here: {session_cookie}");
    let cookie = format!("sb_session={}", set_cookie(&r, "sb_session").unwrap()).parse().unwrap();

    // Every page but the password page sends them back to it.
    let r = h.call(with_cookie(get("/admin/jobs"), &cookie)).await;
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/admin/account/password".to_owned()));

    let page = text(h.call(with_cookie(get("/admin/account/password"), &cookie)).await).await;
    let csrf = page.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    // A bad new password is refused with the reason next to the field.
    let r = h
        .call(with_cookie(
            form("/admin/account/password", &format!("_csrf={csrf}&current={one_time}&new=short&confirm=short")),
            &cookie,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text(r).await.contains("class=\"field-error\">The new password needs at least 12 characters"));
    let body = format!("_csrf={csrf}&current={one_time}&new=a+much+better+password&confirm=a+much+better+password");
    let r = h.call(with_cookie(form("/admin/account/password", &body), &cookie)).await;
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/admin".to_owned()));
    assert_eq!(h.call(with_cookie(get("/admin/jobs"), &cookie)).await.status(), StatusCode::OK);

    // The old password no longer works; the new one does.
    assert_eq!(sign_in(&h, "ann", &one_time).await.status(), StatusCode::UNAUTHORIZED);
    let r = sign_in(&h, "ann", "a+much+better+password").await;
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/admin/jobs".to_owned()));
}

#[tokio::test]
async fn a_form_post_without_a_valid_csrf_token_is_refused() {
    let h = harness().await;
    let s = testing::session(h.app.state(), "ops", "operations").await;
    for body in ["", "_csrf=", "_csrf=0000"] {
        let r = h.call(with_cookie(form("/admin/jobs/housekeeping/run", body), &s.cookie)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "body {body:?}");
        assert!(text(r).await.contains("This form has expired"));
    }
    let r = h.call(with_cookie(form("/admin/jobs/housekeeping/run", &format!("_csrf={}", s.csrf)), &s.cookie)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The sign-in form has its own token, tied to a cookie.
    let r = h.call(form("/admin/sign-in", "_csrf=abc&name=ops&password=x")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_account_is_locked_after_repeated_failed_sign_ins_even_for_the_right_password() {
    let mut config = WebConfig::default();
    config.auth.lockout_after = 3;
    let h = harness_with(config).await;
    let (_, one_time) = users::add(&h.db, h.app.state().roles(), "bob", "auditor", h.clock.now()).await.unwrap();
    for _ in 0..2 {
        assert_eq!(sign_in(&h, "bob", "wrong").await.status(), StatusCode::UNAUTHORIZED);
    }
    let r = sign_in(&h, "bob", "wrong").await;
    assert_eq!(r.status(), StatusCode::LOCKED);
    assert!(text(r).await.contains("locked after too many failed sign-ins"));
    assert_eq!(sign_in(&h, "bob", &one_time).await.status(), StatusCode::LOCKED);
    // The lock ends by itself.
    h.clock.advance(Duration::minutes(16));
    assert_eq!(sign_in(&h, "bob", &one_time).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_address() {
    let mut config = WebConfig::default();
    config.auth.sign_in_per_minute = 2;
    let h = harness_with(config).await;
    assert_eq!(sign_in(&h, "nobody", "x").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(&h, "nobody", "x").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(&h, "nobody", "x").await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_expired_session_is_sent_to_sign_in() {
    let h = harness().await;
    let s = testing::session(h.app.state(), "ops", "operations").await;
    assert_eq!(h.call(with_cookie(get("/admin/jobs"), &s.cookie)).await.status(), StatusCode::OK);
    // Used within the idle limit it lives on …
    h.clock.advance(Duration::minutes(29));
    assert_eq!(h.call(with_cookie(get("/admin/jobs"), &s.cookie)).await.status(), StatusCode::OK);
    // … unused for longer, it ends.
    h.clock.advance(Duration::minutes(31));
    let r = h.call(with_cookie(get("/admin/jobs"), &s.cookie)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin/sign-in?next=/admin/jobs");
    assert_eq!(h.call(with_cookie(get("/api/v1/jobs"), &s.cookie)).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_session_ends_at_its_maximum_age_however_busy() {
    let h = harness().await;
    let s = testing::session(h.app.state(), "ops", "operations").await;
    for _ in 0..(12 * 60 / 20) {
        h.clock.advance(Duration::minutes(20));
        let _ = h.call(with_cookie(get("/admin/jobs"), &s.cookie)).await;
    }
    h.clock.advance(Duration::minutes(20));
    assert_eq!(h.call(with_cookie(get("/admin/jobs"), &s.cookie)).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn signing_out_and_disabling_end_sessions_at_once() {
    let h = harness().await;
    let admin = testing::session(h.app.state(), "root", "admin").await;
    let ops = testing::session(h.app.state(), "ops", "operations").await;
    let r =
        h.call(with_cookie(form("/admin/users/ops/disable", &format!("_csrf={}", admin.csrf)), &admin.cookie)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(h.call(with_cookie(get("/admin/jobs"), &ops.cookie)).await.status(), StatusCode::SEE_OTHER);
    let r = h.call(with_cookie(form("/admin/sign-out", &format!("_csrf={}", admin.csrf)), &admin.cookie)).await;
    assert!(set_cookie(&r, "sb_session").is_some_and(|v| v.is_empty()));
    assert_eq!(h.call(with_cookie(get("/admin"), &admin.cookie)).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_api_key_works_within_its_scope_until_revoked_or_expired() {
    let h = harness().await;
    let admin = testing::session(h.app.state(), "root", "admin").await;
    let body = format!("_csrf={}&name=billing&permission=jobs.view&expires_days=1", admin.csrf);
    let r = h.call(with_cookie(form("/admin/api-keys", &body), &admin.cookie)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let page = text(r).await;
    let key = page.split("id=\"new-api-key\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(key.starts_with("sbk_"));
    // Shown once: the list does not show it again.
    assert!(!text(h.call(with_cookie(get("/admin/api-keys"), &admin.cookie)).await).await.contains(&key));

    assert_eq!(h.call(bearer(get("/api/v1/jobs"), &key)).await.status(), StatusCode::OK);
    assert_eq!(h.call(bearer(get("/api/v1/audit"), &key)).await.status(), StatusCode::FORBIDDEN);
    let mut forged = key.clone();
    forged.pop();
    forged.push(if key.ends_with('0') { '1' } else { '0' });
    assert_eq!(h.call(bearer(get("/api/v1/jobs"), &forged)).await.status(), StatusCode::UNAUTHORIZED);

    let id = key.strip_prefix("sbk_").unwrap().split('_').next().unwrap();
    let r = h
        .call(with_cookie(
            form(&format!("/admin/api-keys/{id}/revoke"), &format!("_csrf={}", admin.csrf)),
            &admin.cookie,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = h.call(bearer(get("/api/v1/jobs"), &key)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(content_type(&r), "application/problem+json");

    let short = sb_web::auth::apikeys::create(
        &h.db,
        "short",
        &["jobs.view".into()],
        Some(h.clock.now() + Duration::hours(1)),
        "t",
        h.clock.now(),
    )
    .await
    .unwrap()
    .1;
    assert_eq!(h.call(bearer(get("/api/v1/jobs"), &short)).await.status(), StatusCode::OK);
    h.clock.advance(Duration::hours(2));
    assert_eq!(h.call(bearer(get("/api/v1/jobs"), &short)).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_customer_token_is_verified_and_grants_only_the_customer_routes() {
    let secret = "a shared secret of at least thirty-two bytes";
    let mut config = WebConfig::default();
    config.auth.jwt.algorithm = JwtAlgorithm::Hs256;
    config.auth.jwt.hs256_secret = Some(secret.to_owned().into());
    config.auth.jwt.issuer = Some("selfcare".into());
    let h = harness_with(config).await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let token = |iss: &str, key: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &serde_json::json!({ "sub": "C0042", "exp": exp, "iss": iss }),
            &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    };
    let r = h.call(bearer(get("/api/v1/customer/me"), &token("selfcare", secret))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("C0042"));
    assert_eq!(h.call(bearer(get("/api/v1/jobs"), &token("selfcare", secret))).await.status(), StatusCode::FORBIDDEN);
    let wrong_key = token("selfcare", "another secret of at least thirty-two bytes!");
    assert_eq!(h.call(bearer(get("/api/v1/customer/me"), &wrong_key)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.call(bearer(get("/api/v1/customer/me"), &token("someone-else", secret))).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_reveal_needs_a_purpose_and_the_kind_s_permission_and_is_audited() {
    let h = harness().await;
    let integration = testing::api_key(h.app.state(), &["privacy.tokenize".into()]).await;
    let r = h
        .call(bearer(
            json("POST", "/api/v1/privacy/tokens", r#"{"kind":"msisdn","value":"393401234567","customer":"C1"}"#),
            &integration,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token =
        serde_json::from_str::<serde_json::Value>(&text(r).await).unwrap()["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("msi_"));

    let officer = testing::session(h.app.state(), "pat", "privacy_officer").await;
    let r = h
        .call(with_cookie(
            form("/admin/privacy/reveal", &format!("_csrf={}&handle={token}&purpose=", officer.csrf)),
            &officer.cookie,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text(r).await.contains("State why you need the value"));
    let body = format!("_csrf={}&handle={token}&purpose=ticket+4711+customer+dispute", officer.csrf);
    let r = h.call(with_cookie(form("/admin/privacy/reveal", &body), &officer.cookie)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    assert!(text(r).await.contains("393401234567"));

    let audit = text(h.call(with_cookie(get("/admin/audit"), &officer.cookie)).await).await;
    assert!(audit.contains("Chain intact"), "{audit}");
    assert!(audit.contains("ticket 4711 customer dispute") && audit.contains("user:pat") && audit.contains(&token));
    assert!(!audit.contains("393401234567"));
}
