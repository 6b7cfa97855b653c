//! Staging, committing and reading the list of committed files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::LakeError;

const COMMITS: &str = "_commits";
const TMP_SUFFIX: &str = ".parquet.tmp";

/// A Parquet file added by a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its dataset.
    pub dataset: String,
    /// Path relative to the lake root.
    pub path: String,
    /// Rows in it.
    pub rows: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// A commit's manifest: what it added and removed, atomically.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    /// The committer's id for it: unique in the lake (ingestion uses source and content hash).
    pub id: String,
    /// Its position in the lake's history, from 1.
    pub seq: u64,
    /// When (epoch milliseconds).
    pub at_ms: i64,
    /// What it is about (an ingested file's key), to find its files again.
    pub key: Option<String>,
    /// Files added.
    pub add: Vec<FileEntry>,
    /// Files removed (paths relative to the root).
    pub remove: Vec<String>,
}

/// The committed state: every live file per dataset, and the commits by id.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Live files per dataset, in commit order.
    pub files: BTreeMap<String, Vec<FileEntry>>,
    /// Ids of every commit ever made.
    pub ids: HashSet<String>,
    /// Live files per commit key.
    pub by_key: HashMap<String, Vec<FileEntry>>,
    /// The highest sequence number.
    pub last_seq: u64,
}

/// A lake rooted at a folder.
#[derive(Debug, Clone)]
pub struct Lake {
    root: PathBuf,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LakeError + 'a {
    move |e| LakeError::io(what, path, e)
}

fn sync_dir(dir: &Path) -> Result<(), LakeError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io("cannot sync", dir))
}

