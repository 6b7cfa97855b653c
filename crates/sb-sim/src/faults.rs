//! Injected faults: malformed rows, duplicate records and duplicate files.
//!
//! Fault decisions draw from their own random streams, so turning a fault rate up or
//! down never changes the valid records around the faults.

use rand::{Rng, RngCore};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::cdr::FIELDS;
use crate::rng::{Stream, below, mix};

/// What is wrong with a malformed row. Each malformed row has exactly one of these defects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MalformedKind {
    /// One of `record_id`, `msisdn`, `imsi`, `start_time` is empty.
    MissingMandatoryField,
    /// The MSISDN contains a letter.
    NonDigitMsisdn,
    /// `start_time` is not an RFC 3339 time with offset.
    BadTimestamp,
    /// `record_type` is not one of the eight kinds.
    UnknownRecordType,
    /// The row has 15 or 17 fields instead of 16.
    WrongFieldCount,
    /// A voice record with a negative `duration_s`.
    NegativeDuration,
    /// `charge_eur` is not a decimal with `.` and at most 4 decimals.
    BadDecimalCharge,
    /// `start_time` is more than 7 days before or hours after the file's hour.
    StartTimeOutOfWindow,
    /// A voice record without `other_party`.
    MissingOtherParty,
}

impl MalformedKind {
    /// Every kind, in the order they are drawn.
    pub const ALL: [MalformedKind; 9] = [
        Self::MissingMandatoryField,
        Self::NonDigitMsisdn,
        Self::BadTimestamp,
        Self::UnknownRecordType,
        Self::WrongFieldCount,
        Self::NegativeDuration,
        Self::BadDecimalCharge,
        Self::StartTimeOutOfWindow,
        Self::MissingOtherParty,
    ];

    /// Whether the row must be built on a voice record.
    pub(crate) fn needs_voice(self) -> bool {
        matches!(self, Self::NegativeDuration | Self::MissingOtherParty)
    }
}

/// Field positions in a row.
mod field {
    pub const RECORD_ID: usize = 0;
    pub const RECORD_TYPE: usize = 1;
    pub const MSISDN: usize = 2;
    pub const IMSI: usize = 3;
    pub const START_TIME: usize = 6;
    pub const DURATION: usize = 7;
    pub const OTHER_PARTY: usize = 5;
    pub const CHARGE: usize = 13;
}

/// Start times, in seconds from the file's hour, that break the 7-day / 1-hour window.
pub(crate) fn out_of_window_start(rng: &mut Pcg64Mcg) -> i32 {
    if rng.random_bool(0.5) {
        -(8 * 86_400 + rng.random_range(0..86_400))
    } else {
        5 * 3600 + rng.random_range(0..3600)
    }
}

/// Breaks a valid row (`fields`, split on `;`) in the way `kind` says; returns a short
/// description for the manifest. `StartTimeOutOfWindow` and the voice-only kinds expect the
/// caller to have built the row accordingly.
pub(crate) fn corrupt(kind: MalformedKind, fields: &mut Vec<String>, rng: &mut Pcg64Mcg) -> String {
    debug_assert_eq!(fields.len(), FIELDS);
    match kind {
        MalformedKind::MissingMandatoryField => {
            let (i, name) = [
                (field::RECORD_ID, "record_id"),
                (field::MSISDN, "msisdn"),
                (field::IMSI, "imsi"),
                (field::START_TIME, "start_time"),
            ][rng.random_range(0..4)];
            fields[i].clear();
            format!("{name} is empty")
        }
        MalformedKind::NonDigitMsisdn => {
            let msisdn = &mut fields[field::MSISDN];
            let at = rng.random_range(3..msisdn.len());
            let letter = ["O", "I", "A", "B"][rng.random_range(0..4)];
            msisdn.replace_range(at..=at, letter);
            format!("msisdn has the letter {letter} at position {}", at + 1)
        }
        MalformedKind::BadTimestamp => {
            let t = fields[field::START_TIME].clone();
            // `t` is `YYYY-MM-DDTHH:MM:SS+hh:mm`.
            let (date, time) = (&t[..10], &t[11..19]);
            let (broken, how) = match rng.random_range(0..3) {
                0 => (format!("{date}T{time}"), "no offset"),
                1 => (format!("{}/{}/{} {time}", &date[8..10], &date[5..7], &date[..4]), "day/month/year"),
                _ => (format!("{date}T25{}", &t[13..]), "hour 25"),
            };
            fields[field::START_TIME] = broken;
            format!("start_time has {how}")
        }
        MalformedKind::UnknownRecordType => {
            let name = ["MMS_MO", "FAX", "USSD", "VOICE"][rng.random_range(0..4)];
            fields[field::RECORD_TYPE] = name.to_owned();
            format!("record_type {name}")
        }
        MalformedKind::WrongFieldCount => {
            if rng.random_bool(0.5) {
                fields.pop();
                format!("{} fields", FIELDS - 1)
            } else {
                fields.push(String::new());
                format!("{} fields", FIELDS + 1)
            }
        }
        MalformedKind::NegativeDuration => {
            let d: u32 = fields[field::DURATION].parse().unwrap_or(0).max(1);
            fields[field::DURATION] = format!("-{d}");
            "negative duration_s".to_owned()
        }
        MalformedKind::BadDecimalCharge => {
            let charge = &fields[field::CHARGE];
            let (broken, how) = match rng.random_range(0..3) {
                0 => (
                    if charge.contains('.') { charge.replace('.', ",") } else { format!("{charge},5") },
                    "a decimal comma",
                ),
                1 => (format!("{}.12345", charge.split('.').next().unwrap_or("0")), "five decimals"),
                _ => (format!("{charge}.1.2"), "two decimal points"),
            };
            fields[field::CHARGE] = broken;
            format!("charge_eur has {how}")
        }
        MalformedKind::StartTimeOutOfWindow => "start_time outside the 7-day/1-hour window".to_owned(),
        MalformedKind::MissingOtherParty => {
            fields[field::OTHER_PARTY].clear();
            "voice record without other_party".to_owned()
        }
    }
}

