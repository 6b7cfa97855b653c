//! Key rotation: a new root version, then every subject key and fingerprint moved onto it,
//! without any value leaving the vault. An old version is retired (its key material
//! destroyed) only once nothing uses it.

use sb_store::StoreError;
use sb_store::sqlx::{self, Row};
use serde::Serialize;

use crate::audit::{self, NewEntry};
use crate::keys::{KeyVersionInfo, Keyring};
use crate::{PiiKind, Principal, PrivacyError, Vault, crypto};

const BATCH: i64 = 1_000;

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct RotationReport {
    /// The current root version now.
    pub current_version: i64,
    /// Subject keys rewrapped under it.
    pub subject_keys_rewrapped: i64,
    /// Fingerprints recomputed under it.
    pub fingerprints_recomputed: i64,
}

impl Vault {
    /// Adds a root key version, makes it current, and rewraps everything onto it.
    /// Needs `privacy.rotate`.
    pub async fn rotate(&self, who: &Principal) -> Result<RotationReport, PrivacyError> {
        self.require(who, "privacy.rotate").await?;
        self.commit_waiting().await?;
        Keyring::add_version(&self.db, &self.master).await?;
        self.reload_keys().await?;
        self.rewrap(who).await
    }

    /// Moves subject keys and fingerprints still on older versions onto the current one;
    /// resumes an interrupted rotation, and does nothing when all is current.
    pub async fn rewrap(&self, who: &Principal) -> Result<RotationReport, PrivacyError> {
        self.require(who, "privacy.rotate").await?;
        let keys = self.keys();
        let current = keys.current;
        let mut rewrapped = 0;
        loop {
            let rows = sqlx::query(
                "SELECT id, key_version, wrapped_key FROM vault_subjects WHERE key_version <> $1 AND wrapped_key IS NOT NULL LIMIT $2",
            )
            .bind(current)
            .bind(BATCH)
            .fetch_all(self.db.pool())
            .await
            .map_err(StoreError::from)?;
            if rows.is_empty() {
                break;
            }
            let mut tx = self.begin_write().await?;
            for r in &rows {
                let sid: i64 = r.try_get(0).map_err(StoreError::from)?;
                let version: i64 = r.try_get(1).map_err(StoreError::from)?;
                let wrapped: Vec<u8> = r.try_get(2).map_err(StoreError::from)?;
                let key = crypto::unwrap(&keys.version(version)?.kek, &wrapped)?;
                sqlx::query(
                    "UPDATE vault_subjects SET key_version = $1, wrapped_key = $2 WHERE id = $3 AND key_version = $4",
                )
                .bind(current)
                .bind(crypto::wrap(&keys.current().kek, &key).to_vec())
                .bind(sid)
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            }
            tx.commit().await.map_err(StoreError::from)?;
            rewrapped += rows.len() as i64;
        }
        let mut recomputed = 0;
        loop {
            let rows = sqlx::query(
                "SELECT t.id, t.kind, t.subject_id, t.value, s.ref, s.kind, t.token, t.salt FROM vault_tokens t \
                 JOIN vault_subjects s ON s.id = t.subject_id WHERE t.fp_version <> $1 LIMIT $2",
            )
            .bind(current)
            .bind(BATCH)
            .fetch_all(self.db.pool())
            .await
            .map_err(StoreError::from)?;
            if rows.is_empty() {
                break;
            }
            let mut tx = self.begin_write().await?;
            for r in &rows {
                let id: i64 = r.try_get(0).map_err(StoreError::from)?;
                let kind: PiiKind =
                    r.try_get::<String, _>(1).map_err(StoreError::from)?.parse().map_err(PrivacyError::Config)?;
                let legacy: Option<String> = r.try_get(6).map_err(StoreError::from)?;
                let salt: Option<i64> = r.try_get(7).map_err(StoreError::from)?;
                let token = legacy.unwrap_or_else(|| keys.token_ids.encode(kind, id, salt.unwrap_or(0)));
                let sid: i64 = r.try_get(2).map_err(StoreError::from)?;
                let sealed: Vec<u8> = r.try_get(3).map_err(StoreError::from)?;
                let subject_ref: Option<String> = r.try_get(4).map_err(StoreError::from)?;
                let subject_kind: String = r.try_get(5).map_err(StoreError::from)?;
                let key = self.subject_key(sid).await?.ok_or(PrivacyError::Corrupt("a token's subject has no key"))?;
                let value = crypto::open(&key, &sealed, token.as_bytes())?;
                let scope = match (kind, subject_kind.as_str()) {
                    (PiiKind::OtherParty, "other_party") => subject_ref.unwrap_or_default(),
                    _ => String::new(),
                };
                let fp = keys.current().fingerprint_key(kind).mac(&[scope.as_bytes(), &value]);
                sqlx::query("UPDATE vault_tokens SET fingerprint = $1, fp_version = $2 WHERE id = $3")
                    .bind(fp.to_vec())
                    .bind(current)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
            }
            tx.commit().await.map_err(StoreError::from)?;
            recomputed += rows.len() as i64;
        }
        // Saved directories hold the old fingerprints (and are no longer read: the version moved).
        sqlx::query("DELETE FROM vault_directory_parts").execute(self.db.pool()).await.map_err(StoreError::from)?;
        let detail = format!(
            "current version {current}; subject keys rewrapped: {rewrapped}; fingerprints recomputed: {recomputed}"
        );
        self.audit(who, "rotate", None, None, None, "done", Some(&detail)).await?;
        Ok(RotationReport {
            current_version: current,
            subject_keys_rewrapped: rewrapped,
            fingerprints_recomputed: recomputed,
        })
    }

