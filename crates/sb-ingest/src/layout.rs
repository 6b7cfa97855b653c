//! Layouts as data: how the columns of a file map onto Switchboard's usage record.
//!
//! A layout is declared in config (`[ingest.layouts.NAME]`) as field templates, in the spirit
//! of CGRateS' templates: each canonical field (`target`) comes from a column by header name
//! (`column`) or position (`index`), a fixed-width slice (`start`, `width`), a `constant`, or a
//! `compose`d template of other columns; with a `type` where the unit varies, a `format` for
//! times, a `values` mapping, `mandatory` and `max_len`. Two layouts ship built in:
//! `reference` (`layouts/reference.toml`, the reference CDR layout) and `asterisk`
//! (`layouts/asterisk.toml`, an Asterisk `Master.csv`), which shows a new shape needs no code.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// Delimited or fixed-width text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Fields separated by `delimiter`, optionally quoted with `quote`.
    Delimited,
    /// Fields at fixed positions (`start`, `width`).
    FixedWidth,
}

/// The canonical usage-record fields a layout can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Unique per source.
    RecordId,
    /// `VOICE_MO` … `VAS`.
    RecordType,
    /// The served line.
    Msisdn,
    /// The SIM.
    Imsi,
    /// The device.
    Imei,
    /// The other party of calls and SMS.
    OtherParty,
    /// When it started.
    StartTime,
    /// Seconds (voice, data).
    DurationS,
    /// Bytes up (data).
    VolumeUpBytes,
    /// Bytes down (data).
    VolumeDownBytes,
    /// Charging rating group (data).
    RatingGroup,
    /// Radio cell.
    CellId,
    /// ISO country when roaming.
    RoamingCountry,
    /// Amount charged, or credited by a top-up.
    ChargeEur,
    /// Top-up channel.
    Channel,
    /// Partial record sequence (data).
    PartialSeq,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 16] = [
        Self::RecordId,
        Self::RecordType,
        Self::Msisdn,
        Self::Imsi,
        Self::Imei,
        Self::OtherParty,
        Self::StartTime,
        Self::DurationS,
        Self::VolumeUpBytes,
        Self::VolumeDownBytes,
        Self::RatingGroup,
        Self::CellId,
        Self::RoamingCountry,
        Self::ChargeEur,
        Self::Channel,
        Self::PartialSeq,
    ];

    /// The name in config and in quarantine reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RecordId => "record_id",
            Self::RecordType => "record_type",
            Self::Msisdn => "msisdn",
            Self::Imsi => "imsi",
            Self::Imei => "imei",
            Self::OtherParty => "other_party",
            Self::StartTime => "start_time",
            Self::DurationS => "duration_s",
            Self::VolumeUpBytes => "volume_up_bytes",
            Self::VolumeDownBytes => "volume_down_bytes",
            Self::RatingGroup => "rating_group",
            Self::CellId => "cell_id",
            Self::RoamingCountry => "roaming_country",
            Self::ChargeEur => "charge_eur",
            Self::Channel => "channel",
            Self::PartialSeq => "partial_seq",
        }
    }
}

/// Units of a numeric source column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Text as is (identifiers, codes).
    Text,
    /// A whole number in the target's unit (seconds, bytes).
    Integer,
    /// Milliseconds, converted to the target's seconds (rounded up).
    Milliseconds,
    /// Kilobytes (1024 bytes), converted to bytes.
    Kilobytes,
    /// A decimal amount with `.` (at most 4 decimals).
    Decimal,
    /// An amount in cents, converted to the currency unit.
    Cents,
    /// A time: RFC 3339 by default, or `format` (strftime, read in the layout's timezone when
    /// it has no offset), or `epoch` seconds.
    Timestamp,
}

