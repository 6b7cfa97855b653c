//! Writing rows of the reference usage layout (`switchboard-cdr-v1`), fast.
//!
//! Rows are appended to a byte buffer field by field: numbers through `itoa`, timestamps
//! from date parts cached once per file, nothing allocated per row.

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat};
use sb_core::{TopupChannel, UsageKind};

/// The header line of every usage file (without its line end).
pub const HEADER: &str = "record_id;record_type;msisdn;imsi;imei;other_party;start_time;duration_s;\
volume_up_bytes;volume_down_bytes;rating_group;cell_id;roaming_country;charge_eur;channel;partial_seq";

/// Number of fields of a row.
pub const FIELDS: usize = 16;

/// Seconds of lateness covered by the cached hour prefixes.
const EARLIEST_CACHED: i32 = -3 * 3600;

/// One usage record, borrowed from the generator's state. Times are seconds from the
/// start of the file's hour (negative for late records).
#[derive(Clone, Copy)]
pub(crate) struct Record<'a> {
    pub kind: UsageKind,
    pub msisdn: &'a [u8],
    pub imsi: &'a [u8],
    /// Empty when the network did not report it.
    pub imei: &'a [u8],
    /// Empty for records without a counterpart.
    pub other_party: &'a [u8],
    pub start: i32,
    pub duration: Option<u32>,
    pub volume_up: Option<u64>,
    pub volume_down: Option<u64>,
    pub rating_group: Option<u32>,
    pub cell_id: Option<u32>,
    /// Empty at home.
    pub roaming: &'a [u8],
    /// Ten-thousandths of a euro.
    pub charge_e4: u64,
    pub channel: Option<TopupChannel>,
    pub partial_seq: Option<u32>,
}

/// Formatting state for one file: its hour, the record-id prefix and cached date parts.
pub(crate) struct HourClock {
    hour: DateTime<FixedOffset>,
    /// `YYYY-MM-DDTHH:` for the three hours before the file's hour and the hour itself.
    prefixes: [[u8; 14]; 4],
    /// `+01:00`.
    offset: [u8; 6],
    /// `YYYYMMDDHH-`.
    id_prefix: [u8; 11],
}

impl HourClock {
    pub(crate) fn new(hour: DateTime<FixedOffset>) -> Self {
        let mut prefixes = [[0u8; 14]; 4];
        for (i, p) in prefixes.iter_mut().enumerate() {
            let h = hour + Duration::hours(i as i64 - 3);
            p.copy_from_slice(h.format("%Y-%m-%dT%H:").to_string().as_bytes());
        }
        let mut offset = [0u8; 6];
        offset.copy_from_slice(hour.format("%:z").to_string().as_bytes());
        let mut id_prefix = [0u8; 11];
        id_prefix.copy_from_slice(hour.format("%Y%m%d%H-").to_string().as_bytes());
        Self { hour, prefixes, offset, id_prefix }
    }

    /// The file's hour.
    pub(crate) fn hour(&self) -> DateTime<FixedOffset> {
        self.hour
    }

    /// The record id of malformed row number `n` of this file's hour: a series of its own
    /// (`YYYYMMDDHH-E00000001`), so that injecting faults never renumbers valid records.
    pub(crate) fn fault_id(&self, n: u32) -> String {
        format!("{}E{n:08}", String::from_utf8_lossy(&self.id_prefix))
    }

    /// Appends the record id for sequence number `seq` of this file's hour.
    #[inline]
    pub(crate) fn write_id(&self, buf: &mut Vec<u8>, seq: u32) {
        buf.extend_from_slice(&self.id_prefix);
        let mut digits = [b'0'; 9];
        let mut n = seq;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        buf.extend_from_slice(&digits);
    }

    /// Appends the RFC 3339 time `start` seconds after the file's hour.
    #[inline]
    pub(crate) fn write_time(&self, buf: &mut Vec<u8>, start: i32) {
        if !(EARLIEST_CACHED..3600).contains(&start) {
            // Only fault injection goes this far; no need to be fast.
            let t = self.hour + Duration::seconds(i64::from(start));
            buf.extend_from_slice(t.to_rfc3339_opts(SecondsFormat::Secs, false).as_bytes());
            return;
        }
        let rel = start - EARLIEST_CACHED;
        let in_hour = (rel % 3600) as usize;
        buf.extend_from_slice(&self.prefixes[(rel / 3600) as usize]);
        buf.extend_from_slice(&TWO_DIGITS[in_hour / 60]);
        buf.push(b':');
        buf.extend_from_slice(&TWO_DIGITS[in_hour % 60]);
        buf.extend_from_slice(&self.offset);
    }

