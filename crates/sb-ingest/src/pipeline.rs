//! One file through the whole path: read (plain or gzip, hashing as it goes), validate,
//! deduplicate, protect, write Parquet under staging names, sum per line. Nothing is visible
//! until the caller commits what this returns.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Builder, Decimal128Builder, Int32Builder, Int64Builder, StringArray, StringBuilder,
    TimestampMicrosecondBuilder, UInt32Array,
};
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use sb_core::UsageKind;
use sb_lake::{Lake, PartWriter, Snapshot, Staged, schema};
use sb_privacy::{PiiKind, Subject, Vault};
use sha2::{Digest, Sha256};

use crate::aggregate::{Aggregates, Aggregator};
use crate::dedup::{self, Window};
use crate::journal::Counts;
use crate::layout::{CompiledLayout, LayoutConfig};
use crate::quarantine::Quarantine;
use crate::rows::{self, Batch, Row, Span};
use crate::{FastMap, IngestError, protect};

/// What to load, and where it goes.
pub struct LoadInput<'a> {
    /// The file to read.
    pub path: &'a Path,
    /// Its name at the source (gives its hour).
    pub file_name: &'a str,
    /// The source it came from.
    pub source: &'a str,
    /// Its layout's name and definition.
    pub layout: (&'a str, &'a LayoutConfig),
    /// The lake commit to stage.
    pub commit_id: &'a str,
    /// The key its lake files are found by (the same across replays).
    pub commit_key: &'a str,
    /// When replaying: the file's own earlier ids do not count as duplicates.
    pub replay: bool,
    /// Timezone of partitions.
    pub timezone: Tz,
    /// Rows per batch.
    pub batch_rows: usize,
    /// The file's record ids held in memory at most (`ingest.pending_memory_ids`).
    pub pending_memory_ids: usize,
    /// The file's per-line totals held in memory at most (`ingest.aggregate_memory_lines`).
    pub aggregate_memory_lines: usize,
    /// The lake parts written at once, and the memory they may hold.
    pub parts: PartLimits,
    /// Where what goes beyond those budgets is written (unnamed temporary files).
    pub spill_dir: &'a Path,
    /// The quarantine file to write if rows fail.
    pub quarantine: Quarantine,
}

/// A load ready to commit.
pub struct Loaded {
    /// The staged lake commit.
    pub staged: Staged,
    /// What it counted.
    pub counts: Counts,
    /// SHA-256 of the file as delivered.
    pub sha256: String,
    /// Bytes of the file as delivered.
    pub size: u64,
    /// Per-line totals for consumers.
    pub aggregates: Aggregates,
    /// Record ids to add to the dedup window once the file commits.
    pub pending: dedup::Pending,
    /// The closed quarantine file (publish after the commit).
    pub quarantine: Quarantine,
}

/// Why a load did not produce anything to commit.
#[derive(Debug)]
pub enum LoadFailure {
    /// The file as a whole is unusable; the reason is for operators (no personal data).
    Rejected(String),
    /// Something else failed (I/O, the vault, the lake); nothing was committed, retry later.
    Error(IngestError),
}

impl From<IngestError> for LoadFailure {
    fn from(e: IngestError) -> Self {
        Self::Error(e)
    }
}

/// Hashes what it reads, so the content hash costs no second pass. The state is shared
/// because the reader ends up boxed behind the gzip decoder.
struct Hashing<R> {
    inner: R,
    state: Arc<std::sync::Mutex<(Sha256, u64)>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0.update(&buf[..n]);
        s.1 += n as u64;
        Ok(n)
    }
}

