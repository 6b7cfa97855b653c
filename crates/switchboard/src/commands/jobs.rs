use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sb_jobs::{RunRecord, RunStatus};

use crate::app;
use crate::cli::JobsCommand;
use crate::config::Config;
use crate::output::{Output, table, when};

pub async fn run(cmd: &JobsCommand, config: &Config, out: Output) -> anyhow::Result<()> {
    let db = app::open_store(config).await?;
    let vault = std::sync::Arc::new(app::open_vault(config).await?);
    let monitor = match cmd {
        JobsCommand::Run { .. } => app::MonitorHandle::start(&db, config).await,
        _ => app::MonitorHandle::none(),
    };
    let ingestor = app::ingestor(&db, &vault, config, &monitor.monitor)?;
    let scheduler = app::scheduler(&db, &vault, &ingestor, config)?;
    let result = async {
        match cmd {
            JobsCommand::List => {
                let jobs = scheduler.list().await?;
                if out.json {
                    return out.json(&jobs);
                }
                let rows: Vec<Vec<String>> = jobs
                    .iter()
                    .map(|j| {
                        vec![
                            j.name.clone(),
                            format!("{} ({})", j.schedule, j.timezone),
                            if j.enabled { when(j.next_run) } else { "disabled".into() },
                            j.last_run
                                .as_ref()
                                .map_or("-".into(), |r| format!("{} {}", r.status, when(Some(r.started_at)))),
                            j.description.clone(),
                        ]
                    })
                    .collect();
                out.text(&table(&["job", "schedule", "next run", "last run", "what it does"], &rows))
            }
            JobsCommand::Run { name } => {
                let spinner = ProgressBar::new_spinner()
                    .with_style(ProgressStyle::with_template("{spinner} running {msg} ({elapsed})")?)
                    .with_message(name.clone());
                spinner.enable_steady_tick(Duration::from_millis(120));
                let run = scheduler.run_now(name).await;
                spinner.finish_and_clear();
                let run = run?;
                if out.json {
                    out.json(&run)?;
                } else {
                    out.text(&describe_run(&run))?;
                }
                anyhow::ensure!(run.status == RunStatus::Succeeded, "job `{name}` ended {}", run.status);
                Ok(())
            }
            JobsCommand::History { name, limit } => {
                let runs = scheduler.history(name.as_deref(), *limit).await?;
                if out.json {
                    return out.json(&runs);
                }
                let rows: Vec<Vec<String>> = runs
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.job.clone(),
                            r.trigger.to_string(),
                            when(Some(r.started_at)),
                            r.ended_at.map_or("-".into(), |e| format!("{:.1}s", (e - r.started_at).as_seconds_f64())),
                            r.status.to_string(),
                            counters(r),
                            r.error.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                out.text(&table(&["run", "job", "trigger", "started", "took", "status", "counters", "error"], &rows))
            }
        }
    }
    .await;
    monitor.stop().await;
    result
}

fn counters(r: &RunRecord) -> String {
    r.counters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

pub(crate) fn describe_run(r: &RunRecord) -> String {
    let took = r.ended_at.map_or(0.0, |e| (e - r.started_at).as_seconds_f64());
    let mut s = format!("run {} of {}: {} in {took:.2}s", r.id, r.job, r.status);
    if !r.counters.is_empty() {
        s.push_str(&format!("\n  {}", counters(r)));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!("\n  error: {e}"));
    }
    s
}
