//! The audit log: an append-only chain in which each entry's MAC (HMAC-SHA256 under a key
//! derived from the master key) covers the entry and the MAC of the one before. Editing,
//! inserting or deleting an entry breaks the chain; a head row kept with each append shows a
//! deleted tail; without the master key, nobody can forge a consistent chain.

use sb_store::sqlx::{self, Row};
use sb_store::{Backend, Db, StoreError, time};
use serde::Serialize;

use crate::PrivacyError;
use crate::crypto;

/// The MAC before the first entry.
const GENESIS: &str = "genesis";

/// One audited action.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (epoch milliseconds).
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// `reveal`, `erase`, `retention`, `rotate`, `retire`.
    pub action: String,
    /// The kind of data concerned.
    pub kind: Option<String>,
    /// The token or handle concerned (never cleartext).
    pub target: Option<String>,
    /// The purpose stated.
    pub purpose: Option<String>,
    /// `revealed`, `refused`, `not_found`, `done`.
    pub outcome: String,
    /// More about it (a refusal's reason, counts).
    pub detail: Option<String>,
}

/// An entry to append.
pub(crate) struct NewEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub kind: Option<&'a str>,
    pub target: Option<&'a str>,
    pub purpose: Option<&'a str>,
    pub outcome: &'a str,
    pub detail: Option<&'a str>,
}

fn mac(key: &[u8; 32], seq: i64, at_ms: i64, e: &NewEntry<'_>, prev: &str) -> String {
    let opt = |s: Option<&str>| s.map_or(Vec::from([0u8]), |s| [&[1u8][..], s.as_bytes()].concat());
    let parts: [&[u8]; 10] = [
        &seq.to_be_bytes(),
        &at_ms.to_be_bytes(),
        e.actor.as_bytes(),
        e.action.as_bytes(),
        &opt(e.kind),
        &opt(e.target),
        &opt(e.purpose),
        e.outcome.as_bytes(),
        &opt(e.detail),
        prev.as_bytes(),
    ];
    hex::encode(crypto::hmac(key, &parts))
}

/// Appends `entry` inside `tx`, which must be a write transaction; returns its sequence number.
pub(crate) async fn append(
    tx: &mut sb_store::WriteTx,
    backend: Backend,
    key: &[u8; 32],
    entry: NewEntry<'_>,
) -> Result<i64, StoreError> {
    // The head row is the chain's lock: on PostgreSQL, FOR UPDATE serialises appenders;
    // SQLite's write transaction (BEGIN IMMEDIATE) already does.
    let head_sql = match backend {
        Backend::Postgres => "SELECT seq, mac FROM vault_audit_head WHERE id = 1 FOR UPDATE",
        Backend::Sqlite => "SELECT seq, mac FROM vault_audit_head WHERE id = 1",
    };
    let row = sqlx::query(head_sql).fetch_one(&mut **tx).await?;
    let (prev_seq, prev_mac): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
    let seq = prev_seq + 1;
    let at_ms = time::to_ms(chrono::Utc::now());
    let mac = mac(key, seq, at_ms, &entry, &prev_mac);
    sqlx::query(
        "INSERT INTO vault_audit (seq, at_ms, actor, action, kind, target, purpose, outcome, detail, prev_mac, mac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(seq)
    .bind(at_ms)
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.kind)
    .bind(entry.target)
    .bind(entry.purpose)
    .bind(entry.outcome)
    .bind(entry.detail)
    .bind(&prev_mac)
    .bind(&mac)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE vault_audit_head SET seq = $1, mac = $2 WHERE id = 1")
        .bind(seq)
        .bind(&mac)
        .execute(&mut **tx)
        .await?;
    Ok(seq)
}

/// What `privacy audit verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Entries checked.
    pub entries: i64,
    /// Whether the chain is intact.
    pub intact: bool,
    /// The first break, if any: where and what.
    pub problem: Option<String>,
}

const PAGE: i64 = 5_000;

/// Walks the whole chain in order and checks every link.
pub(crate) async fn verify(db: &Db, key: &[u8; 32]) -> Result<AuditReport, PrivacyError> {
    let mut expected_seq = 1;
    let mut prev_mac = GENESIS.to_owned();
    let mut entries = 0;
    let broken = |entries, problem: String| Ok(AuditReport { entries, intact: false, problem: Some(problem) });
    loop {
        let page = sqlx::query(
            "SELECT seq, at_ms, actor, action, kind, target, purpose, outcome, detail, prev_mac, mac \
             FROM vault_audit WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(expected_seq)
        .bind(PAGE)
        .fetch_all(db.pool())
        .await
        .map_err(StoreError::from)?;
        let n = page.len();
        for r in page {
            let get = |i: usize| r.try_get::<Option<String>, _>(i).map_err(StoreError::from);
            let seq: i64 = r.try_get(0).map_err(StoreError::from)?;
            let at_ms: i64 = r.try_get(1).map_err(StoreError::from)?;
            let (actor, action, outcome) =
                (get(2)?.unwrap_or_default(), get(3)?.unwrap_or_default(), get(7)?.unwrap_or_default());
            let (kind, target, purpose, detail) = (get(4)?, get(5)?, get(6)?, get(8)?);
            let (stored_prev, stored_mac) = (get(9)?.unwrap_or_default(), get(10)?.unwrap_or_default());
            if seq != expected_seq {
                return broken(entries, format!("entry {expected_seq} is missing (next is {seq})"));
            }
            if stored_prev != prev_mac {
                return broken(entries, format!("entry {seq} does not follow entry {}", seq - 1));
            }
            let entry = NewEntry {
                actor: &actor,
                action: &action,
                kind: kind.as_deref(),
                target: target.as_deref(),
                purpose: purpose.as_deref(),
                outcome: &outcome,
                detail: detail.as_deref(),
            };
            if mac(key, seq, at_ms, &entry, &prev_mac) != stored_mac {
                return broken(entries, format!("entry {seq} was altered"));
            }
            prev_mac = stored_mac;
            expected_seq += 1;
            entries += 1;
        }
        if (n as i64) < PAGE {
            break;
        }
    }
    let head = sqlx::query("SELECT seq, mac FROM vault_audit_head WHERE id = 1")
        .fetch_one(db.pool())
        .await
        .map_err(StoreError::from)?;
    let (head_seq, head_mac): (i64, String) =
        (head.try_get(0).map_err(StoreError::from)?, head.try_get(1).map_err(StoreError::from)?);
    if head_seq != entries || head_mac != prev_mac {
        return broken(
            entries,
            format!("the chain ends at entry {entries} but its head says {head_seq}: entries were removed"),
        );
    }
    Ok(AuditReport { entries, intact: true, problem: None })
}

/// The newest entries, newest first, `limit` per page, before sequence `before` if given.
pub(crate) async fn list(db: &Db, before: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at_ms, actor, action, kind, target, purpose, outcome, detail FROM vault_audit \
         WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                seq: r.try_get(0)?,
                at_ms: r.try_get(1)?,
                actor: r.try_get(2)?,
                action: r.try_get(3)?,
                kind: r.try_get(4)?,
                target: r.try_get(5)?,
                purpose: r.try_get(6)?,
                outcome: r.try_get(7)?,
                detail: r.try_get(8)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
