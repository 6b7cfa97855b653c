//! Reading and checking a file's rows on a thread of their own, a batch at a time, while the
//! loader protects and writes the batch before: on two cores the two halves overlap.
//!
//! A batch owns its text: the valid records' text fields are copied into one string and
//! named by spans, so a batch moves between threads without a lifetime and with one
//! allocation for its text.
//!
//! The reading thread also deduplicates each batch against the window and the file's ids so
//! far: it is the least busy of the three threads of a load (reading, protecting, writing),
//! and the id lookups — a cache miss each in tables of millions — took a fifth of the
//! protecting thread's time there.

use std::io::BufRead;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Timelike};
use chrono_tz::Tz;
use sb_core::{TopupChannel, UsageKind};
use tokio::sync::mpsc;

use sb_lake::{Lake, Snapshot};

use crate::FastMap;
use crate::dedup::{self, Pending, Window};
use crate::layout::CompiledLayout;
use crate::pipeline::LoadFailure;
use crate::record::{Record, RowError, RowParser};

/// Where a text field is in its batch's text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    start: u32,
    end: u32,
}

/// A valid record of a batch, its text fields as spans of the batch's text.
#[derive(Debug, Clone)]
pub struct Row {
    /// Unique per source.
    pub record_id: Span,
    /// What it is.
    pub kind: UsageKind,
    /// The served line (cleartext until protected).
    pub msisdn: Span,
    /// The SIM.
    pub imsi: Option<Span>,
    /// The device.
    pub imei: Option<Span>,
    /// The other party.
    pub other_party: Option<Span>,
    /// Country when roaming.
    pub roaming: Option<Span>,
    /// Start, microseconds since the epoch (UTC).
    pub start_us: i64,
    /// Local event date and hour (the partition).
    pub hour: dedup::Hour,
    /// The record id's hash within its source.
    pub dedup_id: u128,
    /// Seconds.
    pub duration_s: i64,
    /// Bytes up.
    pub up_bytes: i64,
    /// Bytes down.
    pub down_bytes: i64,
    /// Data rating group.
    pub rating_group: Option<i64>,
    /// Radio cell.
    pub cell_id: Option<i64>,
    /// Charge or top-up amount, 1/10 000 EUR.
    pub charge_e4: i64,
    /// Top-up channel.
    pub channel: Option<TopupChannel>,
    /// Partial record sequence.
    pub partial_seq: Option<i64>,
}

/// A row that is not a record: its line number, why, and the raw bytes for quarantine.
pub struct BadRow {
    /// Line number in the file (1-based, the header counts).
    pub line_no: u64,
    /// What is wrong.
    pub error: RowError,
    /// The row as read.
    pub raw: Vec<u8>,
}

/// One batch of rows, read and checked.
#[derive(Default)]
pub struct Batch {
    text: String,
    /// The valid records, in file order.
    pub rows: Vec<Row>,
    /// The rows that are not records.
    pub bad: Vec<BadRow>,
    /// Rows read (blank lines do not count).
    pub read: i64,
    /// The rows to load (not duplicates), as indices into `rows`.
    pub keep: Vec<usize>,
    /// Their record ids, per event hour.
    pub ids: FastMap<dedup::Hour, Vec<u128>>,
    /// Records dropped as duplicates.
    pub duplicates: i64,
}

impl Batch {
    /// The text of a span.
    pub fn text(&self, s: Span) -> &str {
        &self.text[s.start as usize..s.end as usize]
    }

    fn put(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span { start, end: self.text.len() as u32 }
    }

    fn push(&mut self, r: &Record<'_>, hour: dedup::Hour, dedup_id: u128) {
        let row = Row {
            record_id: self.put(&r.record_id),
            kind: r.kind,
            msisdn: self.put(&r.msisdn),
            imsi: r.imsi.as_deref().map(|v| self.put(v)),
            imei: r.imei.as_deref().map(|v| self.put(v)),
            other_party: r.other_party.as_deref().map(|v| self.put(v)),
            roaming: r.roaming.as_deref().map(|v| self.put(v)),
            start_us: r.start_us,
            hour,
            dedup_id,
            duration_s: r.duration_s,
            up_bytes: r.up_bytes,
            down_bytes: r.down_bytes,
            rating_group: r.rating_group,
            cell_id: r.cell_id,
            charge_e4: r.charge_e4,
            channel: r.channel,
            partial_seq: r.partial_seq,
        };
        self.rows.push(row);
    }
}

