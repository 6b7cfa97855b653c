//! Switchboard's HTTP adapter: one axum application for the JSON API (`/api/v1`), its
//! OpenAPI description (`/api/openapi.json`, viewer at `/api/docs`), the back office
//! (`/admin`), health and metrics, and the monitoring console's back end.
//!
//! - **Who calls** ([`auth`]): back-office users sign in with argon2id-hashed passwords and get
//!   a session cookie (HttpOnly, SameSite=Lax, Secure under TLS) backed by a row in the store,
//!   so sign-out, disabling a user and password changes take effect at once on every
//!   instance; integrations use API keys (shown once, stored hashed, scoped, expiring,
//!   revocable); the customer app sends JWTs. We keep sessions in our own table rather than
//!   a session framework: it is three queries, works on both store backends, and needs no
//!   extra dependency.
//! - **What they may do** ([`rbac`], [`routes`]): roles map to permissions as data (built-in
//!   roles plus `[auth.roles]`); every route declares its permission in one table, enforced
//!   by one guard, which also checks CSRF tokens of state-changing back-office requests.
//! - **Errors** ([`error`]): one [`WebError`], answered as `application/problem+json` with a
//!   stable `type`, or as a friendly page in the back office; never internals.
//! - **Monitoring** ([`monitor`]): the [`sb_core::monitor::Monitor`] that domain crates record
//!   calls to outside systems into, a bus (in process, or NATS JetStream) and per-minute
//!   rollups in the store, shown by the console.
//! - **Assets** ([`assets`]): htmx, uPlot and RapiDoc come from npm (`assets/package.json`),
//!   are vendored by `assets/refresh.sh` and embedded in the binary; nothing is fetched at
//!   run time, and the CSP allows scripts from our own files only.
//!
//! ```no_run
//! # async fn demo(db: sb_store::Db) -> Result<(), Box<dyn std::error::Error>> {
//! use sb_web::{WebApp, WebConfig};
//! db.migrate(&[&sb_web::MIGRATIONS, &sb_web::monitor::MIGRATIONS]).await?;
//! let app = WebApp::builder(db, WebConfig::default()).build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let (_stop, shutdown) = tokio::sync::watch::channel(false);
//! sb_web::server::serve(&app, listener, shutdown).await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod api;
pub mod app;
pub mod assets;
pub mod auth;
pub mod config;
pub mod error;
pub mod ingestion;
mod middleware;
pub mod monitor;
pub mod openapi;
pub mod ops;
pub mod rbac;
pub mod routes;
pub mod server;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::{AppState, WebApp, WebAppBuilder};
pub use config::{AuthConfig, MonitorConfig, ServerConfig, WebConfig};
pub use error::{Problem, WebError};
pub use middleware::CSP;

/// The tables of back-office users, sessions and API keys.
pub static MIGRATIONS: sb_store::MigrationSet =
    sb_store::MigrationSet { domain: "web", migrations: &[sb_store::migration!(1, "0001_auth")] };
