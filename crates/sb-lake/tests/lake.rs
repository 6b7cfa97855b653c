//! Commits are all or nothing, survive crashes, and are what SQL sees.

use std::sync::Arc;

use arrow::array::{Date32Array, Decimal128Array, Int32Array, StringArray, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use sb_lake::{Lake, OutputFormat, run_sql, schema};

fn topups(ids: &[&str], amount_e4: i128) -> RecordBatch {
    let n = ids.len();
    let s = |v: &str| Arc::new(StringArray::from(vec![v; n])) as _;
    RecordBatch::try_new(
        Arc::clone(&schema::TOPUPS),
        vec![
            Arc::new(StringArray::from(ids.to_vec())),
            s("MED01"),
            s("MED01:abc"),
            s("TOPUP"),
            s("msi_0123456789abcdefghjkmnpqrs"),
            s("ims_0123456789abcdefghjkmnpqrs"),
            Arc::new(TimestampMicrosecondArray::from(vec![1_763_816_400_000_000; n]).with_timezone("UTC")),
            Arc::new(Date32Array::from(vec![20_414; n])),
            Arc::new(Int32Array::from(vec![13; n])),
            Arc::new(Decimal128Array::from(vec![amount_e4; n]).with_precision_and_scale(18, 4).unwrap()),
            s("APP"),
        ],
    )
    .unwrap()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 11, 22).unwrap()
}

async fn sum(lake: &Lake) -> String {
    let mut out = Vec::new();
    run_sql(lake, "SELECT COUNT(*) AS n, SUM(amount_eur) AS total FROM topups", OutputFormat::Csv, &mut out)
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn stage_one(lake: &Lake, id: &str, key: &str, ids: &[&str]) -> sb_lake::Staged {
    let mut staged = lake.stage(id, Some(key)).unwrap();
    let mut part = staged.part("topups", Arc::clone(&schema::TOPUPS), Some((day(), 13))).unwrap();
    part.write(&topups(ids, 100_000)).unwrap();
    let part = part.finish().unwrap();
    staged.add(part);
    staged
}

#[tokio::test]
async fn a_commit_is_invisible_until_made_and_then_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    assert_eq!(sum(&lake).await, "n,total\n0,\n");
    let staged = stage_one(&lake, "c1", "file-a", &["r1", "r2"]);
    assert_eq!(sum(&lake).await, "n,total\n0,\n", "staged parts are not read");
    let commit = staged.commit().unwrap();
    assert_eq!(commit.seq, 1);
    assert_eq!(commit.add[0].path, "topups/date=2025-11-22/hour=13/c1-1.parquet");
    assert_eq!(sum(&lake).await, "n,total\n2,20.0000\n");
}

#[tokio::test]
async fn a_commit_id_is_used_once() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    stage_one(&lake, "c1", "k", &["r1"]).commit().unwrap();
    let e = stage_one(&lake, "c1", "k", &["r1"]).commit().unwrap_err();
    assert!(matches!(e, sb_lake::LakeError::AlreadyCommitted(_)));
    assert_eq!(sum(&lake).await, "n,total\n1,10.0000\n");
}

#[tokio::test]
async fn a_later_commit_replaces_files_it_removes() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    stage_one(&lake, "c1", "file-a", &["r1", "r2", "r3"]).commit().unwrap();
    let old = lake.snapshot().unwrap().by_key["file-a"].clone();
    let mut replay = stage_one(&lake, "c1-r1", "file-a", &["r1"]);
    for f in &old {
        replay.remove(&f.path);
    }
    replay.commit().unwrap();
    assert_eq!(sum(&lake).await, "n,total\n1,10.0000\n");
    assert!(!dir.path().join(&old[0].path).exists());
}

#[tokio::test]
async fn recovery_finishes_a_commit_interrupted_after_its_manifest_and_drops_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let commit = stage_one(&lake, "c1", "k1", &["r1"]).commit().unwrap();
    // Simulate a crash between the manifest and the rename: put the file back under its staging name.
    let final_path = dir.path().join(&commit.add[0].path);
    let staging = final_path.with_file_name(".c1-1.parquet.tmp");
    std::fs::rename(&final_path, &staging).unwrap();
    // And a crash before any manifest: staged parts of commit c2 with no manifest.
    let _abandoned = stage_one(&lake, "c2", "k2", &["r9"]);

    let report = Lake::open(dir.path()).unwrap().recover().unwrap();
    assert_eq!((report.finished, report.discarded), (1, 1));
    assert!(final_path.exists());
    assert_eq!(sum(&lake).await, "n,total\n1,10.0000\n");
    let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn sql_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let mut out = Vec::new();
    let e = run_sql(&lake, "SELECT nope FROM usage", OutputFormat::Table, &mut out).await.unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}

#[tokio::test]
async fn high_cardinality_columns_are_written_without_a_dictionary_and_the_others_with_one() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let commit = stage_one(&lake, "c1", "file-a", &["r1", "r2", "r3"]).commit().unwrap();
    let file = std::fs::File::open(dir.path().join(&commit.add[0].path)).unwrap();
    let meta = SerializedFileReader::new(file).unwrap().metadata().row_group(0).clone();
    let dictionary = |name: &str| {
        let c = meta.columns().iter().find(|c| c.column_path().string() == name).unwrap();
        c.dictionary_page_offset().is_some()
    };
    for name in ["record_id", "line", "imsi", "start_time"] {
        assert!(!dictionary(name), "{name}");
    }
    for name in ["source", "record_type", "channel", "event_date"] {
        assert!(dictionary(name), "{name}");
    }
    assert_eq!(sum(&lake).await, "n,total\n3,30.0000\n");
}
