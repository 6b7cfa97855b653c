//! Instants as stored: milliseconds since the Unix epoch in a `BIGINT`, identical on both backends.

use chrono::{DateTime, TimeZone, Utc};

/// An instant as stored in the database.
pub fn to_ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A stored instant back as a UTC time; out-of-range values clamp to the epoch.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
