//! Switchboard's privacy vault: what every capability uses for personal data.
//!
//! Personal data enters Switchboard at its edges (ingestion, master data, the APIs) and
//! leaves the edge already protected by the field policy of its [`PiiKind`]: a random
//! surrogate token (stable per value, so joins still work), FF1 format-preserving encryption,
//! encryption under the subject's own key, a keyed HMAC, a generalised value, or nothing.
//! Cleartext comes back only through [`Vault::reveal`], to a principal holding the
//! permission, for a stated purpose, with an entry in a tamper-evident audit chain.
//! Erasure destroys a customer's key and mappings; retention destroys old months of
//! non-customers' numbers. See `docs/privacy.md` for the whole picture.
//!
//! The vault keeps its own database (`data/vault.db`, or a PostgreSQL schema of its own),
//! so that warehouse users can be kept out of it.

mod audit;
mod cache;
mod config;
mod crypto;
mod erasure;
mod ff1;
pub mod files;
mod generalize;
mod keys;
mod kind;
mod known;
mod other_party;
mod principal;
mod rotation;
mod scan;
mod subject;
mod token_id;
mod vault;

use std::path::Path;

pub use audit::{AuditEntry, AuditReport};
pub use config::{PrivacyConfig, default_method};
pub use erasure::{ErasureReceipt, RetentionReport};
pub use generalize::generalize;
pub use keys::{KeyState, KeyVersionInfo, MasterKey};
pub use kind::{Method, PiiKind};
pub use principal::Principal;
pub use rotation::RotationReport;
pub use scan::{Finding, ScanReport, Scanner};
pub use subject::Subject;
pub use token_id::PackedToken;
pub use vault::{DeferredMark, Revealed, Tokens, Vault, handle_kind};

/// The vault's tables (applied to the vault's own database by [`Vault::open`]).
pub static MIGRATIONS: sb_store::MigrationSet = sb_store::MigrationSet {
    domain: "privacy",
    migrations: &[
        sb_store::migration!(1, "0001_vault"),
        sb_store::migration!(2, "0002_token_ids"),
        sb_store::migration!(3, "0003_directory_snapshots"),
    ],
};

/// Every permission the vault checks, for role tables and documentation.
pub fn permissions() -> Vec<String> {
    let mut p: Vec<String> = PiiKind::ALL.iter().map(|k| k.reveal_permission()).collect();
    p.extend(["privacy.erase".to_owned(), "privacy.rotate".to_owned()]);
    p
}

/// What can go wrong in the vault. Messages never contain personal data.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The vault's database failed.
    #[error(transparent)]
    Store(#[from] sb_store::StoreError),
    /// The principal may not do this, or gave no purpose; the refusal was audited.
    #[error("refused: {0}")]
    Denied(String),
    /// The token is unknown, or its subject was erased or expired.
    #[error("unknown token: it never existed, or its subject was erased or its retention period ended")]
    UnknownToken,
    /// The master key given is not the one the vault was made with.
    #[error("wrong master key: {0}")]
    WrongMasterKey(String),
    /// Stored data does not decrypt or is inconsistent.
    #[error("vault data is corrupt: {0}")]
    Corrupt(&'static str),
    /// The input cannot be protected as asked (the reason never quotes the value).
    #[error("{0}")]
    Invalid(String),
    /// Configuration is missing or wrong.
    #[error("{0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// Tokens made in the vault's deferred transaction were lost with it (see
    /// [`Vault::tokenize_column_deferred`]): whatever was made with them must be discarded.
    #[error("tokens made in the vault's deferred transaction could not be committed; nothing was stored, try again")]
    DeferredLost,
    /// The audit entry could not be written, so the action was not done.
    #[error("the audit log cannot be written, so nothing was revealed: {0}")]
    AuditUnavailable(String),
}

/// Reads the master key: `privacy.master_key` (from the environment), else the file
/// `privacy.master_key_file`, else `master.key` in `data_dir`.
pub fn load_master_key(config: &PrivacyConfig, data_dir: &Path) -> Result<MasterKey, PrivacyError> {
    use secrecy::ExposeSecret;
    if let Some(k) = &config.master_key {
        return MasterKey::parse(k.expose_secret());
    }
    let path = config.master_key_file.clone().unwrap_or_else(|| data_dir.join("master.key"));
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
        PrivacyError::Config(format!(
            "cannot read the master key file {}: {e} (run `switchboard init`, or set SWITCHBOARD__PRIVACY__MASTER_KEY_FILE)",
            path.display()
        ))
    })?);
    MasterKey::parse(&text)
}

/// Creates `master.key` in `data_dir` (mode 0600) unless it exists; returns whether it did.
pub fn ensure_master_key_file(path: &Path) -> Result<bool, PrivacyError> {
    if path.exists() {
        return Ok(false);
    }
    let key = MasterKey::generate_hex();
    files::write_private(path, format!("{}\n", key.as_str()).as_bytes())?;
    Ok(true)
}
