//! Whose data a value is: every token and encrypted value belongs to one subject.

use sb_store::sqlx::{self, Row};
use sb_store::{StoreError, time};

use crate::PiiKind;
use crate::crypto::{self, Key};
use crate::keys::Keyring;

/// The owner of a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A customer, by the operator's customer id. Erasure acts on it.
    Customer(String),
    /// Non-customers met as the other party of calls and SMS in one month (`YYYY-MM`): one key
    /// per month, destroyed by the retention job after the retention period. Their tokens are
    /// stable within the month and unrelated across months.
    OtherParty {
        /// The month of the traffic, `YYYY-MM`.
        month: String,
    },
    /// Not known yet (a line seen in traffic before the master data names its customer): the
    /// new values of one tokenisation call share a provisional subject, and
    /// [`crate::Vault::link`] moves each to its customer.
    Provisional,
}

impl Subject {
    pub(crate) fn db_kind(&self) -> &'static str {
        match self {
            Self::Customer(_) => "customer",
            Self::OtherParty { .. } => "other_party",
            Self::Provisional => "provisional",
        }
    }

    pub(crate) fn db_ref(&self) -> Option<&str> {
        match self {
            Self::Customer(id) => Some(id),
            Self::OtherParty { month } => Some(month),
            Self::Provisional => None,
        }
    }

    /// Other-party values are fingerprinted per month, so the same number in two months gets
    /// two unrelated tokens and an expired month cannot be linked to new traffic.
    pub(crate) fn scope(&self, kind: PiiKind) -> &str {
        match (kind, self) {
            (PiiKind::OtherParty, Self::OtherParty { month }) => month,
            _ => "",
        }
    }
}

/// Finds the subject's id and data key, creating both when new.
pub(crate) async fn get_or_create(
    tx: &mut sb_store::WriteTx,
    keys: &Keyring,
    subject: &Subject,
) -> Result<(i64, Key), crate::PrivacyError> {
    if let Some(r) = subject.db_ref()
        && let Some(found) = find(tx, keys, subject.db_kind(), r).await?
    {
        return Ok(found);
    }
    let key = crypto::random_key();
    let wrapped = crypto::wrap(&keys.current().kek, &key).to_vec();
    let now = time::to_ms(chrono::Utc::now());
    match subject.db_ref() {
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO vault_subjects (kind, ref, key_version, wrapped_key, created_at_ms) VALUES ($1, NULL, $2, $3, $4) RETURNING id",
            )
            .bind(subject.db_kind())
            .bind(keys.current)
            .bind(wrapped)
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .map_err(StoreError::from)?;
            Ok((id, key))
        }
        Some(r) => {
            // Another process may create the same subject at the same moment: the first wins.
            sqlx::query(
                "INSERT INTO vault_subjects (kind, ref, key_version, wrapped_key, created_at_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (kind, ref) DO NOTHING",
            )
            .bind(subject.db_kind())
            .bind(r)
            .bind(keys.current)
            .bind(wrapped)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::from)?;
            find(tx, keys, subject.db_kind(), r)
                .await?
                .ok_or(crate::PrivacyError::Corrupt("a subject vanished while it was created"))
        }
    }
}

async fn find(
    tx: &mut sb_store::WriteTx,
    keys: &Keyring,
    kind: &str,
    r: &str,
) -> Result<Option<(i64, Key)>, crate::PrivacyError> {
    let row = sqlx::query("SELECT id, key_version, wrapped_key FROM vault_subjects WHERE kind = $1 AND ref = $2")
        .bind(kind)
        .bind(r)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.try_get(0).map_err(StoreError::from)?;
    let version: i64 = row.try_get(1).map_err(StoreError::from)?;
    let wrapped: Option<Vec<u8>> = row.try_get(2).map_err(StoreError::from)?;
    let wrapped = wrapped.ok_or(crate::PrivacyError::Corrupt("a live subject has no key"))?;
    Ok(Some((id, crypto::unwrap(&keys.version(version)?.kek, &wrapped)?)))
}