/// Local (date, hour) of UTC instants, remembering the last hour asked (records come in runs).
struct LocalHour {
    tz: Tz,
    last: Option<(i64, NaiveDate, u32)>,
}

impl LocalHour {
    fn of(&mut self, start_us: i64) -> dedup::Hour {
        let hour_key = start_us.div_euclid(3_600_000_000);
        if let Some((k, d, h)) = self.last
            && k == hour_key
        {
            return (d, h);
        }
        let t = DateTime::<chrono::Utc>::from_timestamp_micros(start_us).unwrap_or_default().with_timezone(&self.tz);
        let (d, h) = (t.date_naive(), t.hour());
        self.last = Some((hour_key, d, h));
        (d, h)
    }
}

/// What the reading thread needs, all owned.
pub struct ReadJob {
    /// The file's rows after the header.
    pub reader: Box<dyn BufRead + Send>,
    /// The layout resolved against the header.
    pub layout: CompiledLayout,
    /// The file's hour, for the start-time window.
    pub file_hour: Option<DateTime<chrono::Utc>>,
    /// Timezone of partitions.
    pub timezone: Tz,
    /// The source (record ids are unique within it).
    pub source: String,
    /// Rows per batch.
    pub batch_rows: usize,
    /// Line number of the first row (1 after a header).
    pub first_line: u64,
    /// The file, for error messages.
    pub name: String,
    /// Whether reading errors mean a corrupt compressed stream (the file is rejected).
    pub gzip: bool,
    /// What deduplicates the rows.
    pub dedup: Dedup,
}

/// What deduplicates a file's rows, on the reading thread; given back at the end of the file.
pub struct Dedup {
    /// Ids of committed files, per source and hour.
    pub window: Window,
    /// The file's ids so far.
    pub pending: Pending,
    /// The lake and its state, where the window reads the hours it does not hold.
    pub lake: Lake,
    /// The committed state the load started from (shared with the caller, not copied).
    pub snapshot: Arc<Snapshot>,
    /// When replaying: the commit key whose ids do not count.
    pub skip_key: Option<String>,
}

impl Dedup {
    /// Marks the batch's rows to keep and counts the others as duplicates.
    fn apply(&mut self, source: &str, batch: &mut Batch) -> Result<(), LoadFailure> {
        batch.keep.reserve(batch.rows.len());
        let skip = self.skip_key.as_deref();
        for (i, r) in batch.rows.iter().enumerate() {
            if self.window.contains(&self.lake, &self.snapshot, source, skip, r.hour, r.dedup_id)?
                || !self.pending.insert(r.hour, r.dedup_id)?
            {
                batch.duplicates += 1;
                continue;
            }
            batch.ids.entry(r.hour).or_default().push(r.dedup_id);
            batch.keep.push(i);
        }
        self.pending.spill_if_full()?;
        Ok(())
    }
}

/// The longest row kept: a longer one is quarantined with its first `MAX_LINE` bytes, and the
/// rest of it is read past, so that a file without line ends cannot fill the memory.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// A batch ends once its lines take this many bytes, even with fewer rows than
/// `ingest.batch_rows` (only long lines get there: 65,536 rows of a CDR take about 10 MB).
const BATCH_TEXT: usize = 64 << 20;

/// Reads one line, through its `\n`, onto `buf`, keeping at most `max` bytes of it; the rest of
/// a longer line is read and dropped. Gives the bytes read (0 at the end of the input) and
/// whether the line was cut.
pub(crate) fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<(usize, bool)> {
    let start = buf.len();
    // One byte more than a line may keep: its `\n`, or the sign that it goes on.
    let n = std::io::Read::take(&mut *r, max as u64 + 1).read_until(b'\n', buf)?;
    if n <= max || buf.last() == Some(&b'\n') {
        return Ok((n, false));
    }
    buf.truncate(start + max);
    Ok((n + r.skip_until(b'\n')?, true))
}

/// A read error: a corrupt compressed stream rejects the file; anything else is retried later.
pub(crate) fn read_failure(gzip: bool, name: &str, e: &std::io::Error) -> LoadFailure {
    if gzip {
        LoadFailure::Rejected(format!("the gzip stream is truncated or corrupt ({e})"))
    } else {
        LoadFailure::Error(crate::IngestError::Io(format!("cannot read {name}: {e}")))
    }
}

/// What the reading thread sends: a deduplicated batch, the end of the file with the
/// deduplication state, or why it stopped.
pub type Message = Result<Read, LoadFailure>;

