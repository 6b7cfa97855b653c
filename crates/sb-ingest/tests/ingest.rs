//! Ingestion end to end on generated operator data, on SQLite (or PostgreSQL when
//! `SWITCHBOARD_TEST_PG` is set): totals add up against the generator's manifest, duplicates
//! and bad rows are handled, nothing personal reaches the lake, the journal or the logs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sb_ingest::{AfterCommit, FileState, IngestConfig, Ingestor, SourceConfig, SourceKind};
use sb_privacy::{MasterKey, PrivacyConfig, Scanner, Vault};
use sb_sim::GenerateConfig;
use sb_store::sqlx;
use sb_store::{Db, PoolOptions, TestDb};

const MASTER: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct Fixture {
    test: TestDb,
    data: PathBuf,
    vault: Arc<Vault>,
    identity: PathBuf,
}

impl Fixture {
    async fn new() -> Self {
        let test = TestDb::new().await;
        test.migrate(&[&sb_ingest::MIGRATIONS]).await.unwrap();
        let vault_db =
            Db::connect_with(test.url(), &PoolOptions { schema: Some("vault".into()), ..Default::default() })
                .await
                .unwrap();
        let vault =
            Arc::new(Vault::open(vault_db, MasterKey::parse(MASTER).unwrap(), PrivacyConfig::default()).await.unwrap());
        let data = test.dir().join("data");
        let identity = test.dir().join("files.key");
        sb_privacy::files::ensure_identity(&identity).unwrap();
        Self { test, data, vault, identity }
    }

    fn ingestor(&self, sources: &[(&str, &Path)]) -> Ingestor {
        self.ingestor_with(sources, IngestConfig::default())
    }

    fn ingestor_with(&self, sources: &[(&str, &Path)], mut config: IngestConfig) -> Ingestor {
        for (name, path) in sources {
            config.sources.insert(
                (*name).to_owned(),
                SourceConfig {
                    kind: SourceKind::Folder,
                    layout: "reference".into(),
                    pattern: "*.cdr*".into(),
                    min_age_s: 0,
                    after_commit: AfterCommit::Keep,
                    move_to: "processed".into(),
                    schedule: "0 * * * *".into(),
                    expected_deadline_min: 0,
                    time_budget_s: 3600,
                    path: Some(path.to_path_buf()),
                    sftp: None,
                },
            );
        }
        let recipient = sb_privacy::files::identity_recipient(&self.identity).unwrap();
        let recipients = sb_privacy::files::parse_recipients(&[recipient]).unwrap();
        let mut i =
            Ingestor::new(Db::clone(&self.test), Arc::clone(&self.vault), &self.data, config, recipients).unwrap();
        i.add_consumer(Arc::new(sb_ingest::DailyCounters::new(Db::clone(&self.test))));
        i
    }
}

/// One generated hourly file without faults, under the fixture's `operator` folder.
async fn one_hour(f: &Fixture, seed: u64) -> PathBuf {
    let op = f.test.dir().join("operator");
    generate(&op, seed, 1, false).await;
    std::fs::read_dir(op.join("mediation")).unwrap().next().unwrap().unwrap().path()
}

