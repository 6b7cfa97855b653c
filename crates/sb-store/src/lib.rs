//! Switchboard's operational store.
//!
//! One [`Db`] handle over SQLite (the embedded default, `data/switchboard.db` in WAL
//! mode) or PostgreSQL, chosen by the URL's scheme. It is built on sqlx's `Any`
//! driver, so each domain crate writes its SQL once, in the portable subset both
//! engines share (see `docs/adr/0001-store-on-sqlx-any.md`): `$1` placeholders,
//! `BIGINT`/`TEXT`/`BLOB` columns, times as epoch milliseconds.
//!
//! Each domain owns its tables and ships its migrations as a [`MigrationSet`] with one
//! SQL file per backend, embedded in the binary and applied on start.
//!
//! Driver errors never leave this crate's vocabulary: [`StoreError`] says
//! `NotFound`, `Conflict`, `Unavailable` or `Other`.

mod config;
mod db;
mod error;
mod migrate;
#[cfg(feature = "testing")]
mod testing;
pub mod time;

pub use config::StoreConfig;
pub use db::{Backend, Db, PoolOptions, WriteTx, redact_url, statement_chunks, statement_rows, statement_texts};
pub use error::StoreError;
pub use migrate::{Migration, MigrationSet, MigrationState, MigrationStatus};
#[cfg(feature = "testing")]
pub use testing::{TEST_PG_ENV, TestDb};

/// The SQL toolkit the store is built on, re-exported so domain crates use the same version.
pub use sqlx;
