//! The usage model: which line does what, when, and how much — and the writer that turns
//! one hour of it into the body of a usage file.
//!
//! Events of an hour form a Poisson process (exponential gaps), so they come out in time
//! order without sorting. Each event picks its line from an alias table weighted by a
//! skewed per-line activity (a few heavy users, many light ones), then a record kind from
//! the line's profile (device and payment type). Everything an hour needs comes from the
//! generator of `(seed, hour)`, so hours can be written in any order, on any thread.

use std::io::{self, Write};

use chrono::{DateTime, Datelike, Duration, FixedOffset, Timelike, Weekday};
use rand::{Rng, RngCore};
use rand_pcg::Pcg64Mcg;
use sb_core::{IdError, TopupChannel, UsageKind};

use crate::catalog::{FOREIGN_NUMBERS, MOBILE_PREFIXES, ROAMING, VOICE_SHORT_CODES};
use crate::cdr::{HEADER, Record};
use crate::places::CITIES;
use crate::population::{DeviceType, Payment, Population};
use crate::rng::{self, AliasTable, Quantiles, Stream, below, mix, pick};
use crate::{GenerateConfig, SimError};

mod writer;

pub(crate) use writer::Carry;
pub use writer::HourReport;
use writer::HourWriter;

/// Events per active line and day when no record target is given.
const DEFAULT_EVENTS_PER_LINE_DAY: f64 = 40.0;
/// Long data sessions are reported in partial records of this many seconds.
const PARTIAL_SECONDS: u32 = 900;
/// Bytes gathered before a write to the output.
const FLUSH_AT: usize = 1 << 19;
/// Per mille of line-days spent abroad.
const ROAMING_PER_MILLE: u32 = 20;

/// Relative traffic per local hour of day (midnight first), before normalisation.
const HOURLY: [f64; 24] = [
    0.30, 0.16, 0.09, 0.06, 0.05, 0.08, 0.22, 0.55, 0.95, 1.20, 1.35, 1.45, 1.40, 1.25, 1.20, 1.25, 1.35, 1.50, 1.60,
    1.65, 1.55, 1.30, 0.95, 0.60,
];

/// Share of events per kind (per 10 000, in `UsageKind::ALL` order) for each profile:
/// device (smartphone, tablet, router) × payment (prepaid, prepaid with automatic
/// top-up, postpaid).
const KIND_MIX: [[u32; 8]; 9] = [
    [1700, 1650, 420, 900, 5270, 30, 0, 30],
    [1700, 1650, 420, 900, 5270, 10, 20, 30],
    [1900, 1800, 420, 900, 4950, 0, 0, 30],
    [0, 0, 0, 300, 9650, 30, 0, 20],
    [0, 0, 0, 300, 9650, 10, 20, 20],
    [0, 0, 0, 300, 9680, 0, 0, 20],
    [0, 0, 0, 100, 9870, 20, 0, 10],
    [0, 0, 0, 100, 9870, 5, 15, 10],
    [0, 0, 0, 100, 9890, 0, 0, 10],
];

const TOPUP_CHANNELS: &[(TopupChannel, u32)] = &[
    (TopupChannel::Retail, 30),
    (TopupChannel::Online, 14),
    (TopupChannel::App, 26),
    (TopupChannel::Bank, 9),
    (TopupChannel::Prize, 5),
    (TopupChannel::Diffusion, 16),
];
/// Top-up amounts in euro with their weight.
const TOPUP_EUR: &[(u64, u32)] = &[(5, 12), (10, 32), (15, 14), (20, 24), (25, 6), (50, 12)];
const PRIZE_EUR: &[(u64, u32)] = &[(1, 40), (2, 30), (5, 30)];
const AUTO_TOPUP_EUR: &[(u64, u32)] = &[(10, 50), (15, 20), (20, 30)];
/// Prices of value-added services in 1/10000 EUR.
const VAS_E4: &[(u64, u32)] = &[(9_900, 40), (19_900, 25), (24_900, 15), (49_900, 10), (5_000, 10)];
const RATING_GROUPS: &[(u32, u32)] = &[(10, 60), (20, 15), (30, 15), (40, 10)];

const ROAMING_TOTAL: u32 = {
    let mut total = 0;
    let mut i = 0;
    while i < ROAMING.len() {
        total += ROAMING[i].2;
        i += 1;
    }
    total
};

