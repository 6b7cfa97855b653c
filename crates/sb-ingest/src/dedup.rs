//! The dedup window: record ids seen per source, kept in the lake as the `_dedup` dataset
//! (one part per committed file and event hour), so ids join the window exactly when their
//! file commits, and the window survives restarts.
//!
//! Ids are checked within their record's event hour: a re-sent record carries the same start
//! time, so its duplicate lives in the same hour. Memory holds the ids of the hours the
//! current files touch, in a compact set (about 12 bytes an id), and at most
//! `ingest.dedup_memory_ids` of them: the hours least recently used are dropped and read
//! again from the lake when a later file needs them. An hour with more than half that many
//! ids (a large operator's hour: 30 million records and more) is not held as a set: its ids
//! are sorted into runs on disk, as a file's own ids are beyond their budget (see
//! [`Pending`]), and memory keeps their filters, about 2 bytes an id and at most 64 MiB.
//!
//! Parts written before ids were kept per hour sit under `hour=00` without an `event_hour`
//! column and hold a whole day: they count for every hour of their day.

use std::collections::HashSet;
use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arrow::array::{Date32Array, Int32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sb_lake::{Lake, Snapshot};
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::{FastMap, IngestError};

/// The dataset holding the window.
pub const DATASET: &str = "_dedup";

/// A local event date and hour: the unit the window is kept and loaded in.
pub type Hour = (NaiveDate, u32);

/// `_dedup`: 128-bit hashes of (source, record id), by event date and hour.
pub static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id_hi", DataType::UInt64, false),
        Field::new("id_lo", DataType::UInt64, false),
        Field::new("event_date", DataType::Date32, false),
        Field::new("event_hour", DataType::Int32, false),
    ]))
});

/// The hash of a record id within its source. The key is fixed: the hashes are stored and
/// must mean the same thing in every run; they are ids, not secrets.
pub fn id_hash(source: &str, record_id: &str) -> u128 {
    let mut h = SipHasher13::new_with_keys(0x7377_6974_6368_626f, 0x6172_642d_6465_6475);
    h.write(source.as_bytes());
    h.write_u8(0);
    h.write(record_id.as_bytes());
    h.finish128().as_u128()
}

const SHARD_BITS: u32 = 12;

/// A set of record-id hashes in about 12 bytes an id: the top 12 bits choose one of 4,096
/// small tables, which hold the low 64 bits. Two ids are taken for one only when 76 of their
/// 128 bits agree (about once in 10^9 years of 30 million records an hour).
pub struct IdSet {
    shards: Box<[Slots]>,
    len: usize,
}

impl Default for IdSet {
    fn default() -> Self {
        Self { shards: (0..1usize << SHARD_BITS).map(|_| Slots::default()).collect(), len: 0 }
    }
}

impl IdSet {
    /// An empty set sized for about `n` ids, so that loading them never grows a table.
    pub fn with_capacity(n: usize) -> Self {
        let mut set = Self::default();
        set.reserve(n);
        set
    }

    /// Makes room for `n` ids in all (those held and the new ones) at once, instead of growing
    /// each table several times on the way. Ids spread evenly over the tables: each is sized
    /// for its share and four standard deviations more.
    pub fn reserve(&mut self, n: usize) {
        let share = n >> SHARD_BITS;
        let per_table = share + 4 * share.isqrt() + 4;
        for slots in self.shards.iter_mut() {
            slots.reserve(per_table);
        }
    }

    fn split(id: u128) -> (usize, u64) {
        ((id >> (128 - SHARD_BITS)) as usize, id as u64)
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u128) -> bool {
        let (s, v) = Self::split(id);
        self.shards[s].contains(v)
    }

    /// Adds `id`; false when it was there already.
    pub fn insert(&mut self, id: u128) -> bool {
        let (s, v) = Self::split(id);
        let added = self.shards[s].insert(v);
        self.len += usize::from(added);
        added
    }

    /// Ids held.
    pub fn len(&self) -> usize {
        self.len
    }

    fn absorb(&mut self, mut other: IdSet) {
        // The smaller set goes into the larger: a file's ids usually join an hour the window
        // held few of, and copying millions into it cost more than the rest of the commit.
        if other.len > self.len {
            std::mem::swap(self, &mut other);
        }
        self.reserve(self.len + other.len);
        for (mine, theirs) in self.shards.iter_mut().zip(other.shards.into_vec()) {
            for v in theirs.values() {
                self.len += usize::from(mine.insert(v));
            }
        }
    }
}

/// One table of an [`IdSet`]: open addressing with linear probing over values that are
/// uniformly random already (hash bits), so a value's first slot is its position scaled to the
/// table's size. It grows by a quarter when 80 % full, so it is always 64–80 % full: 10 to 12.5
/// bytes a value, where a general hash set doubling its power-of-two table is 44–88 % full
/// (with a control byte per slot). 0 marks a free slot; the value 0 itself is kept aside.
#[derive(Default)]
struct Slots {
    table: Vec<u64>,
    len: usize,
    zero: bool,
}

impl Slots {
    fn first(v: u64, size: usize) -> usize {
        ((u128::from(v) * size as u128) >> 64) as usize
    }

    /// The slot holding `v`, or the free slot where it would go.
    fn find(&self, v: u64) -> usize {
        let size = self.table.len();
        let mut i = Self::first(v, size);
        loop {
            let x = self.table[i];
            if x == v || x == 0 {
                return i;
            }
            i = if i + 1 == size { 0 } else { i + 1 };
        }
    }

    fn contains(&self, v: u64) -> bool {
        if v == 0 {
            return self.zero;
        }
        !self.table.is_empty() && self.table[self.find(v)] == v
    }

