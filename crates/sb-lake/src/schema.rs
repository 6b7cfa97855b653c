//! The schemas of the datasets Switchboard writes. Columns holding personal data hold tokens.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Scale of money columns: four decimals, as in the reference layout.
pub const MONEY_SCALE: i8 = 4;
/// Money columns: `DECIMAL(18, 4)`.
pub const MONEY: DataType = DataType::Decimal128(18, MONEY_SCALE);

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Columns written without dictionary encoding, in any dataset: their values rarely repeat
/// within a row group (tokens, record ids, instants, volumes, the dedup dataset's id halves),
/// so a dictionary would cost a hash per value and be given up at its size limit anyway (it
/// took a fifth of the writing thread's time in the ingestion benchmark).
pub const HIGH_CARDINALITY: &[&str] = &[
    "record_id",
    "line",
    "imsi",
    "imei",
    "other_party",
    "start_time",
    "volume_up_bytes",
    "volume_down_bytes",
    "id_hi",
    "id_lo",
];

/// Columns written without compression, in any dataset: uniformly random bits (the dedup
/// dataset's id halves, keyed hashes) that zstd would scan for nothing.
pub const INCOMPRESSIBLE: &[&str] = &["id_hi", "id_lo"];

/// `usage`: voice, SMS, data and VAS records.
pub static USAGE: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("record_id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("file_key", DataType::Utf8, false),
        Field::new("record_type", DataType::Utf8, false),
        Field::new("line", DataType::Utf8, false),
        Field::new("imsi", DataType::Utf8, true),
        Field::new("imei", DataType::Utf8, true),
        Field::new("other_party", DataType::Utf8, true),
        Field::new("start_time", ts(), false),
        Field::new("event_date", DataType::Date32, false),
        Field::new("hour", DataType::Int32, false),
        Field::new("duration_s", DataType::Int64, false),
        Field::new("volume_up_bytes", DataType::Int64, false),
        Field::new("volume_down_bytes", DataType::Int64, false),
        Field::new("rating_group", DataType::Int64, true),
        Field::new("cell_area", DataType::Utf8, true),
        Field::new("roaming_country", DataType::Utf8, true),
        Field::new("charge_eur", MONEY, false),
        Field::new("partial_seq", DataType::Int64, true),
    ]))
});

/// `topups`: credit added to prepaid lines, by channel.
pub static TOPUPS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("record_id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("file_key", DataType::Utf8, false),
        Field::new("record_type", DataType::Utf8, false),
        Field::new("line", DataType::Utf8, false),
        Field::new("imsi", DataType::Utf8, true),
        Field::new("start_time", ts(), false),
        Field::new("event_date", DataType::Date32, false),
        Field::new("hour", DataType::Int32, false),
        Field::new("amount_eur", MONEY, false),
        Field::new("channel", DataType::Utf8, false),
    ]))
});

/// A type-2 slowly changing dimension: the key, `version` (from 1), the attributes, and the
/// version's validity: `valid_from` (inclusive; the first version is valid from 1970-01-01),
/// `valid_to` (exclusive; null while current) and `is_current`.
fn dimension(key: &str, attributes: &[(&str, DataType)]) -> SchemaRef {
    let mut fields = vec![Field::new(key, DataType::Utf8, false), Field::new("version", DataType::Int64, false)];
    fields.extend(attributes.iter().map(|(name, t)| Field::new(*name, t.clone(), true)));
    fields.push(Field::new("valid_from", ts(), false));
    fields.push(Field::new("valid_to", ts(), true));
    fields.push(Field::new("is_current", DataType::Boolean, false));
    Arc::new(Schema::new(fields))
}

/// `dim_customer`: customers, SCD type 2. Personal fields hold tokens or generalised values;
/// those the policy encrypts (name, address, e-mail, IBAN by default) stay in the store only
/// and are null here.
pub static DIM_CUSTOMER: LazyLock<SchemaRef> = LazyLock::new(|| {
    dimension(
        "customer_id",
        &[
            ("customer_type", DataType::Utf8),
            ("name", DataType::Utf8),
            ("birth_date", DataType::Utf8),
            ("tax_code", DataType::Utf8),
            ("iban", DataType::Utf8),
            ("address", DataType::Utf8),
            ("province", DataType::Utf8),
            ("email", DataType::Utf8),
        ],
    )
});

/// `dim_line`: lines (SIMs), SCD type 2. `msisdn`, `imsi` and `imei` are tokens — the same
/// tokens as in `usage.line`, so facts join their line.
pub static DIM_LINE: LazyLock<SchemaRef> = LazyLock::new(|| {
    dimension(
        "line_id",
        &[
            ("customer_id", DataType::Utf8),
            ("msisdn", DataType::Utf8),
            ("imsi", DataType::Utf8),
            ("imei", DataType::Utf8),
            ("plan_code", DataType::Utf8),
            ("payment_type", DataType::Utf8),
            ("status", DataType::Utf8),
            ("activated_on", DataType::Utf8),
        ],
    )
});

/// `dim_plan`: tariff plans, SCD type 2.
pub static DIM_PLAN: LazyLock<SchemaRef> = LazyLock::new(|| {
    dimension(
        "plan_code",
        &[("name", DataType::Utf8), ("payment_type", DataType::Utf8), ("monthly_fee_cents", DataType::Int64)],
    )
});

/// The datasets whose schema Switchboard knows; queries see them even before any data.
pub fn known() -> Vec<(&'static str, SchemaRef)> {
    vec![
        ("usage", Arc::clone(&USAGE)),
        ("topups", Arc::clone(&TOPUPS)),
        ("dim_customer", Arc::clone(&DIM_CUSTOMER)),
        ("dim_line", Arc::clone(&DIM_LINE)),
        ("dim_plan", Arc::clone(&DIM_PLAN)),
    ]
}
