//! Daily master data: customers, lines and plans read from the operator's database with
//! mapping queries, kept as type-2 history in the store (personal fields protected by the
//! vault) and written to the lake as the dimensions `dim_customer`, `dim_line`, `dim_plan`.
//!
//! Each run compares every source row with its current version through a keyed hash of the
//! row: an unchanged row costs nothing more, a changed one closes its current version and adds
//! the next, a row gone from the source closes its version. Work is committed in chunks and is
//! idempotent, so a run cut short is finished by the next. The lake copy of a dimension is
//! rewritten from the store (one commit replacing its files) whenever the store has moved on
//! since the last copy, so a crash between the two is repaired by the next run.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use futures_util::TryStreamExt;
use sb_core::monitor::{CallTimer, Monitor, NoMonitor, Outcome};
use sb_lake::{Lake, LakeError};
use sb_privacy::{PiiKind, Subject, Vault};
use sb_store::sqlx::{self, Column, Row, any::AnyRow};
use sb_store::{Db, StoreError, time};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::IngestError;

/// The operator's database, as the monitoring console names it.
const SYSTEM: &str = "master_db";
/// Source rows handled per store transaction and per vault batch.
const CHUNK: usize = 2_000;
/// Rows per Parquet batch when the lake copy is rewritten.
const EXPORT_BATCH: usize = 8_192;

/// `[ingest.master]`: where the operator's customers, lines and plans are read from.
///
/// Each query must return columns with the names listed in docs/ingest.md (the query is the
/// mapping: rename, combine and convert with SQL). The defaults read the generator's CRM
/// database (`switchboard demo`); they use `||`, so on MySQL/MariaDB write `CONCAT(…)`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MasterConfig {
    /// The operator's database (any sqlx URL: `postgres://`, `mysql://`, `sqlite://`). Unset:
    /// no master-data job. It usually holds a password: give it through the environment
    /// (`SWITCHBOARD__INGEST__MASTER__URL`) or `url_file`.
    #[serde(serialize_with = "sb_core::secret::mask", skip_serializing_if = "Option::is_none")]
    pub url: Option<SecretString>,
    /// A file holding the URL (instead of `url`).
    pub url_file: Option<PathBuf>,
    /// When the job runs (cron, in `jobs.timezone`).
    pub schedule: String,
    /// Customers: `customer_id` (required), `customer_type`, `name`, `birth_date`
    /// (`YYYY-MM-DD`), `tax_code`, `iban`, `address`, `province`, `email`.
    pub customers_query: String,
    /// Lines: `line_id`, `customer_id`, `msisdn` (required), `imsi`, `imei`, `plan_code`,
    /// `payment_type`, `status`, `activated_on`.
    pub lines_query: String,
    /// Plans: `plan_code` (required), `name`, `payment_type`, `monthly_fee_cents`.
    pub plans_query: String,
}

impl Default for MasterConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            schedule: "30 3 * * *".into(),
            customers_query: "SELECT customer_id, customer_type, \
                 COALESCE(company_name, first_name || ' ' || last_name) AS name, birth_date, tax_code, iban, \
                 street || ' ' || street_number || ', ' || postcode || ' ' || city || ' (' || province || ')' AS address, \
                 province, email FROM customers"
                .into(),
            lines_query: "SELECT line_id, customer_id, msisdn, imsi, imei, plan_code, payment_type, status, \
                 SUBSTR(activated_at, 1, 10) AS activated_on FROM lines"
                .into(),
            plans_query: "SELECT plan_code, name, payment_type, monthly_fee_cents FROM plans".into(),
        }
    }
}

/// What a column of a dimension holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Text,
    Int,
    Personal(PiiKind),
}

/// Whose personal data a row holds.
#[derive(Debug, Clone, Copy)]
enum Owner {
    /// The row's key is the customer id.
    Key,
    /// The customer id is in this column.
    Column(&'static str),
    /// No personal data.
    Nobody,
}

/// One dimension: its source query, store table and lake dataset.
struct Dim {
    name: &'static str,
    table: &'static str,
    dataset: &'static str,
    key: &'static str,
    owner: Owner,
    required: &'static [&'static str],
    cols: &'static [(&'static str, Col)],
    schema: fn() -> SchemaRef,
}