/// A batch, or the end of the file.
pub enum Read {
    /// The next batch.
    Batch(Batch),
    /// The end of the file: the window and the file's ids.
    End(Box<Dedup>),
}

/// Starts reading on a thread of its own; batches arrive on the receiver, at most one ahead
/// of the loader, then [`Read::End`] at the end of the file. A read or dedup error ends the
/// stream with the error; a stream that closes without the end was cut short (the thread
/// died). Dropping the receiver stops the thread at its next batch.
pub fn spawn(job: ReadJob) -> Result<mpsc::Receiver<Message>, LoadFailure> {
    let (tx, rx) = mpsc::channel(1);
    std::thread::Builder::new()
        .name("ingest-read".into())
        .spawn(move || read(job, &tx))
        .map_err(|e| LoadFailure::Error(crate::IngestError::Io(format!("cannot start a reading thread: {e}"))))?;
    Ok(rx)
}

fn read(mut job: ReadJob, tx: &mpsc::Sender<Message>) {
    let mut parser = RowParser::new(&job.layout, job.file_hour);
    let mut local = LocalHour { tz: job.timezone, last: None };
    let mut line_no = job.first_line;
    let mut arena: Vec<u8> = Vec::with_capacity(job.batch_rows * 160);
    // Each line's start and end in `arena`, its number, and whether it was cut at MAX_LINE.
    let mut spans: Vec<(usize, usize, u64, bool)> = Vec::with_capacity(job.batch_rows);
    loop {
        arena.clear();
        spans.clear();
        let mut eof = false;
        while spans.len() < job.batch_rows && arena.len() < BATCH_TEXT {
            let start = arena.len();
            let (n, cut) = match read_line(&mut *job.reader, &mut arena, MAX_LINE) {
                Ok(read) => read,
                Err(e) => {
                    let _ = tx.blocking_send(Err(read_failure(job.gzip, &job.name, &e)));
                    return;
                }
            };
            if n == 0 {
                eof = true;
                break;
            }
            line_no += 1;
            let mut end = arena.len();
            while end > start && (arena[end - 1] == b'\n' || arena[end - 1] == b'\r') {
                end -= 1;
            }
            if end > start {
                spans.push((start, end, line_no, cut));
            }
        }
        let mut batch = Batch {
            text: String::with_capacity(spans.len() * 64),
            rows: Vec::with_capacity(spans.len()),
            bad: Vec::new(),
            read: spans.len() as i64,
            ..Batch::default()
        };
        for &(s, e, no, cut) in &spans {
            let raw = &arena[s..e];
            if cut {
                let error = RowError { field: "row", reason: format!("longer than {MAX_LINE} bytes") };
                batch.bad.push(BadRow { line_no: no, error, raw: raw.to_vec() });
                continue;
            }
            let outcome = std::str::from_utf8(raw)
                .map_err(|_| RowError { field: "row", reason: "not UTF-8 text".into() })
                .and_then(|text| {
                    parser.split(text)?;
                    parser.record(text)
                });
            match outcome {
                Ok(r) => {
                    let hour = local.of(r.start_us);
                    let id = dedup::id_hash(&job.source, &r.record_id);
                    batch.push(&r, hour, id);
                }
                Err(error) => batch.bad.push(BadRow { line_no: no, error, raw: raw.to_vec() }),
            }
        }
        if let Err(failure) = job.dedup.apply(&job.source, &mut batch) {
            let _ = tx.blocking_send(Err(failure));
            return;
        }
        if batch.read > 0 && tx.blocking_send(Ok(Read::Batch(batch))).is_err() {
            return; // the loader stopped
        }
        if eof {
            let _ = tx.blocking_send(Ok(Read::End(Box::new(job.dedup))));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_longer_than_the_limit_is_cut_and_the_next_line_is_read_whole() {
        // A reader that hands out 3 bytes at a time, so lines span its buffer's refills.
        let input = b"abc\nlong line here\n\nlast";
        let mut r = std::io::BufReader::with_capacity(3, &input[..]);
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            let (n, cut) = read_line(&mut r, &mut buf, 6).unwrap();
            if n == 0 {
                break;
            }
            lines.push((String::from_utf8(buf).unwrap(), n, cut));
        }
        let expected = [("abc\n", 4, false), ("long l", 15, true), ("\n", 1, false), ("last", 4, false)];
        let expected: Vec<(String, usize, bool)> = expected.iter().map(|(l, n, c)| (l.to_string(), *n, *c)).collect();
        assert_eq!(lines, expected);
    }
}
