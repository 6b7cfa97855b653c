//! The `[server]`, `[auth]` and `[monitor]` sections of `switchboard.toml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The `[server]` section: where and how `switchboard serve` listens.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on (`SWITCHBOARD__SERVER__ADDRESS`); port 0 picks a free one.
    pub address: SocketAddr,
    /// PEM certificate chain; with `tls_key_file`, the server speaks HTTPS only (rustls).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the certificate.
    pub tls_key_file: Option<PathBuf>,
    /// Mark cookies `Secure` even without TLS here (TLS ends at a proxy in front).
    pub secure_cookies: bool,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Longest a request may take, in seconds; slower ones get 408.
    pub request_timeout_s: u64,
    /// On SIGTERM, how long requests and job runs in progress get to finish, in seconds.
    pub shutdown_grace_s: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert_file: None,
            tls_key_file: None,
            secure_cookies: false,
            body_limit_bytes: 1024 * 1024,
            request_timeout_s: 30,
            shutdown_grace_s: 20,
        }
    }
}

/// The `[auth]` section: back-office sign-in, sessions, roles and customer tokens.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// A session unused for this long ends, in minutes.
    pub session_idle_minutes: u64,
    /// A session ends this long after sign-in however much it is used, in hours.
    pub session_max_hours: u64,
    /// Consecutive failed sign-ins that lock an account.
    pub lockout_after: u32,
    /// How long a locked account stays locked, in minutes.
    pub lockout_minutes: u64,
    /// Sign-in attempts accepted per minute from one client address (all user names together).
    pub sign_in_per_minute: u32,
    /// Shortest password accepted, in characters.
    pub password_min_length: usize,
    /// Roles beyond the built-in ones, or built-in roles given other permissions:
    /// `[auth.roles]` then `campaign_manager = ["dashboard.view", "campaigns.*"]`.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Verification of the customer app's tokens.
    pub jwt: JwtConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_idle_minutes: 30,
            session_max_hours: 12,
            lockout_after: 5,
            lockout_minutes: 15,
            sign_in_per_minute: 20,
            password_min_length: 12,
            roles: BTreeMap::new(),
            jwt: JwtConfig::default(),
        }
    }
}

/// `[auth.jwt]`: how bearer tokens of the customer app are verified. Unset key: no customer
/// token is accepted.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// `HS256` (shared secret), `RS256` or `ES256` (public key).
    pub algorithm: JwtAlgorithm,
    /// The shared secret for HS256; only from the environment or `hs256_secret_file`.
    #[serde(serialize_with = "sb_core::secret::mask", skip_serializing_if = "Option::is_none")]
    pub hs256_secret: Option<SecretString>,
    /// A file holding the HS256 secret.
    pub hs256_secret_file: Option<PathBuf>,
    /// PEM public key for RS256 or ES256.
    pub public_key_file: Option<PathBuf>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            algorithm: JwtAlgorithm::Hs256,
            hs256_secret: None,
            hs256_secret_file: None,
            public_key_file: None,
            issuer: None,
            audience: None,
            leeway_s: 30,
        }
    }
}

/// Signature algorithms accepted for customer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

/// The `[monitor]` section: where call events travel and how long rollups are kept.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// `in_process` (a channel inside this process) or `nats` (NATS JetStream, so that
    /// several instances feed one console).
    pub bus: BusKind,
    /// The NATS server, with `bus = "nats"`.
    pub nats_url: String,
    /// The JetStream stream holding call events (created when missing).
    pub nats_stream: String,
    /// The subject events are published on.
    pub nats_subject: String,
    /// How often buffered events are written as rollups, in milliseconds.
    pub flush_ms: u64,
    /// Events buffered before new ones are dropped (and counted) rather than slow the caller.
    pub queue_capacity: usize,
    /// Days of per-minute rollups kept.
    pub retention_days: u32,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            bus: BusKind::InProcess,
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_stream: "SWITCHBOARD_MONITOR".into(),
            nats_subject: "switchboard.monitor.calls".into(),
            flush_ms: 1000,
            queue_capacity: 65_536,
            retention_days: 30,
        }
    }
}

/// How call events reach the rollup consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    /// A channel inside this process.
    InProcess,
    /// NATS JetStream.
    Nats,
}

/// Everything the web adapter is configured with.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[monitor]`.
    pub monitor: MonitorConfig,
}