    fn insert(&mut self, v: u64) -> bool {
        if v == 0 {
            return !std::mem::replace(&mut self.zero, true);
        }
        if (self.len + 1) * 5 > self.table.len() * 4 {
            self.grow();
        }
        let i = self.find(v);
        if self.table[i] == v {
            return false;
        }
        self.table[i] = v;
        self.len += 1;
        true
    }

    fn grow(&mut self) {
        self.resize((self.table.len() + self.table.len() / 4).max(8));
    }

    /// Room for `n` values without growing.
    fn reserve(&mut self, n: usize) {
        if n * 5 > self.table.len() * 4 {
            self.resize(n * 5 / 4 + 1);
        }
    }

    fn resize(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.table, vec![0; size]);
        for v in old.into_iter().filter(|v| *v != 0) {
            let i = self.find(v);
            self.table[i] = v;
        }
    }

    fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.zero.then_some(0).into_iter().chain(self.table.iter().copied().filter(|v| *v != 0))
    }
}

/// Ids of the file being loaded held in memory by default (about 12 bytes each) before they
/// go to a run on disk.
pub const DEFAULT_PENDING_IDS: usize = 4_000_000;

/// The ids a file adds to the window, per event hour (they join it when the file commits).
///
/// At most `max_ids` are held in memory. Beyond that they are written, sorted, to a run in an
/// unnamed temporary file (gone when closed, even after a crash); memory keeps a blocked Bloom
/// filter (2 bytes an id) and every 256th id of each run, so a later id is checked against a
/// run with one cache line, and read from disk (one 4 KiB block) only when the filter says it
/// may be there — about once in a thousand.
///
/// Every [`MAX_RUNS`] runs are merged into one, whose filter gets at most as many bytes as
/// the ids held in memory (12 bytes × `max_ids`): past 6 × `max_ids` ids it has fewer bits an
/// id. So the filters of a file of any size stay under about 26 bytes × `max_ids` (the merged
/// run's and up to 7 newer runs' at 2 bytes an id; a merge drops the old filters before it
/// makes the new one), and a very large file pays with disk reads instead: at 8 bits an id,
/// about one look in forty reads a block.
pub struct Pending {
    hours: FastMap<Hour, IdSet>,
    held: usize,
    max_ids: usize,
    spill_dir: PathBuf,
    runs: Vec<Run>,
    /// Hours with ids in runs: the window reads them again from the lake after the commit.
    spilled: HashSet<Hour>,
    newest: Option<NaiveDate>,
}

#[cfg(test)]
impl Default for Pending {
    fn default() -> Self {
        Self::new(usize::MAX, std::env::temp_dir())
    }
}

impl Pending {
    /// Holds at most `max_ids` ids in memory; runs beyond go to `spill_dir`.
    pub fn new(max_ids: usize, spill_dir: PathBuf) -> Self {
        Self {
            hours: FastMap::default(),
            held: 0,
            max_ids: max_ids.max(1),
            spill_dir,
            runs: Vec::new(),
            spilled: HashSet::new(),
            newest: None,
        }
    }

    /// Adds `id` of a record of `hour`; false when the file had it already.
    pub fn insert(&mut self, hour: Hour, id: u128) -> Result<bool, IngestError> {
        if !self.runs.is_empty() && self.spilled.contains(&hour) && in_runs(&self.runs, run_key(hour, id))? {
            return Ok(false);
        }
        if !self.hours.entry(hour).or_default().insert(id) {
            return Ok(false);
        }
        self.held += 1;
        self.newest = self.newest.max(Some(hour.0));
        Ok(true)
    }

    /// The latest event day of the file's records.
    pub fn newest_day(&self) -> Option<NaiveDate> {
        self.newest
    }

    /// Runs written to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Writes the ids held to a run on disk once they reach the budget (between batches).
    pub fn spill_if_full(&mut self) -> Result<(), IngestError> {
        if self.held < self.max_ids {
            return Ok(());
        }
        let failed = |e: std::io::Error| {
            IngestError::Io(format!("cannot write record ids to {}: {e}", self.spill_dir.display()))
        };
        std::fs::create_dir_all(&self.spill_dir).map_err(failed)?;
        let mut run = RunWriter::new(&self.spill_dir, self.held, usize::MAX).map_err(failed)?;
        let mut hours: Vec<(Hour, IdSet)> = std::mem::take(&mut self.hours).into_iter().collect();
        hours.sort_unstable_by_key(|(h, _)| *h);
        let mut values: Vec<u64> = Vec::new();
        for (hour, set) in hours {
            self.spilled.insert(hour);
            // The shards hold ids by their top bits, so each sorted shard follows the one before.
            for (s, slots) in set.shards.into_vec().into_iter().enumerate() {
                values.clear();
                values.extend(slots.values());
                values.sort_unstable();
                for v in &values {
                    run.push(run_key(hour, ((s as u128) << (128 - SHARD_BITS)) | u128::from(*v))).map_err(failed)?;
                }
            }
        }
        self.runs.push(run.finish().map_err(failed)?);
        self.held = 0;
        if self.runs.len() >= MAX_RUNS {
            self.compact()?;
        }
        Ok(())
    }

    /// Merges the runs into one, so a file of any size keeps few open files and few filters
    /// to probe.
    fn compact(&mut self) -> Result<(), IngestError> {
        let runs = std::mem::take(&mut self.runs);
        let run = merge(runs, &self.spill_dir, self.max_ids.saturating_mul(ID_BYTES)).map_err(|e| {
            IngestError::Io(format!("cannot merge record ids written to {}: {e}", self.spill_dir.display()))
        })?;
        self.runs.push(run);
        Ok(())
    }

    /// Bytes of the runs' filters.
    #[cfg(test)]
    fn filter_bytes(&self) -> usize {
        self.runs.iter().map(|r| r.bloom.bytes()).sum()
    }

