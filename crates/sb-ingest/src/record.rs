//! One row of a file → one validated usage record, or the reason it is not one.
//!
//! Every rule of the layout (presence, length, mapping, type) and the rules of the reference
//! layout that hold for any source (which fields each record type needs, ranges, the
//! start-time window around the file's hour) are checked here. Reasons name the field and
//! what is expected, never the value: quarantine keeps the raw line, encrypted.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use sb_core::{TopupChannel, UsageKind};

use crate::layout::{CompiledLayout, Field, FieldType, Format, Getter, Piece, Target};

/// Why a row is not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The field at fault (`row` for the row as a whole).
    pub field: &'static str,
    /// What is wrong and what is expected.
    pub reason: String,
}

fn bad(field: Target, reason: impl Into<String>) -> RowError {
    RowError { field: field.as_str(), reason: reason.into() }
}

/// A valid usage record; text borrows from the row where it can.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Unique per source.
    pub record_id: Cow<'a, str>,
    /// What it is.
    pub kind: UsageKind,
    /// The served line (cleartext until protected).
    pub msisdn: Cow<'a, str>,
    /// The SIM.
    pub imsi: Option<Cow<'a, str>>,
    /// The device.
    pub imei: Option<Cow<'a, str>>,
    /// The other party (voice, SMS).
    pub other_party: Option<Cow<'a, str>>,
    /// Start, microseconds since the epoch (UTC).
    pub start_us: i64,
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
    /// Country when roaming.
    pub roaming: Option<Cow<'a, str>>,
    /// Charge or top-up amount, 1/10 000 EUR.
    pub charge_e4: i64,
    /// Top-up channel.
    pub channel: Option<TopupChannel>,
    /// Partial record sequence.
    pub partial_seq: Option<i64>,
}

/// Splits and reads rows of one file.
pub struct RowParser<'l> {
    layout: &'l CompiledLayout,
    ranges: Vec<(usize, usize)>,
    owned: Vec<String>,
    window: Option<(i64, i64)>,
}

impl<'l> RowParser<'l> {
    /// A parser for a file whose hour (from its name) is `file_hour`, if known.
    pub fn new(layout: &'l CompiledLayout, file_hour: Option<DateTime<Utc>>) -> Self {
        let window = file_hour.map(|h| {
            let h = h.timestamp_micros();
            let hour_us = 3_600_000_000_i64;
            (h - i64::from(layout.window_before_h) * hour_us, h + hour_us + i64::from(layout.window_after_h) * hour_us)
        });
        Self { layout, ranges: Vec::with_capacity(32), owned: Vec::new(), window }
    }

    /// Splits `line` into columns, checking the count against the header.
    pub fn split(&mut self, line: &str) -> Result<(), RowError> {
        self.ranges.clear();
        self.owned.clear();
        let line = line.strip_suffix('\r').unwrap_or(line);
        match (self.layout.format, self.layout.quote) {
            (Format::FixedWidth, _) => {}
            (Format::Delimited, None) => {
                let mut start = 0;
                for i in memchr::memchr_iter(self.layout.delimiter, line.as_bytes()) {
                    self.ranges.push((start, i));
                    start = i + 1;
                }
                self.ranges.push((start, line.len()));
            }
            (Format::Delimited, Some(q)) => {
                self.owned = split_quoted(line, self.layout.delimiter, q)
                    .ok_or_else(|| RowError { field: "row", reason: "unbalanced quotes".into() })?;
            }
        }
        if let Some(expected) = self.layout.columns {
            let found = if self.layout.quote.is_some() { self.owned.len() } else { self.ranges.len() };
            if self.layout.format == Format::Delimited && found != expected {
                return Err(RowError { field: "row", reason: format!("expected {expected} fields, found {found}") });
            }
        }
        Ok(())
    }