impl Lake {
    /// The lake at `root` (created when missing).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, LakeError> {
        let root = root.into();
        std::fs::create_dir_all(root.join(COMMITS)).map_err(io("cannot create", &root))?;
        Ok(Self { root })
    }

    /// The lake's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every manifest, in order.
    pub fn commits(&self) -> Result<Vec<Commit>, LakeError> {
        let dir = self.root.join(COMMITS);
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(io("cannot list", &dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).map_err(io("cannot read", p))?;
                serde_json::from_slice(&bytes).map_err(|e| LakeError::Corrupt(format!("manifest {}: {e}", p.display())))
            })
            .collect()
    }

    /// The committed state now.
    pub fn snapshot(&self) -> Result<Snapshot, LakeError> {
        let mut s = Snapshot::default();
        let mut live: BTreeMap<String, (FileEntry, Option<String>)> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for c in self.commits()? {
            s.ids.insert(c.id.clone());
            s.last_seq = s.last_seq.max(c.seq);
            for r in &c.remove {
                live.remove(r);
            }
            for a in c.add {
                order.push(a.path.clone());
                live.insert(a.path.clone(), (a, c.key.clone()));
            }
        }
        for path in order {
            if let Some((entry, key)) = live.remove(&path) {
                if let Some(k) = key {
                    s.by_key.entry(k).or_default().push(entry.clone());
                }
                s.files.entry(entry.dataset.clone()).or_default().push(entry);
            }
        }
        Ok(s)
    }

    /// Starts a commit with a unique `id` (letters, digits, `-`, `_`, `.`).
    pub fn stage(&self, id: &str, key: Option<&str>) -> Result<Staged, LakeError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(LakeError::Corrupt(format!("`{id}` is not a valid commit id")));
        }
        Ok(Staged {
            lake: self.clone(),
            id: id.to_owned(),
            key: key.map(str::to_owned),
            parts: Vec::new(),
            remove: Vec::new(),
            next_part: 0,
        })
    }

    /// Finishes what a crash interrupted: renames the files of committed manifests still
    /// under their staging names, deletes removed files still there, and deletes staging
    /// files no manifest names. Run it before writing, by the one process that writes.
    pub fn recover(&self) -> Result<RecoveryReport, LakeError> {
        let mut report = RecoveryReport::default();
        let mut committed: HashSet<PathBuf> = HashSet::new();
        for c in self.commits()? {
            for a in &c.add {
                let path = self.root.join(&a.path);
                committed.insert(path.clone());
                if !path.exists() {
                    let tmp = staging_path(&path);
                    if tmp.exists() {
                        std::fs::rename(&tmp, &path).map_err(io("cannot rename", &tmp))?;
                        report.finished += 1;
                    } else if !c.remove.contains(&a.path) && !self.removed_later(&a.path)? {
                        return Err(LakeError::Corrupt(format!("{} of commit {} is missing", a.path, c.id)));
                    }
                }
            }
            for r in &c.remove {
                let path = self.root.join(r);
                if path.exists() {
                    std::fs::remove_file(&path).map_err(io("cannot remove", &path))?;
                    report.removed += 1;
                }
            }
        }
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(io("cannot list", &dir))? {
                let path = entry.map_err(io("cannot list", &dir))?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.to_string_lossy().ends_with(TMP_SUFFIX) {
                    std::fs::remove_file(&path).map_err(io("cannot remove", &path))?;
                    report.discarded += 1;
                }
            }
        }
        Ok(report)
    }

    fn removed_later(&self, path: &str) -> Result<bool, LakeError> {
        Ok(self.commits()?.iter().any(|c| c.remove.iter().any(|r| r == path)))
    }

    fn write_manifest(&self, mut commit: Commit) -> Result<Commit, LakeError> {
        let dir = self.root.join(COMMITS);
        let tmp = dir.join(format!(".{}.{}.tmp", commit.id, std::process::id()));
        loop {
            commit.seq = self.snapshot()?.last_seq + 1;
            let bytes = serde_json::to_vec_pretty(&commit).map_err(|e| LakeError::Corrupt(e.to_string()))?;
            {
                let mut f = File::create(&tmp).map_err(io("cannot create", &tmp))?;
                f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(io("cannot write", &tmp))?;
            }
            let path = dir.join(format!("{:020}.json", commit.seq));
            // A hard link fails if the name exists: two committers can never share a number.
            match std::fs::hard_link(&tmp, &path) {
                Ok(()) => {
                    std::fs::remove_file(&tmp).map_err(io("cannot remove", &tmp))?;
                    sync_dir(&dir)?;
                    return Ok(commit);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(LakeError::io("cannot commit", &path, e)),
            }
        }
    }
}

/// What [`Lake::recover`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    /// Files of committed manifests renamed into place.
    pub finished: u64,
    /// Removed files deleted.
    pub removed: u64,
    /// Staging files of uncommitted work deleted.
    pub discarded: u64,
}

fn staging_path(final_path: &Path) -> PathBuf {
    let name = final_path.file_name().and_then(|n| n.to_str()).unwrap_or("part.parquet");
    let stem = name.strip_suffix(".parquet").unwrap_or(name);
    final_path.with_file_name(format!(".{stem}{TMP_SUFFIX}"))
}

/// A commit being prepared: Parquet parts written under staging names, files to remove.
pub struct Staged {
    lake: Lake,
    id: String,
    key: Option<String>,
    parts: Vec<FinishedPart>,
    remove: Vec<String>,
    next_part: usize,
}

/// A Parquet part written and closed, waiting for its commit.
#[derive(Debug, Clone)]
pub struct FinishedPart {
    entry: FileEntry,
}

impl FinishedPart {
    /// Rows written.
    pub fn rows(&self) -> u64 {
        self.entry.rows
    }
}

/// Writes one Parquet part (zstd, dictionary encoding) under its staging name.
pub struct PartWriter {
    writer: ArrowWriter<File>,
    dataset: String,
    relative: String,
    tmp: PathBuf,
    rows: u64,
}