    /// The ids held in memory per hour, and the hours (some of) whose ids went to runs.
    fn into_parts(self) -> (FastMap<Hour, IdSet>, HashSet<Hour>) {
        (self.hours, self.spilled)
    }
}

/// The keys of `runs` in one run (a key in several runs is kept each time: a file's runs hold
/// distinct ids, and so do the lake's parts of an hour), its filter at most `filter_bytes`.
fn merge(runs: Vec<Run>, dir: &Path, filter_bytes: usize) -> std::io::Result<Run> {
    use std::io::{BufReader, Read, Seek, SeekFrom};
    let total: usize = runs.iter().map(|r| r.len).sum();
    // Only the files are read: their filters go before the new one is made.
    let runs: Vec<(std::fs::File, usize)> = runs.into_iter().map(|r| (r.file, r.len)).collect();
    let mut heads = Vec::with_capacity(runs.len());
    for (file, len) in &runs {
        let mut f = file;
        f.seek(SeekFrom::Start(0))?;
        heads.push((BufReader::with_capacity(1 << 16, f), *len, None::<u128>));
    }
    let next = |(reader, left, head): &mut (BufReader<&std::fs::File>, usize, Option<u128>)| {
        *head = None;
        if *left > 0 {
            let mut b = [0u8; 16];
            reader.read_exact(&mut b)?;
            *left -= 1;
            *head = Some(u128::from_be_bytes(b));
        }
        Ok::<(), std::io::Error>(())
    };
    for h in &mut heads {
        next(h)?;
    }
    let mut run = RunWriter::new(dir, total, filter_bytes)?;
    while let Some(i) = (0..heads.len()).filter(|&i| heads[i].2.is_some()).min_by_key(|&i| heads[i].2) {
        run.push(heads[i].2.expect("a head"))?;
        next(&mut heads[i])?;
    }
    drop(heads);
    run.finish()
}