    fn column<'a>(&self, line: &'a str, i: usize) -> Option<Cow<'a, str>> {
        if self.layout.quote.is_some() {
            self.owned.get(i).map(|s| Cow::Owned(s.clone()))
        } else {
            self.ranges.get(i).map(|&(s, e)| Cow::Borrowed(&line[s..e]))
        }
    }

    fn raw<'a>(&self, line: &'a str, f: &Field) -> Result<Option<Cow<'a, str>>, RowError> {
        let value: Option<Cow<'a, str>> = match &f.getter {
            Getter::Column(i) => self.column(line, *i),
            Getter::Slice { start, width } => {
                let line = line.strip_suffix('\r').unwrap_or(line);
                line.get(*start..(*start + *width).min(line.len())).map(Cow::Borrowed)
            }
            Getter::Constant(c) => Some(Cow::Owned(c.clone())),
            Getter::Compose(pieces) => {
                let mut s = String::new();
                for p in pieces {
                    match p {
                        Piece::Text(t) => s.push_str(t),
                        Piece::Column(i) => s.push_str(self.column(line, *i).as_deref().unwrap_or_default().trim()),
                    }
                }
                Some(Cow::Owned(s))
            }
        };
        let value = match value {
            Some(Cow::Borrowed(b)) => Some(Cow::Borrowed(b.trim())),
            Some(Cow::Owned(o)) => Some(Cow::Owned(o.trim().to_owned())),
            None => None,
        };
        let value = match value {
            Some(v) if !v.is_empty() => Some(v),
            _ => f.default.clone().map(Cow::Owned),
        };
        let Some(value) = value else {
            return if f.mandatory { Err(bad(f.target, "missing (mandatory)")) } else { Ok(None) };
        };
        let value = match f.values.get(value.as_ref()) {
            Some(mapped) => Cow::Owned(mapped.clone()),
            None if f.values_only => return Err(bad(f.target, "not one of the accepted values")),
            None => value,
        };
        if f.max_len.is_some_and(|m| value.chars().count() > m) {
            return Err(bad(f.target, format!("longer than {} characters", f.max_len.unwrap_or_default())));
        }
        Ok(Some(value))
    }

    fn get<'a>(&self, line: &'a str, t: Target) -> Result<Option<Cow<'a, str>>, RowError> {
        match &self.layout.fields[t as usize] {
            Some(f) => self.raw(line, f),
            None => Ok(None),
        }
    }

    fn int(&self, line: &str, t: Target) -> Result<Option<i64>, RowError> {
        let Some(f) = &self.layout.fields[t as usize] else { return Ok(None) };
        let Some(v) = self.raw(line, f)? else { return Ok(None) };
        let n = match f.kind {
            FieldType::Decimal => {
                decimal_e4(&v).map(|e4| (e4 + 9_999) / 10_000).ok_or_else(|| bad(t, "expected a number"))?
            }
            _ => v.parse::<i64>().map_err(|_| bad(t, "expected a whole number"))?,
        };
        Ok(Some(match f.kind {
            FieldType::Milliseconds => (n + 999).div_euclid(1000),
            FieldType::Kilobytes => n.saturating_mul(1024),
            _ => n,
        }))
    }

    /// Reads a split row (see [`RowParser::split`]) as a record.
    pub fn record<'a>(&self, line: &'a str) -> Result<Record<'a>, RowError> {
        let kind_text = self.get(line, Target::RecordType)?.ok_or_else(|| bad(Target::RecordType, "missing"))?;
        let kind: UsageKind = kind_text.parse().map_err(|_| {
            bad(Target::RecordType, "unknown; expected VOICE_MO VOICE_MT SMS_MO SMS_MT DATA TOPUP TOPUP_AUTO VAS")
        })?;
        let record_id =
            self.get(line, Target::RecordId)?.ok_or_else(|| bad(Target::RecordId, "missing (mandatory)"))?;
        let msisdn = self.get(line, Target::Msisdn)?.ok_or_else(|| bad(Target::Msisdn, "missing (mandatory)"))?;
        digits(&msisdn, 8, 15).map_err(|r| bad(Target::Msisdn, r))?;
        let imsi = self.get(line, Target::Imsi)?;
        if let Some(v) = &imsi {
            digits(v, 15, 15).map_err(|r| bad(Target::Imsi, r))?;
        }
        let imei = self.get(line, Target::Imei)?;
        if let Some(v) = &imei {
            digits(v, 14, 16).map_err(|r| bad(Target::Imei, r))?;
        }
        let other_party = self.get(line, Target::OtherParty)?;
        let person_to_person = kind.is_voice() || kind.is_sms();
        match (&other_party, person_to_person) {
            (None, true) => return Err(bad(Target::OtherParty, "missing (mandatory for voice and SMS)")),
            (Some(v), true) => {
                if digits(v, 8, 15).is_err() && digits(v, 3, 6).is_err() {
                    return Err(bad(Target::OtherParty, "expected 8 to 15 digits, or a short code of 3 to 6"));
                }
            }
            (Some(_), false) => return Err(bad(Target::OtherParty, format!("must be empty for {kind}"))),
            (None, false) => {}
        }
        let start_text =
            self.get(line, Target::StartTime)?.ok_or_else(|| bad(Target::StartTime, "missing (mandatory)"))?;
        let start_us = self.timestamp(&start_text)?;
        if let Some((from, to)) = self.window
            && (start_us < from || start_us >= to)
        {
            return Err(bad(
                Target::StartTime,
                format!(
                    "outside the window of the file's hour ({} h before to {} h after)",
                    self.layout.window_before_h, self.layout.window_after_h
                ),
            ));
        }
        let non_negative = |t: Target, v: Option<i64>| -> Result<i64, RowError> {
            match v {
                Some(n) if n < 0 => Err(bad(t, "must not be negative")),
                Some(n) => Ok(n),
                None => Ok(0),
            }
        };
        let duration_s = non_negative(Target::DurationS, self.int(line, Target::DurationS)?)?;
        let up_bytes = non_negative(Target::VolumeUpBytes, self.int(line, Target::VolumeUpBytes)?)?;
        let down_bytes = non_negative(Target::VolumeDownBytes, self.int(line, Target::VolumeDownBytes)?)?;
        let data = kind == UsageKind::Data;
        if duration_s != 0 && !(kind.is_voice() || data) {
            return Err(bad(Target::DurationS, format!("must be 0 or empty for {kind}")));
        }
        if (up_bytes != 0 || down_bytes != 0) && !data {
            return Err(bad(Target::VolumeUpBytes, format!("volumes must be 0 or empty for {kind}")));
        }
        let rating_group = self.int(line, Target::RatingGroup)?;
        if rating_group.is_some() && !data {
            return Err(bad(Target::RatingGroup, format!("only for DATA, not {kind}")));
        }
        let cell_id = self.int(line, Target::CellId)?;
        let roaming = self.get(line, Target::RoamingCountry)?;
        if let Some(c) = &roaming
            && !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(bad(Target::RoamingCountry, "expected an ISO 3166 alpha-2 code such as FR"));
        }
        let charge_e4 = match &self.layout.fields[Target::ChargeEur as usize] {
            None => 0,
            Some(f) => match self.raw(line, f)? {
                None => 0,
                Some(v) => match f.kind {
                    FieldType::Cents => {
                        v.parse::<i64>().map(|c| c * 100).map_err(|_| bad(Target::ChargeEur, "expected whole cents"))?
                    }
                    _ => decimal_e4(&v)
                        .ok_or_else(|| bad(Target::ChargeEur, "expected a decimal with `.` and at most 4 decimals"))?,
                },
            },
        };
        if kind.is_topup() && charge_e4 <= 0 {
            return Err(bad(Target::ChargeEur, "a top-up must credit an amount above 0"));
        }
        if charge_e4 < 0 {
            return Err(bad(Target::ChargeEur, "must not be negative"));
        }
        let channel_text = self.get(line, Target::Channel)?;
        let channel = match (kind, channel_text.as_deref()) {
            (UsageKind::Topup, Some(c)) => {
                let ch: TopupChannel =
                    c.parse().map_err(|_| bad(Target::Channel, "expected RETAIL ONLINE APP BANK PRIZE DIFFUSION"))?;
                if ch == TopupChannel::AutoThreshold {
                    return Err(bad(Target::Channel, "AUTO_THRESHOLD is for TOPUP_AUTO"));
                }
                Some(ch)
            }
            (UsageKind::Topup, None) => return Err(bad(Target::Channel, "missing (mandatory for TOPUP)")),
            (UsageKind::TopupAuto, Some("AUTO_THRESHOLD") | None) => Some(TopupChannel::AutoThreshold),
            (UsageKind::TopupAuto, Some(_)) => {
                return Err(bad(Target::Channel, "expected AUTO_THRESHOLD for TOPUP_AUTO"));
            }
            (_, Some(_)) => return Err(bad(Target::Channel, format!("must be empty for {kind}"))),
            (_, None) => None,
        };
        let partial_seq = self.int(line, Target::PartialSeq)?;
        match partial_seq {
            Some(n) if !data => return Err(bad(Target::PartialSeq, format!("only for DATA, not {kind} ({n})"))),
            Some(n) if n < 1 => return Err(bad(Target::PartialSeq, "must be 1 or more")),
            _ => {}
        }
        Ok(Record {
            record_id,
            kind,
            msisdn,
            imsi,
            imei,
            other_party,
            start_us,
            duration_s,
            up_bytes,
            down_bytes,
            rating_group,
            cell_id,
            roaming,
            charge_e4,
            channel,
            partial_seq,
        })
    }

    fn timestamp(&self, text: &str) -> Result<i64, RowError> {
        let f = self.layout.fields[Target::StartTime as usize].as_ref();
        let format = f.and_then(|f| f.format.as_deref()).unwrap_or("rfc3339");
        let err = || bad(Target::StartTime, format!("expected a time in the form {format}"));
        match format {
            "rfc3339" => fast_rfc3339(text)
                .or_else(|| DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_micros()))
                .ok_or_else(err),
            "epoch" => text.parse::<i64>().map(|s| s * 1_000_000).map_err(|_| err()),
            pattern => {
                if let Ok(t) = DateTime::parse_from_str(text, pattern) {
                    return Ok(t.timestamp_micros());
                }
                let naive = NaiveDateTime::parse_from_str(text, pattern).map_err(|_| err())?;
                let tz = self.layout.timezone.unwrap_or(chrono_tz::UTC);
                tz.from_local_datetime(&naive)
                    .earliest()
                    .map(|t| t.timestamp_micros())
                    .ok_or_else(|| bad(Target::StartTime, "does not exist in the layout's timezone"))
            }
        }
    }
}