/// One field template.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    /// The canonical field filled.
    pub target: Target,
    /// The source column, by header name.
    #[serde(default)]
    pub column: Option<String>,
    /// The source column, by position from 0.
    #[serde(default)]
    pub index: Option<usize>,
    /// Fixed width: first character, from 1.
    #[serde(default)]
    pub start: Option<usize>,
    /// Fixed width: number of characters.
    #[serde(default)]
    pub width: Option<usize>,
    /// A constant value instead of a column.
    #[serde(default)]
    pub constant: Option<String>,
    /// A template of other columns: `"{src}-{uniqueid}"` (names need a header; `{0}` by position).
    #[serde(default)]
    pub compose: Option<String>,
    /// How to read the value; the target's natural type when unset.
    #[serde(rename = "type", default)]
    pub kind: Option<FieldType>,
    /// For timestamps: `rfc3339` (default), `epoch`, or a strftime pattern.
    #[serde(default)]
    pub format: Option<String>,
    /// Whether an empty value makes the row invalid.
    #[serde(default)]
    pub mandatory: bool,
    /// Longest accepted value, in characters.
    #[serde(default)]
    pub max_len: Option<usize>,
    /// Replaces values before they are read: `{ "ANSWERED" = "VOICE_MO" }`. Values not listed
    /// are kept unless `values_only` is set, in which case they are invalid.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Only values listed in `values` are accepted.
    #[serde(default)]
    pub values_only: bool,
    /// Used when the column is empty.
    #[serde(default)]
    pub default: Option<String>,
}

/// `[ingest.layouts.NAME]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutConfig {
    /// What it describes (shown in docs and `ingest layouts`).
    #[serde(default)]
    pub description: String,
    /// `delimited` or `fixed_width`.
    pub format: Format,
    /// Field separator of delimited files.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Quote character of delimited files, if fields may be quoted.
    #[serde(default)]
    pub quote: Option<char>,
    /// Whether the first line is a header (needed to find columns by name).
    #[serde(default)]
    pub header: bool,
    /// A regex on file names with named groups `date` (YYYYMMDD) and `hour` (HH), giving the
    /// file's hour for the start-time window check. Files whose name does not match are
    /// checked without a window.
    #[serde(default)]
    pub file_name: Option<String>,
    /// Timezone of times written without an offset.
    #[serde(default)]
    pub timezone: Option<Tz>,
    /// How far before the file's hour a record may start, in hours.
    #[serde(default = "default_window_before")]
    pub window_before_h: u32,
    /// How far after the file's hour a record may start, in hours.
    #[serde(default = "default_window_after")]
    pub window_after_h: u32,
    /// The field templates.
    pub fields: Vec<FieldConfig>,
}

fn default_delimiter() -> char {
    ';'
}
fn default_window_before() -> u32 {
    7 * 24
}
fn default_window_after() -> u32 {
    1
}

/// The layouts shipped with Switchboard, by name.
pub fn built_in() -> BTreeMap<String, LayoutConfig> {
    [("reference", include_str!("../layouts/reference.toml")), ("asterisk", include_str!("../layouts/asterisk.toml"))]
        .into_iter()
        .map(|(name, text)| (name.to_owned(), toml::from_str(text).expect("built-in layouts parse")))
        .collect()
}

/// Where a field's value comes from, resolved against the header.
#[derive(Debug, Clone)]
pub(crate) enum Getter {
    Column(usize),
    Slice { start: usize, width: usize },
    Constant(String),
    Compose(Vec<Piece>),
}

#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Text(String),
    Column(usize),
}

/// A field ready to apply to rows.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub target: Target,
    pub getter: Getter,
    pub kind: FieldType,
    pub format: Option<String>,
    pub mandatory: bool,
    pub max_len: Option<usize>,
    pub values: BTreeMap<String, String>,
    pub values_only: bool,
    pub default: Option<String>,
}

/// A layout resolved against a file's header: what the row parser uses.
#[derive(Debug, Clone)]
pub struct CompiledLayout {
    pub(crate) format: Format,
    pub(crate) delimiter: u8,
    pub(crate) quote: Option<u8>,
    pub(crate) columns: Option<usize>,
    pub(crate) timezone: Option<Tz>,
    pub(crate) file_name: Option<Regex>,
    pub(crate) window_before_h: u32,
    pub(crate) window_after_h: u32,
    /// Indexed by `Target as usize`.
    pub(crate) fields: Vec<Option<Field>>,
}

/// A layout that cannot be used, or a file that does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layout {layout}: {reason}")]
pub struct LayoutError {
    /// The layout's name.
    pub layout: String,
    /// What is wrong.
    pub reason: String,
}

fn natural_type(t: Target) -> FieldType {
    match t {
        Target::StartTime => FieldType::Timestamp,
        Target::DurationS
        | Target::VolumeUpBytes
        | Target::VolumeDownBytes
        | Target::RatingGroup
        | Target::CellId
        | Target::PartialSeq => FieldType::Integer,
        Target::ChargeEur => FieldType::Decimal,
        _ => FieldType::Text,
    }
}