const CUSTOMERS: Dim = Dim {
    name: "customers",
    table: "master_customers",
    dataset: "dim_customer",
    key: "customer_id",
    owner: Owner::Key,
    required: &[],
    cols: &[
        ("customer_type", Col::Text),
        ("name", Col::Personal(PiiKind::Name)),
        ("birth_date", Col::Personal(PiiKind::BirthDate)),
        ("tax_code", Col::Personal(PiiKind::TaxCode)),
        ("iban", Col::Personal(PiiKind::Iban)),
        ("address", Col::Personal(PiiKind::Address)),
        ("province", Col::Text),
        ("email", Col::Personal(PiiKind::Email)),
    ],
    schema: || Arc::clone(&sb_lake::schema::DIM_CUSTOMER),
};

const LINES: Dim = Dim {
    name: "lines",
    table: "master_lines",
    dataset: "dim_line",
    key: "line_id",
    owner: Owner::Column("customer_id"),
    required: &["customer_id", "msisdn"],
    cols: &[
        ("customer_id", Col::Text),
        ("msisdn", Col::Personal(PiiKind::Msisdn)),
        ("imsi", Col::Personal(PiiKind::Imsi)),
        ("imei", Col::Personal(PiiKind::Imei)),
        ("plan_code", Col::Text),
        ("payment_type", Col::Text),
        ("status", Col::Text),
        ("activated_on", Col::Text),
    ],
    schema: || Arc::clone(&sb_lake::schema::DIM_LINE),
};

const PLANS: Dim = Dim {
    name: "plans",
    table: "master_plans",
    dataset: "dim_plan",
    key: "plan_code",
    owner: Owner::Nobody,
    required: &[],
    cols: &[("name", Col::Text), ("payment_type", Col::Text), ("monthly_fee_cents", Col::Int)],
    schema: || Arc::clone(&sb_lake::schema::DIM_PLAN),
};

/// What one run did to one dimension.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DimSummary {
    /// Rows the query returned.
    pub read: u64,
    /// Keys seen for the first time.
    pub new: u64,
    /// Keys whose row changed: a new version.
    pub changed: u64,
    /// Keys whose row did not change.
    pub unchanged: u64,
    /// Keys gone from the source: their version closed.
    pub closed: u64,
    /// Rows refused (missing key or required field, a repeated key, a bad number), with reasons
    /// in the log (never values).
    pub rejected: u64,
    /// Whether the lake copy was rewritten.
    pub exported: bool,
}

/// What one run did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct MasterSummary {
    /// Customers.
    pub customers: DimSummary,
    /// Lines.
    pub lines: DimSummary,
    /// Plans.
    pub plans: DimSummary,
    /// Provisional line identifiers (seen in traffic first) moved to their customer.
    pub linked: u64,
    /// Seconds the run took.
    pub seconds: f64,
}

/// A source row, by the dimension's columns.
struct SourceRow {
    key: String,
    vals: Vec<Option<String>>,
}

/// The master-data loader.
pub struct MasterData {
    db: Db,
    vault: Arc<Vault>,
    lake: Lake,
    config: MasterConfig,
    monitor: Arc<dyn Monitor>,
}

fn store(e: sqlx::Error) -> IngestError {
    IngestError::Store(StoreError::from(e))
}

impl MasterData {
    /// A loader writing to `db` (migrated), protecting through `vault`, exporting to `lake`.
    pub fn new(db: Db, vault: Arc<Vault>, lake: Lake, config: MasterConfig) -> Self {
        Self { db, vault, lake, config, monitor: Arc::new(NoMonitor) }
    }

    /// Records the calls to the operator's database (system `master_db`: `connect`, and one
    /// `read_<dimension>` per query, timed to its last row) into `monitor`.
    pub fn with_monitor(mut self, monitor: Arc<dyn Monitor>) -> Self {
        self.monitor = monitor;
        self
    }

