//! The operator's CRM database ("source database"), written through `sqlx::Any` so that
//! the same code fills a SQLite file or a PostgreSQL database.
//!
//! Tables are dropped and recreated on every run. Columns are `BIGINT` or `TEXT` only,
//! which both drivers map the same way; times are RFC 3339 text with offset, dates
//! `YYYY-MM-DD`. The full schema is [`SCHEMA`] and crates/sb-sim/README.md.

use chrono::{DateTime, FixedOffset, SecondsFormat};
use sqlx::any::{AnyArguments, AnyConnectOptions};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, ConnectOptions, Connection};

use crate::population::{Customer, Line, LineOption, Party, Population};
use crate::{SimError, catalog::AddOn, catalog::Plan};

/// The statements that create the source database's tables, in order. The indexes in
/// [`INDEXES`] follow once the rows are in: building an index from loaded rows is much
/// faster than maintaining it during the load.
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE plans (
        plan_code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        payment_type TEXT,
        monthly_fee_cents BIGINT NOT NULL,
        data_gb BIGINT,
        voice_minutes BIGINT,
        sms BIGINT,
        updated_at TEXT NOT NULL
    )",
    "CREATE TABLE options (
        option_code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        category TEXT NOT NULL,
        monthly_fee_cents BIGINT NOT NULL,
        data_gb BIGINT NOT NULL,
        voice_minutes BIGINT NOT NULL,
        sms BIGINT NOT NULL,
        updated_at TEXT NOT NULL
    )",
    "CREATE TABLE customers (
        customer_id BIGINT PRIMARY KEY,
        customer_type TEXT NOT NULL,
        first_name TEXT,
        last_name TEXT,
        sex TEXT,
        birth_date TEXT,
        birth_place_code TEXT,
        tax_code TEXT,
        company_name TEXT,
        vat_number TEXT,
        iban TEXT,
        street TEXT NOT NULL,
        street_number TEXT NOT NULL,
        city TEXT NOT NULL,
        province TEXT NOT NULL,
        postcode TEXT NOT NULL,
        email TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )",
    "CREATE TABLE lines (
        line_id BIGINT PRIMARY KEY,
        customer_id BIGINT NOT NULL REFERENCES customers (customer_id),
        msisdn TEXT NOT NULL,
        iccid TEXT NOT NULL,
        imsi TEXT NOT NULL,
        imei TEXT NOT NULL,
        plan_code TEXT NOT NULL REFERENCES plans (plan_code),
        payment_type TEXT NOT NULL,
        status TEXT NOT NULL,
        device_type TEXT NOT NULL,
        auto_topup BIGINT NOT NULL,
        activated_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )",
    "CREATE TABLE line_options (
        line_id BIGINT NOT NULL REFERENCES lines (line_id),
        option_code TEXT NOT NULL REFERENCES options (option_code),
        activated_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (line_id, option_code)
    )",
];

/// The indexes of the source database, created after the rows are inserted.
pub const INDEXES: &[&str] = &[
    "CREATE UNIQUE INDEX customers_tax_code ON customers (tax_code)",
    "CREATE UNIQUE INDEX lines_msisdn ON lines (msisdn)",
    "CREATE UNIQUE INDEX lines_iccid ON lines (iccid)",
    "CREATE UNIQUE INDEX lines_imsi ON lines (imsi)",
    "CREATE INDEX lines_customer_id ON lines (customer_id)",
];

/// Tables in the order they are dropped (children first).
const TABLES_CHILDREN_FIRST: [&str; 5] = ["line_options", "lines", "customers", "options", "plans"];

/// Bind parameters per statement: below SQLite's limit of 32 766 (PostgreSQL allows 65 535).
const MAX_PARAMETERS: usize = 30_000;

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// How many rows of each table were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SourceDbCounts {
    /// Rows in `plans`.
    pub plans: u64,
    /// Rows in `options`.
    pub options: u64,
    /// Rows in `customers`.
    pub customers: u64,
    /// Rows in `lines`.
    pub lines: u64,
    /// Rows in `line_options`.
    pub line_options: u64,
}