impl LayoutConfig {
    /// Checks the layout and resolves column names against `header` (the file's first line,
    /// already split), when the layout has one.
    pub fn compile(&self, name: &str, header: Option<&[String]>) -> Result<CompiledLayout, LayoutError> {
        let err = |reason: String| LayoutError { layout: name.to_owned(), reason };
        if self.delimiter.len_utf8() != 1 || self.quote.is_some_and(|q| q.len_utf8() != 1) {
            return Err(err("delimiter and quote must be single ASCII characters".into()));
        }
        let file_name = match &self.file_name {
            Some(re) => Some(Regex::new(re).map_err(|e| err(format!("file_name is not a valid regex: {e}")))?),
            None => None,
        };
        let find = |col: &str| -> Result<usize, LayoutError> {
            let header = header.ok_or_else(|| err(format!("column `{col}` is named but the layout has no header")))?;
            header
                .iter()
                .position(|h| h == col)
                .ok_or_else(|| err(format!("the file has no column `{col}` (its header has {} columns)", header.len())))
        };
        let mut fields: Vec<Option<Field>> = vec![None; Target::ALL.len()];
        for f in &self.fields {
            let sources =
                [f.column.is_some(), f.index.is_some(), f.start.is_some(), f.constant.is_some(), f.compose.is_some()];
            if sources.iter().filter(|s| **s).count() != 1 {
                return Err(err(format!(
                    "field {} needs exactly one of column, index, start+width, constant, compose",
                    f.target.as_str()
                )));
            }
            let getter = if let Some(c) = &f.column {
                Getter::Column(find(c)?)
            } else if let Some(i) = f.index {
                Getter::Column(i)
            } else if let Some(start) = f.start {
                let width = f.width.ok_or_else(|| err(format!("field {}: start needs width", f.target.as_str())))?;
                if start == 0 {
                    return Err(err(format!("field {}: start counts from 1", f.target.as_str())));
                }
                Getter::Slice { start: start - 1, width }
            } else if let Some(c) = &f.constant {
                Getter::Constant(c.clone())
            } else {
                Getter::Compose(
                    parse_compose(f.compose.as_deref().unwrap_or_default(), &find)
                        .map_err(|e| err(format!("field {}: {}", f.target.as_str(), e.reason)))?,
                )
            };
            let slot = &mut fields[f.target as usize];
            if slot.is_some() {
                return Err(err(format!("field {} is declared twice", f.target.as_str())));
            }
            *slot = Some(Field {
                target: f.target,
                getter,
                kind: f.kind.unwrap_or(natural_type(f.target)),
                format: f.format.clone(),
                mandatory: f.mandatory,
                max_len: f.max_len,
                values: f.values.clone(),
                values_only: f.values_only,
                default: f.default.clone(),
            });
        }
        for required in [Target::RecordId, Target::RecordType, Target::Msisdn, Target::StartTime] {
            if fields[required as usize].is_none() {
                return Err(err(format!("field {} is required in every layout", required.as_str())));
            }
        }
        Ok(CompiledLayout {
            format: self.format,
            delimiter: self.delimiter as u8,
            quote: self.quote.map(|q| q as u8),
            columns: header.map(<[String]>::len),
            timezone: self.timezone,
            file_name,
            window_before_h: self.window_before_h,
            window_after_h: self.window_after_h,
            fields,
        })
    }
}

fn parse_compose(template: &str, find: &dyn Fn(&str) -> Result<usize, LayoutError>) -> Result<Vec<Piece>, LayoutError> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let close = rest[open..].find('}').ok_or_else(|| LayoutError {
            layout: String::new(),
            reason: format!("unclosed `{{` in compose `{template}`"),
        })? + open;
        let name = &rest[open + 1..close];
        pieces.push(Piece::Column(match name.parse::<usize>() {
            Ok(i) => i,
            Err(_) => find(name)?,
        }));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_layouts_compile() {
        let layouts = built_in();
        let header: Vec<String> = sb_sim::cdr::HEADER.split(';').map(str::to_owned).collect();
        layouts["reference"].compile("reference", Some(&header)).unwrap();
        layouts["asterisk"].compile("asterisk", None).unwrap();
    }

    #[test]
    fn a_missing_column_names_the_column() {
        let layouts = built_in();
        let header = vec!["record_id".to_owned()];
        let e = layouts["reference"].compile("reference", Some(&header)).unwrap_err().to_string();
        assert!(e.contains("no column `record_type`"), "{e}");
    }
}