    /// Which cached hour (0 = three hours before the file's hour, 3 = the file's hour) `start` is in.
    pub(crate) fn hour_slot(start: i32) -> usize {
        ((start - EARLIEST_CACHED).clamp(0, 4 * 3600 - 1) / 3600) as usize
    }
}

const TWO_DIGITS: [[u8; 2]; 60] = {
    let mut t = [[0u8; 2]; 60];
    let mut i = 0;
    while i < 60 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

#[inline]
fn push_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

#[inline]
fn push_opt(buf: &mut Vec<u8>, v: Option<u64>) {
    if let Some(v) = v {
        push_u64(buf, v);
    }
    buf.push(b';');
}

/// Appends an amount in ten-thousandths of a euro as a decimal without trailing zeros.
#[inline]
pub(crate) fn push_amount(buf: &mut Vec<u8>, e4: u64) {
    push_u64(buf, e4 / 10_000);
    let mut frac = e4 % 10_000;
    if frac != 0 {
        let mut digits = 4;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        buf.push(b'.');
        let s = itoa::Buffer::new().format(frac).len();
        buf.extend(std::iter::repeat_n(b'0', digits - s));
        push_u64(buf, frac);
    }
}

/// Appends `rec` with record id `seq` as one line (LF included).
#[inline]
pub(crate) fn write_record(buf: &mut Vec<u8>, clock: &HourClock, seq: u32, rec: &Record<'_>) {
    clock.write_id(buf, seq);
    buf.push(b';');
    buf.extend_from_slice(rec.kind.as_str().as_bytes());
    buf.push(b';');
    buf.extend_from_slice(rec.msisdn);
    buf.push(b';');
    buf.extend_from_slice(rec.imsi);
    buf.push(b';');
    buf.extend_from_slice(rec.imei);
    buf.push(b';');
    buf.extend_from_slice(rec.other_party);
    buf.push(b';');
    clock.write_time(buf, rec.start);
    buf.push(b';');
    push_opt(buf, rec.duration.map(u64::from));
    push_opt(buf, rec.volume_up);
    push_opt(buf, rec.volume_down);
    push_opt(buf, rec.rating_group.map(u64::from));
    push_opt(buf, rec.cell_id.map(u64::from));
    buf.extend_from_slice(rec.roaming);
    buf.push(b';');
    push_amount(buf, rec.charge_e4);
    buf.push(b';');
    if let Some(c) = rec.channel {
        buf.extend_from_slice(c.as_str().as_bytes());
    }
    buf.push(b';');
    if let Some(p) = rec.partial_seq {
        push_u64(buf, u64::from(p));
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_start;

    fn amount(e4: u64) -> String {
        let mut b = Vec::new();
        push_amount(&mut b, e4);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn amounts_have_at_most_four_decimals_and_no_trailing_zeros() {
        assert_eq!(amount(0), "0");
        assert_eq!(amount(100_000), "10");
        assert_eq!(amount(1_900), "0.19");
        assert_eq!(amount(25), "0.0025");
        assert_eq!(amount(12_345_678), "1234.5678");
        assert_eq!(amount(10_500), "1.05");
    }

    #[test]
    fn times_match_chrono_across_midnight_and_out_of_the_cache() {
        let clock = HourClock::new(default_start() + Duration::hours(1));
        for start in [-10_800, -7201, -1, 0, 59, 3599, -8 * 86_400, 5 * 3600] {
            let mut b = Vec::new();
            clock.write_time(&mut b, start);
            let expected =
                (clock.hour() + Duration::seconds(i64::from(start))).to_rfc3339_opts(SecondsFormat::Secs, false);
            assert_eq!(String::from_utf8(b).unwrap(), expected, "{start}");
        }
    }

    #[test]
    fn a_record_has_sixteen_fields_and_a_short_id() {
        let clock = HourClock::new(default_start());
        let rec = Record {
            kind: UsageKind::Data,
            msisdn: b"393401234567",
            imsi: b"222530123456789",
            imei: b"",
            other_party: b"",
            start: 61,
            duration: Some(900),
            volume_up: Some(1),
            volume_down: Some(2),
            rating_group: Some(10),
            cell_id: None,
            roaming: b"FR",
            charge_e4: 0,
            channel: None,
            partial_seq: Some(2),
        };
        let mut b = Vec::new();
        write_record(&mut b, &clock, 42, &rec);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "2026112200-000000042;DATA;393401234567;222530123456789;;;2026-11-22T00:01:01+01:00;900;1;2;10;;FR;0;;2\n"
        );
        assert_eq!(HEADER.split(';').count(), FIELDS);
    }
}
