//! Writing one hour: the event loop, data sessions split into partial records, faults
//! injected after valid records, and the tallies the manifest is built from.

use std::io::{self, Write};

use chrono::Duration;
use rand::{Rng, RngCore};
use rand_pcg::Pcg64Mcg;
use sb_core::UsageKind;

use super::{FLUSH_AT, OtherParty, PARTIAL_SECONDS, UsageModel, partials};
use crate::cdr::{self, HourClock, Record};
use crate::faults::{self, DuplicatePlacement, MalformedKind, RecordFaults};
use crate::manifest::Totals;
use crate::rng::{self, Stream, below};

/// A duplicate to write later in the same file.
struct Pending {
    due: u64,
    bytes: Vec<u8>,
    record_id: String,
    first_line: u64,
}

/// A record to repeat at the end of a later hour's file.
#[derive(Debug, Clone)]
pub(crate) struct Carry {
    pub target: u32,
    pub bytes: Vec<u8>,
    pub record_id: String,
    pub first_line: u64,
}

/// A malformed row written.
#[derive(Debug, Clone)]
pub(crate) struct Malformed {
    pub line: u64,
    pub kind: MalformedKind,
    pub record_id: Option<String>,
    pub detail: String,
}

/// A duplicate written within the file of its original.
#[derive(Debug, Clone)]
pub(crate) struct InFileDuplicate {
    pub line: u64,
    pub record_id: String,
    pub first_line: u64,
}

/// What [`UsageModel::write_hour`] wrote, and what later files must repeat.
#[derive(Debug, Clone)]
pub struct HourReport {
    pub(crate) rows: u64,
    pub(crate) valid: u64,
    pub(crate) totals: Totals,
    pub(crate) malformed: Vec<Malformed>,
    pub(crate) duplicates: Vec<InFileDuplicate>,
    pub(crate) carry: Vec<Carry>,
}

impl HourReport {
    /// Rows written after the header.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Rows that pass validation, in-file duplicates included.
    pub fn valid_records(&self) -> u64 {
        self.valid
    }

    /// Counts and sums over the hour's unique valid records.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }
}

pub(super) struct HourWriter<'a, W> {
    model: &'a UsageModel,
    out: &'a mut W,
    progress: &'a (dyn Fn(u64) + Sync),
    clock: HourClock,
    hour: u32,
    day: u64,
    rng: Pcg64Mcg,
    faults: RecordFaults,
    pub(super) buf: Vec<u8>,
    seq: u32,
    rows: u64,
    reported_rows: u64,
    valid: u64,
    totals: Totals,
    start_slots: [u64; 4],
    pending: Vec<Pending>,
    malformed: Vec<Malformed>,
    duplicates: Vec<InFileDuplicate>,
    carry: Vec<Carry>,
}

impl<'a, W: Write> HourWriter<'a, W> {
    pub(super) fn new(model: &'a UsageModel, hour: u32, out: &'a mut W, progress: &'a (dyn Fn(u64) + Sync)) -> Self {
        let start = model.hour_start(hour);
        let local_day = (start.timestamp() + i64::from(start.offset().local_minus_utc())).div_euclid(86_400);
        Self {
            model,
            out,
            progress,
            clock: HourClock::new(start),
            hour,
            day: local_day as u64,
            rng: rng::rng(model.seed, Stream::Traffic, u64::from(hour)),
            faults: RecordFaults::new(model.seed, hour, model.duplicate_record_rate, model.malformed_rate),
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            seq: 0,
            rows: 0,
            reported_rows: 0,
            valid: 0,
            totals: Totals::default(),
            start_slots: [0; 4],
            pending: Vec::new(),
            malformed: Vec::new(),
            duplicates: Vec::new(),
            carry: Vec::new(),
        }
    }

