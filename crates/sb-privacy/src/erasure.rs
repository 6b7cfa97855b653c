//! The right to be forgotten, and retention of non-customers' data.

use sb_store::sqlx::{self, Row};
use sb_store::{StoreError, time};
use serde::Serialize;

use crate::audit::{self, NewEntry};
use crate::{Principal, PrivacyError, Vault};

/// What an erasure destroyed; kept as the request's receipt.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureReceipt {
    /// The operator's customer id.
    pub customer: String,
    /// Who asked.
    pub requested_by: String,
    /// When it was done (epoch milliseconds).
    pub completed_at_ms: i64,
    /// Subject keys destroyed.
    pub subjects_destroyed: i64,
    /// Token mappings (value, fingerprint) destroyed.
    pub tokens_destroyed: i64,
    /// The audit entry recording it.
    pub audit_seq: i64,
    /// True when this request repeats one already done (nothing more to destroy).
    pub repeated: bool,
}

/// What the retention job destroyed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionReport {
    /// Months of other-party data destroyed (`YYYY-MM`).
    pub months: Vec<String>,
    /// Token mappings destroyed.
    pub tokens_destroyed: i64,
}

impl Vault {
    /// Erases a customer: destroys their data key, fingerprints and token mappings. Their
    /// tokens in the lake stay (analytics keep adding up) but can no longer be revealed, and
    /// tokenising the same values again gives new, unrelated tokens. Needs `privacy.erase`.
    /// Repeating a request is harmless and returns the first receipt.
    pub async fn erase_customer(&self, who: &Principal, customer: &str) -> Result<ErasureReceipt, PrivacyError> {
        if !who.can("privacy.erase") {
            let reason = format!("{} lacks permission privacy.erase", who.id);
            self.audit(who, "erase", None, None, None, "refused", Some(&reason)).await?;
            return Err(PrivacyError::Denied(reason));
        }
        if let Some(receipt) = self.receipt(customer).await? {
            return Ok(ErasureReceipt { repeated: true, ..receipt });
        }
        let keys = self.keys();
        let mut tx = self.begin_write().await?;
        let subjects: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM vault_subjects WHERE kind = 'customer' AND ref = $1")
                .bind(customer)
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        let mut tokens = 0;
        for sid in &subjects {
            tokens += sqlx::query("DELETE FROM vault_tokens WHERE subject_id = $1")
                .bind(sid)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?
                .rows_affected() as i64;
            destroy_subject(&mut tx, *sid).await?;
        }
        let detail = format!("subjects destroyed: {}, tokens destroyed: {tokens}", subjects.len());
        let entry = NewEntry {
            actor: &who.id,
            action: "erase",
            kind: None,
            target: Some(customer),
            purpose: Some("right to erasure"),
            outcome: "done",
            detail: Some(&detail),
        };
        let seq = audit::append(&mut tx, self.db.backend(), &keys.audit, entry).await?;
        let now = time::to_ms(chrono::Utc::now());
        sqlx::query(
            "INSERT INTO vault_erasures (customer_ref, requested_by, completed_at_ms, subjects_destroyed, tokens_destroyed, audit_seq) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(customer)
        .bind(&who.id)
        .bind(now)
        .bind(subjects.len() as i64)
        .bind(tokens)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        self.forget(&subjects);
        tracing::info!(subjects = subjects.len(), tokens, audit_seq = seq, "customer erased");
        Ok(ErasureReceipt {
            customer: customer.to_owned(),
            requested_by: who.id.clone(),
            completed_at_ms: now,
            subjects_destroyed: subjects.len() as i64,
            tokens_destroyed: tokens,
            audit_seq: seq,
            repeated: false,
        })
    }

    /// Which of `customers` were erased (right to be forgotten): loaders must not bring their
    /// personal data back from a source that still holds it.
    pub async fn erased_customers(
        &self,
        customers: &[&str],
    ) -> Result<std::collections::HashSet<String>, PrivacyError> {
        let mut out = std::collections::HashSet::new();
        for chunk in customers.chunks(400) {
            let sql = format!(
                "SELECT customer_ref FROM vault_erasures WHERE customer_ref IN ({})",
                self.db.params(1, chunk.len())
            );
            let mut q = sqlx::query_scalar::<_, String>(&sql);
            for c in chunk {
                q = q.bind(*c);
            }
            out.extend(q.fetch_all(self.db.pool()).await.map_err(StoreError::from)?);
        }
        Ok(out)
    }

    /// The receipt of an earlier erasure of `customer`, if any.
    pub async fn receipt(&self, customer: &str) -> Result<Option<ErasureReceipt>, PrivacyError> {
        let row = sqlx::query(
            "SELECT customer_ref, requested_by, completed_at_ms, subjects_destroyed, tokens_destroyed, audit_seq \
             FROM vault_erasures WHERE customer_ref = $1",
        )
        .bind(customer)
        .fetch_optional(self.db.pool())
        .await
        .map_err(StoreError::from)?;
        row.map(|r| receipt_from_row(&r)).transpose()
    }

    /// Every erasure receipt, newest first.
    pub async fn receipts(&self, limit: u32) -> Result<Vec<ErasureReceipt>, PrivacyError> {
        let rows = sqlx::query(
            "SELECT customer_ref, requested_by, completed_at_ms, subjects_destroyed, tokens_destroyed, audit_seq \
             FROM vault_erasures ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::from)?;
        rows.iter().map(receipt_from_row).collect()
    }

    /// Destroys other-party months older than `privacy.other_party_retention_months`
    /// before `now`: their keys, fingerprints and mappings. Those tokens can then be neither
    /// revealed nor linked to new traffic. Idempotent; audited when it destroys anything.
    pub async fn apply_retention(&self, now: chrono::DateTime<chrono::Utc>) -> Result<RetentionReport, PrivacyError> {
        let cutoff = cutoff_month(now, self.config.other_party_retention_months);
        let keys = self.keys();
        let mut tx = self.begin_write().await?;
        let rows =
            sqlx::query("SELECT id, ref FROM vault_subjects WHERE kind = 'other_party' AND ref < $1 ORDER BY ref")
                .bind(&cutoff)
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        let mut report = RetentionReport::default();
        let mut destroyed = Vec::new();
        for r in rows {
            let sid: i64 = r.try_get(0).map_err(StoreError::from)?;
            let month: String = r.try_get(1).map_err(StoreError::from)?;
            report.tokens_destroyed += sqlx::query("DELETE FROM vault_tokens WHERE subject_id = $1")
                .bind(sid)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?
                .rows_affected() as i64;
            destroy_subject(&mut tx, sid).await?;
            destroyed.push(sid);
            report.months.push(month);
        }
        if !report.months.is_empty() {
            let detail = format!("months: {}; tokens destroyed: {}", report.months.join(" "), report.tokens_destroyed);
            let entry = NewEntry {
                actor: "system:retention",
                action: "retention",
                kind: Some("other_party"),
                target: None,
                purpose: Some("retention period elapsed"),
                outcome: "done",
                detail: Some(&detail),
            };
            audit::append(&mut tx, self.db.backend(), &keys.audit, entry).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.forget(&destroyed);
        Ok(report)
    }
}

/// The first month kept: months before it (`YYYY-MM` sorts as text) are destroyed.
fn cutoff_month(now: chrono::DateTime<chrono::Utc>, months: u32) -> String {
    use chrono::Datelike;
    let total = now.year() * 12 + now.month0() as i32 - months as i32;
    format!("{:04}-{:02}", total.div_euclid(12), total.rem_euclid(12) + 1)
}

/// Destroys a subject's key and unlinks the row from whoever it was.
async fn destroy_subject(tx: &mut sb_store::WriteTx, sid: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE vault_subjects SET wrapped_key = NULL, key_version = NULL, ref = NULL, erased_at_ms = $1 WHERE id = $2",
    )
    .bind(time::to_ms(chrono::Utc::now()))
    .bind(sid)
    .execute(&mut **tx)
    .await?;
    // Every vault process sees the change and drops what it holds in memory.
    sqlx::query("UPDATE vault_counters SET next_id = next_id + 1 WHERE name = 'changes'").execute(&mut **tx).await?;
    // Saved directories name the erased rows' fingerprints: they go with them.
    sqlx::query("DELETE FROM vault_directory_parts").execute(&mut **tx).await?;
    Ok(())
}

fn receipt_from_row(r: &sqlx::any::AnyRow) -> Result<ErasureReceipt, PrivacyError> {
    let get = || -> Result<ErasureReceipt, sqlx::Error> {
        Ok(ErasureReceipt {
            customer: r.try_get(0)?,
            requested_by: r.try_get(1)?,
            completed_at_ms: r.try_get(2)?,
            subjects_destroyed: r.try_get(3)?,
            tokens_destroyed: r.try_get(4)?,
            audit_seq: r.try_get(5)?,
            repeated: false,
        })
    };
    get().map_err(|e| PrivacyError::Store(e.into()))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    #[test]
    fn the_retention_cutoff_counts_back_whole_months() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        assert_eq!(super::cutoff_month(now, 6), "2026-05");
        assert_eq!(super::cutoff_month(now, 11), "2025-12");
        assert_eq!(super::cutoff_month(now, 12), "2025-11");
    }
}