async fn generate(dir: &Path, seed: u64, hours: u32, faults: bool) -> sb_sim::Manifest {
    let mut cfg = GenerateConfig::new(seed, dir);
    cfg.customers = 60;
    cfg.hours = hours;
    cfg.threads = 1;
    if faults {
        cfg.malformed_rate = 0.05;
        cfg.duplicate_record_rate = 0.03;
        cfg.duplicate_file_rate = 0.34;
    } else {
        cfg = cfg.without_faults();
    }
    sb_sim::generate(&cfg, &|_| {}).await.unwrap();
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

async fn sql(i: &Ingestor, q: &str) -> String {
    let mut out = Vec::new();
    sb_lake::run_sql(i.lake(), q, sb_lake::OutputFormat::Csv, &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn a_generated_day_loads_and_every_total_adds_up_against_the_manifest() {
    let f = Fixture::new().await;
    a_generated_day_adds_up(&f, IngestConfig::default()).await;
    assert!(!f.data.join("ingest").join("tmp").exists(), "nothing went beyond the memory budgets");
}

#[tokio::test]
async fn beyond_the_memory_budgets_ids_and_totals_go_to_disk_and_every_total_still_adds_up() {
    let f = Fixture::new().await;
    // Budgets far below one file: ids and per-line totals go to many runs on disk, and
    // duplicates are found in them, within a file and across files.
    let tiny =
        IngestConfig { batch_rows: 64, pending_memory_ids: 50, aggregate_memory_lines: 20, ..Default::default() };
    a_generated_day_adds_up(&f, tiny).await;
    let tmp = f.data.join("ingest").join("tmp");
    assert!(tmp.is_dir(), "the runs' folder was made");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "the runs leave no file behind");
}

#[tokio::test]
async fn a_file_spread_over_more_hours_than_its_open_parts_is_written_in_turn_and_every_total_adds_up() {
    // One part written at once: each file's further hours (its late records, its top-ups,
    // its ids) wait in temporary files and are written after it.
    let f = Fixture::new().await;
    a_generated_day_adds_up(&f, IngestConfig { batch_rows: 16, open_parts: 1, ..Default::default() }).await;
    let tmp = f.data.join("ingest").join("tmp");
    assert!(tmp.is_dir(), "rows waited in temporary files");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "the waiting rows leave no file behind");

    // No memory for the open parts: they are finished after each batch, so that a commit has
    // several parts in one partition.
    let f = Fixture::new().await;
    let ingestor =
        a_generated_day_adds_up(&f, IngestConfig { batch_rows: 16, parts_memory_mb: 0, ..Default::default() }).await;
    assert!(most_parts_in_one_partition(&ingestor) > 1, "parts were finished early");

    // With the default limits the same day writes one part per commit and partition.
    let f = Fixture::new().await;
    let ingestor = a_generated_day_adds_up(&f, IngestConfig::default()).await;
    assert_eq!(most_parts_in_one_partition(&ingestor), 1);
}

/// The most parts one commit has in one partition of the lake.
fn most_parts_in_one_partition(i: &Ingestor) -> usize {
    let snapshot = i.lake().snapshot().unwrap();
    let per_partition = snapshot.by_key.values().flat_map(|files| {
        let mut dirs: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for file in files {
            *dirs.entry(file.path.rsplit_once('/').unwrap().0).or_default() += 1;
        }
        dirs.into_values()
    });
    per_partition.max().expect("files were committed")
}

async fn a_generated_day_adds_up(f: &Fixture, config: IngestConfig) -> Ingestor {
    let op = f.test.dir().join("operator");
    let m = generate(&op, 7, 4, true).await;
    assert!(
        m.summary.malformed_rows > 0 && m.summary.duplicate_records > 0 && m.summary.duplicate_files > 0,
        "{:?}",
        m.summary
    );
    let ingestor = f.ingestor_with(&[("MED01", &op.join("mediation"))], config);
    let run = ingestor.run_source("MED01", &|_| {}).await.unwrap();

    let dup_names: Vec<&str> = m.duplicate_files.iter().map(|d| d.file.as_str()).collect();
    let loaded_rows: u64 = m.files.iter().filter(|e| !dup_names.contains(&e.name.as_str())).map(|e| e.rows).sum();
    assert_eq!(run.duplicate_files, m.summary.duplicate_files);
    assert_eq!(run.rows_read as u64, loaded_rows);
    assert_eq!(run.quarantined as u64, m.summary.malformed_rows);
    assert_eq!(run.duplicates as u64, m.summary.duplicate_records);
    assert_eq!(run.rows_loaded as u64, m.totals.records);
    assert_eq!(
        run.rows_read,
        run.rows_loaded + run.duplicates + run.quarantined,
        "read = loaded + duplicate + quarantined"
    );

    let by_kind = sql(&ingestor, "SELECT COUNT(*) FROM usage WHERE record_type = 'VOICE_MO'").await;
    assert_eq!(by_kind, format!("count(*)\n{}\n", m.totals.by_kind.voice_mo));
    let secs =
        sql(&ingestor, "SELECT CAST(SUM(duration_s) AS BIGINT) AS s FROM usage WHERE record_type = 'VOICE_MT'").await;
    assert_eq!(secs, format!("s\n{}\n", m.totals.voice_mt_seconds));
    let topups = sql(&ingestor, "SELECT COUNT(*) AS n FROM topups").await;
    assert_eq!(topups, format!("n\n{}\n", m.totals.by_kind.topup + m.totals.by_kind.topup_auto));
    let up = sql(&ingestor, "SELECT CAST(SUM(volume_up_bytes) AS BIGINT) AS b FROM usage").await;
    assert_eq!(up, format!("b\n{}\n", m.totals.data_up_bytes));

    // The consumer got each file exactly once: its counters add up to the same totals.
    let voice_out: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(voice_out_s), 0) AS BIGINT) FROM ingest_line_daily")
            .fetch_one(f.test.pool())
            .await
            .unwrap();
    assert_eq!(voice_out as u64, m.totals.voice_mo_seconds);

    // A second run changes nothing.
    let before = sql(&ingestor, "SELECT COUNT(*) AS n FROM usage").await;
    let again = ingestor.run_source("MED01", &|_| {}).await.unwrap();
    assert_eq!((again.rows_loaded, again.committed), (0, 0));
    assert_eq!(sql(&ingestor, "SELECT COUNT(*) AS n FROM usage").await, before);
    let voice_again: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(voice_out_s), 0) AS BIGINT) FROM ingest_line_daily")
            .fetch_one(f.test.pool())
            .await
            .unwrap();
    assert_eq!(voice_again, voice_out);
    ingestor
}