    pub(super) fn run(&mut self) -> io::Result<()> {
        let model = self.model;
        let lambda = model.events_per_hour.get(self.hour as usize).copied().unwrap_or(0.0);
        if lambda <= 0.0 || model.lines.is_empty() {
            return Ok(());
        }
        let mean_gap = 3600.0 / lambda;
        let mut t = 0.0;
        loop {
            t += mean_gap * model.gaps.sample(self.rng.next_u64());
            if t >= 3600.0 {
                return Ok(());
            }
            let line = &model.lines[model.popularity.sample(self.rng.next_u64())];
            let bits = self.rng.next_u64();
            let kind = model.pick_kind(line, bits);
            let start = if (bits >> 32) < model.late_threshold {
                // Arrives late: started one to three hours before this file's hour.
                -(3600 + below(self.rng.next_u64(), 7201) as i32)
            } else {
                t as i32
            };
            let mut party = OtherParty::default();
            let rec = model.record(line, kind, start, self.day, &mut self.rng, &mut party);
            if kind == UsageKind::Data {
                self.emit_session(&rec)?;
            } else {
                self.emit(&rec)?;
            }
        }
    }

    /// Writes a data session, in partial records when it is long.
    fn emit_session(&mut self, session: &Record<'_>) -> io::Result<()> {
        let duration = session.duration.unwrap_or(1);
        let n = partials(duration);
        if n == 1 {
            return self.emit(session);
        }
        let (up, down) = (session.volume_up.unwrap_or(0), session.volume_down.unwrap_or(0));
        let share = |total: u64, seconds: u32| total * u64::from(seconds) / u64::from(duration);
        let (mut up_left, mut down_left, mut charge_left) = (up, down, session.charge_e4);
        for i in 0..n {
            let last = i + 1 == n;
            let seconds = if last { duration - PARTIAL_SECONDS * (n - 1) } else { PARTIAL_SECONDS };
            let (u, d, c) = if last {
                (up_left, down_left, charge_left)
            } else {
                (share(up, seconds), share(down, seconds), share(session.charge_e4, seconds))
            };
            up_left -= u;
            down_left -= d;
            charge_left -= c;
            self.emit(&Record {
                start: session.start + (PARTIAL_SECONDS * i) as i32,
                duration: Some(seconds),
                volume_up: Some(u),
                volume_down: Some(d),
                charge_e4: c,
                partial_seq: Some(i + 1),
                ..*session
            })?;
        }
        Ok(())
    }