fn digits(v: &str, min: usize, max: usize) -> Result<(), String> {
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected digits only".into());
    }
    if v.len() < min || v.len() > max {
        return Err(if min == max {
            format!("expected {min} digits")
        } else {
            format!("expected {min} to {max} digits")
        });
    }
    Ok(())
}

/// `12.3456` → 123456 (1/10 000 units); at most 4 decimals, `.` separator, optional sign.
pub(crate) fn decimal_e4(v: &str) -> Option<i64> {
    let (neg, v) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty()
        || frac.len() > 4
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if v.ends_with('.') {
        return None;
    }
    let mut n: i64 = int.parse().ok()?;
    for i in 0..4 {
        n = n.checked_mul(10)?.checked_add(frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0')))?;
    }
    Some(if neg { -n } else { n })
}

/// `2026-11-22T13:05:12+01:00` (or `Z`) without a general parser.
fn fast_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (y, mo, d, h, mi, sec) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    let (offset_s, rest) = match b[19] {
        b'Z' => (0, 20),
        b'+' | b'-' if b.len() == 25 && b[22] == b':' => {
            let o = n(20..22)? * 3600 + n(23..25)? * 60;
            (if b[19] == b'-' { -o } else { o }, 25)
        }
        _ => return None,
    };
    if rest != b.len() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32)?;
    let days = i64::from(date.signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days() as i32);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_s) * 1_000_000)
}

