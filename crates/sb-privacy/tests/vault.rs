//! The vault on a real store: SQLite, or PostgreSQL (in a schema of its own) when
//! `SWITCHBOARD_TEST_PG` is set.

use std::sync::Arc;

use sb_privacy::{MasterKey, PiiKind, Principal, PrivacyConfig, PrivacyError, Scanner, Subject, Vault};
use sb_store::{Db, PoolOptions, TestDb};
use secrecy::ExposeSecret;

const MASTER: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct Fixture {
    test: TestDb,
    vault: Vault,
}

async fn open_vault(test: &TestDb, config: PrivacyConfig) -> Vault {
    let db = Db::connect_with(test.url(), &PoolOptions { schema: Some("vault".into()), ..Default::default() })
        .await
        .unwrap();
    Vault::open(db, MasterKey::parse(MASTER).unwrap(), config).await.unwrap()
}

async fn fixture() -> Fixture {
    let test = TestDb::new().await;
    let vault = open_vault(&test, PrivacyConfig::default()).await;
    Fixture { test, vault }
}

fn officer() -> Principal {
    Principal::new("olivia", ["privacy.reveal.*", "privacy.erase", "privacy.rotate"])
}

fn customer(id: &str) -> Subject {
    Subject::Customer(id.to_owned())
}

async fn reveal(v: &Vault, token: &str) -> Result<String, PrivacyError> {
    v.reveal(&officer(), token, "customer complaint #42").await.map(|r| r.value.expose_secret().to_owned())
}

#[tokio::test]
async fn the_same_value_gives_the_same_token_and_two_kinds_give_unrelated_tokens() {
    let f = fixture().await;
    let c = customer("C1");
    let a = f.vault.tokenize(PiiKind::Msisdn, "393401234567", &c).await.unwrap();
    let b = f.vault.tokenize(PiiKind::Msisdn, "393401234567", &c).await.unwrap();
    assert_eq!(a, b);
    assert!(a.starts_with("msi_") && a.len() == 30, "{a}");
    let other_kind = f.vault.tokenize(PiiKind::Imsi, "393401234567", &c).await.unwrap();
    assert_ne!(a[4..], other_kind[4..]);
    assert!(other_kind.starts_with("ims_"));

    // Found through the fingerprint, not only the cache: a fresh vault on the same database.
    let again = open_vault(&f.test, PrivacyConfig::default()).await;
    assert_eq!(again.tokenize(PiiKind::Msisdn, "393401234567", &c).await.unwrap(), a);
}

#[tokio::test]
async fn a_batch_tokenises_each_distinct_value_once_in_order() {
    let f = fixture().await;
    let c = customer("C1");
    let first = f.vault.tokenize(PiiKind::Msisdn, "393400000001", &c).await.unwrap();
    let values = ["393400000002", "393400000001", "393400000003", "393400000002"];
    let items: Vec<(&str, &Subject)> = values.iter().map(|v| (*v, &c)).collect();
    let tokens = f.vault.tokenize_batch(PiiKind::Msisdn, &items).await.unwrap();
    assert_eq!(tokens[1], first);
    assert_eq!(tokens[0], tokens[3]);
    assert_ne!(tokens[0], tokens[2]);
    for (t, v) in tokens.iter().zip(values) {
        assert_eq!(reveal(&f.vault, t).await.unwrap(), v);
    }
    // The same tokens as one text and offsets (every value is in the cache now).
    let column = f.vault.tokenize_column(PiiKind::Msisdn, &items).await.unwrap();
    assert_eq!(column.len(), values.len());
    assert!(column.iter().zip(&tokens).all(|(c, t)| c == &**t));
    assert_eq!(column.get(2), &*tokens[2]);
}

#[tokio::test]
async fn reveal_needs_the_permission_and_a_purpose_and_every_refusal_is_audited() {
    let f = fixture().await;
    let token = f.vault.tokenize(PiiKind::Msisdn, "393401234567", &customer("C1")).await.unwrap();

    let marketing = Principal::new("mark", ["privacy.reveal.email"]);
    let e = f.vault.reveal(&marketing, &token, "campaign").await.unwrap_err();
    assert!(matches!(e, PrivacyError::Denied(_)), "{e}");
    let e = f.vault.reveal(&officer(), &token, "   ").await.unwrap_err();
    assert!(matches!(e, PrivacyError::Denied(_)), "{e}");
    assert_eq!(reveal(&f.vault, &token).await.unwrap(), "393401234567");

    let log = f.vault.audit_log(None, 10).await.unwrap();
    let outcomes: Vec<(&str, &str)> = log.iter().rev().map(|e| (e.actor.as_str(), e.outcome.as_str())).collect();
    assert_eq!(outcomes, [("mark", "refused"), ("olivia", "refused"), ("olivia", "revealed")]);
    assert_eq!(log[0].purpose.as_deref(), Some("customer complaint #42"));
    assert_eq!(log[0].target.as_deref(), Some(token.as_ref()));
    assert!(f.vault.verify_audit().await.unwrap().intact);
}