#[tokio::test]
async fn nothing_personal_reaches_the_lake_the_journal_the_quarantine_or_the_logs() {
    let f = Fixture::new().await;
    let op = f.test.dir().join("operator");
    generate(&op, 11, 2, true).await;
    let ingestor = f.ingestor(&[("MED01", &op.join("mediation"))]);
    ingestor.run_source("MED01", &|_| {}).await.unwrap();
    // The whole data directory: lake, quarantine, outbox, and the inbox copies (sealed once committed).
    let mut paths = vec![f.data.clone()];
    if !f.test.is_postgres() {
        paths.push(f.test.dir().join("test.db"));
    }
    let report = Scanner::new().scan(&paths).unwrap();
    assert!(report.files > 3);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let line_tokens = sql(&ingestor, "SELECT COUNT(*) AS n FROM usage WHERE line NOT LIKE 'msi\\_%' ESCAPE '\\'").await;
    assert_eq!(line_tokens, "n\n0\n");
}

#[tokio::test]
async fn the_same_file_under_another_name_is_a_duplicate_and_loads_nothing() {
    let f = Fixture::new().await;
    let file = one_hour(&f, 3).await;
    let ingestor = f.ingestor(&[]);
    let first = ingestor.ingest_file(&file, "reference", "manual").await.unwrap();
    assert_eq!(first.state, FileState::Committed);
    let copy = f.test.dir().join("MED01_20261122_00_002.cdr");
    std::fs::copy(&file, &copy).unwrap();
    let second = ingestor.ingest_file(&copy, "reference", "manual").await.unwrap();
    assert_eq!(second.state, FileState::Duplicate);
    assert!(second.reason.unwrap().contains(first.name.as_str()));
    let n = sql(&ingestor, "SELECT COUNT(*) AS n FROM usage").await;
    let t = sql(&ingestor, "SELECT COUNT(*) AS n FROM topups").await;
    let total: i64 = [n, t].iter().map(|s| s.lines().nth(1).unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(total, first.counts.rows_loaded);
}

#[tokio::test]
async fn each_kind_of_bad_row_is_quarantined_with_its_reason_and_the_good_rows_load() {
    let f = Fixture::new().await;
    let header = sb_sim::cdr::HEADER;
    let good = "R1;VOICE_MO;393401234567;222013401234567;490154203237518;393409999999;2026-11-22T13:05:12+01:00;60;;;;40123;;0.1200;;";
    let rows = [
        (good, None),
        (
            ";VOICE_MO;393401234567;222013401234567;;393409999999;2026-11-22T13:05:12+01:00;60;;;;;;0.1;;",
            Some("record_id"),
        ),
        (
            "R3;VOICE_MO;39340123456A;222013401234567;;393409999999;2026-11-22T13:05:12+01:00;60;;;;;;0.1;;",
            Some("msisdn"),
        ),
        ("R4;VOICE_MO;393401234567;222013401234567;;393409999999;22/11/2026 13:05;60;;;;;;0.1;;", Some("start_time")),
        (
            "R5;FAX;393401234567;222013401234567;;393409999999;2026-11-22T13:05:12+01:00;60;;;;;;0.1;;",
            Some("record_type"),
        ),
        ("R6;VOICE_MO;393401234567;222013401234567;;393409999999;2026-11-22T13:05:12+01:00;60;;;;;;0.1;", Some("row")),
        (
            "R7;VOICE_MO;393401234567;222013401234567;;393409999999;2026-11-22T13:05:12+01:00;-5;;;;;;0.1;;",
            Some("duration_s"),
        ),
        (
            "R8;VOICE_MO;393401234567;222013401234567;;393409999999;2026-11-22T13:05:12+01:00;60;;;;;;0,10;;",
            Some("charge_eur"),
        ),
        (
            "R9;VOICE_MO;393401234567;222013401234567;;393409999999;2026-11-10T13:05:12+01:00;60;;;;;;0.1;;",
            Some("start_time"),
        ),
        ("R10;VOICE_MO;393401234567;222013401234567;;;2026-11-22T13:05:12+01:00;60;;;;;;0.1;;", Some("other_party")),
        ("R11;TOPUP;393401234567;222013401234567;;;2026-11-22T13:10:00+01:00;;;;;;;10.00;APP;", None),
        // Longer than a row may be (1 MiB): cut, and the next row read as usual.
        (LONG_ROW.as_str(), Some("row")),
        ("R13;TOPUP;393401234567;222013401234567;;;2026-11-22T13:11:00+01:00;;;;;;;5.00;APP;", None),
    ];
    let mut text = format!("{header}\n");
    for (r, _) in &rows {
        text.push_str(r);
        text.push('\n');
    }
    let file = f.test.dir().join("MED01_20261122_13_001.cdr");
    std::fs::write(&file, &text).unwrap();
    let ingestor = f.ingestor(&[]);
    let o = ingestor.ingest_file(&file, "reference", "MED01").await.unwrap();
    assert_eq!(o.state, FileState::Committed);
    assert_eq!((o.counts.rows_read, o.counts.rows_loaded, o.counts.quarantined), (13, 3, 10));

    let q = f.data.join("quarantine/MED01").read_dir().unwrap().next().unwrap().unwrap().path();
    assert!(Scanner::new().scan(std::slice::from_ref(&q)).unwrap().findings.is_empty(), "encrypted at rest");
    let clear = f.test.dir().join("q.csv");
    sb_privacy::files::decrypt_file(&q, &clear, &f.identity).unwrap();
    let lines: Vec<String> = std::fs::read_to_string(&clear).unwrap().lines().skip(1).map(str::to_owned).collect();
    let expected: Vec<(usize, &str)> =
        rows.iter().enumerate().filter_map(|(i, (_, field))| field.map(|f| (i + 2, f))).collect();
    assert_eq!(lines.len(), expected.len());
    for (l, (line_no, field)) in lines.iter().zip(expected) {
        let parts: Vec<&str> = l.splitn(4, ';').collect();
        assert_eq!((parts[0].parse::<usize>().unwrap(), parts[1]), (line_no, field), "{l}");
        assert!(!parts[2].is_empty());
        assert!(!parts[2].contains("3934"), "reasons never quote values: {l}");
    }
    let long = lines.iter().find(|l| l.starts_with("13;")).unwrap();
    assert!(long.contains("longer than 1048576 bytes"), "{}", &long[..80]);
    assert!(long.len() < (1 << 20) + 100, "only the first MiB of the row is kept");
}

#[tokio::test]
async fn a_file_unreadable_as_a_whole_is_rejected_with_a_reason_and_an_alert() {
    let f = Fixture::new().await;
    let ingestor = f.ingestor(&[]);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("MED01_20261122_01_001.cdr", Vec::new(), "empty"),
        ("MED01_20261122_02_001.cdr", b"id,type,number\n1,VOICE_MO,393401234567\n".to_vec(), "wrong layout"),
        ("MED01_20261122_03_001.cdr.gz", truncated_gzip(), "gzip"),
        // No line end at all: not read into memory whole.
        ("MED01_20261122_04_001.cdr", LONG_ROW.as_bytes().to_vec(), "header is longer"),
    ];
    for (name, bytes, why) in cases {
        let path = f.test.dir().join(name);
        std::fs::write(&path, bytes).unwrap();
        let o = ingestor.ingest_file(&path, "reference", "MED01").await.unwrap();
        assert_eq!(o.state, FileState::Rejected, "{name}");
        assert!(o.reason.as_deref().unwrap().contains(why), "{name}: {:?}", o.reason);
    }
    assert_eq!(sql(&ingestor, "SELECT COUNT(*) AS n FROM usage").await, "n\n0\n");
    assert_eq!(ingestor.alerts().open(10).await.unwrap().len(), 4);
}

