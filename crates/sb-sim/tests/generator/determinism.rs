//! The same configuration always gives the same bytes.

use crate::common::{assert_same_text, block_on, dump_source_db, generate, mediation_files, small_config};

#[test]
fn the_same_seed_gives_byte_identical_output_whatever_the_thread_count() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut one = small_config(7, a.path());
    one.threads = 1;
    one.duplicate_file_rate = 0.5;
    let mut three = small_config(7, b.path());
    three.threads = 3;
    three.duplicate_file_rate = 0.5;

    generate(&one);
    // The multi-threaded runtime takes the other path through `generate` (block_in_place).
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(sb_sim::generate(&three, &|_| {})).unwrap();

    let files = mediation_files(&one.mediation_dir());
    assert!(files.len() >= 4, "{:?}", files.keys());
    assert_eq!(files, mediation_files(&three.mediation_dir()));
    assert_eq!(std::fs::read(one.manifest_path()).unwrap(), std::fs::read(three.manifest_path()).unwrap());
    let dump = block_on(dump_source_db(&one.source_db_url()));
    assert!(dump.lines().count() > 200);
    assert_same_text(&dump, &block_on(dump_source_db(&three.source_db_url())), "source databases");
}

#[test]
fn a_different_seed_gives_different_output() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let seven = small_config(7, a.path());
    let eight = small_config(8, b.path());
    generate(&seven);
    generate(&eight);

    let (x, y) = (mediation_files(&seven.mediation_dir()), mediation_files(&eight.mediation_dir()));
    for (name, bytes) in &x {
        assert_ne!(Some(bytes), y.get(name), "{name} is the same for both seeds");
    }
    assert_ne!(std::fs::read(seven.manifest_path()).unwrap(), std::fs::read(eight.manifest_path()).unwrap());
    assert_ne!(block_on(dump_source_db(&seven.source_db_url())), block_on(dump_source_db(&eight.source_db_url())));
}

#[test]
fn running_again_into_the_same_folder_replaces_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config(3, dir.path());
    generate(&cfg);
    let first_dump = block_on(dump_source_db(&cfg.source_db_url()));
    let bystander = cfg.mediation_dir().join("OTHER_20261122_09_001.cdr");
    std::fs::write(&bystander, "not ours").unwrap();

    cfg.hours = 2;
    cfg.customers = 60;
    let summary = generate(&cfg);
    let files = mediation_files(&cfg.mediation_dir());
    assert_eq!(files.len() as u64, summary.files + 1, "only this run's files, and the bystander");
    assert!(bystander.exists());
    assert_eq!(summary.source_db_rows.customers, 60);
    assert_ne!(block_on(dump_source_db(&cfg.source_db_url())), first_dump);
}