impl PartWriter {
    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), LakeError> {
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).map_err(|e| LakeError::Parquet(e.to_string()))
    }

    /// Bytes of the row group in progress held in memory (encoded pages and what the encoders
    /// buffer), an estimate.
    pub fn buffered_bytes(&self) -> usize {
        self.writer.memory_size()
    }

    /// Closes the file and syncs it.
    pub fn finish(self) -> Result<FinishedPart, LakeError> {
        let file = self.writer.into_inner().map_err(|e| LakeError::Parquet(e.to_string()))?;
        file.sync_all().map_err(io("cannot sync", &self.tmp))?;
        let bytes = file.metadata().map_err(io("cannot stat", &self.tmp))?.len();
        Ok(FinishedPart { entry: FileEntry { dataset: self.dataset, path: self.relative, rows: self.rows, bytes } })
    }
}

impl Staged {
    /// The commit's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A new part of `dataset` in partition (`date`, `hour`), or unpartitioned when `None`.
    pub fn part(
        &mut self,
        dataset: &str,
        schema: SchemaRef,
        partition: Option<(NaiveDate, u32)>,
    ) -> Result<PartWriter, LakeError> {
        let dir_rel = match partition {
            Some((date, hour)) => format!("{dataset}/date={}/hour={hour:02}", date.format("%Y-%m-%d")),
            None => dataset.to_owned(),
        };
        let dir = self.lake.root.join(&dir_rel);
        std::fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
        self.next_part += 1;
        let name = format!("{}-{}.parquet", self.id, self.next_part);
        let final_path = dir.join(&name);
        let tmp = staging_path(&final_path);
        let file = File::create(&tmp).map_err(io("cannot create", &tmp))?;
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level 1 is valid")))
            // 128 Ki rows: what a reader needs to skip well, and the writer holds at most one
            // such group per open part in memory (an hour's file keeps several parts open).
            .set_max_row_group_row_count(Some(128 * 1024));
        for field in schema.fields() {
            if crate::schema::HIGH_CARDINALITY.contains(&field.name().as_str()) {
                props = props.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
            }
            if crate::schema::INCOMPRESSIBLE.contains(&field.name().as_str()) {
                props =
                    props.set_column_compression(ColumnPath::from(field.name().as_str()), Compression::UNCOMPRESSED);
            }
        }
        let props = props.build();
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| LakeError::Parquet(e.to_string()))?;
        Ok(PartWriter { writer, dataset: dataset.to_owned(), relative: format!("{dir_rel}/{name}"), tmp, rows: 0 })
    }

    /// Adds a finished part to the commit.
    pub fn add(&mut self, part: FinishedPart) {
        self.parts.push(part);
    }

    /// Removes a committed file (path relative to the root) in this commit.
    pub fn remove(&mut self, path: &str) {
        self.remove.push(path.to_owned());
    }

    /// Makes the commit: the manifest first (the commit point), then final names.
    pub fn commit(self) -> Result<Commit, LakeError> {
        if self.lake.snapshot()?.ids.contains(&self.id) {
            let id = self.id.clone();
            self.abort();
            return Err(LakeError::AlreadyCommitted(id));
        }
        let commit = Commit {
            id: self.id.clone(),
            seq: 0,
            at_ms: chrono::Utc::now().timestamp_millis(),
            key: self.key.clone(),
            add: self.parts.iter().map(|p| p.entry.clone()).collect(),
            remove: self.remove.clone(),
        };
        let commit = self.lake.write_manifest(commit)?;
        for p in &commit.add {
            let path = self.lake.root.join(&p.path);
            let tmp = staging_path(&path);
            std::fs::rename(&tmp, &path).map_err(io("cannot rename", &tmp))?;
        }
        for r in &commit.remove {
            let path = self.lake.root.join(r);
            if path.exists() {
                std::fs::remove_file(&path).map_err(io("cannot remove", &path))?;
            }
        }
        Ok(commit)
    }

    /// Deletes the staged parts; nothing of this commit remains.
    pub fn abort(self) {
        for p in &self.parts {
            let _ = std::fs::remove_file(staging_path(&self.lake.root.join(&p.entry.path)));
        }
    }
}
