//! Writing the hourly usage files and the manifest, hours in parallel.
//!
//! Worker threads each take the next hour, write its header and rows to a temporary
//! file and hand it over. This thread finishes the files strictly in hour order: it
//! appends the duplicates that earlier hours carried over, renames the file into place,
//! copies duplicate files, and builds the manifest. Output therefore never depends on
//! which thread wrote what, or when.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, mpsc};
use std::thread;

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};

use crate::faults::{self, MalformedKind};
use crate::manifest::{
    DuplicateFile, DuplicateRecord, FileEntry, LAYOUT, MalformedRow, Manifest, Rates, Summary, Totals,
};
use crate::traffic::{Carry, HourReport, UsageModel};
use crate::{GenerateConfig, Population, SimError};

/// Writes `OUT/mediation/*.cdr[.gz]` and `OUT/manifest.json` for `population`, replacing
/// the files of the same source left by an earlier run. `progress` receives the number of
/// rows written since its last call, from any thread.
pub fn write_usage_files(
    cfg: &GenerateConfig,
    population: &Population,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Manifest, SimError> {
    let model = UsageModel::new(cfg, population)?;
    let dir = cfg.mediation_dir();
    fs::create_dir_all(&dir).map_err(SimError::io("creating folder", &dir))?;
    // A manifest must never describe files of another run, even when this one fails.
    let manifest_path = cfg.manifest_path();
    if manifest_path.exists() {
        fs::remove_file(&manifest_path).map_err(SimError::io("removing", &manifest_path))?;
    }
    remove_previous_files(&dir, &cfg.source_name)?;

    let mut assembler = Assembler::new(cfg, &model, &dir, progress);
    run_in_order(
        &model,
        cfg.threads,
        |hour| produce(&model, &dir, cfg.gzip, hour, progress),
        |p| assembler.finish_file(p),
    )?;
    let manifest = assembler.manifest(population, model.active_lines());
    write_manifest(&manifest_path, &manifest)?;
    Ok(manifest)
}

/// Deletes `<source>_*.cdr[.gz]` files and leftover temporary files of `source` in `dir`.
fn remove_previous_files(dir: &Path, source: &str) -> Result<(), SimError> {
    let entries = fs::read_dir(dir).map_err(SimError::io("listing", dir))?;
    let prefix = format!("{source}_");
    let temp_prefix = format!(".{source}_");
    for entry in entries {
        let entry = entry.map_err(SimError::io("listing", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = (name.starts_with(&prefix) && (name.ends_with(".cdr") || name.ends_with(".cdr.gz")))
            || (name.starts_with(&temp_prefix) && name.ends_with(".tmp"));
        if ours {
            fs::remove_file(entry.path()).map_err(SimError::io("removing", entry.path()))?;
        }
    }
    Ok(())
}

fn write_manifest(path: &Path, manifest: &Manifest) -> Result<(), SimError> {
    let mut json =
        serde_json::to_vec_pretty(manifest).map_err(|source| SimError::Manifest { path: path.to_owned(), source })?;
    json.push(b'\n');
    let temp = TempPath::new(path.with_extension("json.tmp"));
    fs::write(&temp.0, &json).map_err(SimError::io("writing", &temp.0))?;
    temp.persist(path)
}

/// A file that is deleted when dropped, unless renamed into place.
struct TempPath(PathBuf);

impl TempPath {
    fn new(path: PathBuf) -> Self {
        Self(path)
    }

    fn persist(self, to: &Path) -> Result<(), SimError> {
        fs::rename(&self.0, to).map_err(SimError::io("renaming into place", to))?;
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        // Best effort: the error path that drops us already reports the real failure.
        let _ = fs::remove_file(&self.0);
    }
}

enum Sink {
    Plain(File),
    Gzip(Box<GzEncoder<File>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(f) => f.write(buf),
            Sink::Gzip(g) => g.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(f) => f.write_all(buf),
            Sink::Gzip(g) => g.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(f) => f.flush(),
            Sink::Gzip(g) => g.flush(),
        }
    }
}

impl Sink {
    fn finish(self) -> io::Result<File> {
        match self {
            Sink::Plain(f) => Ok(f),
            Sink::Gzip(g) => g.finish(),
        }
    }
}

/// An hour's file, written but not yet complete.
struct Produced {
    hour: u32,
    name: String,
    temp: TempPath,
    sink: Sink,
    report: HourReport,
}

fn produce(
    model: &UsageModel,
    dir: &Path,
    gzip: bool,
    hour: u32,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Produced, SimError> {
    let name = with_suffix(model.file_name(hour, 1), gzip);
    let temp = TempPath::new(dir.join(format!(".{name}.tmp")));
    let file = File::create(&temp.0).map_err(SimError::io("creating", &temp.0))?;
    let mut sink = if gzip {
        // No name and no time in the gzip header: the bytes depend on the content only.
        Sink::Gzip(Box::new(GzBuilder::new().write(file, Compression::fast())))
    } else {
        Sink::Plain(file)
    };
    let report = model.write_hour(hour, &mut sink, progress).map_err(SimError::io("writing", &temp.0))?;
    Ok(Produced { hour, name, temp, sink, report })
}

fn with_suffix(name: String, gzip: bool) -> String {
    if gzip { format!("{name}.gz") } else { name }
}

/// Lets workers run at most `window` hours ahead of the last finished file, so that memory
/// and open files stay bounded however uneven the hours are.
struct Gate {
    state: Mutex<(u32, bool)>,
    turn: Condvar,
    window: u32,
}

impl Gate {
    fn new(window: u32) -> Self {
        Self { state: Mutex::new((0, false)), turn: Condvar::new(), window }
    }

    /// Waits until `hour` may start; false when the run was aborted.
    fn wait_turn(&self, hour: u32) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.1 && hour >= state.0 + self.window {
            state = self.turn.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        !state.1
    }

    fn advance(&self, finished: u32) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).0 = finished;
        self.turn.notify_all();
    }

    fn abort(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.turn.notify_all();
    }
}

/// Aborts the run if the worker holding it panics, so that no other worker waits forever.
struct AbortOnPanic<'g>(&'g Gate);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.abort();
        }
    }
}