/// A row of 2 MiB: twice what a row may take.
static LONG_ROW: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("R12;VOICE_MO;{}", "x".repeat(2 << 20)));

fn truncated_gzip() -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut text = format!("{}\n", sb_sim::cdr::HEADER);
    for i in 0..2000 {
        text.push_str(&format!(
            "R{i};SMS_MO;393401234567;222013401234567;;393409999999;2026-11-22T03:05:12+01:00;;;;;;;0.1;;\n"
        ));
    }
    e.write_all(text.as_bytes()).unwrap();
    let full = e.finish().unwrap();
    full[..full.len() / 2].to_vec()
}

#[tokio::test]
async fn a_replay_replaces_the_files_rows_and_consumers_are_not_counted_twice() {
    let f = Fixture::new().await;
    let file = one_hour(&f, 5).await;
    let ingestor = f.ingestor(&[]);
    let first = ingestor.ingest_file(&file, "reference", "manual").await.unwrap();
    let count = sql(&ingestor, "SELECT COUNT(*) AS n FROM usage").await;
    let counters = || async {
        sqlx::query_scalar::<_, i64>("SELECT CAST(COALESCE(SUM(sms_out + sms_in), 0) AS BIGINT) FROM ingest_line_daily")
            .fetch_one(f.test.pool())
            .await
            .unwrap()
    };
    let sms = counters().await;
    let replayed = ingestor.replay("manual", &first.name).await.unwrap();
    assert_eq!(replayed.counts.rows_loaded, first.counts.rows_loaded);
    assert_eq!(replayed.counts.duplicates, 0, "its own earlier ids are not duplicates");
    assert_eq!(sql(&ingestor, "SELECT COUNT(*) AS n FROM usage").await, count);
    assert_eq!(counters().await, sms);
}

