//! Per-line, per-day totals of a file, for the consumers.
//!
//! A file of a large operator touches millions of lines, so the totals are kept small while
//! the file loads (a line's token packed in 17 bytes instead of its text, top-ups taking room
//! only for lines that have some, the table split so that it grows a sixteenth at a time) and
//! become [`LineUsage`] values one at a time, as the outbox is written.

use std::cmp::Ordering;
use std::collections::hash_map::Entry as MapEntry;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use sb_core::{LineUsage, TopupChannel, Topups, UsageKind};
use sb_privacy::PackedToken;

use crate::rows::Row;
use crate::{FastMap, IngestError};

const CHANNELS: usize = TopupChannel::ALL.len();
/// Tables the totals are split into.
const SHARDS: usize = 16;

/// One line's sums on one day.
#[derive(Default, Clone, Debug, PartialEq)]
struct Totals {
    voice_out_s: i64,
    voice_in_s: i64,
    sms_out: i64,
    sms_in: i64,
    data_up_bytes: i64,
    data_down_bytes: i64,
    vas_events: i64,
    charges_e4: i64,
    /// By channel, in [`TopupChannel::ALL`] order.
    topups: Option<Box<[Topups; CHANNELS]>>,
}

impl Totals {
    /// Adds another part of the same line-day.
    fn add(&mut self, o: &Totals) {
        self.voice_out_s += o.voice_out_s;
        self.voice_in_s += o.voice_in_s;
        self.sms_out += o.sms_out;
        self.sms_in += o.sms_in;
        self.data_up_bytes += o.data_up_bytes;
        self.data_down_bytes += o.data_down_bytes;
        self.vas_events += o.vas_events;
        self.charges_e4 += o.charges_e4;
        if let Some(theirs) = &o.topups {
            let mine = self.topups.get_or_insert_with(Default::default);
            for (m, t) in mine.iter_mut().zip(theirs.iter()) {
                m.count += t.count;
                m.amount_e4 += t.amount_e4;
            }
        }
    }
}

/// A line: its token packed, or the text of another policy's value (an FPE ciphertext, say).
#[derive(Clone, PartialEq, Eq, Hash)]
enum Line {
    Token(PackedToken),
    Text(Arc<str>),
}

impl Line {
    fn new(line: &str) -> Self {
        PackedToken::parse(line).map_or_else(|| Self::Text(Arc::from(line)), Self::Token)
    }

    /// The table of a line: any spreads the lines evenly (the order comes from sorting).
    fn shard(&self) -> usize {
        let spread = match self {
            Self::Token(t) => t.spread(),
            Self::Text(t) => std::hash::BuildHasher::hash_one(
                &std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default(),
                t,
            ),
        };
        (spread >> 60) as usize % SHARDS
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(t) => t.fmt(f),
            Self::Text(t) => f.write_str(t),
        }
    }
}

impl Ord for Line {
    /// The order of the lines' text.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Token(a), Self::Token(b)) => a.cmp(b),
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
            _ => self.to_string().cmp(&other.to_string()),
        }
    }
}

impl PartialOrd for Line {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

type Entry = ((Line, NaiveDate), Totals);

/// Runs merged into one when there are this many, so that open files stay few.
const MAX_RUNS: usize = 32;

/// Line-days held in memory by default before they go to a run on disk.
pub const DEFAULT_MEMORY_LINES: usize = 200_000;

/// Sums records per (line token, day). At most `max_lines` line-days are held in memory: when
/// they are reached, they are written, sorted, to a run in an unnamed temporary file (gone
/// when closed, even after a crash), and [`Aggregates::into_lines`] merges the runs.
pub struct Aggregator {
    shards: Vec<FastMap<(Line, NaiveDate), Totals>>,
    held: usize,
    max_lines: usize,
    spill_dir: PathBuf,
    runs: Vec<File>,
}

fn tables() -> Vec<FastMap<(Line, NaiveDate), Totals>> {
    (0..SHARDS).map(|_| FastMap::default()).collect()
}

impl Aggregator {
    /// Holds at most `max_lines` line-days in memory; runs beyond go to `spill_dir`.
    pub fn new(max_lines: usize, spill_dir: PathBuf) -> Self {
        Self { shards: tables(), held: 0, max_lines: max_lines.max(1), spill_dir, runs: Vec::new() }
    }