/// Runs `produce` for every hour on `threads` threads and `finish` on this thread, in hour order.
fn run_in_order(
    model: &UsageModel,
    threads: usize,
    produce: impl Fn(u32) -> Result<Produced, SimError> + Sync,
    mut finish: impl FnMut(Produced) -> Result<(), SimError>,
) -> Result<(), SimError> {
    let hours = model.hours();
    let threads = threads.clamp(1, hours.max(1) as usize);
    let gate = Gate::new(2 * threads as u32);
    let next = AtomicU32::new(0);
    let (tx, rx) = mpsc::channel::<(u32, Result<Produced, SimError>)>();
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let tx = tx.clone();
                let (gate, next, produce) = (&gate, &next, &produce);
                scope.spawn(move || {
                    let _guard = AbortOnPanic(gate);
                    loop {
                        let hour = next.fetch_add(1, Ordering::Relaxed);
                        if hour >= hours || !gate.wait_turn(hour) {
                            return;
                        }
                        let produced = produce(hour);
                        let failed = produced.is_err();
                        if tx.send((hour, produced)).is_err() || failed {
                            return;
                        }
                    }
                })
            })
            .collect();
        drop(tx);

        let mut finished = 0u32;
        let mut waiting = BTreeMap::new();
        let result = (|| {
            for (hour, produced) in &rx {
                waiting.insert(hour, produced);
                while let Some(produced) = waiting.remove(&finished) {
                    finish(produced?)?;
                    finished += 1;
                    gate.advance(finished);
                }
            }
            Ok(())
        })();
        if result.is_err() {
            gate.abort();
        }
        let panicked = workers.into_iter().map(|w| w.join().is_err()).fold(false, |a, b| a | b);
        match result {
            Err(e) => Err(e),
            Ok(()) if panicked || finished < hours => Err(SimError::WorkerPanicked),
            Ok(()) => Ok(()),
        }
    })
}

/// Finishes files in hour order and gathers the manifest.
struct Assembler<'a> {
    cfg: &'a GenerateConfig,
    model: &'a UsageModel,
    dir: &'a Path,
    progress: &'a (dyn Fn(u64) + Sync),
    names: Vec<String>,
    carried: BTreeMap<u32, Vec<(u32, Carry)>>,
    files: Vec<FileEntry>,
    duplicate_files: Vec<DuplicateFile>,
    duplicate_records: Vec<DuplicateRecord>,
    malformed_rows: Vec<MalformedRow>,
}

impl<'a> Assembler<'a> {
    fn new(cfg: &'a GenerateConfig, model: &'a UsageModel, dir: &'a Path, progress: &'a (dyn Fn(u64) + Sync)) -> Self {
        Self {
            cfg,
            model,
            dir,
            progress,
            names: Vec::new(),
            carried: BTreeMap::new(),
            files: Vec::new(),
            duplicate_files: Vec::new(),
            duplicate_records: Vec::new(),
            malformed_rows: Vec::new(),
        }
    }

