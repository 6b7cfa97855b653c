//! The manifest: what was generated and which faults were injected where, with totals an
//! ingestion can assert exactly.
//!
//! Definitions used throughout:
//! - a *row* is a line after the header; a file has `rows + 1` lines;
//! - a *valid record* is a row that passes every rule of the reference layout;
//! - a *duplicate record* is a valid record whose `record_id` already appeared in an
//!   earlier row of the same file or of an earlier file (files in name order);
//! - *unique* valid records are the valid records that are not duplicates; `totals` are
//!   computed over them;
//! - *duplicate files* are byte-identical copies of an earlier file; they are listed in
//!   `duplicate_files` only, and count in no total.
//!
//! Money is in ten-thousandths of a euro (`_e4`), the precision of `charge_eur`.

use std::collections::BTreeMap;

use sb_core::{TopupChannel, UsageKind};
use serde::{Deserialize, Serialize};

use crate::faults::MalformedKind;

/// Name of the layout the files follow.
pub const LAYOUT: &str = "switchboard-cdr-v1";

/// One number per record kind, named as in the files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct KindCounts {
    #[serde(rename = "VOICE_MO")]
    pub voice_mo: u64,
    #[serde(rename = "VOICE_MT")]
    pub voice_mt: u64,
    #[serde(rename = "SMS_MO")]
    pub sms_mo: u64,
    #[serde(rename = "SMS_MT")]
    pub sms_mt: u64,
    #[serde(rename = "DATA")]
    pub data: u64,
    #[serde(rename = "TOPUP")]
    pub topup: u64,
    #[serde(rename = "TOPUP_AUTO")]
    pub topup_auto: u64,
    #[serde(rename = "VAS")]
    pub vas: u64,
}

impl KindCounts {
    /// The number for `kind`.
    pub fn get(&self, kind: UsageKind) -> u64 {
        match kind {
            UsageKind::VoiceMo => self.voice_mo,
            UsageKind::VoiceMt => self.voice_mt,
            UsageKind::SmsMo => self.sms_mo,
            UsageKind::SmsMt => self.sms_mt,
            UsageKind::Data => self.data,
            UsageKind::Topup => self.topup,
            UsageKind::TopupAuto => self.topup_auto,
            UsageKind::Vas => self.vas,
        }
    }

    /// The number for `kind`, to change.
    pub fn get_mut(&mut self, kind: UsageKind) -> &mut u64 {
        match kind {
            UsageKind::VoiceMo => &mut self.voice_mo,
            UsageKind::VoiceMt => &mut self.voice_mt,
            UsageKind::SmsMo => &mut self.sms_mo,
            UsageKind::SmsMt => &mut self.sms_mt,
            UsageKind::Data => &mut self.data,
            UsageKind::Topup => &mut self.topup,
            UsageKind::TopupAuto => &mut self.topup_auto,
            UsageKind::Vas => &mut self.vas,
        }
    }

    fn merge(&mut self, other: &Self) {
        for k in UsageKind::ALL {
            *self.get_mut(k) += other.get(k);
        }
    }
}

/// One number per top-up channel, named as in the files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ChannelCounts {
    #[serde(rename = "RETAIL")]
    pub retail: u64,
    #[serde(rename = "ONLINE")]
    pub online: u64,
    #[serde(rename = "APP")]
    pub app: u64,
    #[serde(rename = "BANK")]
    pub bank: u64,
    #[serde(rename = "PRIZE")]
    pub prize: u64,
    #[serde(rename = "DIFFUSION")]
    pub diffusion: u64,
    #[serde(rename = "AUTO_THRESHOLD")]
    pub auto_threshold: u64,
}

impl ChannelCounts {
    /// The number for `channel`, to change.
    pub fn get_mut(&mut self, channel: TopupChannel) -> &mut u64 {
        match channel {
            TopupChannel::Retail => &mut self.retail,
            TopupChannel::Online => &mut self.online,
            TopupChannel::App => &mut self.app,
            TopupChannel::Bank => &mut self.bank,
            TopupChannel::Prize => &mut self.prize,
            TopupChannel::Diffusion => &mut self.diffusion,
            TopupChannel::AutoThreshold => &mut self.auto_threshold,
        }
    }

    /// The number for `channel`.
    pub fn get(&self, channel: TopupChannel) -> u64 {
        match channel {
            TopupChannel::Retail => self.retail,
            TopupChannel::Online => self.online,
            TopupChannel::App => self.app,
            TopupChannel::Bank => self.bank,
            TopupChannel::Prize => self.prize,
            TopupChannel::Diffusion => self.diffusion,
            TopupChannel::AutoThreshold => self.auto_threshold,
        }
    }

    fn merge(&mut self, other: &Self) {
        for c in TopupChannel::ALL {
            *self.get_mut(c) += other.get(c);
        }
    }
}

