use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The `[store]` section of `switchboard.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST/DB`. Unset: the SQLite file
    /// `switchboard.db` in the data directory. It may hold a password, so it is a secret:
    /// masked in `config show`, and also readable from a file with `url_file`.
    #[serde(serialize_with = "sb_core::secret::mask", skip_serializing_if = "Option::is_none")]
    pub url: Option<SecretString>,
    /// A file holding the database URL (for container secrets); exclusive with `url`.
    pub url_file: Option<std::path::PathBuf>,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// How long a SQLite writer waits for a lock before giving up, in milliseconds.
    pub busy_timeout_ms: u64,
    /// How long to wait for a connection from the pool, in milliseconds.
    pub acquire_timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { url: None, url_file: None, max_connections: 8, busy_timeout_ms: 5_000, acquire_timeout_ms: 10_000 }
    }
}