#[tokio::test]
async fn the_audit_chain_detects_an_edited_an_inserted_and_a_deleted_entry() {
    use sb_store::sqlx;
    let f = fixture().await;
    let token = f.vault.tokenize(PiiKind::Msisdn, "393401234567", &customer("C1")).await.unwrap();
    for _ in 0..4 {
        reveal(&f.vault, &token).await.unwrap();
    }
    let db = f.vault.db();
    assert_eq!(f.vault.verify_audit().await.unwrap().entries, 4);

    sqlx::query("UPDATE vault_audit SET purpose = 'curiosity' WHERE seq = 2").execute(db.pool()).await.unwrap();
    let r = f.vault.verify_audit().await.unwrap();
    assert!(!r.intact && r.problem.as_deref().unwrap().contains("entry 2 was altered"), "{r:?}");
    sqlx::query("UPDATE vault_audit SET purpose = 'customer complaint #42' WHERE seq = 2")
        .execute(db.pool())
        .await
        .unwrap();
    assert!(f.vault.verify_audit().await.unwrap().intact);

    // Inserted: a forged entry between 2 and 3 shifts the rest.
    sqlx::query("UPDATE vault_audit SET seq = seq + 100 WHERE seq >= 3").execute(db.pool()).await.unwrap();
    sqlx::query("UPDATE vault_audit SET seq = seq - 99 WHERE seq >= 103").execute(db.pool()).await.unwrap();
    sqlx::query(
        "INSERT INTO vault_audit (seq, at_ms, actor, action, outcome, prev_mac, mac) VALUES (3, 1, 'eve', 'reveal', 'revealed', 'x', 'y')",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let r = f.vault.verify_audit().await.unwrap();
    assert!(!r.intact && r.problem.as_deref().unwrap().contains("entry 3"), "{r:?}");
    sqlx::query("DELETE FROM vault_audit WHERE seq = 3").execute(db.pool()).await.unwrap();
    sqlx::query("UPDATE vault_audit SET seq = seq - 1 WHERE seq >= 4").execute(db.pool()).await.unwrap();
    assert!(f.vault.verify_audit().await.unwrap().intact);

    // Deleted: from the middle, then from the tail.
    sqlx::query("DELETE FROM vault_audit WHERE seq = 3").execute(db.pool()).await.unwrap();
    let r = f.vault.verify_audit().await.unwrap();
    assert!(!r.intact && r.problem.as_deref().unwrap().contains("entry 3 is missing"), "{r:?}");
    sqlx::query("DELETE FROM vault_audit WHERE seq = 4").execute(db.pool()).await.unwrap();
    let r = f.vault.verify_audit().await.unwrap();
    assert!(!r.intact && r.problem.as_deref().unwrap().contains("removed"), "{r:?}");
}

#[tokio::test]
async fn erasure_makes_tokens_unrevealable_unlinkable_and_leaves_no_cleartext() {
    let f = fixture().await;
    let c = customer("C7");
    let msisdn = f.vault.tokenize(PiiKind::Msisdn, "393409876543", &c).await.unwrap();
    let name = f.vault.encrypt(PiiKind::Name, "Maria Bianchi", &c).await.unwrap();
    let tax = f.vault.tokenize(PiiKind::TaxCode, "BNCMRA80A41H501Z", &c).await.unwrap();
    let kept = f.vault.tokenize(PiiKind::Msisdn, "393400000099", &customer("C8")).await.unwrap();
    assert_eq!(reveal(&f.vault, &name).await.unwrap(), "Maria Bianchi");
    let cached = f.vault.cached_tokens();

    let receipt = f.vault.erase_customer(&officer(), "C7").await.unwrap();
    assert_eq!((receipt.subjects_destroyed, receipt.tokens_destroyed, receipt.repeated), (1, 2, false));
    assert!(f.vault.cached_tokens() < cached, "the cache forgot the subject");
    for handle in [msisdn.as_ref(), name.as_str(), tax.as_ref()] {
        assert!(matches!(reveal(&f.vault, handle).await, Err(PrivacyError::UnknownToken)), "{handle}");
    }
    assert_eq!(reveal(&f.vault, &kept).await.unwrap(), "393400000099");

    let fresh = f.vault.tokenize(PiiKind::Msisdn, "393409876543", &c).await.unwrap();
    assert_ne!(fresh, msisdn);

    let again = f.vault.erase_customer(&officer(), "C7").await.unwrap();
    assert!(again.repeated);
    assert_eq!(again.audit_seq, receipt.audit_seq);

    if !f.test.is_postgres() {
        let vault_file = f.test.dir().join("test.db");
        let scan = Scanner::new().scan(&[vault_file]).unwrap();
        assert!(scan.findings.is_empty(), "{:?}", scan.findings);
        let raw = std::fs::read(f.test.dir().join("test.db")).unwrap();
        assert!(!raw.windows(13).any(|w| w == b"Maria Bianchi"));
    }
}

#[tokio::test]
async fn an_erasure_in_one_process_is_seen_by_every_other_at_once() {
    let f = fixture().await;
    // Another process on the same vault (the server beside a command-line erasure).
    let other = open_vault(&f.test, PrivacyConfig::default()).await;
    let c = customer("C77");
    let token = other.tokenize(PiiKind::Msisdn, "393407770000", &c).await.unwrap();
    let name = other.encrypt(PiiKind::Name, "Rosa Neri", &c).await.unwrap();
    assert_eq!(reveal(&other, &name).await.unwrap(), "Rosa Neri", "its key is now held in memory");

    f.vault.erase_customer(&officer(), "C77").await.unwrap();

    assert!(matches!(reveal(&other, &token).await, Err(PrivacyError::UnknownToken)));
    assert!(matches!(reveal(&other, &name).await, Err(PrivacyError::UnknownToken)), "the cached key is gone too");
    let again = other.tokenize(PiiKind::Msisdn, "393407770000", &c).await.unwrap();
    assert_ne!(again, token, "not the erased token from its cache");
}

#[tokio::test]
async fn a_value_another_process_tokenised_meanwhile_gets_that_token_not_a_second_one() {
    let f = fixture().await;
    let other = open_vault(&f.test, PrivacyConfig::default()).await;
    let c = customer("C5");
    // This process holds its directory of lines (loaded on first use) before the other adds one.
    let first = f.vault.tokenize(PiiKind::Msisdn, "393405550001", &c).await.unwrap();
    let made_there = other.tokenize(PiiKind::Msisdn, "393405550002", &c).await.unwrap();
    // Caught up from the vault, not made again: one value, one token, in both processes.
    let seen_here = f.vault.tokenize(PiiKind::Msisdn, "393405550002", &c).await.unwrap();
    assert_eq!(seen_here, made_there);
    assert_eq!(other.tokenize(PiiKind::Msisdn, "393405550001", &c).await.unwrap(), first);
    // Both in one batch, with a new value between them, from a process with no cache.
    let fresh = open_vault(&f.test, PrivacyConfig::default()).await;
    let out = fresh
        .tokenize_batch(PiiKind::Msisdn, &[("393405550002", &c), ("393405550003", &c), ("393405550001", &c)])
        .await
        .unwrap();
    assert_eq!((&out[0], &out[2]), (&made_there, &first));
    assert_eq!(reveal(&f.vault, &out[1]).await.unwrap(), "393405550003");
}

#[tokio::test]
async fn deferred_tokens_are_committed_by_their_caller_or_by_the_next_write() {
    let f = fixture().await;
    let p = Subject::Provisional;
    let mark = f.vault.deferred_mark();
    let values = ["393406660001", "393406660002", "393406660001"];
    let items: Vec<(&str, &Subject)> = values.iter().map(|v| (*v, &p)).collect();
    let first = f.vault.tokenize_column_deferred(PiiKind::Msisdn, &items).await.unwrap();
    assert_eq!(first.get(0), first.get(2));
    // A later call finds them in this process while they wait, and adds its own.
    let later: [(&str, &Subject); 2] = [("393406660002", &p), ("393406660003", &p)];
    let second = f.vault.tokenize_column_deferred(PiiKind::Msisdn, &later).await.unwrap();
    assert_eq!(second.get(0), first.get(1));
    f.vault.commit_deferred(mark).await.unwrap();
    // Committed: another process has the same tokens, and they reveal.
    let other = open_vault(&f.test, PrivacyConfig::default()).await;
    let there = other.tokenize_batch(PiiKind::Msisdn, &[(values[0], &p), ("393406660003", &p)]).await.unwrap();
    assert_eq!((&*there[0], &*there[1]), (first.get(0), second.get(1)));
    assert_eq!(reveal(&other, second.get(1)).await.unwrap(), "393406660003");

    // Without the caller's commit, any other write of the vault commits them first (here a
    // new token made without deferring), so that it never waits for them.
    let waiting = f.vault.tokenize_column_deferred(PiiKind::Imsi, &[("222010000000009", &p)]).await.unwrap();
    f.vault.tokenize_batch(PiiKind::Imsi, &[("222010000000010", &p)]).await.unwrap();
    let there = other.tokenize_batch(PiiKind::Imsi, &[("222010000000009", &p)]).await.unwrap();
    assert_eq!(&*there[0], waiting.get(0));
    assert_eq!(reveal(&other, waiting.get(0)).await.unwrap(), "222010000000009");
}

#[tokio::test]
async fn with_deferred_commits_off_each_call_commits_its_own_tokens() {
    let test = TestDb::new().await;
    let vault = open_vault(&test, PrivacyConfig { deferred_commit_ms: 0, ..PrivacyConfig::default() }).await;
    let p = Subject::Provisional;
    let made = vault.tokenize_column_deferred(PiiKind::Msisdn, &[("393406670001", &p)]).await.unwrap();
    // No commit_deferred, no other write: another process has the row already.
    let other = open_vault(&test, PrivacyConfig::default()).await;
    assert_eq!(reveal(&other, made.get(0)).await.unwrap(), "393406670001");
}

#[tokio::test]
async fn erasure_needs_its_permission() {
    let f = fixture().await;
    let e = f.vault.erase_customer(&Principal::new("mark", ["privacy.reveal.*"]), "C1").await.unwrap_err();
    assert!(matches!(e, PrivacyError::Denied(_)));
}

#[tokio::test]
async fn after_rotation_everything_stays_readable_and_the_old_version_retires_only_when_unused() {
    let f = fixture().await;
    let mut tokens = Vec::new();
    for i in 0..30 {
        let c = customer(&format!("C{i}"));
        tokens.push((f.vault.tokenize(PiiKind::Msisdn, &format!("3934000000{i:02}"), &c).await.unwrap(), i));
    }
    let encrypted = f.vault.encrypt(PiiKind::Email, "a@example.org", &customer("C1")).await.unwrap();

    // A rotation interrupted before rewrapping: version 1 is still in use.
    let e = f.vault.retire(&officer(), 1).await.unwrap_err();
    assert!(e.to_string().contains("current"), "{e}");
    let report = f.vault.rotate(&officer()).await.unwrap();
    assert_eq!(report.current_version, 2);
    assert_eq!(report.subject_keys_rewrapped, 30);
    assert_eq!(report.fingerprints_recomputed, 30);

    for (t, i) in &tokens {
        assert_eq!(reveal(&f.vault, t).await.unwrap(), format!("3934000000{i:02}"));
        let again = f.vault.tokenize(PiiKind::Msisdn, &format!("3934000000{i:02}"), &customer("x")).await.unwrap();
        assert_eq!(&again, t, "the same value keeps its token after rotation");
    }
    assert_eq!(reveal(&f.vault, &encrypted).await.unwrap(), "a@example.org");
    f.vault.retire(&officer(), 1).await.unwrap();
    let fresh = open_vault(&f.test, PrivacyConfig::default()).await;
    assert_eq!(reveal(&fresh, &tokens[0].0).await.unwrap(), "393400000000");
}

#[tokio::test]
async fn retiring_a_version_still_in_use_is_refused() {
    let f = fixture().await;
    f.vault.tokenize(PiiKind::Msisdn, "393401111111", &customer("C1")).await.unwrap();
    f.vault.rotate(&officer()).await.unwrap();
    // New data made under version 2, then a third version added but not yet rewrapped onto.
    f.vault.tokenize(PiiKind::Msisdn, "393402222222", &customer("C2")).await.unwrap();
    sb_store::sqlx::query("UPDATE vault_keyring SET state = 'previous' WHERE version = 2 AND purpose = 'root'")
        .execute(f.vault.db().pool())
        .await
        .unwrap();
    let e = f.vault.retire(&officer(), 2).await.unwrap_err().to_string();
    assert!(e.contains("still wraps") && e.contains("rewrap"), "{e}");
}

#[tokio::test]
async fn other_party_tokens_expire_with_their_month_and_cannot_be_relinked() {
    let f = fixture().await;
    let april = Subject::OtherParty { month: "2026-04".into() };
    let nov = Subject::OtherParty { month: "2026-11".into() };
    let old = f.vault.tokenize(PiiKind::OtherParty, "390612345678", &april).await.unwrap();
    let recent = f.vault.tokenize(PiiKind::OtherParty, "390612345678", &nov).await.unwrap();
    assert_ne!(old, recent, "months are unrelated");
    assert_eq!(f.vault.tokenize(PiiKind::OtherParty, "390612345678", &april).await.unwrap(), old);

    let now = chrono::DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z").unwrap().to_utc();
    let report = f.vault.apply_retention(now).await.unwrap();
    assert_eq!(report.months, ["2026-04"], "April ended more than 6 months ago; May has not");
    assert!(matches!(reveal(&f.vault, &old).await, Err(PrivacyError::UnknownToken)));
    assert_eq!(reveal(&f.vault, &recent).await.unwrap(), "390612345678");
    let relinked = f.vault.tokenize(PiiKind::OtherParty, "390612345678", &april).await.unwrap();
    assert_ne!(relinked, old);
    assert!(f.vault.apply_retention(now).await.unwrap().months.len() <= 1);
}

#[tokio::test]
async fn non_customers_numbers_are_encrypted_under_their_month_and_stored_nowhere() {
    let f = fixture().await;
    let count = || async {
        let n: i64 = sb_store::sqlx::query_scalar("SELECT COUNT(*) FROM vault_tokens")
            .fetch_one(f.vault.db().pool())
            .await
            .unwrap();
        n
    };
    let before = count().await;
    let nov = Subject::OtherParty { month: "2026-11".into() };
    let numbers: Vec<String> = (0..500).map(|i| format!("3906{:08}", i * 7919)).collect();
    let items: Vec<(&str, &Subject)> = numbers.iter().map(|n| (n.as_str(), &nov)).collect();
    let tokens = f.vault.tokenize_batch(PiiKind::OtherParty, &items).await.unwrap();
    assert_eq!(count().await, before, "no row per number");
    assert!(tokens.iter().all(|t| t.starts_with("opa_") && t.contains('-')), "{}", tokens[0]);
    let distinct: std::collections::HashSet<&str> = tokens.iter().map(|t| t.as_ref()).collect();
    assert_eq!(distinct.len(), numbers.len());
    // Stable without the cache (a fresh vault on the same database), and revealable.
    let again = open_vault(&f.test, PrivacyConfig::default()).await;
    assert_eq!(again.tokenize(PiiKind::OtherParty, &numbers[7], &nov).await.unwrap(), tokens[7]);
    assert_eq!(reveal(&again, &tokens[7]).await.unwrap(), numbers[7]);
    // A short code and an alphanumeric sender fit too; a long value is stored as before.
    for v in ["4916", "BANCAXY"] {
        let t = f.vault.tokenize(PiiKind::OtherParty, v, &nov).await.unwrap();
        assert_eq!(reveal(&f.vault, &t).await.unwrap(), v);
    }
    let long = f.vault.tokenize(PiiKind::OtherParty, "SENDER-WITH-A-LONG-NAME", &nov).await.unwrap();
    assert_eq!(count().await, before + 1);
    assert_eq!(reveal(&f.vault, &long).await.unwrap(), "SENDER-WITH-A-LONG-NAME");
    // A forged token of the same shape reveals nothing (its last letter always changes).
    let (head, last) = tokens[0].split_at(tokens[0].len() - 1);
    let forged = format!("{head}{}", if last == "z" { "y" } else { "z" });
    assert!(reveal(&f.vault, &forged).await.is_err());
}

#[tokio::test]
async fn a_customer_called_by_another_keeps_their_line_token() {
    let f = fixture().await;
    let line = f.vault.tokenize(PiiKind::Msisdn, "393401234567", &customer("C1")).await.unwrap();
    let as_other = f
        .vault
        .tokenize(PiiKind::OtherParty, "393401234567", &Subject::OtherParty { month: "2026-11".into() })
        .await
        .unwrap();
    assert_eq!(as_other, line);
    // Found under the line's own cache entry: no second entry for the same token.
    let cached = f.vault.cached_tokens();
    let again = f
        .vault
        .tokenize(PiiKind::OtherParty, "393401234567", &Subject::OtherParty { month: "2026-12".into() })
        .await
        .unwrap();
    assert_eq!((again, f.vault.cached_tokens()), (line, cached));
}

#[tokio::test]
async fn a_provisional_line_is_moved_to_its_customer_and_erased_with_them() {
    let f = fixture().await;
    let t = f.vault.tokenize(PiiKind::Msisdn, "393405550000", &Subject::Provisional).await.unwrap();
    assert!(f.vault.link(PiiKind::Msisdn, "393405550000", "C5").await.unwrap());
    assert_eq!(f.vault.tokenize(PiiKind::Msisdn, "393405550000", &customer("C5")).await.unwrap(), t);
    f.vault.erase_customer(&officer(), "C5").await.unwrap();
    assert!(matches!(reveal(&f.vault, &t).await, Err(PrivacyError::UnknownToken)));
}

#[tokio::test]
async fn a_wrong_master_key_is_refused_as_such() {
    let f = fixture().await;
    let db = f.vault.db().clone();
    let other = MasterKey::parse(&"ff".repeat(32)).unwrap();
    let e = Vault::open(db, other, PrivacyConfig::default()).await.err().unwrap();
    assert!(matches!(e, PrivacyError::WrongMasterKey(_)), "{e}");
}

#[tokio::test]
async fn policies_apply_per_kind() {
    let f = fixture().await;
    let c = customer("C1");
    let v = &f.vault;
    assert!(v.protect(PiiKind::Msisdn, "393401234567", &c).await.unwrap().unwrap().starts_with("msi_"));
    assert!(v.protect(PiiKind::Name, "Mario Rossi", &c).await.unwrap().unwrap().starts_with("enc1.name."));
    assert_eq!(v.protect(PiiKind::BirthDate, "1985-12-10", &c).await.unwrap().as_deref(), Some("1985"));
    assert_eq!(v.protect(PiiKind::FreeText, "call me", &c).await.unwrap(), None);
    let h = v.protect(PiiKind::Ip, "10.0.0.1", &c).await.unwrap().unwrap();
    assert_eq!(Some(h.clone()), v.protect(PiiKind::Ip, "10.0.0.1", &c).await.unwrap());
    assert!(h.starts_with("h.ipa."));

    let fpe = v.fpe_encrypt(PiiKind::Msisdn, "sap_feed", "393401234567").unwrap();
    assert_eq!(fpe.len(), 12);
    assert!(fpe.starts_with("39") && fpe != "393401234567");
    let back = v.fpe_reveal(&officer(), PiiKind::Msisdn, "sap_feed", &fpe, "reconciliation").await.unwrap();
    assert_eq!(back.value.expose_secret(), "393401234567");
}

/// Captures everything logged at every level while `f` runs.
async fn capture_logs<F: std::future::Future<Output = ()>>(f: F) -> String {
    use std::io::Write;
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    f.await;
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}

#[tokio::test]
async fn tokenise_reveal_and_erase_log_no_cleartext_even_at_trace_level() {
    let logs = capture_logs(async {
        let f = fixture().await;
        let c = customer("C9");
        let t = f.vault.tokenize(PiiKind::Msisdn, "393407778888", &c).await.unwrap();
        let n = f.vault.encrypt(PiiKind::Name, "Giulia Verdi", &c).await.unwrap();
        reveal(&f.vault, &t).await.unwrap();
        reveal(&f.vault, &n).await.unwrap();
        let _ = f.vault.reveal(&Principal::new("x", ["none"]), &t, "nosy").await;
        f.vault.erase_customer(&officer(), "C9").await.unwrap();
    })
    .await;
    assert!(!logs.is_empty(), "debug logging was on");
    assert!(!logs.contains("393407778888") && !logs.contains("Giulia"), "{logs}");
    assert!(Scanner::new().detect(&logs).is_empty(), "{logs}");
}

#[path = "vault/files_and_scan.rs"]
mod files_and_scan;
