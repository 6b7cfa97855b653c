//! `switchboard demo`: a demo operator end to end, and the data generator on its own.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use sb_jobs::{RunRecord, RunStatus};
use sb_sim::{GenerateConfig, GenerateSummary};
use serde::Serialize;

use crate::app;
use crate::cli::{DemoArgs, DemoCommand, GenerateArgs};
use crate::config::{Config, Sources};
use crate::output::Output;

pub async fn run(args: DemoArgs, sources: &Sources, config: Config, out: Output) -> anyhow::Result<()> {
    match args.command {
        Some(DemoCommand::Generate(g)) => {
            let started = Instant::now();
            let summary = generate(&generate_config(g)).await?;
            report_generation(&summary, started.elapsed(), out)
        }
        None => full_demo(&args, sources, config, out).await,
    }
}

/// What the main job did, for people and for `--json`.
#[derive(Debug, Serialize)]
struct DemoSummary {
    dir: std::path::PathBuf,
    operator: GenerateSummary,
    generate_seconds: f64,
    store: String,
    backend: &'static str,
    jobs: Vec<RunRecord>,
    lake: String,
    privacy_scan_files: u64,
    privacy_scan_findings: usize,
    seconds: f64,
}

async fn full_demo(args: &DemoArgs, sources: &Sources, mut config: Config, out: Output) -> anyhow::Result<()> {
    let started = Instant::now();
    if sources.data_dir.is_none() {
        config.data_dir = args.dir.join("data");
    }
    let mut generation = GenerateConfig::new(args.seed, args.dir.join("operator"));
    generation.customers = args.customers;
    generation.hours = args.hours;
    let operator = generate(&generation).await?;
    let generate_seconds = started.elapsed().as_secs_f64();
    // The demo operator's mediation drops its hourly files in a folder: one source reads it.
    config.ingest.sources.entry(generation.source_name.clone()).or_insert_with(|| sb_ingest::SourceConfig {
        kind: sb_ingest::SourceKind::Folder,
        layout: "reference".into(),
        pattern: format!("{}_*.cdr*", generation.source_name),
        min_age_s: 0,
        after_commit: sb_ingest::AfterCommit::Keep,
        move_to: "processed".into(),
        schedule: "5 * * * *".into(),
        expected_deadline_min: 0,
        time_budget_s: 3000,
        path: Some(generation.mediation_dir()),
        sftp: None,
    });

    // Its CRM database is the source of the master data.
    if config.ingest.master.url.is_none() {
        config.ingest.master.url = Some(generation.source_db_url().into());
    }

    let db = app::open_store(&config).await?;
    let vault = std::sync::Arc::new(app::open_vault(&config).await?);
    let monitor = app::MonitorHandle::start(&db, &config).await;
    let ingestor = app::ingestor(&db, &vault, &config, &monitor.monitor)?;
    let scheduler = app::scheduler(&db, &vault, &ingestor, &config)?;
    let mut jobs = Vec::new();
    for job in scheduler.list().await? {
        jobs.push(scheduler.run_now(&job.name).await.with_context(|| format!("running job {}", job.name))?);
    }
    monitor.stop().await;
    db.close().await;
    let mut lake_rows = Vec::new();
    sb_lake::run_sql(
        ingestor.lake(),
        "SELECT l.payment_type, u.record_type, COUNT(*) AS records, SUM(u.charge_eur) AS eur \
         FROM usage u JOIN dim_line l ON l.msisdn = u.line AND u.start_time >= l.valid_from \
         AND (l.valid_to IS NULL OR u.start_time < l.valid_to) \
         GROUP BY 1, 2 ORDER BY 1, 2",
        sb_lake::OutputFormat::Table,
        &mut lake_rows,
    )
    .await?;
    let scan = sb_privacy::Scanner::new().scan(&[config.data_dir.clone()])?;

    let summary = DemoSummary {
        dir: args.dir.clone(),
        operator,
        generate_seconds,
        store: sb_store::redact_url(&config.store_url()),
        backend: db.backend().as_str(),
        jobs,
        lake: String::from_utf8_lossy(&lake_rows).into_owned(),
        privacy_scan_files: scan.files,
        privacy_scan_findings: scan.findings.len(),
        seconds: started.elapsed().as_secs_f64(),
    };
    if out.json {
        out.json(&summary)?;
    } else {
        out.text(&describe(&summary))?;
    }
    let failed: Vec<&str> =
        summary.jobs.iter().filter(|r| r.status != RunStatus::Succeeded).map(|r| r.job.as_str()).collect();
    anyhow::ensure!(failed.is_empty(), "demo jobs did not succeed: {}", failed.join(", "));
    anyhow::ensure!(
        summary.privacy_scan_findings == 0,
        "cleartext personal data found in {}",
        config.data_dir.display()
    );
    Ok(())
}