/// Whether any of `runs` holds `key`.
fn in_runs(runs: &[Run], key: u128) -> Result<bool, IngestError> {
    for run in runs {
        if run.contains(key)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Keys of a run kept in memory: one in this many.
const FENCE: usize = 256;
/// Runs of ids merged into one when there are this many.
const MAX_RUNS: usize = 8;
/// What an id held in an [`IdSet`] costs, about: the budget of a file's merged run's filter
/// is its `max_ids` ids' worth of memory.
const ID_BYTES: usize = 12;

/// A run's key: the hour (hours since 1970, plus 2^31) in the top 32 bits, then the 76 bits of
/// the id an [`IdSet`] keeps (its top 12 and low 64), so that keys sort by hour, then id.
fn run_key((day, hour): Hour, id: u128) -> u128 {
    let hours = (day - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() * 24 + i64::from(hour);
    // Offset by 2^31, so that hours before 1970 (a start time of 0 west of UTC) sort first too.
    let biased = (hours + (1 << 31)) as u32;
    let top = id >> (128 - SHARD_BITS);
    (u128::from(biased) << 96) | (top << 64) | u128::from(id as u64)
}

/// A run being written, its keys in order: the filter and the fences are made as they go.
struct RunWriter {
    out: std::io::BufWriter<std::fs::File>,
    bloom: Bloom,
    fences: Vec<u128>,
    len: usize,
}

impl RunWriter {
    /// A run of about `keys` keys in an unnamed temporary file in `dir`, its filter at most
    /// `filter_bytes` (and at most 16 bits a key).
    fn new(dir: &std::path::Path, keys: usize, filter_bytes: usize) -> std::io::Result<Self> {
        let file = tempfile::tempfile_in(dir)?;
        Ok(Self {
            out: std::io::BufWriter::with_capacity(1 << 16, file),
            bloom: Bloom::new(keys, filter_bytes),
            fences: Vec::with_capacity(keys / FENCE + 1),
            len: 0,
        })
    }

    fn push(&mut self, key: u128) -> std::io::Result<()> {
        if self.len.is_multiple_of(FENCE) {
            self.fences.push(key);
        }
        self.bloom.insert(key);
        self.len += 1;
        self.out.write_all(&key.to_be_bytes())
    }

    fn finish(self) -> std::io::Result<Run> {
        let file = self.out.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        Ok(Run { file, len: self.len, bloom: self.bloom, fences: self.fences })
    }
}

/// Sorted keys in a file: the Bloom filter answers most lookups; the fences (every
/// [`FENCE`]th key) find the one block that could hold a key.
struct Run {
    file: std::fs::File,
    len: usize,
    bloom: Bloom,
    fences: Vec<u128>,
}

impl Run {
    fn contains(&self, key: u128) -> Result<bool, IngestError> {
        use std::os::unix::fs::FileExt;
        if !self.bloom.may_contain(key) {
            return Ok(false);
        }
        // The block whose first key is the last one not above `key`.
        let block = match self.fences.binary_search(&key) {
            Ok(_) => return Ok(true),
            Err(0) => return Ok(false),
            Err(i) => i - 1,
        };
        let first = block * FENCE;
        let n = FENCE.min(self.len - first);
        let mut bytes = [0u8; FENCE * 16];
        let bytes = &mut bytes[..n * 16];
        self.file
            .read_exact_at(bytes, (first * 16) as u64)
            .map_err(|e| IngestError::Io(format!("cannot read back record ids written to disk: {e}")))?;
        // Big-endian keys compare as their bytes do: searched where they were read.
        let (keys, _) = bytes.as_chunks::<16>();
        Ok(keys.binary_search(&key.to_be_bytes()).is_ok())
    }
}

/// A blocked Bloom filter over keys that are random already: 16 bits a key, 7 of them set in
/// one 512-bit block (one cache line), about one false "maybe" in a thousand. Held to fewer
/// bits a key, it sets fewer of them (0.7 a bit of room, rounded: 6 at 8 bits, 3 at 4), the
/// number that makes its false "maybe"s rarest.
struct Bloom {
    blocks: Vec<Block>,
    /// Bits set per key, 1 to 7.
    k: usize,
}

/// 512 bits on a cache line of their own.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Block([u64; 8]);

impl Bloom {
    /// A filter for about `keys` keys, of at most `max_bytes` (one block at least).
    fn new(keys: usize, max_bytes: usize) -> Self {
        let blocks = (keys.saturating_mul(16).div_ceil(512)).min(max_bytes / 64).max(1);
        // Bits a key times ln 2, rounded: what minimises false positives for that room.
        let k = ((blocks * 512) as f64 / keys.max(1) as f64 * std::f64::consts::LN_2).round().clamp(1.0, 7.0);
        Self { blocks: vec![Block([0; 8]); blocks], k: k as usize }
    }

    /// Its size in memory.
    fn bytes(&self) -> usize {
        self.blocks.len() * 64
    }

    /// The block and the 7 bits of `key`, from its hour mixed with its random bits.
    fn probe(&self, key: u128) -> (usize, [u16; 7]) {
        let hour = (key >> 96) as u64;
        let h = (key as u64)
            ^ ((key >> 64) as u64 & 0xfff).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ hour.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        let block = ((u128::from(h) * self.blocks.len() as u128) >> 64) as usize;
        let bits = h.wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
        (block, std::array::from_fn(|i| ((bits >> (i * 9)) & 511) as u16))
    }

    fn insert(&mut self, key: u128) {
        let (b, bits) = self.probe(key);
        for &bit in &bits[..self.k] {
            self.blocks[b].0[usize::from(bit / 64)] |= 1 << (bit % 64);
        }
    }

    fn may_contain(&self, key: u128) -> bool {
        let (b, bits) = self.probe(key);
        bits[..self.k].iter().all(|bit| self.blocks[b].0[usize::from(bit / 64)] & (1 << (bit % 64)) != 0)
    }
}

/// The `_dedup` parts of `source` for days before `first_day`: out of the window
/// (`ingest.dedup_window_days`), so a commit of the source removes them.
pub fn expired<'s>(snapshot: &'s Snapshot, source: &str, first_day: NaiveDate) -> Vec<&'s str> {
    let Some(files) = snapshot.files.get(DATASET) else { return Vec::new() };
    let prefix = format!("{source}-");
    files
        .iter()
        .filter(|f| {
            let Some(rest) = f.path.strip_prefix(DATASET).and_then(|r| r.strip_prefix("/date=")) else {
                return false;
            };
            let day = rest.get(..10).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            let name = rest.rsplit('/').next().unwrap_or_default();
            day.is_some_and(|d| d < first_day) && name.starts_with(&prefix)
        })
        .map(|f| f.path.as_str())
        .collect()
}

/// The ids of one hour of the window: a set in memory, or sorted runs on disk for an hour
/// too large to hold.
enum HourIds {
    /// About 12 bytes an id.
    Memory(IdSet),
    /// The hour's ids as run keys; memory holds each run's filter and fences.
    Disk {
        /// The hour (part of each key).
        hour: Hour,
        /// The runs, at most [`MAX_RUNS`].
        runs: Vec<Run>,
    },
}

impl HourIds {
    /// Whether the hour holds `id`.
    fn contains(&self, id: u128) -> Result<bool, IngestError> {
        match self {
            Self::Memory(set) => Ok(set.contains(id)),
            Self::Disk { hour, runs } => in_runs(runs, run_key(*hour, id)),
        }
    }

    /// What it costs in memory, counted in ids of a set (about 12 bytes each): an id in a
    /// run costs its share of the run's filter (2 bytes, or less in a large merged run) and
    /// fences.
    fn cost(&self) -> usize {
        match self {
            Self::Memory(set) => set.len(),
            Self::Disk { runs, .. } => {
                runs.iter().map(|r| (r.bloom.bytes() + r.fences.len() * 16).div_ceil(ID_BYTES)).sum()
            }
        }
    }
}

/// The ids of the window, loaded per source and hour on demand, at most `max_ids` of them held.
pub struct Window {
    /// By source, then hour: the ids and when they were last used.
    hours: FastMap<String, FastMap<Hour, (HourIds, u64)>>,
    held: usize,
    clock: u64,
    max_ids: usize,
    /// Where the runs of hours too large to hold are written (unnamed temporary files).
    spill_dir: PathBuf,
}

/// Ids held in memory by default (about 260 MB).
pub const DEFAULT_MAX_IDS: usize = 20_000_000;

/// Keys sorted in memory at a time when an hour goes to runs (64 MiB of them). An hour of more
/// than [`MAX_RUNS`] such runs has them merged into one, whose filter gets the room of those
/// runs' filters (64 MiB) whatever the hour's size.
const DISK_RUN_KEYS: usize = 1 << 22;

impl Window {
    /// A window holding at most about `max_ids` ids in memory (the hour in use is always
    /// held); an hour of more than half as many goes to runs in `spill_dir`.
    pub fn new(max_ids: usize, spill_dir: PathBuf) -> Self {
        Self { hours: FastMap::default(), held: 0, clock: 0, max_ids, spill_dir }
    }

    /// Takes the window's ids out, leaving an empty window of the same budget (which reads
    /// the lake again if the taken one is not put back).
    pub fn take(&mut self) -> Self {
        let empty = Self::new(self.max_ids, self.spill_dir.clone());
        std::mem::replace(self, empty)
    }

    /// Whether `id` of a record of `hour` was committed before. Loads the hour when first
    /// asked. Files with commit key `skip_key` (the file being replayed) are left out.
    pub fn contains(
        &mut self,
        lake: &Lake,
        snapshot: &Snapshot,
        source: &str,
        skip_key: Option<&str>,
        hour: Hour,
        id: u128,
    ) -> Result<bool, IngestError> {
        self.clock += 1;
        if let Some((ids, used)) = self.hours.get_mut(source).and_then(|h| h.get_mut(&hour)) {
            *used = self.clock;
            return ids.contains(id);
        }
        let disk = Some((self.spill_dir.as_path(), self.max_ids / 2));
        let ids = load_hour(lake, snapshot, source, skip_key, hour, disk)?;
        let found = ids.contains(id)?;
        self.held += ids.cost();
        self.hours.entry(source.to_owned()).or_default().insert(hour, (ids, self.clock));
        self.evict(Some((source, hour)));
        Ok(found)
    }

    /// Adds a committed file's ids to the hours held (the others read them from the lake).
    /// Hours whose ids went partly to disk, in the file or in the window, are dropped
    /// instead, and read again when needed.
    pub fn absorb(&mut self, source: &str, pending: Pending) {
        let (hours, spilled) = pending.into_parts();
        let held = &mut self.held;
        let Some(by_hour) = self.hours.get_mut(source) else { return };
        by_hour.retain(|hour, (ids, _)| {
            let on_disk = matches!(ids, HourIds::Disk { .. }) && hours.contains_key(hour);
            let keep = !on_disk && !spilled.contains(hour);
            if !keep {
                *held -= ids.cost();
            }
            keep
        });
        for (hour, ids) in hours {
            if let Some((HourIds::Memory(set), _)) = by_hour.get_mut(&hour) {
                let before = set.len();
                set.absorb(ids);
                *held += set.len() - before;
            }
        }
        self.evict(None);
    }

    /// Forgets `source`'s hours of days before `first_day` (their parts left the lake).
    pub fn forget_before(&mut self, source: &str, first_day: NaiveDate) {
        let held = &mut self.held;
        let Some(hours) = self.hours.get_mut(source) else { return };
        hours.retain(|(day, _), (ids, _)| {
            let keep = *day >= first_day;
            if !keep {
                *held -= ids.cost();
            }
            keep
        });
    }

    /// Ids held in memory now (an hour on disk counts for what its filters and fences take).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held
    }

    /// Drops the least recently used hours until at most `max_ids` are held (`keep` stays).
    fn evict(&mut self, keep: Option<(&str, Hour)>) {
        while self.held > self.max_ids {
            let oldest = self
                .hours
                .iter()
                .flat_map(|(source, hours)| hours.iter().map(move |(hour, (_, used))| (source, *hour, *used)))
                .filter(|(source, hour, _)| keep != Some((source.as_str(), *hour)))
                .min_by_key(|(_, _, used)| *used)
                .map(|(source, hour, _)| (source.clone(), hour));
            let Some((source, hour)) = oldest else { break };
            if let Some((ids, _)) = self.hours.get_mut(&source).and_then(|h| h.remove(&hour)) {
                self.held -= ids.cost();
            }
        }
    }
}