    /// Reads the operator's database and brings the store and the lake up to date.
    pub async fn run(&self) -> Result<MasterSummary, IngestError> {
        let started = Instant::now();
        let url =
            self.config.url.as_ref().ok_or_else(|| {
                IngestError::Config("ingest.master.url is not set: no operator database to read".into())
            })?;
        sqlx::any::install_default_drivers();
        let call = CallTimer::start(SYSTEM, "connect");
        let source = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url.expose_secret()).await;
        self.monitor.record(call.finish(if source.is_ok() { Outcome::Ok } else { Outcome::Error }));
        let source = source.map_err(|e| {
            IngestError::Config(format!(
                "cannot connect to the operator database {}: {}",
                sb_store::redact_url(url.expose_secret()),
                source_error(&e)
            ))
        })?;
        let mut summary = MasterSummary::default();
        // Plans and customers first, so that lines find their customers' subjects.
        summary.plans = self.load(&source, &PLANS, &self.config.plans_query, &mut summary.linked).await?;
        summary.customers = self.load(&source, &CUSTOMERS, &self.config.customers_query, &mut summary.linked).await?;
        summary.lines = self.load(&source, &LINES, &self.config.lines_query, &mut summary.linked).await?;
        source.close().await;
        if let Err(e) = self.vault.save_directory().await {
            tracing::warn!(error = %e, "the vault's directory was not saved; the next start reads it row by row");
        }
        summary.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            customers_changed = summary.customers.new + summary.customers.changed,
            lines_changed = summary.lines.new + summary.lines.changed,
            plans_changed = summary.plans.new + summary.plans.changed,
            seconds = summary.seconds,
            "master data loaded"
        );
        Ok(summary)
    }

    /// One dimension: read, compare, protect, write, close the missing, export.
    async fn load(
        &self,
        source: &sqlx::AnyPool,
        dim: &Dim,
        query: &str,
        linked: &mut u64,
    ) -> Result<DimSummary, IngestError> {
        let call = CallTimer::start(SYSTEM, format!("read_{}", dim.name));
        let result = self.read(source, dim, query, linked).await;
        self.monitor.record(call.finish(if result.is_ok() { Outcome::Ok } else { Outcome::Error }));
        let (mut s, seen) = result?;
        self.close_missing(dim, &seen, &mut s).await?;
        s.exported = self.export(dim).await?;
        Ok(s)
    }

    /// Reads the query to its end, applying chunk by chunk; the keys seen.
    async fn read(
        &self,
        source: &sqlx::AnyPool,
        dim: &Dim,
        query: &str,
        linked: &mut u64,
    ) -> Result<(DimSummary, HashSet<String>), IngestError> {
        let mut s = DimSummary::default();
        let mut seen: HashSet<String> = HashSet::new();
        let mut chunk: Vec<SourceRow> = Vec::with_capacity(CHUNK);
        let mut rows = sqlx::query(query).fetch(source);
        let mut columns: Option<Vec<Option<usize>>> = None;
        let mut key_index = 0;
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| IngestError::Config(format!("the {} query failed: {}", dim.name, source_error(&e))))?
        {
            if columns.is_none() {
                let (k, cols) = Self::map_columns(dim, &row)?;
                key_index = k;
                columns = Some(cols);
            }
            s.read += 1;
            let cols = columns.as_ref().expect("mapped on the first row");
            let Some(key) = cell(&row, key_index) else {
                s.rejected += 1;
                tracing::warn!(dimension = dim.name, row = s.read, "row without {}: skipped", dim.key);
                continue;
            };
            let vals: Vec<Option<String>> = cols.iter().map(|i| i.and_then(|i| cell(&row, i))).collect();
            // Seen even when refused: a row that is bad today keeps its current version (it
            // has not left the source) rather than being closed.
            if !seen.insert(key.clone()) {
                s.rejected += 1;
                tracing::warn!(dimension = dim.name, key = %key, "the key appears twice: the second row is skipped");
                continue;
            }
            if let Some(reason) = Self::check(dim, &vals) {
                s.rejected += 1;
                tracing::warn!(dimension = dim.name, key = %key, "{reason}: skipped, its current version kept");
                continue;
            }
            chunk.push(SourceRow { key, vals });
            if chunk.len() == CHUNK {
                self.apply(dim, std::mem::take(&mut chunk), &mut s, linked).await?;
            }
        }
        drop(rows);
        if !chunk.is_empty() {
            self.apply(dim, chunk, &mut s, linked).await?;
        }
        Ok((s, seen))
    }

    /// Positions of the key and of each column in the query's result; a missing key or
    /// required column is a configuration error naming it.
    fn map_columns(dim: &Dim, row: &AnyRow) -> Result<(usize, Vec<Option<usize>>), IngestError> {
        let names: Vec<String> = row.columns().iter().map(|c| c.name().to_ascii_lowercase()).collect();
        let find = |n: &str| names.iter().position(|c| c == n);
        let key = find(dim.key).ok_or_else(|| {
            IngestError::Config(format!(
                "ingest.master.{}_query returns no `{}` column (it returns: {})",
                dim.name,
                dim.key,
                names.join(", ")
            ))
        })?;
        for r in dim.required {
            if find(r).is_none() {
                return Err(IngestError::Config(format!(
                    "ingest.master.{}_query returns no `{r}` column, which is required",
                    dim.name
                )));
            }
        }
        let cols: Vec<Option<usize>> = dim.cols.iter().map(|(n, _)| find(n)).collect();
        let unknown: Vec<&str> = names
            .iter()
            .filter(|n| *n != dim.key && !dim.cols.iter().any(|(c, _)| c == n))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(dimension = dim.name, columns = %unknown.join(", "), "query columns that map to nothing are ignored");
        }
        Ok((key, cols))
    }

    /// Why a row cannot be taken, if it cannot (never quoting a value).
    fn check(dim: &Dim, vals: &[Option<String>]) -> Option<String> {
        for ((name, col), v) in dim.cols.iter().zip(vals) {
            if v.is_none() && dim.required.contains(name) {
                return Some(format!("`{name}` is missing"));
            }
            if *col == Col::Int && v.as_deref().is_some_and(|v| v.parse::<i64>().is_err()) {
                return Some(format!("`{name}` is not a whole number"));
            }
        }
        None
    }

    /// Compares a chunk with the current versions and writes what changed.
    async fn apply(
        &self,
        dim: &Dim,
        chunk: Vec<SourceRow>,
        s: &mut DimSummary,
        linked: &mut u64,
    ) -> Result<(), IngestError> {
        let hashes: Vec<String> =
            chunk.iter().map(|r| self.vault.hmac(PiiKind::FreeText, &canonical(&r.vals))).collect();
        let current = self.current(dim, &chunk).await?;
        // (row, latest version or 0, whether that version is open and must be closed)
        let mut changed: Vec<(usize, i64, bool)> = Vec::new();
        for (i, (row, hash)) in chunk.iter().zip(&hashes).enumerate() {
            match current.get(&row.key) {
                Some((_, Some(h))) if h == hash => s.unchanged += 1,
                Some((v, open)) => {
                    s.changed += 1;
                    changed.push((i, *v, open.is_some()));
                }
                None => {
                    s.new += 1;
                    changed.push((i, 0, false));
                }
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        let protected = self.protect(dim, &chunk, &changed, linked).await?;
        let now = time::to_ms(chrono::Utc::now());
        let mut tx = self.db.begin_write().await?;
        for (i, prev, _) in changed.iter().filter(|(_, _, open)| *open) {
            sqlx::query(&format!(
                "UPDATE {} SET valid_to_ms = $1 WHERE {} = $2 AND version = $3 AND valid_to_ms IS NULL",
                dim.table, dim.key
            ))
            .bind(now)
            .bind(&chunk[*i].key)
            .bind(*prev)
            .execute(&mut *tx)
            .await
            .map_err(store)?;
        }
        let names: Vec<&str> = dim.cols.iter().map(|(n, _)| *n).collect();
        let width = names.len() + 5;
        // Of a few fixed sizes (`statement_chunks`), so that the connection caches few statements.
        for part in sb_store::statement_chunks(&changed, 200) {
            let sql = format!(
                "INSERT INTO {} ({}, version, {}, row_hash, valid_from_ms, valid_to_ms) VALUES {}",
                dim.table,
                dim.key,
                names.join(", "),
                self.db.values(1, part.len(), width)
            );
            let mut q = sqlx::query(&sql);
            for (i, prev, _) in part {
                q = q.bind(chunk[*i].key.clone()).bind(prev + 1);
                for (c, (_, col)) in dim.cols.iter().enumerate() {
                    let v = protected[*i][c].clone();
                    q = match col {
                        Col::Int => q.bind(v.and_then(|v| v.parse::<i64>().ok())),
                        _ => q.bind(v),
                    };
                }
                // The first version is valid from the beginning: traffic before the first
                // load still finds its line.
                q = q.bind(hashes[*i].clone()).bind(if *prev == 0 { 0 } else { now }).bind(None::<i64>);
            }
            q.execute(&mut *tx).await.map_err(store)?;
        }
        self.bump(&mut tx, dim).await?;
        tx.commit().await.map_err(store)?;
        Ok(())
    }

    /// For each key of the chunk seen before: its latest version, and that version's hash if
    /// it is still current (`None`: the key had left the source and now comes back).
    async fn current(
        &self,
        dim: &Dim,
        chunk: &[SourceRow],
    ) -> Result<HashMap<String, (i64, Option<String>)>, IngestError> {
        let mut out: HashMap<String, (i64, Option<String>)> = HashMap::new();
        for part in chunk.chunks(500) {
            let sql = format!(
                "SELECT {k}, version, CASE WHEN valid_to_ms IS NULL THEN row_hash END FROM {t} \
                 WHERE {k} IN ({}) AND version = (SELECT MAX(version) FROM {t} x WHERE x.{k} = {t}.{k})",
                self.db.params(1, part.len()),
                k = dim.key,
                t = dim.table
            );
            let mut q = sqlx::query(&sql);
            for r in part {
                q = q.bind(r.key.clone());
            }
            for row in q.fetch_all(self.db.pool()).await.map_err(store)? {
                let key: String = row.try_get(0).map_err(store)?;
                let version: i64 = row.try_get(1).map_err(store)?;
                let hash: Option<String> = row.try_get(2).map_err(store)?;
                out.insert(key, (version, hash));
            }
        }
        Ok(out)
    }

    /// The stored form of each changed row: personal columns through the vault, in one batch
    /// per column. Line identifiers first seen in traffic move to their customer.
    async fn protect(
        &self,
        dim: &Dim,
        chunk: &[SourceRow],
        changed: &[(usize, i64, bool)],
        linked: &mut u64,
    ) -> Result<Vec<Vec<Option<String>>>, IngestError> {
        let mut out: Vec<Vec<Option<String>>> = chunk.iter().map(|r| r.vals.clone()).collect();
        let owner_col = match dim.owner {
            Owner::Column(c) => dim.cols.iter().position(|(n, _)| *n == c),
            _ => None,
        };
        let subjects: Vec<Subject> = chunk
            .iter()
            .map(|r| match (dim.owner, owner_col) {
                (Owner::Key, _) => Subject::Customer(r.key.clone()),
                (Owner::Column(_), Some(c)) => r.vals[c].clone().map(Subject::Customer).unwrap_or(Subject::Provisional),
                _ => Subject::Provisional,
            })
            .collect();
        // Customers erased (right to be forgotten) whose rows the source still holds: their
        // personal fields are not brought back (null), the rest of the row is kept.
        let owners: Vec<&str> = changed
            .iter()
            .filter_map(|(i, ..)| match &subjects[*i] {
                Subject::Customer(id) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        let gone = if owners.is_empty() { HashSet::new() } else { self.vault.erased_customers(&owners).await? };
        let erased: HashSet<usize> = changed
            .iter()
            .map(|(i, ..)| *i)
            .filter(|i| matches!(&subjects[*i], Subject::Customer(id) if gone.contains(id)))
            .collect();
        if !erased.is_empty() {
            tracing::info!(
                dimension = dim.name,
                rows = erased.len(),
                "rows of erased customers: personal fields left out"
            );
            for i in &erased {
                for (c, (_, col)) in dim.cols.iter().enumerate() {
                    if matches!(col, Col::Personal(_)) {
                        out[*i][c] = None;
                    }
                }
            }
        }
        for (c, (_, col)) in dim.cols.iter().enumerate() {
            let Col::Personal(kind) = col else { continue };
            let rows: Vec<usize> = changed
                .iter()
                .map(|(i, ..)| *i)
                .filter(|i| chunk[*i].vals[c].is_some() && !erased.contains(i))
                .collect();
            if rows.is_empty() {
                continue;
            }
            if matches!(kind, PiiKind::Msisdn | PiiKind::Imsi | PiiKind::Imei) {
                let moves: Vec<(&str, &str)> = rows
                    .iter()
                    .filter_map(|i| match &subjects[*i] {
                        Subject::Customer(id) => Some((chunk[*i].vals[c].as_deref().expect("filtered"), id.as_str())),
                        _ => None,
                    })
                    .collect();
                *linked += self.vault.link_batch(*kind, &moves).await?;
            }
            let items: Vec<(&str, &Subject)> =
                rows.iter().map(|i| (chunk[*i].vals[c].as_deref().expect("filtered"), &subjects[*i])).collect();
            let protected = self.vault.protect_batch(*kind, &items).await.map_err(|e| {
                IngestError::Config(format!("{} column `{}` cannot be protected: {e}", dim.name, dim.cols[c].0))
            })?;
            for (i, p) in rows.iter().zip(protected) {
                out[*i][c] = p;
            }
        }
        Ok(out)
    }

    /// Closes the current version of every key the source no longer has.
    async fn close_missing(&self, dim: &Dim, seen: &HashSet<String>, s: &mut DimSummary) -> Result<(), IngestError> {
        let keys: Vec<String> =
            sqlx::query_scalar(&format!("SELECT {} FROM {} WHERE valid_to_ms IS NULL", dim.key, dim.table))
                .fetch_all(self.db.pool())
                .await
                .map_err(store)?;
        let gone: Vec<&String> = keys.iter().filter(|k| !seen.contains(*k)).collect();
        if gone.is_empty() {
            return Ok(());
        }
        if seen.is_empty() {
            return Err(IngestError::Config(format!(
                "the {} query returned no usable rows: refusing to close all {} current {} (check ingest.master.{}_query)",
                dim.name,
                keys.len(),
                dim.name,
                dim.name
            )));
        }
        let now = time::to_ms(chrono::Utc::now());
        let mut tx = self.db.begin_write().await?;
        for k in &gone {
            sqlx::query(&format!(
                "UPDATE {} SET valid_to_ms = $1 WHERE {} = $2 AND valid_to_ms IS NULL",
                dim.table, dim.key
            ))
            .bind(now)
            .bind(k.as_str())
            .execute(&mut *tx)
            .await
            .map_err(store)?;
        }
        self.bump(&mut tx, dim).await?;
        tx.commit().await.map_err(store)?;
        s.closed = gone.len() as u64;
        Ok(())
    }

    async fn bump(&self, tx: &mut sb_store::WriteTx, dim: &Dim) -> Result<(), IngestError> {
        let updated = sqlx::query("UPDATE master_state SET revision = revision + 1 WHERE dimension = $1")
            .bind(dim.name)
            .execute(&mut **tx)
            .await
            .map_err(store)?
            .rows_affected();
        if updated == 0 {
            sqlx::query("INSERT INTO master_state (dimension, revision, exported_revision) VALUES ($1, 1, 0)")
                .bind(dim.name)
                .execute(&mut **tx)
                .await
                .map_err(store)?;
        }
        Ok(())
    }

    /// Rewrites the lake copy of `dim` when the store has changed since the last one.
    async fn export(&self, dim: &Dim) -> Result<bool, IngestError> {
        let state: Option<(i64, i64)> =
            sqlx::query_as("SELECT revision, exported_revision FROM master_state WHERE dimension = $1")
                .bind(dim.name)
                .fetch_optional(self.db.pool())
                .await
                .map_err(store)?;
        let Some((revision, exported)) = state else { return Ok(false) };
        if revision == exported {
            return Ok(false);
        }
        let commit_id = format!("{}-r{revision}", dim.dataset);
        let snapshot = self.lake.snapshot()?;
        if !snapshot.ids.contains(&commit_id) {
            let schema = (dim.schema)();
            let mut staged = self.lake.stage(&commit_id, Some(dim.dataset))?;
            let mut part = staged.part(dim.dataset, Arc::clone(&schema), None)?;
            let names: Vec<&str> = dim.cols.iter().map(|(n, _)| *n).collect();
            let sql = format!(
                "SELECT {k}, version, {}, valid_from_ms, valid_to_ms FROM {t} ORDER BY {k}, version",
                names.join(", "),
                k = dim.key,
                t = dim.table
            );
            let mut rows = sqlx::query(&sql).fetch(self.db.pool());
            let mut batch = ExportBatch::new(dim);
            while let Some(row) = rows.try_next().await.map_err(store)? {
                batch.push(dim, &row)?;
                if batch.len == EXPORT_BATCH {
                    part.write(&batch.finish(&schema)?)?;
                }
            }
            drop(rows);
            if batch.len > 0 {
                part.write(&batch.finish(&schema)?)?;
            }
            staged.add(part.finish()?);
            for f in snapshot.files.get(dim.dataset).into_iter().flatten() {
                staged.remove(&f.path);
            }
            match staged.commit() {
                Ok(_) | Err(LakeError::AlreadyCommitted(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        sqlx::query("UPDATE master_state SET exported_revision = $1 WHERE dimension = $2")
            .bind(revision)
            .bind(dim.name)
            .execute(self.db.pool())
            .await
            .map_err(store)?;
        Ok(true)
    }
}

/// What went wrong with the operator's database, without its message: a database's message
/// can quote a value (`invalid input syntax for type bigint: "…"`), and values here are
/// personal data. The SQLSTATE code says what kind of error it was.
fn source_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => {
            format!("the database refused it (SQLSTATE {})", db.code().as_deref().unwrap_or("unknown"))
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => "the connection failed".into(),
        sqlx::Error::PoolTimedOut => "no connection within the timeout".into(),
        sqlx::Error::Configuration(_) => {
            "the URL is not valid for any driver (postgres://, mysql://, sqlite://)".into()
        }
        sqlx::Error::ColumnDecode { index, .. } => format!("column {index} has a type that cannot be read as text"),
        _ => "the query could not be run".into(),
    }
}

/// A column's value as text: text as is, numbers in decimal; `None` for NULL or blank.
fn cell(row: &AnyRow, i: usize) -> Option<String> {
    let text = if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        v
    } else if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        v.map(|v| v.to_string())
    } else if let Ok(v) = row.try_get::<Option<i32>, _>(i) {
        v.map(|v| v.to_string())
    } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        v.map(|v| v.to_string())
    } else {
        None
    };
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// The row as one string for its keyed hash: fields separated by a unit separator, NULL
/// distinct from any text.
fn canonical(vals: &[Option<String>]) -> String {
    let mut out = String::new();
    for v in vals {
        match v {
            Some(v) => out.push_str(v),
            None => out.push('\u{0}'),
        }
        out.push('\u{1f}');
    }
    out
}

/// Arrow builders of one export batch.
struct ExportBatch {
    key: StringBuilder,
    version: Int64Builder,
    texts: Vec<Option<StringBuilder>>,
    ints: Vec<Option<Int64Builder>>,
    from: TimestampMicrosecondBuilder,
    to: TimestampMicrosecondBuilder,
    current: BooleanBuilder,
    len: usize,
}

impl ExportBatch {
    fn new(dim: &Dim) -> Self {
        Self {
            key: StringBuilder::new(),
            version: Int64Builder::new(),
            texts: dim.cols.iter().map(|(_, c)| (*c != Col::Int).then(StringBuilder::new)).collect(),
            ints: dim.cols.iter().map(|(_, c)| (*c == Col::Int).then(Int64Builder::new)).collect(),
            from: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            to: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            current: BooleanBuilder::new(),
            len: 0,
        }
    }

    fn push(&mut self, dim: &Dim, row: &AnyRow) -> Result<(), IngestError> {
        self.key.append_value(row.try_get::<String, _>(0).map_err(store)?);
        self.version.append_value(row.try_get::<i64, _>(1).map_err(store)?);
        for (c, (_, col)) in dim.cols.iter().enumerate() {
            let i = c + 2;
            match col {
                Col::Int => self.ints[c]
                    .as_mut()
                    .expect("int column")
                    .append_option(row.try_get::<Option<i64>, _>(i).map_err(store)?),
                _ => {
                    let v: Option<String> = row.try_get(i).map_err(store)?;
                    // Encrypted values stay in the store: the lake holds tokens and
                    // generalised values only.
                    let v = v.filter(|v| !v.starts_with("enc1."));
                    self.texts[c].as_mut().expect("text column").append_option(v);
                }
            }
        }
        let n = dim.cols.len() + 2;
        let from: i64 = row.try_get(n).map_err(store)?;
        let to: Option<i64> = row.try_get(n + 1).map_err(store)?;
        self.from.append_value(from * 1000);
        self.to.append_option(to.map(|t| t * 1000));
        self.current.append_value(to.is_none());
        self.len += 1;
        Ok(())
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, IngestError> {
        let mut cols: Vec<ArrayRef> = vec![Arc::new(self.key.finish()), Arc::new(self.version.finish())];
        for (t, i) in self.texts.iter_mut().zip(self.ints.iter_mut()) {
            match (t, i) {
                (Some(t), _) => cols.push(Arc::new(t.finish())),
                (None, Some(i)) => cols.push(Arc::new(i.finish())),
                (None, None) => unreachable!("every column has a builder"),
            }
        }
        cols.push(Arc::new(self.from.finish()));
        cols.push(Arc::new(self.to.finish()));
        cols.push(Arc::new(self.current.finish()));
        self.len = 0;
        RecordBatch::try_new(Arc::clone(schema), cols).map_err(|e| IngestError::Lake(LakeError::Parquet(e.to_string())))
    }
}