/// Per-record fault decisions for one hour, from the hour's own fault stream.
pub(crate) struct RecordFaults {
    pub rng: Pcg64Mcg,
    duplicate_threshold: u64,
    malformed_threshold: u64,
}

/// Whether the record just written gets a duplicate and/or a malformed row after it.
pub(crate) struct Decision {
    pub duplicate: bool,
    pub malformed: bool,
}

impl RecordFaults {
    pub(crate) fn new(seed: u64, hour: u32, duplicate_rate: f64, malformed_rate: f64) -> Self {
        // Integer thresholds: the decisions stay exact on every platform.
        let threshold = |p: f64| (p * 4_294_967_296.0) as u64;
        Self {
            rng: crate::rng::rng(seed, Stream::RecordFaults, u64::from(hour)),
            duplicate_threshold: threshold(duplicate_rate),
            malformed_threshold: threshold(malformed_rate),
        }
    }

    #[inline]
    pub(crate) fn decide(&mut self) -> Decision {
        let u = self.rng.next_u64();
        Decision {
            duplicate: u64::from(u as u32) < self.duplicate_threshold,
            malformed: (u >> 32) < self.malformed_threshold,
        }
    }
}

/// Where a duplicated record is written again.
pub(crate) enum DuplicatePlacement {
    /// In the same file, after this many more valid records (or at its end).
    SameFile { after: u64 },
    /// At the end of the file of this later hour.
    LaterFile { hour: u32 },
}

pub(crate) fn duplicate_placement(rng: &mut Pcg64Mcg, hour: u32, hours: u32) -> DuplicatePlacement {
    let last = hours.saturating_sub(1);
    if hour < last && rng.random_bool(0.3) {
        DuplicatePlacement::LaterFile { hour: (hour + rng.random_range(1..=3)).min(last) }
    } else {
        DuplicatePlacement::SameFile { after: rng.random_range(1..=2000) }
    }
}

/// The earlier hour (possibly `hour` itself) whose file is copied as SEQ 002 of `hour`, if any.
///
/// Duplicates are spread evenly: over any `n` hours there are `⌊n·rate⌋` or `⌈n·rate⌉` of
/// them, starting at a seed-dependent phase, so a day at the default rate has exactly one.
pub(crate) fn duplicate_file_source(seed: u64, rate: f64, hour: u32) -> Option<u32> {
    if rate <= 0.0 {
        return None;
    }
    let phase = (mix(seed, Stream::FileFaults, u64::MAX) >> 11) as f64 / (1u64 << 53) as f64;
    let before = (phase + f64::from(hour) * rate).floor();
    let after = (phase + f64::from(hour + 1) * rate).floor();
    (after > before).then(|| hour - below(mix(seed, Stream::FileFaults, u64::from(hour)), hour.min(2) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::rng;

    fn row() -> Vec<String> {
        "2026112213-000000001;VOICE_MO;393401234567;222530123456789;490154203237518;393331234567;\
2026-11-22T13:05:09+01:00;75;;;;12345;;0.19;;"
            .split(';')
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_corruption_changes_exactly_what_it_says() {
        let mut r = rng(1, Stream::RecordFaults, 0);
        for kind in MalformedKind::ALL {
            for _ in 0..20 {
                let mut f = row();
                let detail = corrupt(kind, &mut f, &mut r);
                let changed: Vec<usize> = (0..FIELDS.min(f.len())).filter(|&i| f[i] != row()[i]).collect();
                match kind {
                    MalformedKind::WrongFieldCount => assert_ne!(f.len(), FIELDS, "{detail}"),
                    MalformedKind::StartTimeOutOfWindow => assert!(changed.is_empty()),
                    _ => assert_eq!(changed.len(), 1, "{kind:?}: {detail}: {f:?}"),
                }
            }
        }
    }

    #[test]
    fn the_default_rate_gives_one_duplicate_file_a_day() {
        for seed in 0..50 {
            let n = (0..24).filter(|&h| duplicate_file_source(seed, 1.0 / 24.0, h).is_some()).count();
            assert_eq!(n, 1, "seed {seed}");
            let n = (0..240).filter(|&h| duplicate_file_source(seed, 0.1, h).is_some()).count();
            assert!((23..=25).contains(&n), "seed {seed}: {n}");
        }
        assert!((0..24).all(|h| duplicate_file_source(1, 0.0, h).is_none()));
        for h in 0..24 {
            if let Some(src) = duplicate_file_source(5, 1.0, h) {
                assert!(src <= h && h - src <= 2);
            }
        }
    }
}