/// The ids of `source`'s records of `hour` in the lake: a set in memory, or, when `disk` is
/// `(dir, above)` and the hour has more than `above` ids, runs in `dir`.
fn load_hour(
    lake: &Lake,
    snapshot: &Snapshot,
    source: &str,
    skip_key: Option<&str>,
    (day, hour): Hour,
    disk: Option<(&Path, usize)>,
) -> Result<HourIds, IngestError> {
    let Some(files) = snapshot.files.get(DATASET) else { return Ok(HourIds::Memory(IdSet::default())) };
    let date_dir = format!("{DATASET}/date={}/", day.format("%Y-%m-%d"));
    let own = format!("{date_dir}hour={hour:02}/");
    let legacy = format!("{date_dir}hour=00/");
    let skip: HashSet<&str> = skip_key
        .and_then(|k| snapshot.by_key.get(k))
        .map(|files| files.iter().map(|f| f.path.as_str()).collect())
        .unwrap_or_default();
    let prefix = format!("{source}-");
    let mut parts: Vec<&sb_lake::FileEntry> = Vec::new();
    for f in files.iter().filter(|f| !skip.contains(f.path.as_str())) {
        // Another hour's folder is read only for the day-wide parts of before, under hour 0.
        let day_wide_only = if f.path.starts_with(&own) {
            false
        } else if hour != 0 && f.path.starts_with(&legacy) {
            true
        } else {
            continue;
        };
        // Parts are named after their commit, which starts with the source (both folder
        // prefixes have the same length).
        if !f.path[own.len()..].starts_with(&prefix) {
            continue;
        }
        // An hour-0 part of the new kind holds hour 0 only (known from its footer, so that
        // its rows do not count for the other hours' sizes either).
        if day_wide_only && per_hour(lake, f)? {
            continue;
        }
        parts.push(f);
    }
    // The manifest counts each part's rows: the set is made its size at once.
    let rows: usize = parts.iter().map(|f| f.rows as usize).sum();
    match disk {
        Some((dir, above)) if rows > above => {
            let failed =
                |e: std::io::Error| IngestError::Io(format!("cannot write record ids to {}: {e}", dir.display()));
            std::fs::create_dir_all(dir).map_err(failed)?;
            let mut runs = Vec::new();
            let mut keys: Vec<u128> = Vec::with_capacity(rows.min(DISK_RUN_KEYS));
            let sorted_run = |keys: &mut Vec<u128>| -> std::io::Result<Run> {
                keys.sort_unstable();
                let mut run = RunWriter::new(dir, keys.len(), usize::MAX)?;
                for k in keys.drain(..) {
                    run.push(k)?;
                }
                run.finish()
            };
            read_ids(lake, &parts, |id| {
                keys.push(run_key((day, hour), id));
                if keys.len() == DISK_RUN_KEYS {
                    runs.push(sorted_run(&mut keys).map_err(failed)?);
                }
                Ok(())
            })?;
            if !keys.is_empty() {
                runs.push(sorted_run(&mut keys).map_err(failed)?);
            }
            drop(keys);
            if runs.len() > MAX_RUNS {
                // Merged, the hour keeps no more filter than its runs had before: a larger
                // hour gets fewer bits an id, not more memory.
                runs = vec![merge(runs, dir, MAX_RUNS * DISK_RUN_KEYS * 2).map_err(failed)?];
            }
            Ok(HourIds::Disk { hour: (day, hour), runs })
        }
        _ => {
            let mut set = IdSet::with_capacity(rows);
            read_ids(lake, &parts, |id| {
                set.insert(id);
                Ok(())
            })?;
            Ok(HourIds::Memory(set))
        }
    }
}

