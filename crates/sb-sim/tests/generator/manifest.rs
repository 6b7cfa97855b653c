//! The manifest states exactly what the files hold.

use chrono::Duration;
use sb_sim::{MalformedKind, Population, default_start, write_usage_files};

use crate::common::{assert_manifest_matches_files, generate, read_manifest, small_config};

#[test]
fn the_manifest_matches_what_is_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config(11, dir.path());
    cfg.malformed_rate = 0.03;
    cfg.duplicate_record_rate = 0.02;
    cfg.duplicate_file_rate = 0.5;
    cfg.late_rate = 0.05;
    generate(&cfg);
    let manifest = read_manifest(&cfg);

    assert_manifest_matches_files(&cfg.mediation_dir(), &manifest);
    // Every kind of fault is there, so the check above covered each of them.
    for kind in MalformedKind::ALL {
        assert!(manifest.summary.malformed_by_kind[&kind] > 0, "no {kind:?}");
    }
    assert!(manifest.duplicate_records.iter().any(|d| d.file == d.first_file));
    assert!(manifest.duplicate_records.iter().any(|d| d.file != d.first_file));
    assert_eq!(manifest.duplicate_files.len(), 2);
    assert!(manifest.totals.late_records > 0);
    let first_hour = cfg.start.to_rfc3339();
    assert!(manifest.totals.records_by_start_hour.keys().any(|h| *h < first_hour), "late records of earlier hours");
    assert!(manifest.totals.data_sessions < manifest.totals.by_kind.data, "some sessions are split");
}

#[test]
fn a_day_at_the_default_rates_has_one_duplicate_file_and_a_few_of_every_fault() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = sb_sim::GenerateConfig::new(5, dir.path());
    cfg.customers = 300;
    cfg.records = Some(60_000);
    let population = Population::generate(cfg.seed, cfg.customers, cfg.start).unwrap();
    let manifest = write_usage_files(&cfg, &population, &|_| {}).unwrap();

    assert_manifest_matches_files(&cfg.mediation_dir(), &manifest);
    assert_eq!((manifest.files.len(), manifest.duplicate_files.len()), (24, 1));
    let s = &manifest.summary;
    assert!((55_000..65_000).contains(&s.rows), "close to the target: {}", s.rows);
    assert!((30..=100).contains(&s.malformed_rows), "{}", s.malformed_rows);
    assert!((70..=190).contains(&s.duplicate_records), "{}", s.duplicate_records);
    let late = manifest.totals.late_records as f64 / s.unique_records as f64;
    assert!((0.015..0.025).contains(&late), "{late}");
    // Quiet at night, busy by day.
    let rows = |hour: usize| manifest.files[hour].rows;
    assert!(rows(4) * 5 < rows(11), "{} vs {}", rows(4), rows(11));
}

#[test]
fn the_summary_agrees_with_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config(4, dir.path());
    cfg.duplicate_file_rate = 1.0;
    let summary = generate(&cfg);
    let manifest = read_manifest(&cfg);
    assert_eq!(summary.files, (manifest.files.len() + manifest.duplicate_files.len()) as u64);
    assert_eq!(summary.duplicate_files, 4);
    assert_eq!(summary.records, manifest.summary.rows);
    assert_eq!(summary.duplicate_records, manifest.duplicate_records.len() as u64);
    assert_eq!(summary.malformed_rows, manifest.malformed_rows.len() as u64);
    assert_eq!(summary.unique_records, manifest.totals.records);
    assert_eq!((summary.customers, summary.source_db_rows.customers), (120, 120));
    assert_eq!(summary.lines, summary.source_db_rows.lines);
    assert_eq!(manifest.start, (default_start() + Duration::hours(9)).to_rfc3339());
    let json = serde_json::to_value(&summary).unwrap();
    assert!(json["records"].is_u64() && json["manifest"].is_string());
}
