//! The binary as users run it: exit codes, output, files written. Each test gets its own
//! working folder and its own store (SQLite, or PostgreSQL when `SWITCHBOARD_TEST_PG` is set).

use std::path::Path;
use std::process::{Command, Output};

use sb_store::TestDb;

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
