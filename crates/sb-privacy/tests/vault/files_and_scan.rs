//! File encryption with age, and the scanner on real files.

use std::io::Write;

use sb_privacy::{Scanner, files};

#[test]
fn a_file_encrypted_to_a_recipient_decrypts_with_its_identity_only() {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("id.key");
    let recipient = files::ensure_identity(&identity).unwrap();
    assert!(recipient.starts_with("age1"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&identity).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let clear = dir.path().join("q.csv");
    std::fs::write(&clear, "line;393401234567\n".repeat(10_000)).unwrap();
    let sealed = dir.path().join("q.csv.age");
    files::encrypt_file(&clear, &sealed, &files::parse_recipients(&[recipient]).unwrap()).unwrap();
    assert!(Scanner::new().scan(std::slice::from_ref(&sealed)).unwrap().findings.is_empty());

    let back = dir.path().join("back.csv");
    files::decrypt_file(&sealed, &back, &identity).unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&clear).unwrap());

    let stranger = dir.path().join("other.key");
    files::ensure_identity(&stranger).unwrap();
    assert!(files::decrypt_file(&sealed, &dir.path().join("x"), &stranger).is_err());
    assert!(!dir.path().join("x").exists(), "nothing half-written");
}

#[test]
fn a_bad_recipient_is_named_by_position() {
    let e = files::parse_recipients(&["age1nope".into()]).unwrap_err().to_string();
    assert!(e.contains("file_recipients[0]"), "{e}");
}

#[test]
fn the_scanner_finds_each_kind_in_csv_json_and_logs_and_names_no_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "id;msisdn\n1;msi_0123456789abcdefghjkmnpqrs\n2;393401234567\n").unwrap();
    let mut json = std::fs::File::create(dir.path().join("b.json")).unwrap();
    writeln!(json, r#"{{"level":"INFO","msg":"ok","iban":"IT60X0542811101000000123456"}}"#).unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::write(dir.path().join("logs/c.log"), "fine\nuser mario.rossi@example.it failed\n").unwrap();
    std::fs::write(dir.path().join("clean.csv"), "token;amount\nmsi_0123456789abcdefghjkmnpqrs;10.5\n").unwrap();

    let report = Scanner::new().scan(&[dir.path().to_owned()]).unwrap();
    assert_eq!(report.files, 4);
    let found: Vec<(String, &str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.path.file_name().unwrap().to_string_lossy().into_owned(), f.location.as_str(), f.kind))
        .collect();
    assert_eq!(
        found,
        [
            ("a.csv".into(), "line 3", "msisdn"),
            ("b.json".into(), "line 1", "iban"),
            ("c.log".into(), "line 2", "email")
        ]
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("393401234567") && !json.contains("mario.rossi"));
}
