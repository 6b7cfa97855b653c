//! The consumer shipped with ingestion: per-line daily usage counters in the store.

use sb_core::{ConsumerError, LineUsage, UsageBatch, UsageConsumer};
use sb_store::sqlx;
use sb_store::{Db, time};

/// Line-days per statement.
const ROWS: usize = 500;

/// The upsert of `rows` line-days.
fn upsert_sql(db: &Db, rows: usize) -> String {
    format!(
        "INSERT INTO ingest_line_daily (line, day, voice_out_s, voice_in_s, sms_out, sms_in, data_up_bytes, data_down_bytes, \
         vas_events, charges_e4, topups, topup_e4) VALUES {} \
         ON CONFLICT (line, day) DO UPDATE SET voice_out_s = ingest_line_daily.voice_out_s + excluded.voice_out_s, \
         voice_in_s = ingest_line_daily.voice_in_s + excluded.voice_in_s, sms_out = ingest_line_daily.sms_out + excluded.sms_out, \
         sms_in = ingest_line_daily.sms_in + excluded.sms_in, data_up_bytes = ingest_line_daily.data_up_bytes + excluded.data_up_bytes, \
         data_down_bytes = ingest_line_daily.data_down_bytes + excluded.data_down_bytes, \
         vas_events = ingest_line_daily.vas_events + excluded.vas_events, charges_e4 = ingest_line_daily.charges_e4 + excluded.charges_e4, \
         topups = ingest_line_daily.topups + excluded.topups, topup_e4 = ingest_line_daily.topup_e4 + excluded.topup_e4",
        db.values(1, rows, 12)
    )
}

/// The upsert of `part` (`sql` made for as many line-days).
fn bind<'q>(sql: &'q str, part: &'q [LineUsage]) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql);
    for u in part {
        let (topups, topup_e4) = u.topups.values().fold((0, 0), |(c, a), t| (c + t.count, a + t.amount_e4));
        q = q
            .bind(&u.line)
            .bind(u.date.map(|d| d.to_string()).unwrap_or_default())
            .bind(u.voice_out_s)
            .bind(u.voice_in_s)
            .bind(u.sms_out)
            .bind(u.sms_in)
            .bind(u.data_up_bytes)
            .bind(u.data_down_bytes)
            .bind(u.vas_events)
            .bind(u.charges_e4)
            .bind(topups)
            .bind(topup_e4);
    }
    q
}

/// Adds each batch to `ingest_line_daily`, once per batch key (its inbox is `ingest_inbox`,
/// written in the same transaction as the counters).
pub struct DailyCounters {
    db: Db,
}

impl DailyCounters {
    /// The consumer's name in deliveries.
    pub const NAME: &'static str = "ingest.daily_counters";

    /// Counters in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl UsageConsumer for DailyCounters {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn consume(&self, batch: &UsageBatch) -> Result<(), ConsumerError> {
        let mut tx = self.db.begin_write().await?;
        let fresh = sqlx::query(
            "INSERT INTO ingest_inbox (batch_key, consumer, applied_at_ms) VALUES ($1, $2, $3) ON CONFLICT (batch_key, consumer) DO NOTHING",
        )
        .bind(&batch.key)
        .bind(Self::NAME)
        .bind(time::to_ms(chrono::Utc::now()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if fresh == 0 {
            return Ok(());
        }
        // One statement per 500 lines (a batch holds each line and day once, so no statement
        // updates a row twice): a statement per line cost a round trip each. Each statement's
        // values are bound while the one before runs (on SQLite, on the driver's own thread).
        // Of a few fixed sizes (`statement_chunks`), so that the connection caches few statements.
        let statements = sb_store::statement_texts(batch.lines.len(), ROWS, |n| upsert_sql(&self.db, n));
        let mut parts = sb_store::statement_chunks(&batch.lines, ROWS);
        let sql = |part: &[LineUsage]| statements[&part.len()].as_str();
        let mut next = parts.next().map(|p| bind(sql(p), p));
        while let Some(q) = next {
            let (done, following) = tokio::join!(q.execute(&mut *tx), async { parts.next().map(|p| bind(sql(p), p)) });
            done?;
            next = following;
        }
        tx.commit().await?;
        Ok(())
    }
}