#[tokio::test]
async fn a_files_totals_reach_consumers_in_batches_each_once_and_a_replay_sends_the_difference() {
    let f = Fixture::new().await;
    let file = one_hour(&f, 6).await;
    let config = IngestConfig { delivery_lines: 7, ..IngestConfig::default() };
    let ingestor = f.ingestor_with(&[], config);
    let first = ingestor.ingest_file(&file, "reference", "manual").await.unwrap();
    assert_eq!(first.state, FileState::Committed);

    let pool = f.test.pool();
    let scalar = |q: &'static str| async move { sqlx::query_scalar::<_, i64>(q).fetch_one(pool).await.unwrap() };
    let line_days = scalar("SELECT COUNT(*) FROM ingest_line_daily").await;
    assert!(line_days > 14, "the test needs several batches, has {line_days} line-days");
    let batches = scalar("SELECT COUNT(*) FROM ingest_deliveries").await;
    assert_eq!(batches, (line_days + 6) / 7, "one delivery per batch of 7 line-days");
    // Every record is counted once, whatever batch its line fell in.
    let lake_sms = sql(&ingestor, "SELECT COUNT(*) AS n FROM usage WHERE record_type IN ('SMS_MO', 'SMS_MT')").await;
    let sms = scalar("SELECT CAST(COALESCE(SUM(sms_out + sms_in), 0) AS BIGINT) FROM ingest_line_daily").await;
    assert_eq!(lake_sms, format!("n\n{sms}\n"));

    // Replayed, the file changes nothing: the difference against its first commit is empty.
    ingestor.replay("manual", &first.name).await.unwrap();
    assert_eq!(scalar("SELECT CAST(COALESCE(SUM(sms_out + sms_in), 0) AS BIGINT) FROM ingest_line_daily").await, sms);
    assert_eq!(scalar("SELECT COUNT(*) FROM ingest_line_daily").await, line_days);
}