/// Counts and sums over unique valid records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Unique valid records.
    pub records: u64,
    /// Records per kind.
    pub by_kind: KindCounts,
    /// Sum of `charge_eur` per kind (for top-ups: the amount credited), in 1/10000 EUR.
    pub charge_e4_by_kind: KindCounts,
    /// Sum of `duration_s` of `VOICE_MO`.
    pub voice_mo_seconds: u64,
    /// Sum of `duration_s` of `VOICE_MT`.
    pub voice_mt_seconds: u64,
    /// `DATA` records with `partial_seq` 1, i.e. data sessions.
    pub data_sessions: u64,
    /// Sum of `duration_s` of `DATA`.
    pub data_seconds: u64,
    /// Sum of `volume_up_bytes`.
    pub data_up_bytes: u64,
    /// Sum of `volume_down_bytes`.
    pub data_down_bytes: u64,
    /// `TOPUP` and `TOPUP_AUTO` records per channel.
    pub topups_by_channel: ChannelCounts,
    /// Amount credited per channel, in 1/10000 EUR.
    pub topup_e4_by_channel: ChannelCounts,
    /// Records with a `roaming_country`.
    pub roaming_records: u64,
    /// Records whose `start_time` is before their file's hour.
    pub late_records: u64,
    /// Records per hour of `start_time` (the hour as RFC 3339, in the files' offset).
    pub records_by_start_hour: BTreeMap<String, u64>,
}

impl Totals {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Totals) {
        self.records += other.records;
        self.by_kind.merge(&other.by_kind);
        self.charge_e4_by_kind.merge(&other.charge_e4_by_kind);
        self.voice_mo_seconds += other.voice_mo_seconds;
        self.voice_mt_seconds += other.voice_mt_seconds;
        self.data_sessions += other.data_sessions;
        self.data_seconds += other.data_seconds;
        self.data_up_bytes += other.data_up_bytes;
        self.data_down_bytes += other.data_down_bytes;
        self.topups_by_channel.merge(&other.topups_by_channel);
        self.topup_e4_by_channel.merge(&other.topup_e4_by_channel);
        self.roaming_records += other.roaming_records;
        self.late_records += other.late_records;
        for (hour, n) in &other.records_by_start_hour {
            *self.records_by_start_hour.entry(hour.clone()).or_default() += n;
        }
    }
}

/// One usage file (not a duplicate copy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name in `mediation/`.
    pub name: String,
    /// The hour the file is for (RFC 3339).
    pub hour: String,
    /// SEQ of the file within its hour.
    pub seq: u32,
    /// Size on disk (compressed size for `.gz`).
    pub bytes: u64,
    /// Lines, the header included.
    pub lines: u64,
    /// Rows after the header.
    pub rows: u64,
    /// Rows that pass validation, duplicates included.
    pub valid_records: u64,
    /// Valid rows whose `record_id` was seen before.
    pub duplicate_records: u64,
    /// Rows that fail validation.
    pub malformed_rows: u64,
    /// Over the file's unique valid records.
    pub totals: Totals,
}

/// A byte-identical copy of an earlier file under a new name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateFile {
    /// The copy.
    pub file: String,
    /// The original.
    pub copy_of: String,
}

/// A valid record written again with the same `record_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateRecord {
    /// File of the repeat.
    pub file: String,
    /// 1-based line of the repeat (the header is line 1).
    pub line: u64,
    /// The repeated id.
    pub record_id: String,
    /// File of the first occurrence.
    pub first_file: String,
    /// Line of the first occurrence.
    pub first_line: u64,
}

/// A row that breaks a rule of the layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedRow {
    /// File of the row.
    pub file: String,
    /// 1-based line (the header is line 1).
    pub line: u64,
    /// The one defect of the row.
    pub kind: MalformedKind,
    /// The row's `record_id`, unless that is what is missing.
    pub record_id: Option<String>,
    /// The defect in a few words.
    pub detail: String,
}

/// The fault rates the run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Rates {
    pub duplicate_record_rate: f64,
    pub duplicate_file_rate: f64,
    pub malformed_rate: f64,
    pub late_rate: f64,
}

/// Counts over all files (duplicate files excluded unless named).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Usage files, duplicate copies excluded.
    pub files: u64,
    /// Duplicate copies.
    pub duplicate_files: u64,
    /// Lines, headers included.
    pub lines: u64,
    /// Rows after the headers.
    pub rows: u64,
    /// Rows that pass validation, duplicates included.
    pub valid_records: u64,
    /// Valid records that are not duplicates.
    pub unique_records: u64,
    /// Valid rows whose `record_id` was seen before.
    pub duplicate_records: u64,
    /// Rows that fail validation.
    pub malformed_rows: u64,
    /// Malformed rows per kind (every kind listed).
    pub malformed_by_kind: BTreeMap<MalformedKind, u64>,
}

/// Everything `manifest.json` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout of the files: `switchboard-cdr-v1`.
    pub layout: String,
    /// Seed of the run.
    pub seed: u64,
    /// Source name in the file names.
    pub source: String,
    /// First hour (RFC 3339).
    pub start: String,
    /// Number of hourly files.
    pub hours: u32,
    /// Whether files are gzip-compressed.
    pub gzip: bool,
    /// Customers in the source database.
    pub customers: u64,
    /// Lines in the source database.
    pub lines: u64,
    /// Lines that generate traffic.
    pub active_lines: u64,
    /// Fault rates.
    pub rates: Rates,
    /// Counts over all files.
    pub summary: Summary,
    /// Sums over all unique valid records.
    pub totals: Totals,
    /// Every usage file, in name order.
    pub files: Vec<FileEntry>,
    /// Every duplicate copy, in name order.
    pub duplicate_files: Vec<DuplicateFile>,
    /// Every repeated record, by file then line.
    pub duplicate_records: Vec<DuplicateRecord>,
    /// Every malformed row, by file then line.
    pub malformed_rows: Vec<MalformedRow>,
}