/// What the model keeps of an active line: fixed-size identifiers, no pointers to chase.
struct TrafficLine {
    msisdn: [u8; 12],
    imsi: [u8; 15],
    imei: [u8; 15],
    home_cell: u32,
    /// Position in [`Population::lines`], for per-line hashes.
    index: u32,
    profile: u8,
    prepaid: bool,
}

/// The other party of a call or SMS, built in place.
#[derive(Default)]
struct OtherParty {
    buf: [u8; 16],
    len: usize,
}

impl OtherParty {
    fn push(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// Appends `width` random digits.
    fn push_digits(&mut self, rng: &mut Pcg64Mcg, width: usize) {
        let mut n = rng.next_u64();
        for d in self.buf[self.len..self.len + width].iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += width;
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// An Italian mobile number, a line of ours, a landline, a foreign number or a short code.
#[derive(Clone, Copy)]
enum Party {
    Mobile,
    OnNet,
    Landline,
    Foreign,
    VoiceShortCode,
    SmsShortCode,
}

/// The usage model of a population: everything needed to write any hour's file.
pub struct UsageModel {
    seed: u64,
    source: String,
    start: DateTime<FixedOffset>,
    hours: u32,
    duplicate_record_rate: f64,
    malformed_rate: f64,
    late_threshold: u64,
    lines: Vec<TrafficLine>,
    popularity: AliasTable,
    kind_thresholds: [[u64; 8]; 9],
    events_per_hour: Vec<f64>,
    expected_rows: f64,
    gaps: Quantiles,
    call_seconds: Quantiles,
    session_seconds: Quantiles,
    bytes_per_second: Quantiles,
}

impl UsageModel {
    /// The model for `cfg` over the active lines of `population`.
    pub fn new(cfg: &GenerateConfig, population: &Population) -> Result<Self, SimError> {
        cfg.validate()?;
        let activity = Quantiles::log_normal(1.0, 1.1, 50.0);
        let mut lines = Vec::new();
        let mut weights = Vec::new();
        for (index, line) in population.lines.iter().enumerate() {
            if line.status != crate::LineStatus::Active {
                continue;
            }
            let mut traits = rng::rng(cfg.seed, Stream::LineTraits, index as u64);
            let (device_index, device_factor) = match line.device {
                DeviceType::Smartphone => (0, 1.0),
                DeviceType::Tablet => (1, 0.6),
                DeviceType::Router => (2, 2.5),
            };
            let billing = match (line.payment, line.auto_topup) {
                (Payment::Prepaid, false) => 0,
                (Payment::Prepaid, true) => 1,
                (Payment::Postpaid, _) => 2,
            };
            weights.push(activity.sample(traits.next_u64()) * device_factor);
            lines.push(TrafficLine {
                msisdn: fixed("msisdn", line.msisdn.as_str())?,
                imsi: fixed("imsi", line.imsi.as_str())?,
                imei: fixed("imei", line.imei.as_str())?,
                home_cell: traits.random_range(10_000..60_000),
                index: index as u32,
                profile: device_index * 3 + billing,
                prepaid: line.payment == Payment::Prepaid,
            });
        }
        let kind_thresholds = KIND_MIX.map(|mix| {
            let mut cumulative = 0u64;
            mix.map(|share| {
                cumulative += u64::from(share);
                (cumulative << 32) / 10_000
            })
        });
        let session_seconds = Quantiles::log_normal(240.0, 1.3, 4.0 * 3600.0);

        // Calibration: how many rows an event yields on average, given who makes events.
        let records_per_session = mean_records_per_session(&session_seconds);
        let records_per_event = KIND_MIX.map(|mix| {
            let data = f64::from(mix[4]) * records_per_session;
            (data + f64::from(mix.iter().sum::<u32>() - mix[4])) / 10_000.0
        });
        let total_weight: f64 = weights.iter().sum();
        let mean_records_per_event = if lines.is_empty() {
            1.0
        } else {
            lines.iter().zip(&weights).map(|(l, w)| w * records_per_event[usize::from(l.profile)]).sum::<f64>()
                / total_weight
        };
        let rows_per_record = 1.0 + cfg.duplicate_record_rate + cfg.malformed_rate;
        let hourly_mean = HOURLY.iter().sum::<f64>() / 24.0;
        let curve: Vec<f64> = (0..cfg.hours)
            .map(|h| {
                let t = cfg.start + Duration::hours(i64::from(h));
                let day = match t.weekday() {
                    Weekday::Sat => 0.95,
                    Weekday::Sun => 0.85,
                    _ => 1.04,
                };
                HOURLY[t.hour() as usize] / hourly_mean * day
            })
            .collect();
        let events_per_hour: Vec<f64> = match (cfg.records, lines.is_empty()) {
            (_, true) => vec![0.0; curve.len()],
            (Some(target), false) => {
                // The target counts valid records only, so that fault rates change nothing
                // but the faults: at the default rates the files hold 0.3% more rows.
                let events = target as f64 / mean_records_per_event;
                let curve_total: f64 = curve.iter().sum();
                curve.iter().map(|c| events * c / curve_total).collect()
            }
            (None, false) => {
                let per_hour = DEFAULT_EVENTS_PER_LINE_DAY / 24.0 * lines.len() as f64;
                curve.iter().map(|c| per_hour * c).collect()
            }
        };
        let expected_rows = events_per_hour.iter().sum::<f64>() * mean_records_per_event * rows_per_record;

        Ok(Self {
            seed: cfg.seed,
            source: cfg.source_name.clone(),
            start: cfg.start,
            hours: cfg.hours,
            duplicate_record_rate: cfg.duplicate_record_rate,
            malformed_rate: cfg.malformed_rate,
            late_threshold: (cfg.late_rate * 4_294_967_296.0) as u64,
            popularity: AliasTable::new(&weights),
            lines,
            kind_thresholds,
            events_per_hour,
            expected_rows,
            gaps: Quantiles::exponential(),
            call_seconds: Quantiles::log_normal(75.0, 1.0, 3.0 * 3600.0),
            session_seconds,
            bytes_per_second: Quantiles::log_normal(25_000.0, 1.3, 6_000_000.0),
        })
    }

    /// Number of hourly files.
    pub fn hours(&self) -> u32 {
        self.hours
    }

    /// Lines that generate traffic.
    pub fn active_lines(&self) -> usize {
        self.lines.len()
    }

    /// The number of rows the model expects to write over all hours (duplicate files excluded).
    pub fn expected_rows(&self) -> u64 {
        self.expected_rows.round() as u64
    }

    /// Start of hour `hour` (0-based) of the run.
    pub fn hour_start(&self, hour: u32) -> DateTime<FixedOffset> {
        self.start + Duration::hours(i64::from(hour))
    }

    /// `<SOURCE>_<YYYYMMDD>_<HH>_<SEQ>.cdr` for `hour`, without any `.gz`.
    pub fn file_name(&self, hour: u32, seq: u32) -> String {
        format!("{}_{}_{seq:03}.cdr", self.source, self.hour_start(hour).format("%Y%m%d_%H"))
    }

    /// Writes the header and rows of hour `hour` to `out`: valid records, malformed rows
    /// and duplicates of its own records. Duplicates carried over from earlier hours are
    /// not written: they are listed in the reports of those hours. `progress` receives
    /// the number of rows written since its last call.
    pub fn write_hour<W: Write>(
        &self,
        hour: u32,
        out: &mut W,
        progress: &(dyn Fn(u64) + Sync),
    ) -> io::Result<HourReport> {
        let mut w = HourWriter::new(self, hour, out, progress);
        w.buf.extend_from_slice(HEADER.as_bytes());
        w.buf.push(b'\n');
        w.run()?;
        w.finish()
    }

    fn pick_kind(&self, line: &TrafficLine, u: u64) -> UsageKind {
        let r = u64::from(u as u32);
        let thresholds = &self.kind_thresholds[usize::from(line.profile)];
        let i = thresholds.iter().position(|&t| r < t).unwrap_or(4);
        UsageKind::ALL[i]
    }

    /// The country `line` is in on `day`, and whether EU roaming rules apply there.
    fn roaming(&self, line: &TrafficLine, day: u64) -> Option<(&'static [u8; 2], bool)> {
        let h = mix(self.seed, Stream::Roaming, (u64::from(line.index) << 24) ^ day);
        if below(h, 1000) >= ROAMING_PER_MILLE {
            return None;
        }
        let mut r = below(h << 32, ROAMING_TOTAL);
        for &(country, eu, weight) in ROAMING {
            if r < weight {
                return Some((country, eu));
            }
            r -= weight;
        }
        None
    }

    fn other_party(&self, party: &mut OtherParty, kind: Party, rng: &mut Pcg64Mcg) {
        match kind {
            Party::Mobile => {
                party.push(b"39");
                party.push(MOBILE_PREFIXES[below(rng.next_u64(), MOBILE_PREFIXES.len() as u32) as usize].as_bytes());
                party.push_digits(rng, 7);
            }
            Party::OnNet => {
                let other = &self.lines[below(rng.next_u64(), self.lines.len() as u32) as usize];
                party.push(&other.msisdn);
            }
            Party::Landline => {
                // Italian landlines keep their trunk 0 in E.164: 39 06 1234 5678.
                let area = CITIES[below(rng.next_u64(), CITIES.len() as u32) as usize].area_code;
                party.push(b"390");
                party.push(area.as_bytes());
                party.push_digits(rng, 9 - area.len());
            }
            Party::Foreign => {
                let (prefix, digits) = FOREIGN_NUMBERS[below(rng.next_u64(), FOREIGN_NUMBERS.len() as u32) as usize];
                party.push(prefix.as_bytes());
                party.push_digits(rng, digits as usize);
            }
            Party::VoiceShortCode => {
                party
                    .push(VOICE_SHORT_CODES[below(rng.next_u64(), VOICE_SHORT_CODES.len() as u32) as usize].as_bytes());
            }
            Party::SmsShortCode => {
                let len = 3 + below(rng.next_u64(), 4) as usize;
                party.push(&[b'1' + below(rng.next_u64(), 9) as u8]);
                party.push_digits(rng, len - 1);
            }
        }
    }

    /// One record of `kind` for `line` starting at `start` (seconds from the file's hour).
    /// A data session comes back whole; the writer splits it into partial records.
    fn record<'r>(
        &'r self,
        line: &'r TrafficLine,
        kind: UsageKind,
        start: i32,
        day: u64,
        rng: &mut Pcg64Mcg,
        party: &'r mut OtherParty,
    ) -> Record<'r> {
        let bits = rng.next_u64();
        let roaming = self.roaming(line, day);
        let outside_eu = matches!(roaming, Some((_, false)));
        let network = !matches!(kind, UsageKind::Topup | UsageKind::TopupAuto | UsageKind::Vas);
        let percent = |shift: u32| ((((bits >> shift) & 0xFFFF) * 100) >> 16) as u32;
        let mut rec = Record {
            kind,
            msisdn: &line.msisdn,
            imsi: &line.imsi,
            // About 3% of network records come without the device.
            imei: if network && bits & 0x1F != 0 { &line.imei } else { b"" },
            other_party: b"",
            start,
            duration: None,
            volume_up: None,
            volume_down: None,
            rating_group: None,
            cell_id: None,
            roaming: roaming.map_or(&b""[..], |(c, _)| &c[..]),
            charge_e4: 0,
            channel: None,
            partial_seq: None,
        };
        if network && roaming.is_none() && (bits >> 5) & 0x3F != 0 {
            rec.cell_id = Some(line.home_cell + ((bits >> 11) & 0xF) as u32);
        }
        let party_kind = match kind {
            UsageKind::VoiceMo => match percent(16) {
                0..55 => Some(Party::Mobile),
                55..67 => Some(Party::OnNet),
                67..85 => Some(Party::Landline),
                85..93 => Some(Party::Foreign),
                _ => Some(Party::VoiceShortCode),
            },
            UsageKind::VoiceMt => match percent(16) {
                0..60 => Some(Party::Mobile),
                60..75 => Some(Party::OnNet),
                75..90 => Some(Party::Landline),
                _ => Some(Party::Foreign),
            },
            UsageKind::SmsMo => match percent(16) {
                0..78 => Some(Party::Mobile),
                78..88 => Some(Party::OnNet),
                88..95 => Some(Party::SmsShortCode),
                _ => Some(Party::Foreign),
            },
            UsageKind::SmsMt => match percent(16) {
                0..45 => Some(Party::Mobile),
                45..53 => Some(Party::OnNet),
                53..93 => Some(Party::SmsShortCode),
                _ => Some(Party::Foreign),
            },
            _ => None,
        };
        if let Some(p) = party_kind {
            self.other_party(party, p, rng);
        }
        let charged = percent(32);
        match kind {
            UsageKind::VoiceMo | UsageKind::VoiceMt => {
                // About 7% of calls are not answered.
                let d =
                    if percent(48) < 7 { 0 } else { (self.call_seconds.sample(rng.next_u64()).round() as u32).max(1) };
                rec.duration = Some(d);
                rec.charge_e4 = match (kind, outside_eu) {
                    (UsageKind::VoiceMo, true) => u64::from(d) * 50,
                    (_, true) => u64::from(d) * 25,
                    (UsageKind::VoiceMo, false) if line.prepaid && charged < 12 => u64::from(d) * 19,
                    _ => 0,
                };
            }
            UsageKind::SmsMo => {
                rec.charge_e4 = match party_kind {
                    _ if outside_eu => 2_900,
                    Some(Party::SmsShortCode) if charged < 30 => 5_000,
                    _ if line.prepaid && charged < 8 => 1_200,
                    _ => 0,
                };
            }
            UsageKind::SmsMt => {}
            UsageKind::Data => {
                let wanted = (self.session_seconds.sample(rng.next_u64()).round() as u32).max(1);
                let d = capped_duration(wanted, start);
                let rate = self.bytes_per_second.sample(rng.next_u64());
                let down = (f64::from(d) * rate) as u64;
                let up = down * u64::from(5 + below(rng.next_u64(), 20)) / 100;
                rec.duration = Some(d);
                rec.volume_up = Some(up);
                rec.volume_down = Some(down);
                rec.rating_group = Some(pick(rng, RATING_GROUPS));
                rec.partial_seq = Some(1);
                if outside_eu {
                    // 0.01 EUR per started 100 KiB.
                    rec.charge_e4 = (up + down).div_ceil(102_400) * 100;
                }
            }
            UsageKind::Topup => {
                let channel = pick(rng, TOPUP_CHANNELS);
                let eur = if channel == TopupChannel::Prize { pick(rng, PRIZE_EUR) } else { pick(rng, TOPUP_EUR) };
                rec.channel = Some(channel);
                rec.charge_e4 = eur * 10_000;
            }
            UsageKind::TopupAuto => {
                rec.channel = Some(TopupChannel::AutoThreshold);
                rec.charge_e4 = pick(rng, AUTO_TOPUP_EUR) * 10_000;
            }
            UsageKind::Vas => rec.charge_e4 = pick(rng, VAS_E4),
        }
        let party: &'r OtherParty = party;
        rec.other_party = party.bytes();
        rec
    }
}

/// `s` as a fixed-size array; the population only holds identifiers of these lengths.
fn fixed<const N: usize>(kind: &'static str, s: &str) -> Result<[u8; N], SimError> {
    s.as_bytes().try_into().map_err(|_| SimError::InvalidIdentifier {
        what: kind,
        source: IdError::Length { kind, expected: "the generator's fixed length", found: s.len() },
    })
}

/// A session's duration cut so that its partial records all start before the file's hour ends.
fn capped_duration(duration: u32, start: i32) -> u32 {
    let max_partials = ((3599 - start).max(0) as u32) / PARTIAL_SECONDS + 1;
    duration.min(max_partials * PARTIAL_SECONDS)
}

fn partials(duration: u32) -> u32 {
    duration.div_ceil(PARTIAL_SECONDS).max(1)
}

/// Mean number of records per data session, for a start uniform within the hour.
fn mean_records_per_session(session_seconds: &Quantiles) -> f64 {
    let mut total = 0u64;
    let mut count = 0u64;
    for d in session_seconds.midpoints() {
        let d = (d.round() as u32).max(1);
        for start in (30..3600).step_by(60) {
            total += u64::from(partials(capped_duration(d, start)));
            count += 1;
        }
    }
    total as f64 / count as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_shares_out_ten_thousand() {
        for mix in KIND_MIX {
            assert_eq!(mix.iter().sum::<u32>(), 10_000);
        }
    }

    #[test]
    fn partial_records_never_start_after_the_hour() {
        for start in [-10_800, -3600, 0, 1799, 3599] {
            for d in [1, 899, 900, 901, 14_400] {
                let capped = capped_duration(d, start);
                let last_start = start + (PARTIAL_SECONDS * (partials(capped) - 1)) as i32;
                assert!(last_start < 3600, "{start} {d}");
            }
        }
    }
}