/// Drops and recreates the CRM tables at `url` and fills them with `population`, in one
/// transaction. A `sqlite:` URL needs `?mode=rwc` for the file to be created.
pub async fn write_source_db(url: &str, population: &Population) -> Result<SourceDbCounts, SimError> {
    sqlx::any::install_default_drivers();
    let options: AnyConnectOptions = url.parse().map_err(SimError::db(url, "reading the URL"))?;
    // Logging would print every batch, thirty thousand parameters each.
    let options = options.disable_statement_logging();
    let mut conn = AnyConnection::connect_with(&options).await.map_err(SimError::db(url, "connecting"))?;
    if Placeholder::for_backend(conn.backend_name()) == Placeholder::Anonymous {
        // SQLite's default 2 MB page cache spills the half-built tables to disk mid-transaction.
        sqlx::query("PRAGMA cache_size = -262144")
            .execute(&mut conn)
            .await
            .map_err(SimError::db(url, "sizing the page cache"))?;
    }
    let mut tx = conn.begin().await.map_err(SimError::db(url, "starting a transaction"))?;

    for table in TABLES_CHILDREN_FIRST {
        sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
            .execute(&mut *tx)
            .await
            .map_err(SimError::db(url, "dropping the old tables"))?;
    }
    for statement in SCHEMA {
        sqlx::query(statement).execute(&mut *tx).await.map_err(SimError::db(url, "creating the tables"))?;
    }

    let as_of = population.as_of;
    insert(&mut tx, url, "plans", PLAN_COLUMNS, population.plans, |q, p| bind_plan(q, p, as_of)).await?;
    insert(&mut tx, url, "options", OPTION_COLUMNS, population.add_ons, |q, a| bind_add_on(q, a, as_of)).await?;
    insert(&mut tx, url, "customers", CUSTOMER_COLUMNS, &population.customers, bind_customer).await?;
    insert(&mut tx, url, "lines", LINE_COLUMNS, &population.lines, bind_line).await?;
    insert(&mut tx, url, "line_options", LINE_OPTION_COLUMNS, &population.line_options, bind_line_option).await?;

    for statement in INDEXES {
        sqlx::query(statement).execute(&mut *tx).await.map_err(SimError::db(url, "creating the indexes"))?;
    }
    tx.commit().await.map_err(SimError::db(url, "committing"))?;
    conn.close().await.map_err(SimError::db(url, "closing the connection"))?;
    Ok(SourceDbCounts {
        plans: population.plans.len() as u64,
        options: population.add_ons.len() as u64,
        customers: population.customers.len() as u64,
        lines: population.lines.len() as u64,
        line_options: population.line_options.len() as u64,
    })
}

/// How bind parameters are written: `$1, $2, …` for PostgreSQL, `?, ?, …` for SQLite.
///
/// SQLite keeps `$N` and `?N` parameters in a list that it searches linearly, both when
/// parsing and when sqlx binds each value by name: a 30 000-parameter statement then takes
/// seconds instead of milliseconds. Anonymous `?` are bound by position, in the same order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Numbered,
    Anonymous,
}

impl Placeholder {
    fn for_backend(backend: &str) -> Self {
        if backend.eq_ignore_ascii_case("sqlite") { Self::Anonymous } else { Self::Numbered }
    }
}