/// The file's hour, from its name and the layout's `file_name` pattern.
fn file_hour(layout: &CompiledLayout, name: &str, tz: Tz) -> Option<DateTime<chrono::Utc>> {
    let caps = layout.file_name.as_ref()?.captures(name)?;
    let date = NaiveDate::parse_from_str(caps.name("date")?.as_str(), "%Y%m%d").ok()?;
    let hour: u32 = caps.name("hour")?.as_str().parse().ok()?;
    tz.from_local_datetime(&date.and_hms_opt(hour, 0, 0)?).earliest().map(|t| t.to_utc())
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

/// Reads, validates, deduplicates, protects and stages one file.
///
/// The new tokens it makes wait in the vault's deferred transaction (a few large
/// transactions for the file instead of three a batch: see
/// [`Vault::tokenize_column_deferred`]) and are committed before this returns, whether the
/// load succeeded or not; should that commit fail, so does the load, with nothing staged.
pub async fn load(
    lake: &Lake,
    snapshot: Arc<Snapshot>,
    vault: &Vault,
    window: &mut Window,
    input: LoadInput<'_>,
) -> Result<Loaded, LoadFailure> {
    let mark = vault.deferred_mark();
    let loaded = stage(lake, snapshot, vault, window, input).await;
    let committed = vault.commit_deferred(mark).await;
    match (loaded, committed) {
        (Ok(loaded), Ok(())) => Ok(loaded),
        (Ok(loaded), Err(e)) => {
            loaded.staged.abort();
            loaded.quarantine.discard();
            Err(IngestError::from(e).into())
        }
        (Err(failure), _) => Err(failure),
    }
}

async fn stage(
    lake: &Lake,
    snapshot: Arc<Snapshot>,
    vault: &Vault,
    window: &mut Window,
    mut input: LoadInput<'_>,
) -> Result<Loaded, LoadFailure> {
    let (layout_name, layout_cfg) = input.layout;
    let file = std::fs::File::open(input.path)
        .map_err(|e| IngestError::Io(format!("cannot open {}: {e}", input.path.display())))?;
    let hash_state = Arc::new(std::sync::Mutex::new((Sha256::new(), 0u64)));
    let hashing = Hashing { inner: file, state: Arc::clone(&hash_state) };
    let gz = input.file_name.ends_with(".gz");
    let mut reader: Box<dyn BufRead + Send> = if gz {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, hashing)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, hashing))
    };
    let name = input.path.display().to_string();
    let read_err = |e: std::io::Error| rows::read_failure(gz, &name, &e);

    let mut line = Vec::with_capacity(512);
    let mut first_line: u64 = 0;
    let header = if layout_cfg.header {
        let (n, cut) = rows::read_line(&mut *reader, &mut line, rows::MAX_LINE).map_err(read_err)?;
        if n == 0 {
            return Err(LoadFailure::Rejected("the file is empty".into()));
        }
        if cut {
            return Err(LoadFailure::Rejected(format!("the header is longer than {} bytes", rows::MAX_LINE)));
        }
        first_line = 1;
        let text =
            std::str::from_utf8(&line).map_err(|_| LoadFailure::Rejected("the header is not UTF-8 text".into()))?;
        let text = text.trim_end_matches(['\n', '\r']);
        let delimiter = layout_cfg.delimiter;
        Some(text.split(delimiter).map(|s| s.trim().trim_matches('"').to_owned()).collect::<Vec<_>>())
    } else {
        None
    };
    let layout = layout_cfg
        .compile(layout_name, header.as_deref())
        .map_err(|e| LoadFailure::Rejected(format!("wrong layout: {e}")))?;
    let file_hour = file_hour(&layout, input.file_name, input.timezone);
    // The window goes to the reading thread and comes back at the end of the file; should
    // the load fail, an empty window takes its place and reads the lake again when asked.
    let dedup = rows::Dedup {
        window: window.take(),
        pending: dedup::Pending::new(input.pending_memory_ids, input.spill_dir.to_path_buf()),
        lake: lake.clone(),
        snapshot,
        skip_key: input.replay.then(|| input.commit_key.to_owned()),
    };
    let mut batches = rows::spawn(rows::ReadJob {
        reader,
        layout,
        file_hour,
        timezone: input.timezone,
        source: input.source.to_owned(),
        batch_rows: input.batch_rows,
        first_line,
        gzip: gz,
        name,
        dedup,
    })?;

    let staged = lake.stage(input.commit_id, Some(input.commit_key)).map_err(|e| IngestError::Io(e.to_string()))?;
    let aggregates = Aggregator::new(input.aggregate_memory_lines, input.spill_dir.to_path_buf());
    let mut parts = PartsWriter::spawn(
        staged,
        aggregates,
        input.source,
        input.commit_key,
        input.parts,
        input.spill_dir.to_path_buf(),
    )?;
    let mut counts = Counts::default();
    let mut cell_areas: FastMap<i64, Option<Arc<str>>> = FastMap::default();
    let provisional = Subject::Provisional;
    let mut months: FastMap<(i32, u32), Subject> = FastMap::default();

    let pending = loop {
        let mut batch = match batches.recv().await {
            Some(Ok(rows::Read::Batch(batch))) => batch,
            Some(Ok(rows::Read::End(dedup))) => {
                *window = dedup.window;
                break dedup.pending;
            }
            Some(Err(failure)) => return Err(failure),
            None => return Err(IngestError::Io("the reading thread stopped before the end of the file".into()).into()),
        };
        counts.rows_read += batch.read;
        for bad in &batch.bad {
            input.quarantine.push(bad.line_no, &bad.error, &bad.raw)?;
            counts.quarantined += 1;
        }
        // Deduplicated on the reading thread.
        counts.duplicates += batch.duplicates;
        let keep = std::mem::take(&mut batch.keep);
        let ids = std::mem::take(&mut batch.ids);
        counts.rows_loaded += keep.len() as i64;
        if keep.is_empty() {
            // Every row was a duplicate: no new ids, nothing to write.
            continue;
        }
        let rows: Vec<&Row> = keep.iter().map(|&i| &batch.rows[i]).collect();

        // Protect: every personal field through the vault's policy. The line's tokens come
        // before the other parties' (a customer's number keeps its line's token); the IMSIs'
        // and IMEIs' are found meanwhile, so that while one kind's new tokens are written to
        // the vault (on the database's thread), another kind's are looked up or made here.
        let text = |s: Option<Span>| s.map(|s| batch.text(s));
        let msisdn: Vec<Option<&str>> = rows.iter().map(|r| Some(batch.text(r.msisdn))).collect();
        let imsi: Vec<Option<&str>> = rows.iter().map(|r| text(r.imsi)).collect();
        let imei: Vec<Option<&str>> = rows.iter().map(|r| text(r.imei)).collect();
        let other: Vec<Option<&str>> = rows.iter().map(|r| text(r.other_party)).collect();
        let subjects = vec![&provisional; rows.len()];
        for r in &rows {
            let day = r.hour.0;
            months
                .entry((day.year(), day.month()))
                .or_insert_with(|| Subject::OtherParty { month: day.format("%Y-%m").to_string() });
        }
        let month_subjects: Vec<&Subject> =
            rows.iter().map(|r| &months[&(r.hour.0.year(), r.hour.0.month())]).collect();
        let ((lines, others), imsis, imeis) = tokio::try_join!(
            async {
                let lines = protect::column(vault, PiiKind::Msisdn, &msisdn, &subjects).await?;
                let others = protect::column(vault, PiiKind::OtherParty, &other, &month_subjects).await?;
                Ok::<_, IngestError>((lines, others))
            },
            protect::column(vault, PiiKind::Imsi, &imsi, &subjects),
            protect::column(vault, PiiKind::Imei, &imei, &subjects),
        )?;
        // A few thousand cells serve millions of records: each is generalised once per file.
        let new_cells: Vec<i64> = {
            let mut seen = std::collections::HashSet::new();
            rows.iter().filter_map(|r| r.cell_id).filter(|c| !cell_areas.contains_key(c) && seen.insert(*c)).collect()
        };
        if !new_cells.is_empty() {
            let text: Vec<String> = new_cells.iter().map(i64::to_string).collect();
            let values: Vec<Option<&str>> = text.iter().map(|t| Some(t.as_str())).collect();
            let areas = protect::column(vault, PiiKind::CellId, &values, &subjects[..values.len()]).await?;
            cell_areas.extend(new_cells.into_iter().zip(areas.iter().map(|a| a.map(Arc::from))));
        }
        let cells: Vec<Option<Arc<str>>> =
            rows.iter().map(|r| r.cell_id.and_then(|c| cell_areas[&c].clone())).collect();
        drop(rows);

        // Sums, Arrow and Parquet happen on the writing thread, while the next batch is protected.
        parts.write(Protected { batch, ids, keep, lines, imsis, imeis, others, cells }).await?;
    };

    let (staged, aggregates) = parts.finish().await?;
    if pending.runs() + aggregates.runs() > 0 {
        tracing::info!(
            id_runs = pending.runs(),
            totals_runs = aggregates.runs(),
            "record ids and per-line totals beyond their memory budgets went to disk"
        );
    }
    input.quarantine.close()?;
    if counts.rows_read == 0 {
        staged.abort();
        input.quarantine.discard();
        return Err(LoadFailure::Rejected("the file holds no rows".into()));
    }
    // Everything was read to the end, so the hash covers the whole file.
    let (sha256, size) = {
        let mut s = hash_state.lock().unwrap_or_else(|p| p.into_inner());
        (hex::encode(std::mem::take(&mut s.0).finalize()), s.1)
    };
    Ok(Loaded { staged, counts, sha256, size, aggregates, pending, quarantine: input.quarantine })
}