    /// Writes one valid record, then whatever faults follow it.
    #[inline]
    fn emit(&mut self, rec: &Record<'_>) -> io::Result<()> {
        let begin = self.buf.len();
        self.seq += 1;
        cdr::write_record(&mut self.buf, &self.clock, self.seq, rec);
        self.rows += 1;
        self.valid += 1;
        self.tally(rec);
        let decision = self.faults.decide();
        if decision.duplicate {
            self.capture_duplicate(begin);
        }
        if decision.malformed {
            self.write_malformed();
        }
        while self.pending.first().is_some_and(|p| p.due <= self.valid) {
            let p = self.pending.remove(0);
            self.write_duplicate(p);
        }
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn tally(&mut self, rec: &Record<'_>) {
        let t = &mut self.totals;
        t.records += 1;
        *t.by_kind.get_mut(rec.kind) += 1;
        *t.charge_e4_by_kind.get_mut(rec.kind) += rec.charge_e4;
        let seconds = u64::from(rec.duration.unwrap_or(0));
        match rec.kind {
            UsageKind::VoiceMo => t.voice_mo_seconds += seconds,
            UsageKind::VoiceMt => t.voice_mt_seconds += seconds,
            UsageKind::Data => {
                t.data_seconds += seconds;
                t.data_up_bytes += rec.volume_up.unwrap_or(0);
                t.data_down_bytes += rec.volume_down.unwrap_or(0);
                t.data_sessions += u64::from(rec.partial_seq == Some(1));
            }
            UsageKind::Topup | UsageKind::TopupAuto => {
                if let Some(c) = rec.channel {
                    *t.topups_by_channel.get_mut(c) += 1;
                    *t.topup_e4_by_channel.get_mut(c) += rec.charge_e4;
                }
            }
            _ => {}
        }
        t.roaming_records += u64::from(!rec.roaming.is_empty());
        t.late_records += u64::from(rec.start < 0);
        self.start_slots[HourClock::hour_slot(rec.start)] += 1;
    }

    /// Remembers the record that starts at `begin` in the buffer, to repeat it later.
    fn capture_duplicate(&mut self, begin: usize) {
        let bytes = self.buf[begin..].to_vec();
        let id_len = bytes.iter().position(|&b| b == b';').unwrap_or(0);
        let record_id = String::from_utf8_lossy(&bytes[..id_len]).into_owned();
        let first_line = self.rows + 1;
        match faults::duplicate_placement(&mut self.faults.rng, self.hour, self.model.hours) {
            DuplicatePlacement::SameFile { after } => {
                let due = self.valid + after;
                let at = self.pending.partition_point(|p| p.due <= due);
                self.pending.insert(at, Pending { due, bytes, record_id, first_line });
            }
            DuplicatePlacement::LaterFile { hour } => {
                self.carry.push(Carry { target: hour, bytes, record_id, first_line });
            }
        }
    }

    fn write_duplicate(&mut self, p: Pending) {
        self.buf.extend_from_slice(&p.bytes);
        self.rows += 1;
        self.duplicates.push(InFileDuplicate { line: self.rows + 1, record_id: p.record_id, first_line: p.first_line });
    }

    /// Writes a row with exactly one defect, built from the fault stream only.
    fn write_malformed(&mut self) {
        let model = self.model;
        let rng = &mut self.faults.rng;
        let kind = MalformedKind::ALL[rng.random_range(0..MalformedKind::ALL.len())];
        let line = &model.lines[model.popularity.sample(rng.next_u64())];
        let record_kind = if kind.needs_voice() { UsageKind::VoiceMo } else { model.pick_kind(line, rng.next_u64()) };
        let start = if kind == MalformedKind::StartTimeOutOfWindow {
            faults::out_of_window_start(rng)
        } else {
            below(rng.next_u64(), 3600) as i32
        };
        let mut party = OtherParty::default();
        let rec = model.record(line, record_kind, start, self.day, rng, &mut party);
        let mut row = Vec::with_capacity(256);
        cdr::write_record(&mut row, &self.clock, 0, &rec);
        row.pop();
        let mut fields: Vec<String> = String::from_utf8_lossy(&row).split(';').map(str::to_owned).collect();
        fields[0] = self.clock.fault_id(self.malformed.len() as u32 + 1);
        let detail = faults::corrupt(kind, &mut fields, rng);
        self.buf.extend_from_slice(fields.join(";").as_bytes());
        self.buf.push(b'\n');
        self.rows += 1;
        let record_id = Some(fields.swap_remove(0)).filter(|id| !id.is_empty());
        self.malformed.push(Malformed { line: self.rows + 1, kind, record_id, detail });
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        (self.progress)(self.rows - self.reported_rows);
        self.reported_rows = self.rows;
        Ok(())
    }

    pub(super) fn finish(mut self) -> io::Result<HourReport> {
        for p in std::mem::take(&mut self.pending) {
            self.write_duplicate(p);
        }
        self.flush()?;
        for (slot, &n) in self.start_slots.iter().enumerate() {
            if n > 0 {
                let hour = self.clock.hour() + Duration::hours(slot as i64 - 3);
                self.totals.records_by_start_hour.insert(hour.to_rfc3339(), n);
            }
        }
        Ok(HourReport {
            rows: self.rows,
            valid: self.valid + self.duplicates.len() as u64,
            totals: self.totals,
            malformed: self.malformed,
            duplicates: self.duplicates,
            carry: self.carry,
        })
    }
}
