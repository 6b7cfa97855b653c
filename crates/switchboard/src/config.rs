//! Configuration: built-in defaults, then `switchboard.toml`, then `SWITCHBOARD__SECTION__KEY`
//! environment variables (the environment wins), then command-line flags.
//!
//! Each section is defined, with its keys documented, in the crate that uses it; this module
//! assembles them, reads secrets from `…_file` keys, and turns every mistake into a message
//! naming the key, the value found and what is expected.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The prefix of environment variables; `__` separates sections and keys.
pub const ENV_PREFIX: &str = "SWITCHBOARD__";
/// The config file read when `--config` is not given (if it exists).
pub const DEFAULT_FILE: &str = "switchboard.toml";
/// The commented config file `switchboard init` writes.
pub const TEMPLATE: &str = include_str!("../switchboard.example.toml");

/// Everything Switchboard can be told.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Folder for Switchboard's own files: the SQLite store, the lake, inbox, outbox,
    /// quarantine. Relative paths are relative to the working directory.
    pub data_dir: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// The operational store.
    pub store: sb_store::StoreConfig,
    /// The scheduler.
    pub jobs: sb_jobs::JobsConfig,
    /// The privacy vault and field policies.
    pub privacy: sb_privacy::PrivacyConfig,
    /// Usage ingestion: sources, layouts, dedup, alerts.
    pub ingest: sb_ingest::IngestConfig,
    /// The HTTP server of `switchboard serve`.
    pub server: sb_web::ServerConfig,
    /// Back-office sign-in, sessions, roles, customer tokens.
    pub auth: sb_web::AuthConfig,
    /// The monitoring bus and rollups.
    pub monitor: sb_web::MonitorConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            log: LogConfig::default(),
            store: sb_store::StoreConfig::default(),
            jobs: sb_jobs::JobsConfig::default(),
            privacy: sb_privacy::PrivacyConfig::default(),
            ingest: sb_ingest::IngestConfig::default(),
            server: sb_web::ServerConfig::default(),
            auth: sb_web::AuthConfig::default(),
            monitor: sb_web::MonitorConfig::default(),
        }
    }
}

/// The `[log]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Level or filter (`info`, `debug`, `sb_ingest=debug,info`); `RUST_LOG` wins when set.
    pub level: String,
    /// `auto` (readable text on a terminal, JSON lines otherwise), `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Auto }
    }
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Text on a terminal, JSON lines otherwise.
    Auto,
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// The store URL: `store.url`, or the SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        match &self.store.url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("switchboard.db").display()),
        }
    }

    /// The vault's database: `privacy.vault_url`, else `vault.db` beside a SQLite store, else
    /// the store's PostgreSQL database (in schema `vault`, see [`Config::vault_schema`]).
    pub fn vault_url(&self) -> String {
        match &self.privacy.vault_url {
            Some(url) => url.expose_secret().to_owned(),
            None if self.store.url.is_none() || self.store_url().starts_with("sqlite:") => {
                format!("sqlite://{}", self.data_dir.join("vault.db").display())
            }
            None => self.store_url(),
        }
    }

    /// The PostgreSQL schema of the vault when it shares the store's database.
    pub fn vault_schema(&self) -> Option<String> {
        (self.privacy.vault_url.is_none() && self.vault_url().starts_with("postgres")).then(|| "vault".to_owned())
    }

    /// The master key file: `privacy.master_key_file`, else `master.key` in the data directory.
    pub fn master_key_file(&self) -> PathBuf {
        self.privacy.master_key_file.clone().unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// The age identity of Switchboard's own encrypted files.
    pub fn files_identity(&self) -> PathBuf {
        self.privacy.files_identity.clone().unwrap_or_else(|| self.data_dir.join("privacy").join("files.key"))
    }

    /// The effective config as TOML, secrets masked.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot show the config: {e}\n"))
    }
}

/// A config that cannot be used; the message says which key and why.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where the config comes from.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `--config`: must exist when given. Unset: `./switchboard.toml` if it exists.
    pub file: Option<PathBuf>,
    /// `--data-dir`: wins over every other source.
    pub data_dir: Option<PathBuf>,
}

impl Sources {
    fn figment(&self) -> Result<Figment, ConfigError> {
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        match &self.file {
            Some(path) if !path.is_file() => {
                return Err(ConfigError(format!("config file {} does not exist", path.display())));
            }
            Some(path) => f = f.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_FILE).is_file() => f = f.merge(Toml::file_exact(DEFAULT_FILE)),
            None => {}
        }
        f = f.merge(Env::prefixed(ENV_PREFIX).split("__"));
        if let Some(dir) = &self.data_dir {
            f = f.merge(Serialized::default("data_dir", dir));
        }
        Ok(f)
    }
}

