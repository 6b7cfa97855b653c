//! The binary as users run it: exit codes, output, files written. Each test gets its own
//! working folder and its own store (SQLite, or PostgreSQL when `SWITCHBOARD_TEST_PG` is set).

use std::path::Path;
use std::process::{Command, Output};

use sb_store::{TestDb, sqlx};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn switchboard(dir: &Path, store_url: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.current_dir(dir).args(args).env("SWITCHBOARD__STORE__URL", store_url).env_remove("RUST_LOG");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD__") && k != "SWITCHBOARD__STORE__URL") {
        cmd.env_remove(k);
    }
    let Output { status, stdout, stderr } = cmd.output().expect("run switchboard");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

#[tokio::test]
async fn init_writes_a_commented_config_and_a_ready_store_and_keeps_them_on_a_second_run() {
    let db = TestDb::new().await;
    let dir = db.dir();
    let r = switchboard(dir, db.url(), &["init"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config = std::fs::read_to_string(dir.join("switchboard.toml")).unwrap();
    assert!(config.contains("# Switchboard configuration.") && config.contains("[jobs]"));
    assert!(dir.join("data").is_dir());

    std::fs::write(dir.join("switchboard.toml"), "# edited by the operator\n").unwrap();
    let r = switchboard(dir, db.url(), &["init"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("kept the existing"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(dir.join("switchboard.toml")).unwrap(), "# edited by the operator\n");

    let r = switchboard(dir, db.url(), &["db", "status", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let status: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(status.as_array().unwrap().iter().all(|m| m["state"]["applied"].is_object()), "{status}");
}

#[tokio::test]
async fn a_bad_config_value_exits_2_naming_the_key() {
    let db = TestDb::new().await;
    std::fs::write(db.dir().join("switchboard.toml"), "[store]\nmax_connections = \"lots\"\n").unwrap();
    let r = switchboard(db.dir(), db.url(), &["jobs", "list"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("`store.max_connections`") && r.stderr.contains("\"lots\""), "{}", r.stderr);
}

#[tokio::test]
async fn a_usage_error_exits_2() {
    let db = TestDb::new().await;
    assert_eq!(switchboard(db.dir(), db.url(), &["jobs", "frobnicate"]).code, 2);
    assert_eq!(switchboard(db.dir(), db.url(), &["jobs", "run", "no-such-job"]).code, 2);
}

#[tokio::test]
async fn a_job_runs_by_hand_and_appears_in_the_history() {
    let db = TestDb::new().await;
    let r = switchboard(db.dir(), db.url(), &["jobs", "list", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let jobs: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(jobs.as_array().unwrap().iter().any(|j| j["name"] == "housekeeping"));

    let r = switchboard(db.dir(), db.url(), &["jobs", "run", "housekeeping"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("succeeded"), "{}", r.stdout);

    let r = switchboard(db.dir(), db.url(), &["jobs", "history", "--json"]);
    let runs: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["job"], "housekeeping");
    assert_eq!(runs[0]["trigger"], "manual");
}

#[tokio::test]
async fn logs_are_json_lines_on_stderr_when_not_a_terminal() {
    let db = TestDb::new().await;
    let r = switchboard(db.dir(), db.url(), &["jobs", "run", "housekeeping"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn config_show_masks_secrets() {
    let db = TestDb::new().await;
    let r = switchboard(db.dir(), "postgres://sb:topsecret@db.example/sb", &["config", "show"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("topsecret") && r.stdout.contains("********"), "{}", r.stdout);
    assert!(r.stdout.contains("timezone = \"Europe/Rome\""), "{}", r.stdout);
}

#[tokio::test]
async fn the_demo_generates_an_operator_runs_every_job_and_prints_a_summary() {
    let db = TestDb::new().await;
    let r = switchboard(db.dir(), db.url(), &["demo", "--dir", "d", "--customers", "40", "--hours", "2", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(s["operator"]["customers"], 40);
    assert!(s["operator"]["records"].as_u64().unwrap() > 0);
    assert!(s["jobs"].as_array().unwrap().iter().all(|j| j["status"] == "succeeded"), "{s}");
    assert!(db.dir().join("d/operator/manifest.json").is_file());
    let master = s["jobs"].as_array().unwrap().iter().find(|j| j["job"] == "ingest.master").expect("master-data job");
    assert_eq!(master["counters"]["customers_read"], 40, "{master}");
    // Its calls to the operator's database reached the monitoring console's rollups.
    let calls: Vec<(String, i64)> = sqlx::query_as(
        "SELECT method, CAST(SUM(calls) AS BIGINT) FROM monitor_rollups WHERE system = 'master_db' GROUP BY method ORDER BY method",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(
        calls,
        [("connect", 1), ("read_customers", 1), ("read_lines", 1), ("read_plans", 1)]
            .map(|(m, n)| (m.to_owned(), n))
            .to_vec()
    );
    // The main job can be run again: same data, same outcome.
    let again = switchboard(db.dir(), db.url(), &["demo", "--dir", "d", "--customers", "40", "--hours", "2", "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

#[tokio::test]
async fn init_creates_a_private_master_key_and_a_files_identity() {
    let db = TestDb::new().await;
    let r = switchboard(db.dir(), db.url(), &["init", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["master_key_created"], true);
    let key = db.dir().join("data/master.key");
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(v["files_recipient"].as_str().unwrap().starts_with("age1"));
    assert!(!r.stdout.contains(std::fs::read_to_string(&key).unwrap().trim()), "the key is never printed");
}

#[tokio::test]
async fn privacy_scan_exits_1_on_cleartext_and_0_on_clean_files() {
    let db = TestDb::new().await;
    std::fs::create_dir_all(db.dir().join("dirty")).unwrap();
    std::fs::write(db.dir().join("dirty/x.csv"), "a;b\n1;393401234567\n").unwrap();
    std::fs::create_dir_all(db.dir().join("clean")).unwrap();
    std::fs::write(db.dir().join("clean/y.csv"), "a;b\n1;msi_0123456789abcdefghjkmnpqrs\n").unwrap();
    let r = switchboard(db.dir(), db.url(), &["privacy", "scan", "dirty"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("x.csv") && r.stdout.contains("msisdn") && !r.stdout.contains("393401234567"));
    assert_eq!(switchboard(db.dir(), db.url(), &["privacy", "scan", "clean"]).code, 0);
}

#[tokio::test]
async fn files_round_trip_through_privacy_encrypt_and_decrypt() {
    let db = TestDb::new().await;
    std::fs::write(db.dir().join("q.csv"), "line;393401234567\n").unwrap();
    let r = switchboard(db.dir(), db.url(), &["privacy", "encrypt-file", "q.csv", "q.csv.age"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = switchboard(db.dir(), db.url(), &["privacy", "decrypt-file", "q.csv.age", "back.csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(db.dir().join("back.csv")).unwrap(), b"line;393401234567\n");
}

#[tokio::test]
async fn erasure_from_the_cli_is_repeatable_and_audited() {
    let db = TestDb::new().await;
    let r = switchboard(db.dir(), db.url(), &["privacy", "erase", "--customer", "C42"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("erased customer C42"), "{}", r.stdout);
    let r = switchboard(db.dir(), db.url(), &["privacy", "erase", "--customer", "C42"]);
    assert!(r.stdout.starts_with("already erased"), "{}", r.stdout);
    let r = switchboard(db.dir(), db.url(), &["privacy", "audit", "verify"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("intact: 1 entries"), "{}", r.stdout);
    let r =
        switchboard(db.dir(), db.url(), &["privacy", "reveal", "msi_0123456789abcdefghjkmnpqrs", "--purpose", "test"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("unknown token"), "{}", r.stderr);
}

/// A demo operator's files and a config whose source `MED01` reads them.
fn operator_with_source(dir: &Path, store: &str) {
    let r = switchboard(
        dir,
        store,
        &[
            "demo",
            "generate",
            "--seed",
            "9",
            "--customers",
            "50",
            "--hours",
            "3",
            "--out",
            "op",
            "--malformed-rate",
            "0.03",
            "--duplicate-record-rate",
            "0.03",
            "--duplicate-file-rate",
            "0.34",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::write(
        dir.join("switchboard.toml"),
        "[ingest.sources.MED01]\nkind = \"folder\"\npath = \"op/mediation\"\npattern = \"MED01_*.cdr*\"\nmin_age_s = 0\nexpected_deadline_min = 0\n",
    )
    .unwrap();
}

/// Everything a run leaves that a user can see: lake totals, the journal, consumer counters.
async fn observable(dir: &Path, db: &TestDb) -> String {
    let lake = switchboard(
        dir,
        db.url(),
        &[
            "sql",
            "SELECT record_type, COUNT(*) AS n, SUM(charge_eur) AS eur FROM usage GROUP BY 1 UNION ALL SELECT record_type, COUNT(*), SUM(amount_eur) FROM topups GROUP BY 1 ORDER BY 1",
            "--format",
            "csv",
        ],
    );
    assert_eq!(lake.code, 0, "{}", lake.stderr);
    let files = switchboard(dir, db.url(), &["ingest", "files", "--json"]);
    let files: serde_json::Value = serde_json::from_str(&files.stdout).unwrap();
    let mut journal: Vec<String> =
        files.as_array().unwrap().iter().map(|f| format!("{} {} {}", f["name"], f["state"], f["counts"])).collect();
    journal.sort();
    let counters: (i64, i64, i64) = sb_store::sqlx::query_as(
        "SELECT CAST(SUM(voice_out_s + voice_in_s) AS BIGINT), CAST(SUM(sms_out + sms_in) AS BIGINT), CAST(SUM(topup_e4) AS BIGINT) FROM ingest_line_daily",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    format!("{}\n{}\n{counters:?}", lake.stdout, journal.join("\n"))
}

#[tokio::test]
async fn an_ingest_killed_at_any_stage_then_rerun_equals_a_clean_run() {
    let clean_db = TestDb::new().await;
    operator_with_source(clean_db.dir(), clean_db.url());
    let r = switchboard(clean_db.dir(), clean_db.url(), &["ingest", "run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let clean = observable(clean_db.dir(), &clean_db).await;
    assert!(clean.contains("COMMITTED") && clean.contains("DUPLICATE"), "{clean}");

    for stage in ["fetched", "staged", "committed", "delivered"] {
        let db = TestDb::new().await;
        operator_with_source(db.dir(), db.url());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.current_dir(db.dir())
            .args(["ingest", "run"])
            .env("SWITCHBOARD__STORE__URL", db.url())
            .env("SWITCHBOARD_CRASH_AT", stage);
        let status = cmd.output().unwrap().status;
        assert!(!status.success() && status.code().is_none(), "{stage}: the process was killed ({status:?})");
        let r = switchboard(db.dir(), db.url(), &["ingest", "run"]);
        assert_eq!(r.code, 0, "{stage}: {}", r.stderr);
        assert_eq!(observable(db.dir(), &db).await, clean, "after a crash at {stage}");
    }
}

#[tokio::test]
async fn ingest_file_prints_the_totals_as_json() {
    let db = TestDb::new().await;
    operator_with_source(db.dir(), db.url());
    let file = std::fs::read_dir(db.dir().join("op/mediation")).unwrap().next().unwrap().unwrap().path();
    let r =
        switchboard(db.dir(), db.url(), &["ingest", "file", file.to_str().unwrap(), "--layout", "reference", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    for key in ["rows_read", "rows_loaded", "duplicates", "quarantined", "seconds"] {
        assert!(v[key].is_number(), "{key} in {v}");
    }
    let read = v["rows_read"].as_i64().unwrap();
    assert_eq!(
        read,
        v["rows_loaded"].as_i64().unwrap() + v["duplicates"].as_i64().unwrap() + v["quarantined"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn users_are_enabled_again_and_get_a_new_one_time_password_from_the_command_line() {
    let db = TestDb::new().await;
    let r = switchboard(db.dir(), db.url(), &["users", "add", "mario", "--role", "operations", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    // Locked out after failed sign-ins, and disabled.
    sqlx::query("UPDATE web_users SET failed_sign_ins = 9, locked_until_ms = 99999999999999 WHERE name = 'mario'")
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(switchboard(db.dir(), db.url(), &["users", "disable", "mario"]).code, 0);
    let listed = switchboard(db.dir(), db.url(), &["users", "list"]);
    assert!(listed.stdout.contains("disabled"), "{}", listed.stdout);

    let r = switchboard(db.dir(), db.url(), &["users", "enable", "mario"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let listed = switchboard(db.dir(), db.url(), &["users", "list"]);
    assert!(!listed.stdout.contains("disabled") && !listed.stdout.contains("locked"), "{}", listed.stdout);

    let r = switchboard(db.dir(), db.url(), &["users", "reset-password", "mario", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let reset: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let password = reset["one_time_password"].as_str().unwrap();
    assert!(password.len() >= 12 && password != first["one_time_password"].as_str().unwrap());
    assert_eq!(reset["user"]["must_change_password"], true, "{reset}");

    let r = switchboard(db.dir(), db.url(), &["users", "enable", "nobody"]);
    assert_eq!(r.code, 2, "an unknown user is the caller's mistake: {}", r.stderr);
}

#[tokio::test]
async fn api_keys_are_created_listed_and_revoked_from_the_command_line() {
    let db = TestDb::new().await;
    let r = switchboard(
        db.dir(),
        db.url(),
        &["apikeys", "create", "billing", "--permission", "jobs.view", "--expires-days", "30", "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let created: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.contains(&id), "the key names its id: {secret}");

    let listed = switchboard(db.dir(), db.url(), &["apikeys", "list"]);
    assert!(listed.stdout.contains(&id) && listed.stdout.contains("active"), "{}", listed.stdout);
    assert!(!listed.stdout.contains(secret), "the secret is shown only once");

    assert_eq!(switchboard(db.dir(), db.url(), &["apikeys", "revoke", &id]).code, 0);
    let listed = switchboard(db.dir(), db.url(), &["apikeys", "list", "--json"]);
    let keys: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert!(keys[0]["revoked_at"].is_string(), "{keys}");

    let r = switchboard(db.dir(), db.url(), &["apikeys", "create", "x", "--permission", "everything"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unknown permission `everything`"), "{}", r.stderr);
    assert_eq!(switchboard(db.dir(), db.url(), &["apikeys", "revoke", "nope"]).code, 2);
}
