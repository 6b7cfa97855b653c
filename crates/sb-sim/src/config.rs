//! What to generate, and where.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Timelike};

use crate::SimError;

/// Everything that determines a generation run. The same value (threads aside) always
/// produces byte-identical output.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of customers in the CRM.
    pub customers: u32,
    /// Number of hourly usage files.
    pub hours: u32,
    /// The first hour (on the hour). Timestamps in the files use its offset throughout.
    pub start: DateTime<FixedOffset>,
    /// Output folder: `mediation/`, `manifest.json` and, by default, `source.db` go here.
    pub out: PathBuf,
    /// sqlx URL of the CRM database (SQLite or PostgreSQL); `None` means `OUT/source.db`.
    pub source_db: Option<String>,
    /// Target number of valid usage records over all files: per-line activity is scaled to
    /// get close. Injected faults come on top (0.3% more rows at the default rates).
    pub records: Option<u64>,
    /// Name of the mediation source, first part of every file name (`MED01`).
    pub source_name: String,
    /// Write `.cdr.gz` files instead of plain `.cdr`.
    pub gzip: bool,
    /// Share of valid records written a second time, later in the same file or in a later one.
    pub duplicate_record_rate: f64,
    /// Duplicate files per hourly file: byte-identical copies of an earlier file, as SEQ 002.
    pub duplicate_file_rate: f64,
    /// Malformed rows per valid record.
    pub malformed_rate: f64,
    /// Share of records that arrive 1–3 hours after they started.
    pub late_rate: f64,
    /// Threads generating hourly files; the output does not depend on it.
    pub threads: usize,
}

impl GenerateConfig {
    /// The defaults for `seed`, writing into `out`.
    pub fn new(seed: u64, out: impl Into<PathBuf>) -> Self {
        Self {
            seed,
            customers: 1000,
            hours: 24,
            start: default_start(),
            out: out.into(),
            source_db: None,
            records: None,
            source_name: "MED01".to_owned(),
            gzip: false,
            duplicate_record_rate: 0.002,
            duplicate_file_rate: 1.0 / 24.0,
            malformed_rate: 0.001,
            late_rate: 0.02,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// The same configuration with every fault rate (duplicates, malformed, late) set to 0.
    pub fn without_faults(mut self) -> Self {
        self.duplicate_record_rate = 0.0;
        self.duplicate_file_rate = 0.0;
        self.malformed_rate = 0.0;
        self.late_rate = 0.0;
        self
    }

    /// Folder of the hourly usage files.
    pub fn mediation_dir(&self) -> PathBuf {
        self.out.join("mediation")
    }

    /// Path of the manifest.
    pub fn manifest_path(&self) -> PathBuf {
        self.out.join("manifest.json")
    }

    /// The URL of the source database: `source_db`, or a SQLite file in `out`.
    pub fn source_db_url(&self) -> String {
        match &self.source_db {
            Some(url) => url.clone(),
            None => sqlite_url(&self.out.join("source.db")),
        }
    }

    /// Checks ranges and names before anything is written.
    pub fn validate(&self) -> Result<(), SimError> {
        let invalid = |field, reason: &str| Err(SimError::InvalidConfig { field, reason: reason.to_owned() });
        if self.source_name.is_empty()
            || self.source_name.len() > 16
            || !self.source_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return invalid("source_name", "must be 1 to 16 ASCII letters, digits or `-`");
        }
        if self.customers > MAX_CUSTOMERS {
            return invalid("customers", &format!("at most {MAX_CUSTOMERS}"));
        }
        if self.hours > MAX_HOURS {
            return invalid("hours", &format!("at most {MAX_HOURS} (10 years)"));
        }
        if self.start.minute() != 0 || self.start.second() != 0 || self.start.nanosecond() != 0 {
            return invalid("start", "must be on the hour");
        }
        if self.start.offset().local_minus_utc() % 60 != 0 {
            return invalid("start", "the offset must be whole minutes, as RFC 3339 writes it");
        }
        // File names and timestamps are written with four-digit years; births go back 88 years.
        if !(1900..=9000).contains(&self.start.year()) {
            return invalid("start", "the year must be between 1900 and 9000");
        }
        for (field, rate) in [
            ("duplicate_record_rate", self.duplicate_record_rate),
            ("duplicate_file_rate", self.duplicate_file_rate),
            ("malformed_rate", self.malformed_rate),
            ("late_rate", self.late_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return invalid(field, "must be between 0 and 1");
            }
        }
        Ok(())
    }
}

/// Upper bound on customers: keeps MSISDNs unique within the mobile ranges used.
pub const MAX_CUSTOMERS: u32 = 10_000_000;
/// Upper bound on hours.
pub const MAX_HOURS: u32 = 24 * 366 * 10;

/// 2026-11-22T00:00:00+01:00 (Europe/Rome, winter time): the default first hour.
pub fn default_start() -> DateTime<FixedOffset> {
    FixedOffset::east_opt(3600)
        .and_then(|rome| rome.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).single())
        .expect("a fixed, valid date")
}

/// A `sqlite://` URL for `path` that creates the file if missing.
pub fn sqlite_url(path: &Path) -> String {
    // sqlx percent-decodes the path, so `%`, `?` and `#` in it must be escaped.
    let mut url = String::from("sqlite://");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    url.push_str("?mode=rwc");
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_start_in_rome_winter_time() {
        let cfg = GenerateConfig::new(1, "/tmp/x");
        cfg.validate().unwrap();
        assert_eq!(cfg.start.to_rfc3339(), "2026-11-22T00:00:00+01:00");
        assert_eq!(cfg.source_db_url(), "sqlite:///tmp/x/source.db?mode=rwc");
    }

    #[test]
    fn bad_values_are_refused_with_the_field_name() {
        let mut cfg = GenerateConfig::new(1, "/tmp/x");
        cfg.malformed_rate = 1.5;
        assert!(cfg.validate().unwrap_err().to_string().contains("malformed_rate"));
        let mut cfg = GenerateConfig::new(1, "/tmp/x");
        cfg.source_name = "../etc".into();
        assert!(cfg.validate().unwrap_err().to_string().contains("source_name"));
        for start in ["2026-11-22T00:30:00+01:00", "2026-11-22T00:00:00+01:00:30", "12026-11-22T00:00:00Z"] {
            let mut cfg = GenerateConfig::new(1, "/tmp/x");
            cfg.start = match DateTime::parse_from_rfc3339(start) {
                Ok(t) => t,
                // chrono refuses some of these itself; build them by hand.
                Err(_) if start.starts_with('1') => {
                    FixedOffset::east_opt(0).unwrap().with_ymd_and_hms(12026, 11, 22, 0, 0, 0).unwrap()
                }
                Err(_) => FixedOffset::east_opt(3630).unwrap().with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap(),
            };
            assert!(cfg.validate().unwrap_err().to_string().contains("start"), "{start}");
        }
    }

    #[test]
    fn odd_characters_in_the_sqlite_path_are_escaped() {
        assert_eq!(sqlite_url(Path::new("/a?b/c%#.db")), "sqlite:///a%3Fb/c%25%23.db?mode=rwc");
    }
}