fn lake_err(e: sb_lake::LakeError) -> LoadFailure {
    LoadFailure::Error(IngestError::Io(e.to_string()))
}

/// SHA-256 of a file's bytes, and its size.
pub fn sha256_file(path: &Path) -> Result<(String, u64), IngestError> {
    let mut f =
        std::fs::File::open(path).map_err(|e| IngestError::Io(format!("cannot open {}: {e}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| IngestError::Io(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(h.finalize()), size))
}

/// A deduplicated, protected batch on its way to the lake.
struct Protected {
    batch: Batch,
    /// New record ids per event hour (to the `_dedup` parts).
    ids: FastMap<dedup::Hour, Vec<u128>>,
    /// The rows kept (not duplicates), as indices into `batch.rows`; the columns below are
    /// in this order.
    keep: Vec<usize>,
    lines: StringArray,
    imsis: StringArray,
    imeis: StringArray,
    others: StringArray,
    cells: Vec<Option<Arc<str>>>,
}

/// Which part a batch goes to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Usage(NaiveDate, u32),
    Topups(NaiveDate, u32),
    Ids(dedup::Hour),
}

/// The second half of a load, on a thread of its own: per-line sums, Arrow columns, Parquet
/// encoding and compression. The loader hands over each protected batch and goes on with the
/// next one (the vault, whose database works on a thread of its own too). At
/// most a few batches wait between the two.
struct PartsWriter {
    tx: Option<tokio::sync::mpsc::Sender<Protected>>,
    done: tokio::sync::oneshot::Receiver<Result<(Staged, Aggregates), LoadFailure>>,
}

/// How many lake parts a file writes at once, and the memory they may hold.
#[derive(Debug, Clone, Copy)]
pub struct PartLimits {
    /// Parts open at once, at least 1 (`ingest.open_parts`).
    pub open: usize,
    /// Bytes their row groups in progress hold at most (`ingest.parts_memory_mb`).
    pub memory: usize,
}

/// What the writing thread keeps.
///
/// A file's rows usually go to a few parts (its hour and an hour or two of late records, in
/// `usage`, `topups` and `_dedup`), each filling its row groups. A file spread over many
/// hours (a backlog delivered late) would keep a part open per hour, and their row groups
/// together would hold most of the file in memory. So at most `limits.open` parts are
/// written at once; the rows of further hours wait in temporary files (Arrow IPC, unnamed,
/// under the spill directory) and become parts one at a time once the rest is written. And
/// should the open parts still hold more than `limits.memory`, the largest are finished
/// early: more rows of their hour go to a new part.
struct Writing {
    staged: Staged,
    writers: HashMap<Part, Open>,
    /// The parts that are not open: their rows wait in temporary files.
    waiting: HashMap<Part, StreamWriter<std::io::BufWriter<std::fs::File>>>,
    /// The bytes the open parts' row groups in progress hold, as last measured (the sum of
    /// `Open::buffered`).
    buffered: usize,
    limits: PartLimits,
    spill_dir: PathBuf,
    /// The most the open parts held at once, and the parts finished early.
    peak: usize,
    early: usize,
    aggregates: Aggregator,
    source: String,
    commit_key: String,
}

/// A part being written, and the bytes its row group in progress held after its last write.
struct Open {
    writer: PartWriter,
    buffered: usize,
}

impl Part {
    /// Its dataset, schema and partition.
    fn target(self) -> (&'static str, arrow::datatypes::SchemaRef, (NaiveDate, u32)) {
        match self {
            Part::Usage(d, h) => ("usage", Arc::clone(&schema::USAGE), (d, h)),
            Part::Topups(d, h) => ("topups", Arc::clone(&schema::TOPUPS), (d, h)),
            Part::Ids(hour) => (dedup::DATASET, Arc::clone(&dedup::SCHEMA), hour),
        }
    }
}

impl Writing {
    fn spill_err(&self, e: impl std::fmt::Display) -> LoadFailure {
        IngestError::Io(format!("cannot keep rows in a temporary file under {}: {e}", self.spill_dir.display())).into()
    }

    fn write(&mut self, part: Part, batch: &RecordBatch) -> Result<(), LoadFailure> {
        if !self.writers.contains_key(&part)
            && (self.waiting.contains_key(&part) || self.writers.len() >= self.limits.open)
        {
            return self.wait(part, batch);
        }
        let open = match self.writers.entry(part) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let (dataset, schema, partition) = part.target();
                let writer = self.staged.part(dataset, schema, Some(partition)).map_err(lake_err)?;
                v.insert(Open { writer, buffered: 0 })
            }
        };
        open.writer.write(batch).map_err(lake_err)?;
        let now = open.writer.buffered_bytes();
        self.buffered = self.buffered - open.buffered + now;
        open.buffered = now;
        self.peak = self.peak.max(self.buffered);
        if self.buffered > self.limits.memory {
            self.finish_largest()?;
        }
        Ok(())
    }

    /// Appends rows of a part that is not open to its temporary file.
    fn wait(&mut self, part: Part, batch: &RecordBatch) -> Result<(), LoadFailure> {
        if !self.waiting.contains_key(&part) {
            std::fs::create_dir_all(&self.spill_dir).map_err(|e| self.spill_err(e))?;
            let file = tempfile::tempfile_in(&self.spill_dir).map_err(|e| self.spill_err(e))?;
            let writer = StreamWriter::try_new(std::io::BufWriter::with_capacity(64 << 10, file), &part.target().1)
                .map_err(|e| self.spill_err(e))?;
            self.waiting.insert(part, writer);
        }
        let written = self.waiting.get_mut(&part).expect("inserted above").write(batch);
        written.map_err(|e| self.spill_err(e))
    }

    /// Finishes the open parts holding the most until they hold at most half the budget. A
    /// finished part is closed for good (its memory and its metadata go).
    fn finish_largest(&mut self) -> Result<(), LoadFailure> {
        let mut largest: Vec<(usize, Part)> = self.writers.iter().map(|(p, o)| (o.buffered, *p)).collect();
        largest.sort_unstable_by_key(|l| std::cmp::Reverse(l.0));
        for (buffered, part) in largest {
            if self.buffered <= self.limits.memory / 2 {
                break;
            }
            let open = self.writers.remove(&part).expect("listed above");
            self.staged.add(open.writer.finish().map_err(lake_err)?);
            self.buffered -= buffered;
            self.early += 1;
        }
        Ok(())
    }

    /// Finishes every part: the open ones, then those that waited, one at a time.
    fn finish(&mut self) -> Result<(), LoadFailure> {
        let (open, waited, peak_mb, early) = (self.writers.len(), self.waiting.len(), self.peak >> 20, self.early);
        if waited + early > 0 {
            tracing::info!(
                open,
                waited,
                peak_mb,
                early,
                "the file's records span many hours: parts written in turn (ingest.open_parts, ingest.parts_memory_mb)"
            );
        } else {
            tracing::debug!(open, peak_mb, "parts written");
        }
        for (_, open) in std::mem::take(&mut self.writers) {
            self.staged.add(open.writer.finish().map_err(lake_err)?);
        }
        for (part, waiting) in std::mem::take(&mut self.waiting) {
            let mut file = waiting
                .into_inner()
                .map_err(|e| self.spill_err(e))?
                .into_inner()
                .map_err(|e| self.spill_err(e.into_error()))?;
            file.seek(std::io::SeekFrom::Start(0)).map_err(|e| self.spill_err(e))?;
            let rows = arrow::ipc::reader::StreamReader::try_new(BufReader::with_capacity(1 << 20, file), None)
                .map_err(|e| self.spill_err(e))?;
            let (dataset, schema, partition) = part.target();
            let mut writer = self.staged.part(dataset, schema, Some(partition)).map_err(lake_err)?;
            for batch in rows {
                writer.write(&batch.map_err(|e| self.spill_err(e))?).map_err(lake_err)?;
            }
            self.staged.add(writer.finish().map_err(lake_err)?);
        }
        Ok(())
    }

    fn take(&mut self, p: &Protected) -> Result<(), LoadFailure> {
        // The batch's new ids go to the `_dedup` parts as they come (memory keeps the sets only).
        for (hour, ids) in &p.ids {
            self.write(Part::Ids(*hour), &dedup::batch(*hour, ids)?)?;
        }
        let rows: Vec<&Row> = p.keep.iter().map(|&i| &p.batch.rows[i]).collect();
        let mut groups: FastMap<(bool, NaiveDate, u32), Vec<u32>> = FastMap::default();
        if p.lines.null_count() > 0 {
            return Err(IngestError::Config("the msisdn policy must not drop the line".into()).into());
        }
        for (i, r) in rows.iter().enumerate() {
            self.aggregates.add(p.lines.value(i), r.hour.0, r);
            groups.entry((r.kind.is_topup(), r.hour.0, r.hour.1)).or_default().push(i as u32);
        }
        self.aggregates.spill_if_full()?;
        let cols = Columns {
            batch: &p.batch,
            rows: &rows,
            lines: &p.lines,
            imsis: &p.imsis,
            imeis: &p.imeis,
            others: &p.others,
            cells: &p.cells,
        };
        for ((topup, day, hour), idx) in groups {
            let idx = UInt32Array::from(idx);
            let batch = if topup {
                cols.topups(&self.source, &self.commit_key, &idx)
            } else {
                cols.usage(&self.source, &self.commit_key, &idx)
            }
            .map_err(|e| IngestError::Io(format!("cannot build a batch: {e}")))?;
            self.write(if topup { Part::Topups(day, hour) } else { Part::Usage(day, hour) }, &batch)?;
        }
        Ok(())
    }
}

