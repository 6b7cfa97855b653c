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

/// The datasets whose schema Switchboard knows; queries see them even before any data.
pub fn known() -> Vec<(&'static str, SchemaRef)> {
    vec![("usage", Arc::clone(&USAGE)), ("topups", Arc::clone(&TOPUPS))]
}