/// Splits a delimited line with quoted fields (`""` inside quotes is one quote).
fn split_quoted(line: &str, delim: u8, quote: u8) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut in_quotes = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_quotes {
            if c == quote {
                if bytes.get(i + 1) == Some(&quote) {
                    cur.push(quote);
                    i += 1;
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == quote {
            in_quotes = true;
        } else if c == delim {
            out.push(String::from_utf8(std::mem::take(&mut cur)).ok()?);
        } else {
            cur.push(c);
        }
        i += 1;
    }
    if in_quotes {
        return None;
    }
    out.push(String::from_utf8(cur).ok()?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_read_exactly() {
        assert_eq!(decimal_e4("12.3456"), Some(123_456));
        assert_eq!(decimal_e4("5"), Some(50_000));
        assert_eq!(decimal_e4("0.1"), Some(1_000));
        assert_eq!(decimal_e4("1.23456"), None);
        assert_eq!(decimal_e4("1,5"), None);
        assert_eq!(decimal_e4("1."), None);
        assert_eq!(decimal_e4("-2.5"), Some(-25_000));
    }

    #[test]
    fn the_fast_time_parser_agrees_with_chrono() {
        for s in ["2026-11-22T13:05:12+01:00", "2026-03-29T02:30:00Z", "2024-02-29T23:59:59-05:30"] {
            assert_eq!(fast_rfc3339(s), Some(DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()), "{s}");
        }
        assert_eq!(fast_rfc3339("2026-11-22 13:05:12"), None);
        assert_eq!(fast_rfc3339("2026-13-22T13:05:12Z"), None);
    }

    #[test]
    fn quoted_fields_are_split() {
        assert_eq!(split_quoted(r#""a","b,c","d""e""#, b',', b'"').unwrap(), ["a", "b,c", "d\"e"]);
        assert!(split_quoted(r#""a,b"#, b',', b'"').is_none());
    }
}