impl PartsWriter {
    fn spawn(
        staged: Staged,
        aggregates: Aggregator,
        source: &str,
        commit_key: &str,
        limits: PartLimits,
        spill_dir: PathBuf,
    ) -> Result<Self, LoadFailure> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Protected>(1);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let mut w = Writing {
            staged,
            writers: HashMap::new(),
            waiting: HashMap::new(),
            buffered: 0,
            limits,
            spill_dir,
            peak: 0,
            early: 0,
            aggregates,
            source: source.to_owned(),
            commit_key: commit_key.to_owned(),
        };
        std::thread::Builder::new()
            .name("ingest-write".into())
            .spawn(move || {
                let result = (|| {
                    while let Some(p) = rx.blocking_recv() {
                        w.take(&p)?;
                    }
                    w.finish()?;
                    Ok(())
                })();
                // A failed load's staged files are left for the lake's recovery to delete.
                let _ = done_tx.send(result.map(|()| (w.staged, w.aggregates.finish())));
            })
            .map_err(|e| LoadFailure::Error(IngestError::Io(format!("cannot start a writing thread: {e}"))))?;
        Ok(Self { tx: Some(tx), done })
    }

    /// Hands a batch over; if the thread stopped, its error.
    async fn write(&mut self, p: Protected) -> Result<(), LoadFailure> {
        let sent = match &self.tx {
            Some(tx) => tx.send(p).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        self.tx = None;
        match (&mut self.done).await {
            Ok(Err(e)) => Err(e),
            _ => Err(IngestError::Io("the writing thread stopped".into()).into()),
        }
    }

    /// Closes every part; gives the commit and the per-line sums back.
    async fn finish(mut self) -> Result<(Staged, Aggregates), LoadFailure> {
        self.tx = None;
        self.done.await.unwrap_or_else(|_| Err(IngestError::Io("the writing thread stopped".into()).into()))
    }
}