/// Loads the config from defaults, file, environment and flags, and resolves `…_file` secrets.
pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
    let figment = sources.figment()?;
    let mut config: Config = figment.extract().map_err(|e| ConfigError(describe(e)))?;
    if let Some(meta) = figment.find_metadata("privacy.master_key")
        && matches!(meta.source, Some(figment::Source::File(_)))
    {
        return Err(ConfigError(
            "config key `privacy.master_key` must not be in a config file: set SWITCHBOARD__PRIVACY__MASTER_KEY \
             or privacy.master_key_file"
                .into(),
        ));
    }
    if let Some(meta) = figment.find_metadata("auth.jwt.hs256_secret")
        && matches!(meta.source, Some(figment::Source::File(_)))
    {
        return Err(ConfigError(
            "config key `auth.jwt.hs256_secret` must not be in a config file: set SWITCHBOARD__AUTH__JWT__HS256_SECRET \
             or auth.jwt.hs256_secret_file"
                .into(),
        ));
    }
    resolve_secret(&mut config.store.url, config.store.url_file.as_deref(), "store.url")?;
    resolve_secret(&mut config.privacy.vault_url, config.privacy.vault_url_file.as_deref(), "privacy.vault_url")?;
    resolve_secret(&mut config.ingest.master.url, config.ingest.master.url_file.as_deref(), "ingest.master.url")?;
    Ok(config)
}

/// Fills `value` from the file at `file` (trailing newline removed); both set is an error.
fn resolve_secret(value: &mut Option<SecretString>, file: Option<&Path>, key: &str) -> Result<(), ConfigError> {
    let Some(path) = file else { return Ok(()) };
    if value.is_some() {
        return Err(ConfigError(format!("config keys `{key}` and `{key}_file` are both set: keep one")));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("config key `{key}_file`: cannot read {}: {e}", path.display())))?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.is_empty() {
        return Err(ConfigError(format!("config key `{key}_file`: {} is empty", path.display())));
    }
    *value = Some(SecretString::from(text.to_owned()));
    Ok(())
}

