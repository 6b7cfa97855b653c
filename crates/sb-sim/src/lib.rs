//! Stand-ins for the systems Switchboard integrates with. For now: a deterministic
//! generator of an Italian MVNO's data (MCC 222), for the demo, tests and benchmarks.
//!
//! [`generate`] produces, from a seed:
//! - a population of customers and lines ([`Population`]), held in memory;
//! - the operator's CRM database ([`write_source_db`]; SQLite file or PostgreSQL);
//! - hourly usage files in the reference layout ([`write_usage_files`], [`cdr::HEADER`]),
//!   with injected faults (duplicate records and files, malformed rows, late records);
//! - `manifest.json` ([`Manifest`]), stating exactly what the files hold and which faults
//!   were injected where, so ingestion tests can assert their totals.
//!
//! The same configuration gives byte-identical output, whatever the number of threads.
//!
//! ```
//! use sb_sim::{GenerateConfig, Population, UsageModel};
//!
//! let mut cfg = GenerateConfig::new(42, "unused");
//! cfg.customers = 50;
//! let population = Population::generate(cfg.seed, cfg.customers, cfg.start)?;
//! let model = UsageModel::new(&cfg, &population)?;
//! let mut file = Vec::new();
//! let report = model.write_hour(12, &mut file, &|_rows| {})?;
//! let text = String::from_utf8(file)?;
//! assert_eq!(text.lines().next(), Some(sb_sim::cdr::HEADER));
//! assert_eq!(text.lines().count() as u64, report.rows() + 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod catalog;
pub mod cdr;
mod config;
mod error;
mod faults;
mod files;
mod identifiers;
mod manifest;
mod names;
mod places;
mod population;
mod rng;
mod source_db;
mod traffic;

use std::path::PathBuf;

use serde::Serialize;

pub use catalog::{ADD_ONS, AUTO_TOPUP_OPTION, AddOn, PLANS, Plan};
pub use config::{GenerateConfig, MAX_CUSTOMERS, MAX_HOURS, default_start, sqlite_url};
pub use error::{SimError, redact_url};
pub use faults::MalformedKind;
pub use files::write_usage_files;
pub use manifest::{
    ChannelCounts, DuplicateFile, DuplicateRecord, FileEntry, KindCounts, LAYOUT, MalformedRow, Manifest, Rates,
    Summary, Totals,
};
pub use population::{
    Address, Company, Customer, DeviceType, Line, LineOption, LineStatus, Party, Payment, Person, Population, Sex,
};
pub use source_db::{INDEXES, SCHEMA, SourceDbCounts, write_source_db};
pub use traffic::{HourReport, UsageModel};

/// What a run produced, for the CLI to print (`--json`) and the demo to report.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateSummary {
    /// Seed of the run.
    pub seed: u64,
    /// Customers in the source database.
    pub customers: u64,
    /// Lines in the source database.
    pub lines: u64,
    /// Lines that generate traffic.
    pub active_lines: u64,
    /// Usage files written, duplicate copies included.
    pub files: u64,
    /// Rows written to usage files, all kinds, faults included (duplicate copies excluded).
    pub records: u64,
    /// Rows that pass validation, duplicates included.
    pub valid_records: u64,
    /// Valid records that are not duplicates.
    pub unique_records: u64,
    /// Valid records repeated with an id seen before.
    pub duplicate_records: u64,
    /// Byte-identical copies of earlier files.
    pub duplicate_files: u64,
    /// Rows that fail validation.
    pub malformed_rows: u64,
    /// Unique records that started before their file's hour.
    pub late_records: u64,
    /// Rows per table of the source database.
    pub source_db_rows: SourceDbCounts,
    /// The output folder.
    pub out: PathBuf,
    /// Folder of the usage files.
    pub mediation_dir: PathBuf,
    /// The manifest.
    pub manifest: PathBuf,
    /// The source database URL, password redacted.
    pub source_db: String,
}

/// Generates everything `cfg` asks for: population, source database, usage files and
/// manifest. `progress` receives the number of usage rows written since its last call.
///
/// File generation is CPU-bound and runs on `cfg.threads` threads of its own; on a
/// multi-threaded Tokio runtime the calling worker is handed over to other tasks meanwhile.
pub async fn generate(cfg: &GenerateConfig, progress: &(dyn Fn(u64) + Sync)) -> Result<GenerateSummary, SimError> {
    cfg.validate()?;
    std::fs::create_dir_all(&cfg.out).map_err(SimError::io("creating folder", &cfg.out))?;
    let population = Population::generate(cfg.seed, cfg.customers, cfg.start)?;
    let url = cfg.source_db_url();
    let source_db_rows = write_source_db(&url, &population).await?;
    let manifest = blocking(|| write_usage_files(cfg, &population, progress))?;
    Ok(GenerateSummary {
        seed: cfg.seed,
        customers: manifest.customers,
        lines: manifest.lines,
        active_lines: manifest.active_lines,
        files: manifest.summary.files + manifest.summary.duplicate_files,
        records: manifest.summary.rows,
        valid_records: manifest.summary.valid_records,
        unique_records: manifest.summary.unique_records,
        duplicate_records: manifest.summary.duplicate_records,
        duplicate_files: manifest.summary.duplicate_files,
        malformed_rows: manifest.summary.malformed_rows,
        late_records: manifest.totals.late_records,
        source_db_rows,
        out: cfg.out.clone(),
        mediation_dir: cfg.mediation_dir(),
        manifest: cfg.manifest_path(),
        source_db: redact_url(&url),
    })
}

/// Runs `f`, telling a multi-threaded Tokio runtime that this worker is busy.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