    /// Adds one loaded record.
    pub fn add(&mut self, line: &str, day: NaiveDate, r: &Row) {
        let line = Line::new(line);
        let u = match self.shards[line.shard()].entry((line, day)) {
            MapEntry::Occupied(e) => e.into_mut(),
            MapEntry::Vacant(e) => {
                self.held += 1;
                e.insert(Totals::default())
            }
        };
        match r.kind {
            UsageKind::VoiceMo => u.voice_out_s += r.duration_s,
            UsageKind::VoiceMt => u.voice_in_s += r.duration_s,
            UsageKind::SmsMo => u.sms_out += 1,
            UsageKind::SmsMt => u.sms_in += 1,
            UsageKind::Data => {
                u.data_up_bytes += r.up_bytes;
                u.data_down_bytes += r.down_bytes;
            }
            UsageKind::Vas => u.vas_events += 1,
            UsageKind::Topup | UsageKind::TopupAuto => {
                if let Some(ch) = r.channel {
                    let slot = TopupChannel::ALL.iter().position(|c| *c == ch).expect("every channel is listed");
                    let t = &mut u.topups.get_or_insert_with(Default::default)[slot];
                    t.count += 1;
                    t.amount_e4 += r.charge_e4;
                }
                return;
            }
        }
        u.charges_e4 += r.charge_e4;
    }

    /// Writes the line-days held to a run on disk once they reach the budget (between batches).
    pub fn spill_if_full(&mut self) -> Result<(), IngestError> {
        if self.held < self.max_lines {
            return Ok(());
        }
        let sorted = sort(std::mem::replace(&mut self.shards, tables()));
        self.held = 0;
        let run = self.write_run(merge_memory(sorted).map(Ok))?;
        self.runs.push(run);
        if self.runs.len() >= MAX_RUNS {
            // The runs merged into one (a line-day's parts summed), so a file of any size keeps
            // few files open.
            let runs = std::mem::take(&mut self.runs);
            let run = self.write_run(merge(runs.into_iter().enumerate().map(|(n, f)| read_run(n, f)).collect()))?;
            self.runs.push(run);
        }
        Ok(())
    }

    /// Writes line-days in order to a new run, ready to be read from its start.
    fn write_run(&self, entries: impl Iterator<Item = Result<Entry, IngestError>>) -> Result<File, IngestError> {
        let failed = |e: std::io::Error| {
            IngestError::Io(format!("cannot write per-line totals to {}: {e}", self.spill_dir.display()))
        };
        std::fs::create_dir_all(&self.spill_dir).map_err(failed)?;
        let file = tempfile::tempfile_in(&self.spill_dir).map_err(failed)?;
        // The buffer is in front of the compressor: entries are written a field at a time.
        let mut z = BufWriter::with_capacity(1 << 16, zstd::Encoder::new(file, 1).map_err(failed)?);
        for entry in entries {
            run::write(&mut z, &entry?).map_err(failed)?;
        }
        let mut file = z.into_inner().map_err(|e| failed(e.into_error()))?.finish().map_err(failed)?;
        file.seek(SeekFrom::Start(0)).map_err(failed)?;
        Ok(file)
    }