/// One line per problem: the key, where it was set, the value and what is expected.
fn describe(errors: figment::Error) -> String {
    use figment::error::Kind;
    let mut lines = Vec::new();
    for e in errors {
        let path = e.path.clone();
        let detail = match &e.kind {
            Kind::UnknownField(_, expected) => format!("unknown key; expected one of: {}", expected.join(", ")),
            Kind::InvalidType(actual, expected) => format!("found {actual}, expected {expected}"),
            Kind::InvalidValue(actual, expected) => format!("found {actual}, expected {expected}"),
            Kind::UnknownVariant(found, expected) => {
                format!("found `{found}`, expected one of: {}", expected.join(", "))
            }
            other => other.to_string(),
        };
        let key = path.join(".");
        let origin = e
            .metadata
            .as_ref()
            .map(|m| match &m.source {
                Some(figment::Source::File(file)) => format!(" (in {})", file.display()),
                _ if m.name.contains("environment") => {
                    format!(" (environment variable {ENV_PREFIX}{})", path.join("__").to_uppercase())
                }
                _ => String::new(),
            })
            .unwrap_or_default();
        lines.push(format!("config key `{key}`{origin}: {detail}"));
    }
    lines.join("\n")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment's large error type
mod tests {
    use super::*;
    use figment::Jail;

    fn load_in(jail: &Jail) -> Result<Config, ConfigError> {
        let _ = jail;
        load(&Sources::default())
    }

    #[test]
    fn the_environment_wins_over_the_file_which_wins_over_defaults() {
        Jail::expect_with(|jail| {
            assert_eq!(load_in(jail).unwrap().store.max_connections, 8);
            jail.create_file("switchboard.toml", "[store]\nmax_connections = 3\nbusy_timeout_ms = 42\n")?;
            let c = load_in(jail).unwrap();
            assert_eq!((c.store.max_connections, c.store.busy_timeout_ms), (3, 42));
            jail.set_env("SWITCHBOARD__STORE__MAX_CONNECTIONS", "5");
            let c = load_in(jail).unwrap();
            assert_eq!((c.store.max_connections, c.store.busy_timeout_ms), (5, 42));
            Ok(())
        });
    }

    #[test]
    fn the_data_dir_flag_wins_over_everything() {
        Jail::expect_with(|jail| {
            jail.create_file("switchboard.toml", "data_dir = \"from-file\"\n")?;
            jail.set_env("SWITCHBOARD__DATA_DIR", "from-env");
            assert_eq!(load_in(jail).unwrap().data_dir, PathBuf::from("from-env"));
            let c = load(&Sources { data_dir: Some("from-flag".into()), ..Default::default() }).unwrap();
            assert_eq!(c.data_dir, PathBuf::from("from-flag"));
            assert_eq!(c.store_url(), "sqlite://from-flag/switchboard.db");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_names_the_key() {
        Jail::expect_with(|jail| {
            jail.create_file("switchboard.toml", "[store]\nmax_conections = 3\n")?;
            let e = load_in(jail).unwrap_err().to_string();
            assert!(e.contains("`store.max_conections`"), "{e}");
            assert!(e.contains("unknown key") && e.contains("max_connections"), "{e}");
            assert!(e.contains("switchboard.toml"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_in_the_environment_names_the_variable() {
        Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD__STORE__NOPE", "1");
            let e = load_in(jail).unwrap_err().to_string();
            assert!(e.contains("`store.nope`") && e.contains("SWITCHBOARD__STORE__NOPE"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_the_key_the_value_and_the_expected_form() {
        Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD__STORE__MAX_CONNECTIONS", "many");
            let e = load_in(jail).unwrap_err().to_string();
            assert!(e.contains("`store.max_connections`"), "{e}");
            assert!(e.contains("\"many\"") && e.contains("u32"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_timezone_or_schedule_says_what_is_expected() {
        Jail::expect_with(|jail| {
            jail.create_file("switchboard.toml", "[jobs]\ntimezone = \"Mars/Olympus\"\n")?;
            let e = load_in(jail).unwrap_err().to_string();
            assert!(e.contains("`jobs.timezone`") && e.contains("Mars/Olympus"), "{e}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.create_file("switchboard.toml", "[jobs.overrides.housekeeping]\nschedule = \"sometimes\"\n")?;
            let e = load_in(jail).unwrap_err().to_string();
            assert!(e.contains("`jobs.overrides.housekeeping.schedule`") && e.contains("min hour day"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn a_secret_is_read_from_its_file_variant_and_masked_when_shown() {
        Jail::expect_with(|jail| {
            jail.create_file("db-url", "postgres://sb:pw@db/sb\n")?;
            jail.set_env("SWITCHBOARD__STORE__URL_FILE", "db-url");
            let c = load_in(jail).unwrap();
            assert_eq!(c.store_url(), "postgres://sb:pw@db/sb");
            let shown = c.to_toml();
            assert!(!shown.contains("pw@db") && shown.contains(sb_core::secret::MASK), "{shown}");
            jail.set_env("SWITCHBOARD__STORE__URL", "postgres://x@y/z");
            let e = load_in(jail).unwrap_err().to_string();
            assert!(e.contains("`store.url`") && e.contains("both"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn the_master_key_is_refused_from_the_config_file_and_taken_from_the_environment() {
        Jail::expect_with(|jail| {
            jail.create_file("switchboard.toml", "[privacy]\nmaster_key = \"00\"\n")?;
            let e = load_in(jail).unwrap_err().to_string();
            assert!(e.contains("privacy.master_key") && e.contains("must not be in a config file"), "{e}");
            jail.create_file("switchboard.toml", "")?;
            jail.set_env("SWITCHBOARD__PRIVACY__MASTER_KEY", "ab".repeat(32));
            let c = load_in(jail).unwrap();
            assert!(c.privacy.master_key.is_some());
            assert!(!c.to_toml().contains("abab"));
            Ok(())
        });
    }

    #[test]
    fn the_vault_sits_beside_the_store() {
        let c = Config::default();
        assert_eq!(c.vault_url(), "sqlite://data/vault.db");
        assert_eq!(c.vault_schema(), None);
        let mut pg = Config::default();
        pg.store.url = Some(SecretString::from("postgres://sb@db/sb"));
        assert_eq!(pg.vault_url(), "postgres://sb@db/sb");
        assert_eq!(pg.vault_schema().as_deref(), Some("vault"));
    }

    #[test]
    fn the_customer_token_secret_is_refused_from_the_config_file_and_masked_when_shown() {
        Jail::expect_with(|jail| {
            jail.create_file("switchboard.toml", "[auth.jwt]\nhs256_secret = \"x\"\n")?;
            let e = load_in(jail).unwrap_err().to_string();
            assert!(e.contains("auth.jwt.hs256_secret") && e.contains("must not be in a config file"), "{e}");
            jail.create_file("switchboard.toml", "[server]\naddress = \"127.0.0.1:9999\"\n")?;
            jail.set_env("SWITCHBOARD__AUTH__JWT__HS256_SECRET", "a shared secret of thirty-two bytes or more");
            let c = load_in(jail).unwrap();
            assert_eq!(c.server.address.port(), 9999);
            assert!(!c.to_toml().contains("thirty-two") && c.to_toml().contains(sb_core::secret::MASK));
            Ok(())
        });
    }

    #[test]
    fn a_missing_explicit_config_file_is_an_error() {
        let e = load(&Sources { file: Some("/nonexistent/sb.toml".into()), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/sb.toml"));
    }

    #[test]
    fn the_template_written_by_init_parses_to_the_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file("switchboard.toml", TEMPLATE)?;
            let from_template = load_in(jail).unwrap();
            assert_eq!(from_template.to_toml(), Config::default().to_toml());
            Ok(())
        });
    }
}
