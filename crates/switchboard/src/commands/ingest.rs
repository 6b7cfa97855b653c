use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sb_ingest::{FileState, RunSummary};
use sb_lake::OutputFormat;

use crate::app;
use crate::cli::{IngestCommand, SqlArgs};
use crate::config::{Config, ConfigError};
use crate::output::{Output, table, when};

pub async fn run(cmd: IngestCommand, config: &Config, out: Output) -> anyhow::Result<()> {
    let db = app::open_store(config).await?;
    let vault = Arc::new(app::open_vault(config).await?);
    // Only the commands that reach SFTP servers or the operator's database start the bus.
    let monitor = match cmd {
        IngestCommand::Run { .. } | IngestCommand::Master => app::MonitorHandle::start(&db, config).await,
        _ => app::MonitorHandle::none(),
    };
    let ingestor = app::ingestor(&db, &vault, config, &monitor.monitor)?;
    let result = async {
        match cmd {
            IngestCommand::Run { source } => {
                let names: Vec<String> = match source {
                    Some(s) => vec![s],
                    None => ingestor.sources().keys().cloned().collect(),
                };
                if names.is_empty() {
                    return Err(ConfigError(
                        "no ingestion source is configured: add [ingest.sources.NAME] (docs/ingest.md)".into(),
                    )
                    .into());
                }
                let bar = spinner("loading")?;
                let mut total = RunSummary::default();
                for name in names {
                    bar.set_message(name.clone());
                    let s = ingestor
                        .run_source(&name, &|o| bar.println(format!("{} {}: {:?}", o.source, o.name, o.state)))
                        .await?;
                    total.files += s.files;
                    total.committed += s.committed;
                    total.duplicate_files += s.duplicate_files;
                    total.rejected += s.rejected;
                    total.rows_read += s.rows_read;
                    total.rows_loaded += s.rows_loaded;
                    total.duplicates += s.duplicates;
                    total.quarantined += s.quarantined;
                    total.seconds += s.seconds;
                    total.outcomes.extend(s.outcomes);
                }
                bar.finish_and_clear();
                total.rows_per_s = total.rows_read as f64 / total.seconds.max(1e-9);
                report(out, &total)
            }
            IngestCommand::File { path, layout, source } => {
                let bar = spinner(&path.display().to_string())?;
                let o = ingestor.ingest_file(&path, &layout, &source).await;
                bar.finish_and_clear();
                let o = o?;
                let mut s = RunSummary { seconds: o.seconds, ..RunSummary::default() };
                s.files = 1;
                match o.state {
                    FileState::Committed | FileState::Loaded => s.committed = 1,
                    FileState::Duplicate => s.duplicate_files = 1,
                    FileState::Rejected => s.rejected = 1,
                    _ => {}
                }
                s.rows_read = o.counts.rows_read;
                s.rows_loaded = o.counts.rows_loaded;
                s.duplicates = o.counts.duplicates;
                s.quarantined = o.counts.quarantined;
                s.rows_per_s = s.rows_read as f64 / s.seconds.max(1e-9);
                let rejected = o.state == FileState::Rejected;
                let reason = o.reason.clone();
                s.outcomes.push(o);
                report(out, &s)?;
                anyhow::ensure!(!rejected, "the file was rejected: {}", reason.unwrap_or_default());
                Ok(())
            }
            IngestCommand::Files { state, source, limit } => {
                let state = match state {
                    Some(s) => Some(FileState::parse(&s).ok_or_else(|| {
                        ConfigError(format!(
                            "unknown state `{s}`: expected LISTED, FETCHED, LOADED, COMMITTED, REJECTED or DUPLICATE"
                        ))
                    })?),
                    None => None,
                };
                let files = ingestor.journal().list(state, source.as_deref(), limit).await?;
                if out.json {
                    return out.json(&files);
                }
                let rows: Vec<Vec<String>> = files
                    .iter()
                    .map(|f| {
                        vec![
                            f.source.clone(),
                            f.name.clone(),
                            f.state.as_str().to_owned(),
                            f.counts.rows_read.to_string(),
                            f.counts.rows_loaded.to_string(),
                            f.counts.duplicates.to_string(),
                            f.counts.quarantined.to_string(),
                            when(f.committed_at_ms.map(sb_store::time::from_ms)),
                            f.reason.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                out.text(&table(
                    &["source", "file", "state", "read", "loaded", "dup", "quar", "committed", "reason"],
                    &rows,
                ))
            }
            IngestCommand::Replay { name, source } => {
                let o = ingestor.replay(&source, &name).await?;
                if out.json {
                    return out.json(&o);
                }
                out.text(&format!(
                    "{}/{} replayed: {} read, {} loaded (its earlier rows replaced), {} duplicates, {} quarantined",
                    o.source,
                    o.name,
                    o.counts.rows_read,
                    o.counts.rows_loaded,
                    o.counts.duplicates,
                    o.counts.quarantined
                ))
            }
            IngestCommand::Master => {
                if config.ingest.master.url.is_none() {
                    return Err(ConfigError(
                        "ingest.master.url is not set (SWITCHBOARD__INGEST__MASTER__URL or ingest.master.url_file)"
                            .into(),
                    )
                    .into());
                }
                // Through the scheduler, so that it never runs beside the scheduled job.
                let scheduler = app::scheduler(&db, &vault, &ingestor, config)?;
                let run = scheduler.run_now("ingest.master").await?;
                if out.json {
                    out.json(&run)?;
                } else {
                    out.text(&crate::commands::jobs::describe_run(&run))?;
                }
                anyhow::ensure!(
                    run.status == sb_jobs::RunStatus::Succeeded,
                    "the master-data load ended {}",
                    run.status
                );
                Ok(())
            }
            IngestCommand::Alerts => {
                let alerts = ingestor.alerts().open(100).await?;
                if out.json {
                    return out.json(&alerts);
                }
                let rows: Vec<Vec<String>> = alerts
                    .iter()
                    .map(|a| {
                        vec![
                            when(Some(sb_store::time::from_ms(a.at_ms))),
                            a.source.clone(),
                            a.kind.clone(),
                            a.message.clone(),
                        ]
                    })
                    .collect();
                out.text(&table(&["at", "source", "kind", "message"], &rows))
            }
            IngestCommand::Layouts => {
                if out.json {
                    return out.json(ingestor.layouts());
                }
                let rows: Vec<Vec<String>> = ingestor
                    .layouts()
                    .iter()
                    .map(|(n, l)| vec![n.clone(), l.fields.len().to_string(), l.description.clone()])
                    .collect();
                out.text(&table(&["layout", "fields", "description"], &rows))
            }
        }
    }
    .await;
    monitor.stop().await;
    result
}

fn spinner(what: &str) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} ingesting {msg} ({elapsed})")?)
        .with_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    Ok(bar)
}

fn report(out: Output, s: &RunSummary) -> anyhow::Result<()> {
    if out.json {
        return out.json(s);
    }
    out.text(&format!(
        "{} file(s): {} committed, {} duplicate file(s), {} rejected\n{} rows read = {} loaded + {} duplicates + {} quarantined\n{:.2} s, {:.0} rows/s",
        s.files, s.committed, s.duplicate_files, s.rejected, s.rows_read, s.rows_loaded, s.duplicates, s.quarantined, s.seconds, s.rows_per_s
    ))
}

pub async fn sql(args: &SqlArgs, config: &Config, _out: Output) -> anyhow::Result<()> {
    let format: OutputFormat = args.format.parse().map_err(ConfigError)?;
    let lake = sb_lake::Lake::open(config.data_dir.join("lake"))?;
    let mut stdout = std::io::stdout().lock();
    sb_lake::run_sql(&lake, &args.query, format, &mut stdout).await?;
    Ok(())
}
