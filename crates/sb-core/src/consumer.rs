//! Usage aggregates and the consumers that receive them.
//!
//! When ingestion commits a file, it sums the file's records per line and day and hands the
//! result to every registered [`UsageConsumer`] (loyalty accrual, self-care counters, …),
//! exactly once per file and consumer, even across crashes. A large file's totals come in
//! several [`UsageBatch`]es (each a few tens of thousands of line-days, each line and day in
//! one of them only), each with its own key and each delivered exactly once. Consumers never
//! read ingestion's tables: this type is the whole contract.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::TopupChannel;

/// Amounts are integers of 1/10 000 of the currency unit (the reference layout carries at
/// most four decimals), so sums are exact.
pub type AmountE4 = i64;

/// Count and total of top-ups through one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topups {
    /// How many.
    pub count: i64,
    /// Their total, in 1/10 000 EUR.
    pub amount_e4: AmountE4,
}

/// One line's usage on one day, within one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineUsage {
    /// The line's token (never its MSISDN).
    pub line: String,
    /// The day the usage happened (operator's timezone).
    pub date: Option<NaiveDate>,
    /// Seconds of outgoing calls.
    pub voice_out_s: i64,
    /// Seconds of incoming calls.
    pub voice_in_s: i64,
    /// SMS sent.
    pub sms_out: i64,
    /// SMS received.
    pub sms_in: i64,
    /// Bytes uploaded.
    pub data_up_bytes: i64,
    /// Bytes downloaded.
    pub data_down_bytes: i64,
    /// Value-added service events.
    pub vas_events: i64,
    /// Usage charged, in 1/10 000 EUR.
    pub charges_e4: AmountE4,
    /// Top-ups by channel.
    pub topups: BTreeMap<TopupChannel, Topups>,
}

/// The aggregates of one committed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBatch {
    /// Identifies the delivery: the same key is never applied twice by a consumer.
    pub key: String,
    /// The source the file came from.
    pub source: String,
    /// Per line and day.
    pub lines: Vec<LineUsage>,
}

/// A failure to apply a batch; ingestion retries the delivery later.
pub type ConsumerError = Box<dyn std::error::Error + Send + Sync>;

/// Something that reacts to committed usage. Implementations record `batch.key` in the same
/// transaction as their effect (an inbox), so that a repeated delivery changes nothing.
#[async_trait::async_trait]
pub trait UsageConsumer: Send + Sync + 'static {
    /// A stable name, used to track deliveries.
    fn name(&self) -> &'static str;

    /// Applies one batch; must be idempotent per `batch.key`.
    async fn consume(&self, batch: &UsageBatch) -> Result<(), ConsumerError>;
}
