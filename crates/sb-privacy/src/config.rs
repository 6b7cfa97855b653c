use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::{Method, PiiKind};

/// The `[privacy]` section of `switchboard.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// The vault's own database. Unset: the SQLite file `vault.db` in the data directory when
    /// the store is SQLite, or the schema `vault` of the store's PostgreSQL database (give it a
    /// URL with a role of its own to keep warehouse users out of it). A secret.
    #[serde(serialize_with = "sb_core::secret::mask", skip_serializing_if = "Option::is_none")]
    pub vault_url: Option<SecretString>,
    /// A file holding `vault_url`.
    pub vault_url_file: Option<PathBuf>,
    /// Largest number of connections to the vault. Unset: 2 on SQLite, which runs one writer
    /// at a time and gives each connection a page cache of its own (32 MiB), so more
    /// connections cost memory without adding speed; the store's `max_connections` on
    /// PostgreSQL.
    pub vault_max_connections: Option<u32>,
    /// The master key (64 hex characters). Only from the environment
    /// (`SWITCHBOARD__PRIVACY__MASTER_KEY`): the config file is refused for it.
    #[serde(serialize_with = "sb_core::secret::mask", skip_serializing_if = "Option::is_none")]
    pub master_key: Option<SecretString>,
    /// A file holding the master key. Unset (and no `master_key`): `master.key` in the data
    /// directory, which `switchboard init` creates with mode 0600.
    pub master_key_file: Option<PathBuf>,
    /// What happens to each kind of personal data (`token`, `fpe`, `encrypt`, `hmac`, `drop`,
    /// `generalize`); kinds not listed keep their default (see docs/privacy.md).
    pub policies: BTreeMap<PiiKind, Method>,
    /// Leading digits FF1 leaves in clear (the country code of an MSISDN).
    pub fpe_keep_digits: usize,
    /// Months after which other-party tokens of non-customers are destroyed.
    pub other_party_retention_months: u32,
    /// Values whose tokens are kept in memory for the ingestion hot path (about 40 bytes each
    /// when full; memory grows with use). A value not held costs one HMAC and a look in the
    /// vault's directory in memory (no query), so the default, 1,000,000, holds a 150,000-line
    /// operator's MSISDNs, IMSIs and IMEIs whole (the older half is dropped as the newer fills)
    /// and keeps a 2-million-line operator's hour under 1 GiB; raise it for speed where memory
    /// allows.
    pub cache_capacity: usize,
    /// Milliseconds a bulk load's new tokens may wait in one open transaction of the vault
    /// before it is committed (`Vault::tokenize_column_deferred`, ADR 0006): longer makes
    /// fewer, larger transactions (less written to disk), and other processes' writes to the
    /// vault wait for it up to about this long. 0: every call commits its own.
    pub deferred_commit_ms: u64,
    /// age recipients (`age1…`) that files holding personal data are encrypted to. Unset:
    /// the public key of `files_identity`.
    pub file_recipients: Vec<String>,
    /// The age identity that decrypts Switchboard's own encrypted files (quarantine).
    /// Unset: `privacy/files.key` in the data directory, created on first use (mode 0600).
    pub files_identity: Option<PathBuf>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            vault_url: None,
            vault_url_file: None,
            vault_max_connections: None,
            master_key: None,
            master_key_file: None,
            policies: BTreeMap::new(),
            fpe_keep_digits: 2,
            other_party_retention_months: 6,
            cache_capacity: 1_000_000,
            deferred_commit_ms: 2_000,
            file_recipients: Vec::new(),
            files_identity: None,
        }
    }
}

impl PrivacyConfig {
    /// The method for `kind`: the configured one, or the built-in default.
    pub fn method(&self, kind: PiiKind) -> Method {
        self.policies.get(&kind).copied().unwrap_or_else(|| default_method(kind))
    }
}

/// The built-in policy: identifiers and numbers are tokens (joins work, reveal possible),
/// descriptive data is encrypted under the subject's key, location and birth dates are
/// generalised, IPs are hashed, free text is dropped.
pub const fn default_method(kind: PiiKind) -> Method {
    match kind {
        PiiKind::Msisdn | PiiKind::Imsi | PiiKind::Imei | PiiKind::OtherParty | PiiKind::TaxCode => Method::Token,
        PiiKind::Name | PiiKind::Address | PiiKind::Email | PiiKind::Iban => Method::Encrypt,
        PiiKind::BirthDate | PiiKind::CellId => Method::Generalize,
        PiiKind::Ip => Method::Hmac,
        PiiKind::FreeText => Method::Drop,
    }
}