/// A failure to read a `_dedup` part, naming it.
fn part_err(lake: &Lake, entry: &sb_lake::FileEntry, e: impl std::fmt::Display) -> IngestError {
    IngestError::Io(format!("cannot read {}: {e}", lake.root().join(&entry.path).display()))
}

/// A `_dedup` part opened, its footer read.
fn open_part(
    lake: &Lake,
    entry: &sb_lake::FileEntry,
) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>, IngestError> {
    let file = std::fs::File::open(lake.root().join(&entry.path)).map_err(|e| part_err(lake, entry, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| part_err(lake, entry, e))
}

/// Whether a `_dedup` part keeps ids per hour (an `event_hour` column), from its footer.
fn per_hour(lake: &Lake, entry: &sb_lake::FileEntry) -> Result<bool, IngestError> {
    Ok(open_part(lake, entry)?.schema().column_with_name("event_hour").is_some())
}

/// Calls `f` with each id of `parts`.
fn read_ids(
    lake: &Lake,
    parts: &[&sb_lake::FileEntry],
    mut f: impl FnMut(u128) -> Result<(), IngestError>,
) -> Result<(), IngestError> {
    for entry in parts {
        for batch in open_part(lake, entry)?.build().map_err(|e| part_err(lake, entry, e))? {
            let batch = batch.map_err(|e| part_err(lake, entry, e))?;
            let hi = batch.column(0).as_any().downcast_ref::<UInt64Array>();
            let lo = batch.column(1).as_any().downcast_ref::<UInt64Array>();
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(part_err(lake, entry, "not a dedup part"));
            };
            for (h, l) in hi.values().iter().zip(lo.values()) {
                f((u128::from(*h) << 64) | u128::from(*l))?;
            }
        }
    }
    Ok(())
}

