//! The dedup window: record ids seen per source, kept in the lake as the `_dedup` dataset
//! (one part per committed file and event date), so ids join the window exactly when their
//! file commits, and the window survives restarts.
//!
//! Ids are checked within their record's event date: a re-sent record carries the same
//! start time, so its duplicate lives in the same day. Memory holds the ids of the days the
//! current files touch, not the whole window.

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;
use std::sync::{Arc, LazyLock};

use arrow::array::{Date32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sb_lake::{Lake, Snapshot};
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::IngestError;

/// The dataset holding the window.
pub const DATASET: &str = "_dedup";

/// `_dedup`: 128-bit hashes of (source, record id), by event date.
pub static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id_hi", DataType::UInt64, false),
        Field::new("id_lo", DataType::UInt64, false),
        Field::new("event_date", DataType::Date32, false),
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

/// The ids of the window, loaded per day on demand.
#[derive(Default)]
pub struct Window {
    days: HashMap<NaiveDate, HashSet<u128>>,
}

impl Window {
    /// Whether `id` of a record of `day` was committed before. Loads the day when first asked.
    /// Files with commit key `skip_key` (the file being replayed) are left out.
    pub fn contains(
        &mut self,
        lake: &Lake,
        snapshot: &Snapshot,
        source: &str,
        skip_key: Option<&str>,
        day: NaiveDate,
        id: u128,
    ) -> Result<bool, IngestError> {
        let set = match self.days.entry(day) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(load_day(lake, snapshot, source, skip_key, day)?),
        };
        Ok(set.contains(&id))
    }

    /// Adds a committed file's ids to the days already loaded (the others load them from the lake).
    pub fn extend(&mut self, ids: &HashMap<NaiveDate, Vec<u128>>) {
        for (day, ids) in ids {
            if let Some(set) = self.days.get_mut(day) {
                set.extend(ids);
            }
        }
    }
}

fn load_day(
    lake: &Lake,
    snapshot: &Snapshot,
    source: &str,
    skip_key: Option<&str>,
    day: NaiveDate,
) -> Result<HashSet<u128>, IngestError> {
    let mut set = HashSet::new();
    let Some(files) = snapshot.files.get(DATASET) else { return Ok(set) };
    let needle = format!("{DATASET}/date={}/", day.format("%Y-%m-%d"));
    let skip: HashSet<&str> = skip_key
        .and_then(|k| snapshot.by_key.get(k))
        .map(|files| files.iter().map(|f| f.path.as_str()).collect())
        .unwrap_or_default();
    let prefix = format!("{source}-");
    for f in files.iter().filter(|f| f.path.starts_with(&needle) && !skip.contains(f.path.as_str())) {
        // Parts are named after their commit, which starts with the source.
        if !f.path[needle.len()..].trim_start_matches("hour=00/").starts_with(&prefix) {
            continue;
        }
        let path = lake.root().join(&f.path);
        let file =
            std::fs::File::open(&path).map_err(|e| IngestError::Io(format!("cannot read {}: {e}", path.display())))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| IngestError::Io(format!("cannot read {}: {e}", path.display())))?;
        for batch in reader {
            let batch = batch.map_err(|e| IngestError::Io(format!("cannot read {}: {e}", path.display())))?;
            let hi = batch.column(0).as_any().downcast_ref::<UInt64Array>();
            let lo = batch.column(1).as_any().downcast_ref::<UInt64Array>();
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(IngestError::Io(format!("{} is not a dedup part", path.display())));
            };
            set.extend(hi.values().iter().zip(lo.values()).map(|(h, l)| (u128::from(*h) << 64) | u128::from(*l)));
        }
    }
    Ok(set)
}

/// The `_dedup` rows of one day.
pub fn batch(day: NaiveDate, ids: &[u128]) -> Result<RecordBatch, IngestError> {
    let days = (day - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32;
    RecordBatch::try_new(
        Arc::clone(&SCHEMA),
        vec![
            Arc::new(UInt64Array::from_iter_values(ids.iter().map(|i| (i >> 64) as u64))),
            Arc::new(UInt64Array::from_iter_values(ids.iter().map(|i| *i as u64))),
            Arc::new(Date32Array::from(vec![days; ids.len()])),
        ],
    )
    .map_err(|e| IngestError::Io(format!("dedup batch: {e}")))
}