    /// The totals, sorted by line and day (deterministic deliveries, and the order
    /// [`delta`] relies on). One table at a time becomes a sorted list, so the totals are
    /// never held twice.
    pub fn finish(self) -> Aggregates {
        Aggregates { memory: sort(self.shards), runs: self.runs }
    }
}

/// Each table as a list sorted by line and day, one table at a time.
fn sort(shards: Vec<FastMap<(Line, NaiveDate), Totals>>) -> Vec<Vec<Entry>> {
    shards
        .into_iter()
        .map(|shard| {
            let mut v: Vec<Entry> = shard.into_iter().collect();
            v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            v
        })
        .collect()
}

/// The sorted tables merged in line and day order (a line-day is in one table only).
fn merge_memory(tables: Vec<Vec<Entry>>) -> impl Iterator<Item = Entry> {
    let mut heads: Vec<std::iter::Peekable<std::vec::IntoIter<Entry>>> =
        tables.into_iter().map(|v| v.into_iter().peekable()).collect();
    std::iter::from_fn(move || {
        let mut best: Option<(usize, &Entry)> = None;
        for (i, h) in heads.iter_mut().enumerate() {
            if let Some(e) = h.peek()
                && best.is_none_or(|(_, b)| e.0 < b.0)
            {
                best = Some((i, e));
            }
        }
        let (i, _) = best?;
        heads[i].next()
    })
}

/// A file's totals: the last line-days in memory as sorted lists, the earlier ones in sorted
/// runs on disk.
pub struct Aggregates {
    memory: Vec<Vec<Entry>>,
    runs: Vec<File>,
}

type Source = Box<dyn Iterator<Item = Result<Entry, IngestError>> + Send>;

impl Aggregates {
    /// Runs written to disk (the totals outgrew `ingest.aggregate_memory_lines`).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Each line and day as the consumers see it, in line and day order, made as it is asked
    /// for: the lists in memory and the runs merged, a line-day found in several summed.
    pub fn into_lines(self) -> impl Iterator<Item = Result<LineUsage, IngestError>> + Send {
        let mut sources: Vec<Source> = Vec::with_capacity(self.runs.len() + 1);
        sources.push(Box::new(merge_memory(self.memory).map(Ok)));
        sources.extend(self.runs.into_iter().enumerate().map(|(n, file)| read_run(n, file)));
        merge(sources).map(|e| e.map(|((line, day), t)| usage(&line, day, &t)))
    }
}

/// Sorted sources of line-days merged in line and day order, the parts of a line-day summed
/// (a line-day is at most once in each source).
fn merge(sources: Vec<Source>) -> impl Iterator<Item = Result<Entry, IngestError>> + Send {
    let mut sources: Vec<std::iter::Peekable<Source>> = sources.into_iter().map(Iterator::peekable).collect();
    std::iter::from_fn(move || {
        let mut best: Option<(usize, (Line, NaiveDate))> = None;
        for (i, s) in sources.iter_mut().enumerate() {
            match s.peek() {
                None => {}
                Some(Err(_)) => return s.next(),
                Some(Ok((k, _))) if best.as_ref().is_none_or(|(_, b)| k < b) => best = Some((i, k.clone())),
                Some(Ok(_)) => {}
            }
        }
        let mut out = match sources[best?.0].next()? {
            Ok(e) => e,
            Err(e) => return Some(Err(e)),
        };
        // A line-day is at most once in each source.
        for s in &mut sources {
            if let Some(Ok((_, t))) = s.next_if(|n| matches!(n, Ok((k, _)) if *k == out.0)) {
                out.1.add(&t);
            }
        }
        Some(Ok(out))
    })
}

/// The line-days of a run, in the order written.
fn read_run(n: usize, file: File) -> Source {
    let name = format!("per-line totals run {n}");
    let unreadable = move |e: std::io::Error| IngestError::Io(format!("{name} is unreadable: {e}"));
    match zstd::Decoder::new(file) {
        Ok(z) => {
            let mut r = BufReader::with_capacity(1 << 16, z);
            let mut failed = false;
            Box::new(std::iter::from_fn(move || {
                if failed {
                    return None;
                }
                let next = run::read(&mut r).map_err(&unreadable).transpose();
                failed = matches!(next, Some(Err(_)));
                next
            }))
        }
        Err(e) => Box::new(std::iter::once(Err(unreadable(e)))),
    }
}

/// Runs of line-days on disk, in a binary form of this process only (a run lives as long as
/// the load that wrote it): the JSON of the outbox cost a quarter of the writing thread's time
/// when the benchmark's totals spilled.
///
/// An entry: the line (0 and the packed token's 17 bytes, or 1, a `u32` length and the text),
/// the day (`i32`, days from the common era), the eight sums (`i64`), and top-ups (0, or 1
/// and a count and amount per channel), little-endian.
mod run {
    use super::*;