/// The `_dedup` rows of one event hour.
pub fn batch((day, hour): Hour, ids: &[u128]) -> Result<RecordBatch, IngestError> {
    let days = (day - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32;
    RecordBatch::try_new(
        Arc::clone(&SCHEMA),
        vec![
            Arc::new(UInt64Array::from_iter_values(ids.iter().map(|i| (i >> 64) as u64))),
            Arc::new(UInt64Array::from_iter_values(ids.iter().map(|i| *i as u64))),
            Arc::new(Date32Array::from(vec![days; ids.len()])),
            Arc::new(Int32Array::from(vec![hour as i32; ids.len()])),
        ],
    )
    .map_err(|e| IngestError::Io(format!("dedup batch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).expect("date")
    }

    #[test]
    fn id_sets_count_each_id_once() {
        let mut s = IdSet::default();
        assert!(s.insert(id_hash("MED01", "a")) && s.insert(id_hash("MED01", "b")));
        assert!(!s.insert(id_hash("MED01", "a")));
        assert!(s.contains(id_hash("MED01", "b")) && !s.contains(id_hash("MED02", "b")));
        assert_eq!(s.len(), 2);
        let mut t = IdSet::default();
        t.insert(id_hash("MED01", "b"));
        t.insert(id_hash("MED01", "c"));
        s.absorb(t);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn a_larger_set_absorbed_into_a_smaller_one_keeps_every_id_of_both() {
        let ids = |from: u32, to: u32| (from..to).map(|i| id_hash("MED01", &i.to_string())).collect::<Vec<_>>();
        let mut small = IdSet::default();
        ids(0, 10).into_iter().for_each(|id| assert!(small.insert(id)));
        let mut large = IdSet::with_capacity(5_000);
        ids(5, 5_000).into_iter().for_each(|id| assert!(large.insert(id)));
        small.absorb(large);
        assert_eq!(small.len(), 5_000, "ids 5..10 were in both");
        assert!(ids(0, 5_000).into_iter().all(|id| small.contains(id)));
        assert!(!small.contains(id_hash("MED01", "5000")));
    }

    #[test]
    fn id_tables_agree_with_a_hash_set_through_their_growth() {
        let mut slots = Slots::default();
        let mut reference = HashSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000u64 {
            // Random values, every tenth one repeated, and 0, 1 and u64::MAX among them.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = match i % 10 {
                0 => i / 10,
                1 => u64::MAX,
                _ => x,
            };
            assert_eq!(slots.insert(v), reference.insert(v), "insert {v}");
            assert!(slots.contains(v));
        }
        assert_eq!(slots.values().count(), reference.len());
        assert!(reference.iter().all(|v| slots.contains(*v)));
        assert!(!slots.contains(0xdead_beef_dead_beef) || reference.contains(&0xdead_beef_dead_beef));
        assert!(
            slots.len * 5 <= slots.table.len() * 4 && slots.len * 100 >= slots.table.len() * 60,
            "stays 60-80 % full"
        );
    }

    #[test]
    fn the_window_drops_the_least_recently_used_hours_beyond_its_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::open(dir.path()).expect("lake");
        let snapshot = lake.snapshot().expect("snapshot");
        let mut w = Window::new(3, std::env::temp_dir());
        for h in 0..3u32 {
            assert!(!w.contains(&lake, &snapshot, "S", None, (day(), h), 1).expect("contains"));
            let mut p = Pending::default();
            p.insert((day(), h), u128::from(h) + 10).expect("insert");
            p.insert((day(), h), u128::from(h) + 20).expect("insert");
            w.absorb("S", p);
        }
        assert!(w.held() <= 3, "held {}", w.held());
        // The newest hour stays; what was dropped is read again from the lake on demand.
        assert!(w.contains(&lake, &snapshot, "S", None, (day(), 2), 22).expect("contains"));
    }

    #[test]
    fn ids_beyond_the_memory_budget_go_to_runs_on_disk_and_are_found_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let next = day().succ_opt().expect("date");
        // A start time of 0 west of UTC falls on 1969-12-31: it must sort before the others.
        let before_1970 = (NaiveDate::from_ymd_opt(1969, 12, 31).expect("date"), 23);
        let hours = [(day(), 3), before_1970, (next, 0)];
        let mut p = Pending::new(1000, dir.path().to_path_buf());
        let mut reference = HashSet::new();
        for i in 0..20_000u64 {
            // Every fifth record repeats an earlier one, often one in a run by now.
            let n = if i % 5 == 0 { i / 3 } else { i };
            let (hour, id) = (hours[(n % 3) as usize], id_hash("S", &n.to_string()));
            assert_eq!(p.insert(hour, id).expect("insert"), reference.insert((hour, id)), "record {n}");
            p.spill_if_full().expect("spill");
        }
        assert!((1..MAX_RUNS).contains(&p.runs()), "{} runs: merged beyond {MAX_RUNS}", p.runs());
        // 16,000 ids went through two merges; the merged run's filter kept to its budget of
        // 12 bytes × 1,000, the newer runs' 2 bytes an id (blocks of 64 bytes rounded up).
        assert!(p.filter_bytes() <= 26 * 1000 + MAX_RUNS * 64, "filters of {} bytes", p.filter_bytes());
        // The same id in another hour is another record, in memory and in runs alike.
        assert!(p.insert(hours[2], id_hash("S", "1")).expect("insert"));
        assert!(p.insert((day(), 5), id_hash("S", "1")).expect("insert"));
        assert!(!p.insert(hours[1], id_hash("S", "1")).expect("insert"));
        assert_eq!(p.newest_day(), Some(next));
        // The runs are unnamed files: nothing is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);

        // After the commit the window reads the hours that went to disk again from the lake.
        let lake_dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::open(lake_dir.path()).expect("lake");
        let snapshot = lake.snapshot().expect("snapshot");
        let mut w = Window::new(100_000, std::env::temp_dir());
        for h in [hours[0], (day(), 5)] {
            assert!(!w.contains(&lake, &snapshot, "S", None, h, 7).expect("contains"));
        }
        w.absorb("S", p);
        assert_eq!(w.held(), 1, "hour 3 is dropped, hour 5 (in memory only) absorbed");
    }

    #[test]
    fn a_filter_held_to_fewer_bits_a_key_finds_every_key_and_few_others() {
        let key = |i: u64| run_key((day(), 3), id_hash("S", &i.to_string()));
        // (bits a key, the most false "maybe"s in 100,000 absent keys): the blocked filter is a
        // little worse than the textbook one (0.05 %, 2.2 %, 15 %).
        for (bits, most) in [(16, 300), (8, 4_000), (4, 20_000)] {
            let n = 100_000;
            let mut bloom = Bloom::new(n, n * bits / 8);
            assert_eq!(bloom.bytes(), n * bits / 8 / 64 * 64);
            for i in 0..n as u64 {
                bloom.insert(key(i));
            }
            assert!((0..n as u64).all(|i| bloom.may_contain(key(i))), "{bits} bits: a key not found");
            let false_maybes = (n as u64..2 * n as u64).filter(|i| bloom.may_contain(key(*i))).count();
            assert!(false_maybes < most, "{bits} bits a key: {false_maybes} false maybes");
        }
    }

    #[test]
    fn each_source_has_its_own_ids_of_an_hour() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::open(dir.path()).expect("lake");
        commit(&lake, "B-1", (day(), 7), &batch((day(), 7), &[id_hash("B", "x")]).expect("batch"));
        let snapshot = lake.snapshot().expect("snapshot");
        let mut w = Window::new(100, std::env::temp_dir());
        // Source A loads hour 7 first (it has nothing there); B must still find its own id.
        assert!(!w.contains(&lake, &snapshot, "A", None, (day(), 7), id_hash("B", "x")).expect("contains"));
        assert!(w.contains(&lake, &snapshot, "B", None, (day(), 7), id_hash("B", "x")).expect("contains"));
        let mut p = Pending::default();
        p.insert((day(), 7), id_hash("A", "y")).expect("insert");
        w.absorb("A", p);
        assert!(!w.contains(&lake, &snapshot, "B", None, (day(), 7), id_hash("A", "y")).expect("contains"));
        assert!(w.contains(&lake, &snapshot, "A", None, (day(), 7), id_hash("A", "y")).expect("contains"));
        w.forget_before("A", day().succ_opt().expect("date"));
        assert_eq!(w.held(), 1, "B's hour stays");
    }

    fn commit(lake: &Lake, id: &str, hour: Hour, batch: &RecordBatch) {
        let mut staged = lake.stage(id, Some(id)).expect("stage");
        let mut part = staged.part(DATASET, batch.schema(), Some(hour)).expect("part");
        part.write(batch).expect("write");
        staged.add(part.finish().expect("finish"));
        staged.commit().expect("commit");
    }

    #[test]
    fn hours_are_read_from_their_own_parts_and_from_day_wide_parts_of_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::open(dir.path()).expect("lake");
        let (a, b, c) = (id_hash("S", "a"), id_hash("S", "b"), id_hash("S", "c"));
        // A day-wide part as written before ids were kept per hour: three columns, hour=00.
        let legacy_schema = Arc::new(Schema::new(SCHEMA.fields()[..3].to_vec()));
        let days = (day() - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32;
        let legacy = RecordBatch::try_new(
            legacy_schema,
            vec![
                Arc::new(UInt64Array::from(vec![(a >> 64) as u64])),
                Arc::new(UInt64Array::from(vec![a as u64])),
                Arc::new(Date32Array::from(vec![days])),
            ],
        )
        .expect("batch");
        commit(&lake, "S-old", (day(), 0), &legacy);
        commit(&lake, "S-h0", (day(), 0), &batch((day(), 0), &[b]).expect("batch"));
        commit(&lake, "S-h5", (day(), 5), &batch((day(), 5), &[c]).expect("batch"));
        commit(&lake, "T-h5", (day(), 5), &batch((day(), 5), &[id_hash("S", "d")]).expect("batch"));
        let snapshot = lake.snapshot().expect("snapshot");

        // The same answers from a set in memory and from runs on disk.
        let spill = tempfile::tempdir().expect("tempdir");
        for disk in [None, Some((spill.path(), 0))] {
            let load = |skip, hour| load_hour(&lake, &snapshot, "S", skip, hour, disk).expect("hour");
            let has = |ids: &HourIds, id| ids.contains(id).expect("contains");
            let h5 = load(None, (day(), 5));
            assert_eq!(matches!(h5, HourIds::Disk { .. }), disk.is_some());
            assert!(has(&h5, a), "a day-wide part counts for every hour of its day");
            assert!(has(&h5, c));
            assert!(!has(&h5, b), "an hour-0 part of the new kind holds hour 0 only");
            assert!(!has(&h5, id_hash("S", "d")), "another source's parts are not read");
            let h0 = load(None, (day(), 0));
            assert!(has(&h0, a) && has(&h0, b) && !has(&h0, c));
            let skipped = load(Some("S-h5"), (day(), 5));
            assert!(!has(&skipped, c), "the file being replayed is left out");
        }
        assert_eq!(std::fs::read_dir(spill.path()).expect("dir").count(), 0, "runs are unnamed files");
    }

    #[test]
    fn an_hour_too_large_to_hold_goes_to_runs_and_stays_beside_the_hour_in_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::open(dir.path()).expect("lake");
        let ids = |from: u32, to: u32| (from..to).map(|i| id_hash("S", &i.to_string())).collect::<Vec<_>>();
        // A large hour 0 (more than half the budget) and the small hour 1 of the next file.
        commit(&lake, "S-h0", (day(), 0), &batch((day(), 0), &ids(0, 3_000)).expect("batch"));
        commit(&lake, "S-h1", (day(), 1), &batch((day(), 1), &ids(3_000, 3_100)).expect("batch"));
        let snapshot = lake.snapshot().expect("snapshot");
        let spill = tempfile::tempdir().expect("tempdir");
        let mut w = Window::new(1_000, spill.path().to_path_buf());
        // The next file's rows: its own hour, with now and then a late record of hour 0.
        for i in 0..4_000u32 {
            let (hour, id, seen) = if i % 10 == 0 {
                ((day(), 0), id_hash("S", &(i % 3_500).to_string()), i % 3_500 < 3_000)
            } else {
                ((day(), 1), id_hash("S", &(3_000 + i % 200).to_string()), i % 200 < 100)
            };
            assert_eq!(w.contains(&lake, &snapshot, "S", None, hour, id).expect("contains"), seen, "row {i}");
        }
        // Both hours are still held: the large one on disk at the cost of its filter and fences.
        assert_eq!(w.hours["S"].len(), 2, "no hour was dropped (and read again)");
        assert!(matches!(w.hours["S"][&(day(), 0)].0, HourIds::Disk { .. }));
        // Hour 0's parts do not count for hour 1's size (they hold hour 0 only).
        assert!(matches!(w.hours["S"][&(day(), 1)].0, HourIds::Memory(_)));
        // 3,000 ids: 94 blocks of 64 bytes of filter (16 bits an id) and 12 fences of 16 bytes,
        // counted in ids of 12 bytes, about a sixth of the hour's ids.
        assert_eq!(w.held(), (94 * 64 + 12 * 16usize).div_ceil(12) + 100);
        // A commit touching the hour on disk drops it: the lake has its new ids.
        let mut p = Pending::default();
        p.insert((day(), 0), id_hash("S", "new")).expect("insert");
        p.insert((day(), 1), id_hash("S", "new")).expect("insert");
        w.absorb("S", p);
        assert_eq!(w.held(), 101, "hour 0 dropped, hour 1 took the new id");
    }

    #[test]
    fn parts_of_days_before_the_window_expire_for_their_own_source_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::open(dir.path()).expect("lake");
        let next = day().succ_opt().expect("date");
        commit(&lake, "S-1", (day(), 23), &batch((day(), 23), &[1]).expect("batch"));
        commit(&lake, "S-2", (next, 0), &batch((next, 0), &[2]).expect("batch"));
        commit(&lake, "T-1", (day(), 23), &batch((day(), 23), &[3]).expect("batch"));
        let snapshot = lake.snapshot().expect("snapshot");
        assert_eq!(expired(&snapshot, "S", next), vec!["_dedup/date=2026-11-22/hour=23/S-1-1.parquet"]);
        assert!(expired(&snapshot, "S", day()).is_empty(), "the first day of the window stays");

        let mut w = Window::new(100, std::env::temp_dir());
        for (h, id) in [((day(), 23), 1), ((next, 0), 2)] {
            assert!(w.contains(&lake, &snapshot, "S", None, h, id).expect("contains"));
        }
        w.forget_before("S", next);
        assert_eq!(w.held(), 1);
    }
}
