//! The ingestor: sources → journal → pipeline → lake commit → consumers, crash-safe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use sb_core::{LineUsage, UsageBatch, UsageConsumer};
use sb_lake::Lake;
use sb_privacy::Vault;
use sb_store::sqlx;
use sb_store::{Db, time};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::alerts::{AlertKind, Alerts};
use crate::config::{IngestConfig, SourceConfig, SourceKind};
use crate::dedup::{self, Window};
use crate::journal::{Counts, FileState, Journal, JournalEntry};
use crate::layout::LayoutConfig;
use crate::outbox;
use crate::pipeline::{self, LoadFailure, LoadInput};
use crate::quarantine::{self, Quarantine};
use crate::source::Source;
use crate::source::folder::FolderSource;
use crate::{IngestError, crash_point};

/// What happened to one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    /// The source.
    pub source: String,
    /// The file.
    pub name: String,
    /// Where it stands now.
    pub state: FileState,
    /// Its counts (zero unless loaded).
    pub counts: Counts,
    /// Why it was rejected, or whose duplicate it is.
    pub reason: Option<String>,
    /// Seconds its load took.
    pub seconds: f64,
}

/// What a run did, summed over its files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// Files handled.
    pub files: u64,
    /// Files committed.
    pub committed: u64,
    /// Files that were duplicates of loaded ones.
    pub duplicate_files: u64,
    /// Files rejected.
    pub rejected: u64,
    /// Data rows read.
    pub rows_read: i64,
    /// Records loaded.
    pub rows_loaded: i64,
    /// Records dropped as duplicates.
    pub duplicates: i64,
    /// Rows quarantined.
    pub quarantined: i64,
    /// Wall time.
    pub seconds: f64,
    /// Rows read per second.
    pub rows_per_s: f64,
    /// Each file.
    pub outcomes: Vec<FileOutcome>,
}

impl RunSummary {
    fn add(&mut self, o: FileOutcome) {
        self.files += 1;
        match o.state {
            FileState::Committed | FileState::Loaded => self.committed += 1,
            FileState::Duplicate => self.duplicate_files += 1,
            FileState::Rejected => self.rejected += 1,
            _ => {}
        }
        self.rows_read += o.counts.rows_read;
        self.rows_loaded += o.counts.rows_loaded;
        self.duplicates += o.counts.duplicates;
        self.quarantined += o.counts.quarantined;
        self.outcomes.push(o);
    }

    fn finish(mut self, started: Instant) -> Self {
        self.seconds = started.elapsed().as_secs_f64();
        self.rows_per_s = self.rows_read as f64 / self.seconds.max(1e-9);
        self
    }
}

/// Loads files from sources into the lake.
pub struct Ingestor {
    db: Db,
    vault: Arc<Vault>,
    lake: Lake,
    data_dir: PathBuf,
    config: IngestConfig,
    layouts: BTreeMap<String, LayoutConfig>,
    recipients: Vec<sb_privacy::files::Recipient>,
    consumers: Vec<Arc<dyn UsageConsumer>>,
    journal: Journal,
    alerts: Alerts,
    /// One run at a time in this process (the scheduler's lock covers other processes).
    running: Mutex<Window>,
    /// The age identity that decrypts inbox copies, for replays.
    identity: Option<PathBuf>,
    /// Where calls to SFTP servers are recorded (the monitoring console).
    monitor: Arc<dyn sb_core::monitor::Monitor>,
}

fn now_ms() -> i64 {
    time::to_ms(Utc::now())
}