    /// Destroys root version `version`'s key material. Refused for the current version and
    /// while any subject key or fingerprint still uses it (run `rewrap` first).
    pub async fn retire(&self, who: &Principal, version: i64) -> Result<(), PrivacyError> {
        self.require(who, "privacy.rotate").await?;
        let info = self.key_versions().await?;
        let Some(v) = info.iter().find(|v| v.purpose == "root" && v.version == version) else {
            return Err(PrivacyError::Invalid(format!("there is no root key version {version}")));
        };
        if v.state == "current" {
            return Err(PrivacyError::Invalid(format!("version {version} is current: rotate first")));
        }
        if v.subject_keys > 0 || v.fingerprints > 0 {
            return Err(PrivacyError::Invalid(format!(
                "version {version} still wraps {} subject key(s) and {} fingerprint(s): run `switchboard privacy rewrap` first",
                v.subject_keys, v.fingerprints
            )));
        }
        let keys = self.keys();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE vault_keyring SET state = 'retired', wrapped = NULL, retired_at_ms = $1 WHERE purpose = 'root' AND version = $2",
        )
        .bind(sb_store::time::to_ms(chrono::Utc::now()))
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let detail = format!("root key version {version} retired");
        let entry = NewEntry {
            actor: &who.id,
            action: "retire",
            kind: None,
            target: None,
            purpose: None,
            outcome: "done",
            detail: Some(&detail),
        };
        audit::append(&mut tx, self.db.backend(), &keys.audit, entry).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.reload_keys().await
    }

    /// Every key version with what still uses it.
    pub async fn key_versions(&self) -> Result<Vec<KeyVersionInfo>, PrivacyError> {
        let rows = sqlx::query(
            "SELECT k.purpose, k.version, k.state, \
             (SELECT COUNT(*) FROM vault_subjects s WHERE k.purpose = 'root' AND s.key_version = k.version AND s.wrapped_key IS NOT NULL), \
             (SELECT COUNT(*) FROM vault_tokens t WHERE k.purpose = 'root' AND t.fp_version = k.version) \
             FROM vault_keyring k ORDER BY k.purpose DESC, k.version",
        )
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::from)?;
        rows.iter()
            .map(|r| {
                Ok(KeyVersionInfo {
                    purpose: r.try_get(0)?,
                    version: r.try_get(1)?,
                    state: r.try_get(2)?,
                    subject_keys: r.try_get(3)?,
                    fingerprints: r.try_get(4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| PrivacyError::Store(e.into()))
    }

    async fn require(&self, who: &Principal, permission: &str) -> Result<(), PrivacyError> {
        if who.can(permission) {
            return Ok(());
        }
        let reason = format!("{} lacks permission {permission}", who.id);
        self.audit(
            who,
            permission.rsplit('.').next().unwrap_or(permission),
            None,
            None,
            None,
            "refused",
            Some(&reason),
        )
        .await?;
        Err(PrivacyError::Denied(reason))
    }
}