#[tokio::test]
async fn ids_older_than_the_dedup_window_leave_the_lake_and_no_longer_count() {
    let f = Fixture::new().await;
    let header = sb_sim::cdr::HEADER;
    let row = |id: &str, day: u32| {
        format!("{id};SMS_MO;393401234567;222013401234567;;393409999999;2026-11-{day:02}T13:05:12+01:00;;;;;;;0.1;;\n")
    };
    let config = IngestConfig { dedup_window_days: 1, ..IngestConfig::default() };
    let dedup_days = |i: &Ingestor| -> Vec<String> {
        let snapshot = i.lake().snapshot().unwrap();
        let mut days: Vec<String> =
            snapshot.files.get("_dedup").into_iter().flatten().map(|f| f.path[..22].to_owned()).collect();
        days.dedup();
        days
    };
    let a = f.test.dir().join("MED01_20261120_13_001.cdr");
    std::fs::write(&a, format!("{header}\n{}", row("A1", 20))).unwrap();
    let i = f.ingestor_with(&[], config.clone());
    i.ingest_file(&a, "reference", "MED01").await.unwrap();
    // Two days later: the 20th is out of a one-day window and its ids leave with this commit.
    let b = f.test.dir().join("MED01_20261122_13_001.cdr");
    std::fs::write(&b, format!("{header}\n{}", row("B1", 22))).unwrap();
    i.ingest_file(&b, "reference", "MED01").await.unwrap();
    assert_eq!(dedup_days(&i), vec!["_dedup/date=2026-11-22".to_owned()]);
    // A1 re-sent late (still inside the layout's start-time window) is no longer a duplicate,
    // for this process and after a restart alike; B1 still is.
    let c = f.test.dir().join("MED01_20261122_14_001.cdr");
    std::fs::write(&c, format!("{header}\n{}{}", row("A1", 20), row("B1", 22))).unwrap();
    let o = f.ingestor_with(&[], config).ingest_file(&c, "reference", "MED01").await.unwrap();
    assert_eq!((o.counts.rows_loaded, o.counts.duplicates), (1, 1));
}

#[tokio::test]
async fn the_dedup_window_survives_a_restart() {
    let f = Fixture::new().await;
    let header = sb_sim::cdr::HEADER;
    let row = |id: &str| {
        format!("{id};SMS_MO;393401234567;222013401234567;;393409999999;2026-11-22T13:05:12+01:00;;;;;;;0.1;;\n")
    };
    let a = f.test.dir().join("MED01_20261122_13_001.cdr");
    std::fs::write(&a, format!("{header}\n{}{}", row("A1"), row("A2"))).unwrap();
    f.ingestor(&[]).ingest_file(&a, "reference", "MED01").await.unwrap();
    // A new ingestor (a restart) still knows A2.
    let b = f.test.dir().join("MED01_20261122_14_001.cdr");
    std::fs::write(&b, format!("{header}\n{}{}", row("A2"), row("B1"))).unwrap();
    let o = f.ingestor(&[]).ingest_file(&b, "reference", "MED01").await.unwrap();
    assert_eq!((o.counts.rows_loaded, o.counts.duplicates), (1, 1));
}

#[tokio::test]
async fn an_asterisk_master_csv_loads_through_its_layout_with_no_code() {
    let f = Fixture::new().await;
    let csv = r#""","393401234567","393409876543","from-internal","""Mario"" <393401234567>","SIP/100-0001","SIP/trunk-0002","Dial","SIP/trunk/393409876543,30","2026-11-22 13:05:10","2026-11-22 13:05:15","2026-11-22 13:07:15","125","120","ANSWERED","DOCUMENTATION","1763813110.1",""
"","393401234567","393405550000","from-internal","","SIP/100-0003","","Dial","","2026-11-22 13:10:00","","2026-11-22 13:10:20","20","0","NO ANSWER","DOCUMENTATION","1763813400.3",""
"","0612345678","393401234567","from-trunk","","SIP/trunk-0004","SIP/100-0005","Dial","","2026-11-22 13:20:00","2026-11-22 13:20:04","2026-11-22 13:21:04","64","60","ANSWERED","DOCUMENTATION","1763814000.5",""
"#;
    let file = f.test.dir().join("Master.csv");
    std::fs::write(&file, csv).unwrap();
    let ingestor = f.ingestor(&[]);
    let o = ingestor.ingest_file(&file, "asterisk", "pbx").await.unwrap();
    assert_eq!((o.counts.rows_read, o.counts.rows_loaded, o.counts.quarantined), (3, 2, 1));
    let out =
        sql(&ingestor, "SELECT record_id, duration_s, CAST(start_time AS VARCHAR) AS t FROM usage ORDER BY record_id")
            .await;
    assert_eq!(
        out,
        "record_id,duration_s,t\nast-1763813110.1,120,2026-11-22T12:05:10Z\nast-1763813400.3,0,2026-11-22T12:10:00Z\n"
    );
}

#[path = "ingest/master.rs"]
mod master;
#[path = "ingest/sftp.rs"]
mod sftp;