    pub(super) fn write(w: &mut impl Write, ((line, day), t): &Entry) -> std::io::Result<()> {
        match line {
            Line::Token(p) => {
                w.write_all(&[0])?;
                w.write_all(&p.to_bytes())?;
            }
            Line::Text(text) => {
                w.write_all(&[1])?;
                let len = u32::try_from(text.len()).map_err(std::io::Error::other)?;
                w.write_all(&len.to_le_bytes())?;
                w.write_all(text.as_bytes())?;
            }
        }
        let mut fixed = [0u8; 4 + 8 * 8 + 1];
        fixed[..4].copy_from_slice(&chrono::Datelike::num_days_from_ce(day).to_le_bytes());
        let sums = [
            t.voice_out_s,
            t.voice_in_s,
            t.sms_out,
            t.sms_in,
            t.data_up_bytes,
            t.data_down_bytes,
            t.vas_events,
            t.charges_e4,
        ];
        for (i, v) in sums.iter().enumerate() {
            fixed[4 + 8 * i..12 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        fixed[68] = u8::from(t.topups.is_some());
        w.write_all(&fixed)?;
        if let Some(by) = &t.topups {
            for tp in by.iter() {
                w.write_all(&tp.count.to_le_bytes())?;
                w.write_all(&tp.amount_e4.to_le_bytes())?;
            }
        }
        Ok(())
    }

    fn i64_at(b: &[u8], at: usize) -> i64 {
        i64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"))
    }

    /// The next entry; `None` at the end of the run.
    pub(super) fn read(r: &mut impl BufRead) -> std::io::Result<Option<Entry>> {
        if r.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag)?;
        let line = match tag[0] {
            0 => {
                let mut b = [0u8; 17];
                r.read_exact(&mut b)?;
                Line::Token(PackedToken::from_bytes(b).ok_or_else(|| bad("a token of no kind"))?)
            }
            1 => {
                let mut len = [0u8; 4];
                r.read_exact(&mut len)?;
                let mut text = vec![0u8; u32::from_le_bytes(len) as usize];
                r.read_exact(&mut text)?;
                Line::Text(Arc::from(String::from_utf8(text).map_err(|_| bad("a line that is not text"))?))
            }
            _ => return Err(bad("an entry of no known form")),
        };
        let mut fixed = [0u8; 4 + 8 * 8 + 1];
        r.read_exact(&mut fixed)?;
        let day = NaiveDate::from_num_days_from_ce_opt(i32::from_le_bytes(fixed[..4].try_into().expect("four bytes")))
            .ok_or_else(|| bad("a day out of range"))?;
        let topups = match fixed[68] {
            0 => None,
            1 => {
                let mut by: Box<[Topups; CHANNELS]> = Default::default();
                let mut b = [0u8; 16];
                for tp in by.iter_mut() {
                    r.read_exact(&mut b)?;
                    *tp = Topups { count: i64_at(&b, 0), amount_e4: i64_at(&b, 8) };
                }
                Some(by)
            }
            _ => return Err(bad("an entry of no known form")),
        };
        let t = Totals {
            voice_out_s: i64_at(&fixed, 4),
            voice_in_s: i64_at(&fixed, 12),
            sms_out: i64_at(&fixed, 20),
            sms_in: i64_at(&fixed, 28),
            data_up_bytes: i64_at(&fixed, 36),
            data_down_bytes: i64_at(&fixed, 44),
            vas_events: i64_at(&fixed, 52),
            charges_e4: i64_at(&fixed, 60),
            topups,
        };
        Ok(Some(((line, day), t)))
    }
}

fn usage(line: &Line, day: NaiveDate, t: &Totals) -> LineUsage {
    LineUsage {
        line: line.to_string(),
        date: Some(day),
        voice_out_s: t.voice_out_s,
        voice_in_s: t.voice_in_s,
        sms_out: t.sms_out,
        sms_in: t.sms_in,
        data_up_bytes: t.data_up_bytes,
        data_down_bytes: t.data_down_bytes,
        vas_events: t.vas_events,
        charges_e4: t.charges_e4,
        topups: t
            .topups
            .as_deref()
            .map(|by| {
                TopupChannel::ALL
                    .iter()
                    .zip(by)
                    .filter(|(_, t)| t.count != 0 || t.amount_e4 != 0)
                    .map(|(c, t)| (*c, *t))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn key(u: &LineUsage) -> (&str, Option<NaiveDate>) {
    (&u.line, u.date)
}

fn is_zero(u: &LineUsage) -> bool {
    u.voice_out_s == 0
        && u.voice_in_s == 0
        && u.sms_out == 0
        && u.sms_in == 0
        && u.data_up_bytes == 0
        && u.data_down_bytes == 0
        && u.vas_events == 0
        && u.charges_e4 == 0
        && u.topups.values().all(|t| t.count == 0 && t.amount_e4 == 0)
}

/// Adds `sign` × `o` to `e`.
fn combine(e: &mut LineUsage, o: &LineUsage, sign: i64) {
    e.voice_out_s += sign * o.voice_out_s;
    e.voice_in_s += sign * o.voice_in_s;
    e.sms_out += sign * o.sms_out;
    e.sms_in += sign * o.sms_in;
    e.data_up_bytes += sign * o.data_up_bytes;
    e.data_down_bytes += sign * o.data_down_bytes;
    e.vas_events += sign * o.vas_events;
    e.charges_e4 += sign * o.charges_e4;
    for (ch, t) in &o.topups {
        let x = e.topups.entry(*ch).or_default();
        x.count += sign * t.count;
        x.amount_e4 += sign * t.amount_e4;
    }
}

fn subtract(mut e: LineUsage, o: &LineUsage) -> LineUsage {
    combine(&mut e, o, -1);
    e
}

/// `new − old`, per line and day: what a replay changes for consumers. Both sides come sorted
/// by line and day (as [`Aggregator::finish`] and the outbox give them), so the difference is
/// a merge that holds one entry of each side at a time.
pub fn delta<E>(
    old: impl Iterator<Item = Result<LineUsage, E>>,
    new: impl Iterator<Item = Result<LineUsage, E>>,
) -> impl Iterator<Item = Result<LineUsage, E>> {
    let mut old = old.peekable();
    let mut new = new.peekable();
    std::iter::from_fn(move || {
        loop {
            let order = match (old.peek(), new.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) => return old.next(),
                (_, Some(Err(_))) => return new.next(),
                (Some(Ok(_)), None) => Ordering::Less,
                (None, Some(Ok(_))) => Ordering::Greater,
                (Some(Ok(o)), Some(Ok(n))) => key(o).cmp(&key(n)),
            };
            let out = match order {
                Ordering::Greater => new.next().and_then(Result::ok).expect("peeked"),
                Ordering::Less => {
                    let o = old.next().and_then(Result::ok).expect("peeked");
                    subtract(LineUsage { line: o.line.clone(), date: o.date, ..LineUsage::default() }, &o)
                }
                Ordering::Equal => {
                    let o = old.next().and_then(Result::ok).expect("peeked");
                    subtract(new.next().and_then(Result::ok).expect("peeked"), &o)
                }
            };
            if !is_zero(&out) {
                return Some(Ok(out));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::Span;
    use std::io::Write;

    fn usage(line: &str, day: u32, sms_out: i64, topup: Option<(TopupChannel, i64)>) -> LineUsage {
        LineUsage {
            line: line.into(),
            date: NaiveDate::from_ymd_opt(2026, 11, day),
            sms_out,
            topups: topup.map(|(c, a)| (c, Topups { count: 1, amount_e4: a })).into_iter().collect(),
            ..LineUsage::default()
        }
    }

    fn run(old: Vec<LineUsage>, new: Vec<LineUsage>) -> Vec<LineUsage> {
        delta::<()>(old.into_iter().map(Ok), new.into_iter().map(Ok)).map(Result::unwrap).collect()
    }

    fn row(kind: UsageKind, duration_s: i64, channel: Option<TopupChannel>, charge_e4: i64) -> Row {
        Row {
            record_id: Span::default(),
            kind,
            msisdn: Span::default(),
            imsi: None,
            imei: None,
            other_party: None,
            roaming: None,
            start_us: 0,
            hour: (NaiveDate::from_ymd_opt(2026, 11, 22).expect("date"), 0),
            dedup_id: 0,
            duration_s,
            up_bytes: 0,
            down_bytes: 0,
            rating_group: None,
            cell_id: None,
            charge_e4,
            channel,
            partial_seq: None,
        }
    }

    /// Loads the same records with `max_lines` line-days in memory; what comes out.
    fn totals(tokens: &[Arc<str>], max_lines: usize, spill_dir: &std::path::Path) -> (usize, Vec<LineUsage>) {
        let (d1, d2) = (NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(), NaiveDate::from_ymd_opt(2026, 11, 22).unwrap());
        let mut agg = Aggregator::new(max_lines, spill_dir.to_path_buf());
        // Two rounds over the lines: with a small budget a line-day is in several runs.
        for round in 0..2 {
            for t in tokens {
                agg.add(t, d2, &row(UsageKind::VoiceMo, 60 - 30 * round, None, 100 - 50 * round));
                if round == 0 {
                    agg.add(t, d1, &row(UsageKind::Topup, 0, Some(TopupChannel::App), 10_000));
                }
                agg.spill_if_full().unwrap();
            }
        }
        let agg = agg.finish();
        (agg.runs(), agg.into_lines().map(Result::unwrap).collect())
    }

    #[test]
    fn totals_come_out_once_per_line_and_day_in_the_lines_text_order() {
        let mut tokens: Vec<Arc<str>> = (0..300u128)
            .map(|i| {
                let body = sb_privacy_body(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834));
                Arc::from(format!("{}_{body}", if i % 7 == 0 { "ims" } else { "msi" }))
            })
            .collect();
        // Values of another policy (FPE ciphertexts) are lines too.
        tokens.extend(["39340FPE0001", "39340FPE0000"].map(Arc::from));
        let (d1, d2) = (NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(), NaiveDate::from_ymd_opt(2026, 11, 22).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let (runs, out) = totals(&tokens, usize::MAX, dir.path());
        assert_eq!(runs, 0);
        let mut expected: Vec<(String, NaiveDate)> =
            tokens.iter().flat_map(|t| [(t.to_string(), d1), (t.to_string(), d2)]).collect();
        expected.sort();
        assert_eq!(out.iter().map(|u| (u.line.clone(), u.date.unwrap())).collect::<Vec<_>>(), expected);
        for u in &out {
            if u.date == Some(d2) {
                assert_eq!((u.voice_out_s, u.charges_e4, u.topups.len()), (90, 150, 0));
            } else {
                assert_eq!(
                    (u.voice_out_s, u.topups[&TopupChannel::App].count, u.topups[&TopupChannel::App].amount_e4),
                    (0, 1, 10_000)
                );
            }
        }
        // Beyond the memory budget the totals go to runs on disk and come back merged and
        // summed, the same as when they were all held; the runs leave nothing behind.
        let (runs, spilled) = totals(&tokens, 97, dir.path());
        assert!(runs >= 6, "{runs} runs");
        assert_eq!(spilled, out);
        // Far more runs than are kept open: they are merged as they come, with the same result.
        let (runs, merged) = totals(&tokens, 5, dir.path());
        assert!((1..MAX_RUNS).contains(&runs), "{runs} runs");
        assert_eq!(merged, out);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_damaged_run_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = tempfile::tempfile_in(dir.path()).unwrap();
        run.write_all(b"not zstd").unwrap();
        run.seek(SeekFrom::Start(0)).unwrap();
        let agg = Aggregates { memory: Vec::new(), runs: vec![run] };
        let err = agg.into_lines().next().unwrap().unwrap_err().to_string();
        assert!(err.contains("per-line totals run 0 is unreadable"), "{err}");
        // A run cut inside an entry: the entries before it come out, then the error.
        let t = PackedToken::parse(&format!("msi_{}", sb_privacy_body(7))).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let mut bytes = Vec::new();
        run::write(&mut bytes, &((Line::Token(t), day), Totals { sms_out: 3, ..Totals::default() })).unwrap();
        let whole = bytes.len();
        run::write(&mut bytes, &((Line::Token(t), day.succ_opt().unwrap()), Totals::default())).unwrap();
        bytes.truncate(whole + 10);
        let mut run = tempfile::tempfile_in(dir.path()).unwrap();
        run.write_all(&zstd::encode_all(&bytes[..], 1).unwrap()).unwrap();
        run.seek(SeekFrom::Start(0)).unwrap();
        let out: Vec<_> = Aggregates { memory: Vec::new(), runs: vec![run] }.into_lines().collect();
        assert_eq!(out.len(), 2, "one entry, then the error");
        assert_eq!(out[0].as_ref().unwrap().sms_out, 3);
        let err = out[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("per-line totals run 0 is unreadable"), "{err}");
    }

    /// A token body as the vault writes it: 128 bits in Crockford's base32.
    fn sb_privacy_body(mut n: u128) -> String {
        let alphabet = b"0123456789abcdefghjkmnpqrstvwxyz";
        let mut body = [0u8; 26];
        for c in body.iter_mut().rev() {
            *c = alphabet[(n & 31) as usize];
            n >>= 5;
        }
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[test]
    fn the_delta_of_a_replay_adds_what_is_new_and_takes_back_what_is_gone() {
        let old = vec![usage("a", 1, 2, None), usage("b", 1, 1, None), usage("c", 2, 5, Some((TopupChannel::App, 10)))];
        let new = vec![usage("a", 1, 3, None), usage("b", 2, 1, None), usage("c", 2, 5, Some((TopupChannel::App, 10)))];
        let d = run(old, new);
        // a/1 grew by one; b moved from day 1 to day 2; c is unchanged and not sent.
        assert_eq!(d.len(), 3, "{d:?}");
        assert_eq!((d[0].line.as_str(), d[0].sms_out), ("a", 1));
        assert_eq!(
            (d[1].line.as_str(), d[1].date.unwrap().to_string().as_str(), d[1].sms_out),
            ("b", "2026-11-01", -1)
        );
        assert_eq!((d[2].line.as_str(), d[2].date.unwrap().to_string().as_str(), d[2].sms_out), ("b", "2026-11-02", 1));
    }

    #[test]
    fn a_read_error_on_either_side_is_passed_on() {
        let old: Vec<Result<LineUsage, &str>> = vec![Err("broken")];
        let new: Vec<Result<LineUsage, &str>> = vec![Ok(usage("a", 1, 1, None))];
        let out: Vec<_> = delta(old.into_iter(), new.into_iter()).collect();
        assert_eq!(out.first().map(|r| r.is_err()), Some(true));
    }
}