impl Ingestor {
    /// An ingestor writing the lake under `data_dir/lake`; `recipients` encrypt quarantine.
    pub fn new(
        db: Db,
        vault: Arc<Vault>,
        data_dir: &Path,
        config: IngestConfig,
        recipients: Vec<sb_privacy::files::Recipient>,
    ) -> Result<Self, IngestError> {
        let mut layouts = crate::layout::built_in();
        for (name, l) in &config.layouts {
            layouts.insert(name.clone(), l.clone());
        }
        for (name, s) in &config.sources {
            if !layouts.contains_key(&s.layout) {
                return Err(IngestError::Config(format!(
                    "ingest.sources.{name}.layout: no layout named `{}` (known: {})",
                    s.layout,
                    layouts.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            match s.kind {
                SourceKind::Folder if s.path.is_none() => {
                    return Err(IngestError::Config(format!(
                        "ingest.sources.{name}.path is needed for a folder source"
                    )));
                }
                SourceKind::Sftp if s.sftp.is_none() => {
                    return Err(IngestError::Config(format!(
                        "ingest.sources.{name}.sftp is needed for an sftp source"
                    )));
                }
                _ => {}
            }
        }
        let lake = Lake::open(data_dir.join("lake"))?;
        Ok(Self {
            journal: Journal::new(db.clone()),
            alerts: Alerts::new(db.clone(), config.alert_webhook.clone()),
            db,
            vault,
            lake,
            data_dir: data_dir.to_owned(),
            running: Mutex::new(Window::new(config.dedup_memory_ids, spill_dir(data_dir))),
            config,
            layouts,
            recipients,
            consumers: Vec::new(),
            identity: None,
            monitor: Arc::new(sb_core::monitor::NoMonitor),
        })
    }

    /// The age identity matching the recipients: lets `replay` read inbox copies, which are
    /// encrypted at rest once their file is committed.
    pub fn set_files_identity(&mut self, identity: PathBuf) {
        self.identity = Some(identity);
    }

    /// Encrypts a fetched file's inbox copy at rest once it is committed: raw usage files are
    /// personal data. The journal then points at the `.age` copy.
    async fn seal_inbox(&self, entry_id: i64, local: &Path) -> Result<(), IngestError> {
        if !local.exists() {
            return Ok(());
        }
        let sealed =
            local.with_file_name(format!("{}.age", local.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
        sb_privacy::files::encrypt_file(local, &sealed, &self.recipients)?;
        sqlx::query("UPDATE ingest_files SET path = $1 WHERE id = $2")
            .bind(sealed.to_string_lossy().into_owned())
            .bind(entry_id)
            .execute(self.db.pool())
            .await
            .map_err(sb_store::StoreError::from)?;
        std::fs::remove_file(local).map_err(|e| IngestError::Io(format!("cannot remove {}: {e}", local.display())))?;
        Ok(())
    }

    /// Registers a consumer of usage aggregates.
    pub fn add_consumer(&mut self, consumer: Arc<dyn UsageConsumer>) {
        self.consumers.push(consumer);
    }

    /// Records every call to an SFTP source into `monitor` (none by default).
    pub fn set_monitor(&mut self, monitor: Arc<dyn sb_core::monitor::Monitor>) {
        self.monitor = monitor;
    }

    /// Where calls to outside systems are recorded.
    pub fn monitor(&self) -> Arc<dyn sb_core::monitor::Monitor> {
        Arc::clone(&self.monitor)
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The alerts.
    pub fn alerts(&self) -> &Alerts {
        &self.alerts
    }

    /// The lake.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// The configured sources, by name.
    pub fn sources(&self) -> &BTreeMap<String, SourceConfig> {
        &self.config.sources
    }

    /// Every layout, by name.
    pub fn layouts(&self) -> &BTreeMap<String, LayoutConfig> {
        &self.layouts
    }

    fn source(&self, name: &str) -> Result<(Box<dyn Source>, &SourceConfig), IngestError> {
        let cfg = self.config.sources.get(name).ok_or_else(|| {
            IngestError::Config(format!(
                "no source named `{name}` (configured: {})",
                self.config.sources.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let min_age = Duration::from_secs(cfg.min_age_s);
        let source: Box<dyn Source> = match cfg.kind {
            SourceKind::Folder => Box::new(FolderSource::new(
                name,
                cfg.path.as_deref().unwrap_or(Path::new(".")),
                &cfg.pattern,
                min_age,
                cfg.after_commit,
                &cfg.move_to,
            )),
            // An SFTP server is an outside system: the monitoring console sees its calls.
            SourceKind::Sftp => Box::new(crate::source::Monitored {
                inner: self.sftp_source(name, cfg, min_age)?,
                monitor: Arc::clone(&self.monitor),
                system: format!("sftp:{name}"),
            }),
        };
        Ok((source, cfg))
    }

    fn sftp_source(&self, name: &str, cfg: &SourceConfig, min_age: Duration) -> Result<Box<dyn Source>, IngestError> {
        let sftp =
            cfg.sftp.as_ref().ok_or_else(|| IngestError::Config(format!("ingest.sources.{name}.sftp is missing")))?;
        Ok(Box::new(crate::source::sftp::SftpSource::new(
            name,
            sftp,
            &cfg.pattern,
            min_age,
            cfg.after_commit,
            &cfg.move_to,
        )?))
    }

    fn layout(&self, name: &str) -> Result<&LayoutConfig, IngestError> {
        self.layouts.get(name).ok_or_else(|| {
            IngestError::Config(format!(
                "no layout named `{name}` (known: {})",
                self.layouts.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("ingest").join("outbox")
    }

    fn read_outbox(&self, commit_id: &str) -> Result<Option<outbox::Header>, IngestError> {
        Ok(outbox::open(&self.outbox_dir(), commit_id)?.map(|(header, _)| header))
    }

    /// Finishes what a crash interrupted: lake commits half renamed, quarantine files of
    /// committed loads, files whose rows are in the lake but whose journal or consumers lag.
    pub async fn recover(&self) -> Result<u64, IngestError> {
        self.lake.recover()?;
        let snapshot = self.lake.snapshot()?;
        let mut finished = 0;
        let sources: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT source FROM ingest_files WHERE state IN ('LISTED', 'FETCHED', 'LOADED')",
        )
        .fetch_all(self.db.pool())
        .await
        .map_err(sb_store::StoreError::from)?;
        for source in sources {
            for entry in self.journal.unfinished(&source).await? {
                let commit_id = entry.commit_id.clone().unwrap_or_else(|| commit_key(&entry));
                if entry.state == FileState::Fetched && snapshot.ids.contains(&commit_id) {
                    let outbox = self.read_outbox(&commit_id)?.ok_or_else(|| {
                        IngestError::Io(format!(
                            "commit {commit_id} has no outbox: cannot finish {}/{}",
                            entry.source, entry.name
                        ))
                    })?;
                    self.publish_quarantine(&entry.source, &commit_id)?;
                    self.journal.loaded(entry.id, &commit_id, &outbox.counts, outbox.took_ms).await?;
                    self.finish(&entry, &outbox).await?;
                    finished += 1;
                } else if entry.state == FileState::Loaded {
                    let outbox = self.read_outbox(&commit_id)?.ok_or_else(|| {
                        IngestError::Io(format!(
                            "commit {commit_id} has no outbox: cannot finish {}/{}",
                            entry.source, entry.name
                        ))
                    })?;
                    self.publish_quarantine(&entry.source, &commit_id)?;
                    self.finish(&entry, &outbox).await?;
                    finished += 1;
                }
            }
        }
        // Quarantine files of loads that never committed.
        let qdir = self.data_dir.join("quarantine");
        if qdir.exists() {
            for src in
                std::fs::read_dir(&qdir).map_err(|e| IngestError::Io(format!("cannot list {}: {e}", qdir.display())))?
            {
                let dir = src.map_err(|e| IngestError::Io(e.to_string()))?.path();
                for f in std::fs::read_dir(&dir)
                    .map_err(|e| IngestError::Io(format!("cannot list {}: {e}", dir.display())))?
                {
                    let p = f.map_err(|e| IngestError::Io(e.to_string()))?.path();
                    if p.to_string_lossy().ends_with(".tmp") {
                        let _ = std::fs::remove_file(&p);
                    }
                }
            }
        }
        Ok(finished)
    }

    fn publish_quarantine(&self, source: &str, commit_id: &str) -> Result<(), IngestError> {
        let q = Quarantine::new(pipeline::quarantine_path(&self.data_dir, source, commit_id), Vec::new());
        let (tmp, fin) = q.paths();
        quarantine::publish(tmp, fin)?;
        Ok(())
    }

    /// Delivers the commit's totals to every consumer not served yet, then marks the file
    /// COMMITTED. A replay's consumers receive the difference from the commit it replaces.
    /// The totals go in batches of `ingest.delivery_lines` line-days, read from the outbox as they
    /// go: the first batch's key is the commit's, the next ones `<commit>.1`, `<commit>.2`, …
    /// Each is delivered exactly once per consumer, as recorded in `ingest_deliveries`.
    async fn finish(&self, entry: &JournalEntry, header: &outbox::Header) -> Result<(), IngestError> {
        let missing = |id: &str| IngestError::Io(format!("the outbox of commit {id} is missing"));
        let dir = self.outbox_dir();
        let own = outbox::open(&dir, &header.commit_id)?.ok_or_else(|| missing(&header.commit_id))?.1;
        let mut lines: Box<dyn Iterator<Item = Result<LineUsage, IngestError>> + Send> =
            match header.replaces.as_deref().map(|prev| outbox::open(&dir, prev)).transpose()?.flatten() {
                Some((_, old)) => Box::new(crate::aggregate::delta(old, own)),
                None => Box::new(own),
            };
        // An earlier version's outbox was delivered as one batch: keep it one.
        let per_batch = if header.legacy { usize::MAX } else { self.config.delivery_lines.max(1) };
        let mut next: Vec<LineUsage> = lines.by_ref().take(per_batch).collect::<Result<_, _>>()?;
        for part in 0.. {
            let batch = UsageBatch {
                key: if part == 0 { header.commit_id.clone() } else { format!("{}.{part}", header.commit_id) },
                source: entry.source.clone(),
                lines: std::mem::take(&mut next),
            };
            if part > 0 && batch.lines.is_empty() {
                break;
            }
            let last = batch.lines.len() < per_batch;
            // The next batch is read from the outbox here while consumers apply this one.
            let (delivered, following) = tokio::join!(self.deliver(entry, &batch), async {
                if last { Ok(Vec::new()) } else { lines.by_ref().take(per_batch).collect::<Result<Vec<_>, _>>() }
            });
            delivered?;
            if last {
                break;
            }
            next = following?;
        }
        self.journal.committed(entry.id).await?;
        Ok(())
    }

    /// Hands one batch to each consumer that has not received it yet.
    async fn deliver(&self, entry: &JournalEntry, batch: &UsageBatch) -> Result<(), IngestError> {
        for c in &self.consumers {
            let done: Option<i64> =
                sqlx::query_scalar("SELECT file_id FROM ingest_deliveries WHERE batch_key = $1 AND consumer = $2")
                    .bind(&batch.key)
                    .bind(c.name())
                    .fetch_optional(self.db.pool())
                    .await
                    .map_err(sb_store::StoreError::from)?;
            if done.is_some() {
                continue;
            }
            c.consume(batch)
                .await
                .map_err(|e| IngestError::Io(format!("consumer {} failed on {}: {e}", c.name(), batch.key)))?;
            crash_point("delivered");
            sqlx::query(
                "INSERT INTO ingest_deliveries (file_id, batch_key, consumer, delivered_at_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (batch_key, consumer) DO NOTHING",
            )
            .bind(entry.id)
            .bind(&batch.key)
            .bind(c.name())
            .bind(now_ms())
            .execute(self.db.pool())
            .await
            .map_err(sb_store::StoreError::from)?;
        }
        Ok(())
    }

    /// Lists, fetches and loads every new file of source `name`, after finishing what a
    /// crash left; raises alerts for missing hours and runs over budget.
    pub async fn run_source(
        &self,
        name: &str,
        progress: &(dyn Fn(&FileOutcome) + Sync),
    ) -> Result<RunSummary, IngestError> {
        let started = Instant::now();
        let (source, cfg) = self.source(name)?;
        let layout = self.layout(&cfg.layout)?;
        self.recover().await?;
        let mut summary = RunSummary::default();
        let listed = match source.list().await {
            Ok(l) => l,
            Err(e) => {
                self.alerts.raise(name, AlertKind::SourceDown, &hour_subject(Utc::now()), &e.to_string()).await?;
                return Err(e.into());
            }
        };
        let inbox = self.data_dir.join("inbox").join(name);
        for remote in listed {
            let entry = self.journal.listed(name, &remote.name, &cfg.layout, Some(remote.size as i64)).await?;
            let local = inbox.join(&remote.name);
            if entry.state.is_final() {
                if entry.state == FileState::Committed {
                    source.after_commit(&remote).await?;
                }
                self.seal_inbox(entry.id, &local).await?;
                continue;
            }
            if entry.state == FileState::Listed || !local.exists() {
                source.fetch(&remote, &local).await?;
                let (sha, size) = pipeline::sha256_file(&local)?;
                self.journal.fetched(entry.id, &local.to_string_lossy(), Some(&sha), size as i64).await?;
                crash_point("fetched");
            }
            let entry = self.journal.by_id(entry.id).await?;
            if entry.state.is_final() {
                continue;
            }
            let outcome = self.load_entry(&entry, &local, &cfg.layout, layout, false).await?;
            if matches!(outcome.state, FileState::Committed) {
                source.after_commit(&remote).await?;
            }
            if outcome.state.is_final() {
                self.seal_inbox(entry.id, &local).await?;
            }
            progress(&outcome);
            summary.add(outcome);
        }
        self.check_missing_hours(name, cfg, layout).await?;
        let summary = summary.finish(started);
        if summary.seconds > cfg.time_budget_s as f64 {
            let msg = format!("the run took {:.0} s, over the budget of {} s", summary.seconds, cfg.time_budget_s);
            self.alerts.raise(name, AlertKind::OverBudget, &hour_subject(Utc::now()), &msg).await?;
        }
        Ok(summary)
    }

    /// Loads one local file with `layout`, as source `source` (for operators and benchmarks).
    /// The same content is never loaded twice, whatever its name.
    pub async fn ingest_file(&self, path: &Path, layout_name: &str, source: &str) -> Result<FileOutcome, IngestError> {
        let layout = self.layout(layout_name)?;
        self.recover().await?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| IngestError::Config(format!("{} is not a file name", path.display())))?;
        let size =
            std::fs::metadata(path).map_err(|e| IngestError::Io(format!("cannot read {}: {e}", path.display())))?.len();
        let entry = self.journal.listed(source, name, layout_name, Some(size as i64)).await?;
        if entry.state.is_final() {
            return Ok(outcome_of(&entry, 0.0));
        }
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        self.journal.fetched(entry.id, &abs.to_string_lossy(), None, size as i64).await?;
        let entry = self.journal.by_id(entry.id).await?;
        self.load_entry(&entry, &abs, layout_name, layout, false).await
    }

    /// Loads a file again on purpose: its rows in the lake are replaced (not added) in one
    /// commit, and consumers receive the difference.
    pub async fn replay(&self, source: &str, name: &str) -> Result<FileOutcome, IngestError> {
        self.recover().await?;
        let entry = self.journal.get(source, name).await?.ok_or_else(|| {
            IngestError::Config(format!("no file {name} in source {source} (see `switchboard ingest files`)"))
        })?;
        let path =
            entry.path.clone().ok_or_else(|| IngestError::Config(format!("{source}/{name} was never fetched")))?;
        let layout = self.layout(&entry.layout)?;
        let layout_name = entry.layout.clone();
        if !path.ends_with(".age") {
            return self.load_entry(&entry, Path::new(&path), &layout_name, layout, true).await;
        }
        // The inbox copy is encrypted at rest: decrypt it beside itself for the load only.
        let identity = self
            .identity
            .clone()
            .ok_or_else(|| IngestError::Config("no files identity to decrypt the inbox copy".into()))?;
        let sealed = PathBuf::from(&path);
        let clear = sealed.with_file_name(format!(".{name}.replay"));
        sb_privacy::files::decrypt_file(&sealed, &clear, &identity)?;
        let result = self.load_entry(&entry, &clear, &layout_name, layout, true).await;
        let _ = std::fs::remove_file(&clear);
        result
    }

    async fn load_entry(
        &self,
        entry: &JournalEntry,
        path: &Path,
        layout_name: &str,
        layout: &LayoutConfig,
        replay: bool,
    ) -> Result<FileOutcome, IngestError> {
        let mut window_guard = self.running.lock().await;
        let started = Instant::now();
        let key = commit_key(entry);
        let previous = entry.commit_id.clone();
        let commit_id =
            if replay && previous.is_some() { format!("{key}-r{}", entry.replays + 1) } else { key.clone() };
        let snapshot = Arc::new(self.lake.snapshot()?);
        let mut fresh_window = Window::new(self.config.dedup_memory_ids, spill_dir(&self.data_dir));
        let window: &mut Window = if replay { &mut fresh_window } else { &mut window_guard };
        let input = LoadInput {
            path,
            file_name: &entry.name,
            source: &entry.source,
            layout: (layout_name, layout),
            commit_id: &commit_id,
            commit_key: &key,
            replay,
            timezone: self.config.timezone,
            batch_rows: self.config.batch_rows.max(1),
            pending_memory_ids: self.config.pending_memory_ids,
            aggregate_memory_lines: self.config.aggregate_memory_lines,
            parts: pipeline::PartLimits {
                open: self.config.open_parts.max(1),
                memory: self.config.parts_memory_mb.saturating_mul(1 << 20),
            },
            spill_dir: &spill_dir(&self.data_dir),
            quarantine: Quarantine::new(
                pipeline::quarantine_path(&self.data_dir, &entry.source, &commit_id),
                self.recipients.clone(),
            ),
        };
        let guard = CommitDeferredOnDrop(Some(Arc::clone(&self.vault)));
        let loaded = pipeline::load(&self.lake, Arc::clone(&snapshot), &self.vault, window, input).await;
        guard.disarm();
        let loaded = match loaded {
            Ok(l) => l,
            Err(LoadFailure::Rejected(reason)) => {
                self.journal.rejected(entry.id, &reason).await?;
                let msg = format!("{} rejected: {reason}", entry.name);
                self.alerts.raise(&entry.source, AlertKind::Rejected, &entry.name, &msg).await?;
                let e = self.journal.by_id(entry.id).await?;
                return Ok(outcome_of(&e, started.elapsed().as_secs_f64()));
            }
            Err(LoadFailure::Error(e)) => return Err(e),
        };
        self.journal.hashed(entry.id, &loaded.sha256, loaded.size as i64).await?;
        if !replay && let Some(original) = self.journal.loaded_with_hash(&loaded.sha256, entry.id).await? {
            loaded.staged.abort();
            loaded.quarantine.discard();
            self.journal.duplicate(entry.id, original.id).await?;
            let mut o = outcome_of(&self.journal.by_id(entry.id).await?, started.elapsed().as_secs_f64());
            o.reason = Some(format!("same content as {}/{}", original.source, original.name));
            return Ok(o);
        }
        let took_ms = started.elapsed().as_millis() as i64;
        let replaces = if replay { previous } else { None };
        let header = outbox::Header::new(commit_id.clone(), loaded.counts, took_ms, replaces);
        outbox::write(&self.outbox_dir(), &header, loaded.aggregates.into_lines())?;
        crash_point("staged");

        let mut staged = loaded.staged;
        if replay {
            for f in snapshot.by_key.get(&key).into_iter().flatten() {
                staged.remove(&f.path);
            }
        }
        // Days that fall out of the dedup window leave the lake in the same commit.
        let window_start = self.window_start(&loaded.pending);
        for path in window_start.map(|d| dedup::expired(&snapshot, &entry.source, d)).unwrap_or_default() {
            staged.remove(path);
        }
        staged.commit()?;
        crash_point("committed");
        loaded.quarantine.publish()?;
        self.journal.loaded(entry.id, &commit_id, &loaded.counts, took_ms).await?;
        if !replay {
            window_guard.absorb(&entry.source, loaded.pending);
        }
        if let Some(day) = window_start {
            window_guard.forget_before(&entry.source, day);
        }
        drop(window_guard);
        let committed_ms = started.elapsed().as_millis() as i64;
        let entry = self.journal.by_id(entry.id).await?;
        self.finish(&entry, &header).await?;
        let delivered_ms = started.elapsed().as_millis() as i64;
        // The next process then reads the vault's directory in a few rows (a speed-up only).
        if let Err(e) = self.vault.save_directory().await {
            tracing::warn!(error = %e, "the vault's directory was not saved; the next start reads it row by row");
        }
        if replay {
            self.journal.replayed(entry.id).await?;
        }
        let entry = self.journal.by_id(entry.id).await?;
        tracing::info!(
            source = %entry.source,
            file = %entry.name,
            rows_read = loaded.counts.rows_read,
            rows_loaded = loaded.counts.rows_loaded,
            duplicates = loaded.counts.duplicates,
            quarantined = loaded.counts.quarantined,
            load_ms = took_ms,
            commit_ms = committed_ms - took_ms,
            deliver_ms = delivered_ms - committed_ms,
            seconds = started.elapsed().as_secs_f64(),
            "file committed"
        );
        Ok(outcome_of(&entry, started.elapsed().as_secs_f64()))
    }

    /// The first day of the dedup window after a file whose records reach `pending`'s newest
    /// day (never later than today: a misdated file must not empty the window).
    fn window_start(&self, pending: &dedup::Pending) -> Option<NaiveDate> {
        let today = Utc::now().with_timezone(&self.config.timezone).date_naive();
        let newest = pending.newest_day()?.min(today);
        newest.checked_sub_days(chrono::Days::new(u64::from(self.config.dedup_window_days)))
    }

    /// Raises a `missing_file` alert for each hour, since the source's first file, whose
    /// file has not arrived `expected_deadline_min` minutes after the hour ended.
    async fn check_missing_hours(
        &self,
        name: &str,
        cfg: &SourceConfig,
        layout: &LayoutConfig,
    ) -> Result<(), IngestError> {
        if cfg.expected_deadline_min == 0 {
            return Ok(());
        }
        let Some(re) = layout.file_name.as_deref().and_then(|r| regex::Regex::new(r).ok()) else { return Ok(()) };
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM ingest_files WHERE source = $1")
            .bind(name)
            .fetch_all(self.db.pool())
            .await
            .map_err(sb_store::StoreError::from)?;
        let tz = self.config.timezone;
        let hours: std::collections::BTreeSet<chrono::DateTime<Utc>> = names
            .iter()
            .filter_map(|n| {
                let c = re.captures(n)?;
                let d = NaiveDate::parse_from_str(c.name("date")?.as_str(), "%Y%m%d").ok()?;
                let h: u32 = c.name("hour")?.as_str().parse().ok()?;
                tz.from_local_datetime(&d.and_hms_opt(h, 0, 0)?).earliest().map(|t| t.to_utc())
            })
            .collect();
        let (Some(first), Some(_)) = (hours.first().copied(), hours.last()) else { return Ok(()) };
        let deadline = chrono::Duration::minutes(i64::from(cfg.expected_deadline_min)) + chrono::Duration::hours(1);
        let now = Utc::now();
        let mut h = first;
        // Look back at most two days: older gaps were alerted already, or predate the source.
        if now - h > chrono::Duration::days(2) {
            h = now - chrono::Duration::days(2);
            h = Utc.timestamp_opt(h.timestamp() - h.timestamp().rem_euclid(3600), 0).single().unwrap_or(h);
        }
        while h + deadline <= now {
            if !hours.contains(&h) {
                let local = h.with_timezone(&tz);
                let subject = local.format("%Y-%m-%dT%H").to_string();
                let msg = format!(
                    "no file for {subject}:00 ({}) {} minutes after the hour ended",
                    tz.name(),
                    cfg.expected_deadline_min
                );
                self.alerts.raise(name, AlertKind::MissingFile, &subject, &msg).await?;
            }
            h += chrono::Duration::hours(1);
        }
        Ok(())
    }
}

fn hour_subject(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H").to_string()
}

/// The key of a file's lake commits: stable across replays.
fn commit_key(entry: &JournalEntry) -> String {
    let safe: String = entry.source.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{safe}-f{}", entry.id)
}

fn outcome_of(e: &JournalEntry, seconds: f64) -> FileOutcome {
    FileOutcome {
        source: e.source.clone(),
        name: e.name.clone(),
        state: e.state,
        counts: e.counts,
        reason: e.reason.clone(),
        seconds,
    }
}

/// Where a load writes what goes beyond its memory budgets, and the window its largest hours
/// (unnamed temporary files, gone when closed).
fn spill_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ingest").join("tmp")
}

/// Commits the vault's deferred tokens when a load is dropped half-way (its job cancelled or
/// timed out): they would otherwise hold the vault's write lock until its next use.
struct CommitDeferredOnDrop(Option<Arc<Vault>>);

impl CommitDeferredOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CommitDeferredOnDrop {
    fn drop(&mut self) {
        if let Some(vault) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = vault.commit_deferred(vault.deferred_mark()).await {
                    tracing::warn!(error = %e, "the deferred tokens of a cancelled load were not committed");
                }
            });
        }
    }
}