/// `INSERT INTO table (columns) VALUES ($1, …), ($n, …)` for `rows` rows.
fn insert_sql(table: &str, columns: &[&str], rows: usize, placeholder: Placeholder) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut n = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..columns.len() {
            n += 1;
            if col > 0 {
                sql.push_str(", ");
            }
            match placeholder {
                Placeholder::Numbered => {
                    sql.push('$');
                    sql.push_str(itoa::Buffer::new().format(n));
                }
                Placeholder::Anonymous => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// Inserts `items` in multi-row statements as large as the drivers allow.
async fn insert<T>(
    tx: &mut sqlx::Transaction<'_, Any>,
    url: &str,
    table: &'static str,
    columns: &[&str],
    items: &[T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<(), SimError> {
    let rows_per_batch = (MAX_PARAMETERS / columns.len()).max(1);
    let placeholder = Placeholder::for_backend(tx.backend_name());
    let full_batch_sql = insert_sql(table, columns, rows_per_batch, placeholder);
    let last_batch_sql = insert_sql(table, columns, items.len() % rows_per_batch, placeholder);
    for batch in items.chunks(rows_per_batch) {
        let sql = if batch.len() == rows_per_batch { &full_batch_sql } else { &last_batch_sql };
        let mut query = sqlx::query(sql);
        for item in batch {
            query = bind(query, item);
        }
        query.execute(&mut **tx).await.map_err(SimError::db(url, insert_action(table)))?;
    }
    Ok(())
}

fn insert_action(table: &str) -> &'static str {
    match table {
        "plans" => "inserting plans",
        "options" => "inserting options",
        "customers" => "inserting customers",
        "lines" => "inserting lines",
        _ => "inserting line options",
    }
}

fn time(t: DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn opt_i64(v: Option<u32>) -> Option<i64> {
    v.map(i64::from)
}

const PLAN_COLUMNS: &[&str] =
    &["plan_code", "name", "payment_type", "monthly_fee_cents", "data_gb", "voice_minutes", "sms", "updated_at"];

fn bind_plan<'q>(q: AnyQuery<'q>, p: &'q Plan, as_of: DateTime<FixedOffset>) -> AnyQuery<'q> {
    q.bind(p.code)
        .bind(p.name)
        .bind(p.payment.map(|p| p.as_str()))
        .bind(i64::from(p.monthly_fee_cents))
        .bind(opt_i64(p.data_gb))
        .bind(opt_i64(p.voice_minutes))
        .bind(opt_i64(p.sms))
        .bind(time(catalogue_date(as_of)))
}

const OPTION_COLUMNS: &[&str] =
    &["option_code", "name", "category", "monthly_fee_cents", "data_gb", "voice_minutes", "sms", "updated_at"];

fn bind_add_on<'q>(q: AnyQuery<'q>, a: &'q AddOn, as_of: DateTime<FixedOffset>) -> AnyQuery<'q> {
    q.bind(a.code)
        .bind(a.name)
        .bind(a.category)
        .bind(i64::from(a.monthly_fee_cents))
        .bind(i64::from(a.data_gb))
        .bind(i64::from(a.voice_minutes))
        .bind(i64::from(a.sms))
        .bind(time(catalogue_date(as_of)))
}

/// The catalogue was last revised at the start of the snapshot's year.
fn catalogue_date(as_of: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
    use chrono::{Datelike, TimeZone};
    as_of.offset().with_ymd_and_hms(as_of.year(), 1, 1, 0, 0, 0).single().unwrap_or(as_of)
}

const CUSTOMER_COLUMNS: &[&str] = &[
    "customer_id",
    "customer_type",
    "first_name",
    "last_name",
    "sex",
    "birth_date",
    "birth_place_code",
    "tax_code",
    "company_name",
    "vat_number",
    "iban",
    "street",
    "street_number",
    "city",
    "province",
    "postcode",
    "email",
    "created_at",
    "updated_at",
];

fn bind_customer<'q>(q: AnyQuery<'q>, c: &'q Customer) -> AnyQuery<'q> {
    let (person, company) = match &c.party {
        Party::Person(p) => (Some(p), None),
        Party::Company(co) => (None, Some(co)),
    };
    q.bind(c.id as i64)
        .bind(c.kind())
        .bind(person.map(|p| p.first_name))
        .bind(person.map(|p| p.last_name))
        .bind(person.map(|p| p.sex.as_str()))
        .bind(person.map(|p| p.birth_date.format("%Y-%m-%d").to_string()))
        .bind(person.map(|p| p.birth_place))
        .bind(person.map(|p| p.tax_code.as_str()))
        .bind(company.map(|co| co.name.as_str()))
        .bind(company.map(|co| co.vat_number.as_str()))
        .bind(c.iban.as_ref().map(|i| i.as_str()))
        .bind(c.address.street)
        .bind(c.address.number.to_string())
        .bind(c.address.city)
        .bind(c.address.province)
        .bind(c.address.postcode.as_str())
        .bind(c.email.as_str())
        .bind(time(c.created_at))
        .bind(time(c.updated_at))
}

const LINE_COLUMNS: &[&str] = &[
    "line_id",
    "customer_id",
    "msisdn",
    "iccid",
    "imsi",
    "imei",
    "plan_code",
    "payment_type",
    "status",
    "device_type",
    "auto_topup",
    "activated_at",
    "updated_at",
];

fn bind_line<'q>(q: AnyQuery<'q>, l: &'q Line) -> AnyQuery<'q> {
    q.bind(l.id as i64)
        .bind(l.customer_id as i64)
        .bind(l.msisdn.as_str())
        .bind(l.iccid.as_str())
        .bind(l.imsi.as_str())
        .bind(l.imei.as_str())
        .bind(l.plan)
        .bind(l.payment.as_str())
        .bind(l.status.as_str())
        .bind(l.device.as_str())
        .bind(i64::from(l.auto_topup))
        .bind(time(l.activated_at))
        .bind(time(l.updated_at))
}

const LINE_OPTION_COLUMNS: &[&str] = &["line_id", "option_code", "activated_at", "updated_at"];

fn bind_line_option<'q>(q: AnyQuery<'q>, o: &'q LineOption) -> AnyQuery<'q> {
    q.bind(o.line_id as i64).bind(o.option).bind(time(o.activated_at)).bind(time(o.updated_at))
}