    fn finish_file(&mut self, p: Produced) -> Result<(), SimError> {
        let Produced { hour, name, temp, mut sink, report } = p;
        let path = self.dir.join(&name);
        for m in &report.malformed {
            self.malformed_rows.push(MalformedRow {
                file: name.clone(),
                line: m.line,
                kind: m.kind,
                record_id: m.record_id.clone(),
                detail: m.detail.clone(),
            });
        }
        for d in &report.duplicates {
            self.duplicate_records.push(DuplicateRecord {
                file: name.clone(),
                line: d.line,
                record_id: d.record_id.clone(),
                first_file: name.clone(),
                first_line: d.first_line,
            });
        }

        // Records carried over from earlier hours go at the end, in the order of their originals.
        let carried_in = self.carried.remove(&hour).unwrap_or_default();
        let mut rows = report.rows;
        let mut tail = Vec::new();
        for (origin, c) in &carried_in {
            tail.extend_from_slice(&c.bytes);
            rows += 1;
            self.duplicate_records.push(DuplicateRecord {
                file: name.clone(),
                line: rows + 1,
                record_id: c.record_id.clone(),
                first_file: self.names[*origin as usize].clone(),
                first_line: c.first_line,
            });
        }
        sink.write_all(&tail).map_err(SimError::io("writing", &temp.0))?;
        let file = sink.finish().map_err(SimError::io("writing", &temp.0))?;
        file.sync_all().map_err(SimError::io("syncing", &temp.0))?;
        let bytes = file.metadata().map_err(SimError::io("reading size of", &temp.0))?.len();
        drop(file);
        temp.persist(&path)?;
        if !carried_in.is_empty() {
            (self.progress)(carried_in.len() as u64);
        }

        for c in report.carry.iter().cloned() {
            self.carried.entry(c.target).or_default().push((hour, c));
        }
        let carried = carried_in.len() as u64;
        self.files.push(FileEntry {
            name: name.clone(),
            hour: self.model.hour_start(hour).to_rfc3339(),
            seq: 1,
            bytes,
            lines: rows + 1,
            rows,
            valid_records: report.valid + carried,
            duplicate_records: report.duplicates.len() as u64 + carried,
            malformed_rows: report.malformed.len() as u64,
            totals: report.totals,
        });
        self.names.push(name);

        if let Some(origin) = faults::duplicate_file_source(self.cfg.seed, self.cfg.duplicate_file_rate, hour) {
            let copy_name = with_suffix(self.model.file_name(hour, 2), self.cfg.gzip);
            let original = &self.names[origin as usize];
            let temp = TempPath::new(self.dir.join(format!(".{copy_name}.tmp")));
            fs::copy(self.dir.join(original), &temp.0).map_err(SimError::io("copying to", &temp.0))?;
            temp.persist(&self.dir.join(&copy_name))?;
            self.duplicate_files.push(DuplicateFile { file: copy_name, copy_of: original.clone() });
        }
        Ok(())
    }

    fn manifest(self, population: &Population, active_lines: usize) -> Manifest {
        let mut totals = Totals::default();
        let mut summary = Summary {
            files: self.files.len() as u64,
            duplicate_files: self.duplicate_files.len() as u64,
            malformed_by_kind: MalformedKind::ALL.iter().map(|&k| (k, 0)).collect(),
            ..Summary::default()
        };
        for f in &self.files {
            totals.merge(&f.totals);
            summary.lines += f.lines;
            summary.rows += f.rows;
            summary.valid_records += f.valid_records;
            summary.duplicate_records += f.duplicate_records;
            summary.malformed_rows += f.malformed_rows;
        }
        summary.unique_records = totals.records;
        for m in &self.malformed_rows {
            *summary.malformed_by_kind.entry(m.kind).or_default() += 1;
        }
        let cfg = self.cfg;
        Manifest {
            layout: LAYOUT.to_owned(),
            seed: cfg.seed,
            source: cfg.source_name.clone(),
            start: cfg.start.to_rfc3339(),
            hours: cfg.hours,
            gzip: cfg.gzip,
            customers: population.customers.len() as u64,
            lines: population.lines.len() as u64,
            active_lines: active_lines as u64,
            rates: Rates {
                duplicate_record_rate: cfg.duplicate_record_rate,
                duplicate_file_rate: cfg.duplicate_file_rate,
                malformed_rate: cfg.malformed_rate,
                late_rate: cfg.late_rate,
            },
            summary,
            totals,
            files: self.files,
            duplicate_files: self.duplicate_files,
            duplicate_records: self.duplicate_records,
            malformed_rows: self.malformed_rows,
        }
    }
}