fn describe(s: &DemoSummary) -> String {
    let o = &s.operator;
    let mut text = format!(
        "Demo operator in {dir}\n\n\
         Generated (seed-deterministic) in {gs:.1}s:\n  \
         {customers} customers, {lines} lines in the CRM source database\n  \
         {files} hourly usage files, {records} records ({dup} duplicate records, {dupf} duplicate files, \
         {bad} malformed rows injected, listed in the manifest)\n\n\
         Store: {store} ({backend})\n\nJobs:\n",
        dir = s.dir.display(),
        gs = s.generate_seconds,
        customers = o.customers,
        lines = o.lines,
        files = o.files,
        records = o.records,
        dup = o.duplicate_records,
        dupf = o.duplicate_files,
        bad = o.malformed_rows,
        store = s.store,
        backend = s.backend,
    );
    for r in &s.jobs {
        let counters: Vec<String> = r.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&format!("  {:<16} {:<10} {}\n", r.job, r.status.to_string(), counters.join(" ")));
    }
    text.push_str(&format!(
        "\nThe lake: usage per payment type (facts joined to the dim_line version of their time):\n{}\n\
         Privacy scan of {}: {} files, {} findings\n",
        s.lake.trim_end(),
        s.dir.join("data").display(),
        s.privacy_scan_files,
        s.privacy_scan_findings
    ));
    text.push_str(&format!(
        "\nDone in {:.1}s. Try: switchboard --data-dir {} jobs history\n",
        s.seconds,
        s.dir.join("data").display()
    ));
    text
}

fn generate_config(g: GenerateArgs) -> GenerateConfig {
    let mut c = GenerateConfig::new(g.seed, g.out);
    c.customers = g.customers;
    c.hours = g.hours;
    c.records = g.records;
    c.source_db = g.source_db;
    c.source_name = g.source_name;
    c.gzip = g.gzip;
    if let Some(start) = g.start {
        c.start = start;
    }
    if let Some(r) = g.duplicate_record_rate {
        c.duplicate_record_rate = r;
    }
    if let Some(r) = g.duplicate_file_rate {
        c.duplicate_file_rate = r;
    }
    if let Some(r) = g.malformed_rate {
        c.malformed_rate = r;
    }
    if let Some(r) = g.late_rate {
        c.late_rate = r;
    }
    if let Some(t) = g.threads {
        c.threads = t.max(1);
    }
    c
}

/// Runs the generator with a progress bar on a terminal (none otherwise).
async fn generate(config: &GenerateConfig) -> anyhow::Result<GenerateSummary> {
    let bar = ProgressBar::new_spinner().with_style(ProgressStyle::with_template(
        "{spinner} generating usage records: {human_pos} ({per_sec}, {elapsed})",
    )?);
    bar.enable_steady_tick(Duration::from_millis(120));
    let progress = |n: u64| bar.inc(n);
    let summary = sb_sim::generate(config, &progress).await;
    bar.finish_and_clear();
    summary.with_context(|| format!("generating operator data into {}", config.out.display()))
}

#[derive(Serialize)]
struct GenerateReport<'a> {
    #[serde(flatten)]
    summary: &'a GenerateSummary,
    seconds: f64,
    records_per_second: f64,
}

fn report_generation(summary: &GenerateSummary, took: Duration, out: Output) -> anyhow::Result<()> {
    let seconds = took.as_secs_f64();
    let rate = summary.records as f64 / seconds.max(1e-9);
    if out.json {
        return out.json(&GenerateReport { summary, seconds, records_per_second: rate });
    }
    out.text(&format!(
        "{} customers, {} lines, {} files, {} records ({} duplicate records, {} duplicate files, {} malformed rows) \
         in {seconds:.2}s ({rate:.0} records/s)",
        summary.customers,
        summary.lines,
        summary.files,
        summary.records,
        summary.duplicate_records,
        summary.duplicate_files,
        summary.malformed_rows,
    ))
}