struct Columns<'r> {
    batch: &'r Batch,
    rows: &'r [&'r Row],
    lines: &'r StringArray,
    imsis: &'r StringArray,
    imeis: &'r StringArray,
    others: &'r StringArray,
    cells: &'r [Option<Arc<str>>],
}

fn strings(n: usize) -> StringBuilder {
    StringBuilder::with_capacity(n, n * 24)
}

/// The rows `idx` of a protected column (the tokens' text is copied once, here).
fn pick(column: &StringArray, idx: &UInt32Array) -> Result<ArrayRef, arrow::error::ArrowError> {
    arrow::compute::take(column, idx, None)
}

impl Columns<'_> {
    fn common(&self, source: &str, key: &str, idx: &UInt32Array) -> Result<Vec<ArrayRef>, arrow::error::ArrowError> {
        let n = idx.len();
        let (mut id, mut src, mut fk, mut kind) = (strings(n), strings(n), strings(n), strings(n));
        for &i in idx.values() {
            let r = self.rows[i as usize];
            id.append_value(self.batch.text(r.record_id));
            src.append_value(source);
            fk.append_value(key);
            kind.append_value(r.kind.as_str());
        }
        Ok(vec![
            Arc::new(id.finish()),
            Arc::new(src.finish()),
            Arc::new(fk.finish()),
            Arc::new(kind.finish()),
            pick(self.lines, idx)?,
            pick(self.imsis, idx)?,
        ])
    }

    fn time(&self, idx: &UInt32Array) -> Vec<ArrayRef> {
        let n = idx.len();
        let mut start = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut date = Date32Builder::with_capacity(n);
        let mut hour = Int32Builder::with_capacity(n);
        for &i in idx.values() {
            let r = self.rows[i as usize];
            start.append_value(r.start_us);
            date.append_value((r.hour.0 - EPOCH).num_days() as i32);
            hour.append_value(r.hour.1 as i32);
        }
        vec![Arc::new(start.finish()), Arc::new(date.finish()), Arc::new(hour.finish())]
    }

    fn money(&self, idx: &UInt32Array) -> Result<ArrayRef, arrow::error::ArrowError> {
        let mut m = Decimal128Builder::with_capacity(idx.len());
        for &i in idx.values() {
            m.append_value(i128::from(self.rows[i as usize].charge_e4));
        }
        Ok(Arc::new(m.finish().with_precision_and_scale(18, schema::MONEY_SCALE)?))
    }

    fn usage(&self, source: &str, key: &str, idx: &UInt32Array) -> Result<RecordBatch, arrow::error::ArrowError> {
        let n = idx.len();
        let mut cols = self.common(source, key, idx)?;
        let (mut dur, mut up, mut down, mut rg, mut seq) = (
            Int64Builder::with_capacity(n),
            Int64Builder::with_capacity(n),
            Int64Builder::with_capacity(n),
            Int64Builder::with_capacity(n),
            Int64Builder::with_capacity(n),
        );
        let (mut cell, mut roam) = (strings(n), strings(n));
        for &i in idx.values() {
            let (r, i) = (self.rows[i as usize], i as usize);
            dur.append_value(r.duration_s);
            up.append_value(r.up_bytes);
            down.append_value(r.down_bytes);
            rg.append_option(r.rating_group);
            cell.append_option(self.cells[i].as_deref());
            roam.append_option(r.roaming.map(|s| self.batch.text(s)));
            seq.append_option(r.partial_seq);
        }
        cols.push(pick(self.imeis, idx)?);
        cols.push(pick(self.others, idx)?);
        cols.extend(self.time(idx));
        cols.push(Arc::new(dur.finish()));
        cols.push(Arc::new(up.finish()));
        cols.push(Arc::new(down.finish()));
        cols.push(Arc::new(rg.finish()));
        cols.push(Arc::new(cell.finish()));
        cols.push(Arc::new(roam.finish()));
        cols.push(self.money(idx)?);
        cols.push(Arc::new(seq.finish()));
        RecordBatch::try_new(Arc::clone(&schema::USAGE), cols)
    }

    fn topups(&self, source: &str, key: &str, idx: &UInt32Array) -> Result<RecordBatch, arrow::error::ArrowError> {
        let mut cols = self.common(source, key, idx)?;
        cols.extend(self.time(idx));
        cols.push(self.money(idx)?);
        let mut ch = strings(idx.len());
        for &i in idx.values() {
            let r = self.rows[i as usize];
            ch.append_value(r.channel.map_or("", |c| c.as_str()));
            debug_assert!(matches!(r.kind, UsageKind::Topup | UsageKind::TopupAuto));
        }
        cols.push(Arc::new(ch.finish()));
        RecordBatch::try_new(Arc::clone(&schema::TOPUPS), cols)
    }
}

/// Where the quarantine of a commit is written.
pub fn quarantine_path(data_dir: &Path, source: &str, commit_id: &str) -> PathBuf {
    data_dir.join("quarantine").join(source).join(format!("{commit_id}.csv.age"))
}
