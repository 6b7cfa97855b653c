//! Fault rates: zero means none, and faults never disturb the valid records.

use std::collections::HashSet;

use crate::common::{
    assert_manifest_matches_files, content, generate, mediation_files, read_manifest, small_config, valid_rows,
};

#[test]
fn rates_of_zero_inject_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(9, dir.path()).without_faults();
    generate(&cfg);
    let manifest = read_manifest(&cfg);

    assert_manifest_matches_files(&cfg.mediation_dir(), &manifest);
    assert!(manifest.duplicate_files.is_empty());
    assert!(manifest.duplicate_records.is_empty());
    assert!(manifest.malformed_rows.is_empty());
    assert_eq!(manifest.totals.late_records, 0);
    assert_eq!(manifest.summary.rows, manifest.summary.unique_records);
    let rows = valid_rows(&cfg.mediation_dir(), &manifest);
    assert_eq!(rows.len() as u64, manifest.summary.rows);
    assert_eq!(rows.iter().map(|r| &r.id).collect::<HashSet<_>>().len(), rows.len());
}

#[test]
fn gzip_output_decompresses_to_the_same_bytes_as_plain_output() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut plain = small_config(13, a.path());
    plain.duplicate_file_rate = 0.5;
    let mut gzip = small_config(13, b.path());
    gzip.duplicate_file_rate = 0.5;
    gzip.gzip = true;
    generate(&plain);
    generate(&gzip);

    let (plain_files, gzip_files) = (mediation_files(&plain.mediation_dir()), mediation_files(&gzip.mediation_dir()));
    assert_eq!(plain_files.len(), gzip_files.len());
    for (name, bytes) in &plain_files {
        let gz_name = format!("{name}.gz");
        let compressed = &gzip_files[&gz_name];
        assert!(compressed.len() < bytes.len() / 3, "{gz_name} is compressed");
        assert_eq!(content(&gz_name, compressed).as_bytes(), bytes.as_slice(), "{gz_name}");
    }
    let (p, g) = (read_manifest(&plain), read_manifest(&gzip));
    assert!(g.gzip && !p.gzip);
    assert_eq!((p.summary, p.totals), (g.summary.clone(), g.totals.clone()));
    assert_manifest_matches_files(&gzip.mediation_dir(), &g);
}

#[test]
fn fault_rates_do_not_change_the_valid_records() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clean = small_config(17, a.path()).without_faults();
    let mut faulty = small_config(17, b.path()).without_faults();
    faulty.duplicate_record_rate = 0.05;
    faulty.malformed_rate = 0.05;
    faulty.duplicate_file_rate = 1.0;
    generate(&clean);
    generate(&faulty);

    let unique = |cfg: &sb_sim::GenerateConfig| {
        let mut seen = HashSet::new();
        let rows = valid_rows(&cfg.mediation_dir(), &read_manifest(cfg));
        rows.into_iter().filter(|r| seen.insert(r.id.clone())).map(|r| format!("{r:?}")).collect::<Vec<_>>()
    };
    let (x, y) = (unique(&clean), unique(&faulty));
    assert!(!x.is_empty());
    assert!(x == y, "{} unique valid records without faults, {} with", x.len(), y.len());
    assert!(read_manifest(&faulty).summary.malformed_rows > 0);
}
