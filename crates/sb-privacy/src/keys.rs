//! The key hierarchy.
//!
//! ```text
//! master key (environment or file, never the config file)
//!  ├─ wraps (AES-KW) root key v1, v2, …      — `privacy rotate` adds a version
//!  │    ├─ HKDF "kek"                        — wraps each subject's data key
//!  │    └─ HKDF "fingerprint/<kind>"         — HMAC index that finds a value's token
//!  └─ wraps the deterministic root            — never rotated: its outputs live in the lake
//!       ├─ HKDF "ff1/<kind>"                  — FF1 keys
//!       ├─ HKDF "hmac/<kind>"                 — one-way analytics keys
//!       └─ HKDF "audit"                       — MAC of the audit chain
//! ```
//! Subject data keys encrypt the subject's values (AES-256-GCM-SIV). Every wrapped key and
//! every fingerprint records the root version it was made with.

use std::collections::BTreeMap;

use sb_store::sqlx::{self, Row};
use sb_store::{Db, time};
use zeroize::Zeroizing;

use crate::crypto::{self, Key};
use crate::token_id::TokenIds;
use crate::{PiiKind, PrivacyError};

/// The master key: 32 bytes, given as 64 hex characters. Wiped on drop; never printed.
pub struct MasterKey(Key);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// Reads 64 hexadecimal characters (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, PrivacyError> {
        let text = text.trim();
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, key.as_mut()).map_err(|_| {
            PrivacyError::Config(format!(
                "the master key must be 64 hexadecimal characters (32 bytes); found {} characters",
                text.len()
            ))
        })?;
        Ok(Self(key))
    }

    /// A new random master key, as the 64 hex characters to store.
    pub fn generate_hex() -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*crypto::random_key()))
    }

    /// A public identifier of this key, stored beside what it wraps, so a wrong master key
    /// is reported as such instead of as corrupt data.
    pub fn id(&self) -> String {
        hex::encode(&crypto::hmac(&self.0, &[b"switchboard master key id"])[..8])
    }
}

/// The state of a root key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Used for new subject keys and fingerprints.
    Current,
    /// Still unwraps keys made with it; rewrapping moves them off it.
    Previous,
    /// Destroyed; nothing uses it.
    Retired,
}

impl KeyState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Previous => "previous",
            Self::Retired => "retired",
        }
    }
}

pub(crate) struct RootVersion {
    pub kek: Key,
    fingerprint: BTreeMap<PiiKind, crypto::MacKey>,
}

impl RootVersion {
    fn derive(root: &[u8; 32]) -> Self {
        Self {
            kek: crypto::derive(root, "kek"),
            fingerprint: PiiKind::ALL
                .into_iter()
                .map(|k| (k, crypto::MacKey::new(&crypto::derive(root, &format!("fingerprint/{k}")))))
                .collect(),
        }
    }

    pub fn fingerprint_key(&self, kind: PiiKind) -> &crypto::MacKey {
        &self.fingerprint[&kind]
    }
}

/// Everything the vault derives from the master key, loaded once.
pub(crate) struct Keyring {
    pub versions: BTreeMap<i64, RootVersion>,
    pub current: i64,
    ff1: BTreeMap<PiiKind, Key>,
    hmac: BTreeMap<PiiKind, Key>,
    pub audit: Key,
    /// Encrypts row ids into tokens (deterministic root: tokens outlive root rotations).
    pub token_ids: TokenIds,
}

const ROOT: &str = "root";
const DETERMINISTIC: &str = "deterministic";

impl Keyring {
    /// Loads the keyring, creating it on first use.
    pub async fn load(db: &Db, master: &MasterKey) -> Result<Self, PrivacyError> {
        let rows = Self::rows(db).await?;
        if rows.is_empty() {
            Self::create(db, master).await?;
        }
        let rows = Self::rows(db).await?;
        let master_id = master.id();
        let mut versions = BTreeMap::new();
        let mut current = None;
        let mut det = None;
        for (purpose, version, wrapped, id, state) in rows {
            if state == KeyState::Retired.as_str() {
                continue;
            }
            if id != master_id {
                return Err(PrivacyError::WrongMasterKey(format!(
                    "the vault's keys are wrapped by master key {id}, the key given is {master_id}"
                )));
            }
            let wrapped = wrapped.ok_or(PrivacyError::Corrupt("a live key has no key material"))?;
            let root = crypto::unwrap(&master.0, &wrapped)?;
            match purpose.as_str() {
                DETERMINISTIC => det = Some(root),
                _ => {
                    if state == KeyState::Current.as_str() {
                        current = Some(version);
                    }
                    versions.insert(version, RootVersion::derive(&root));
                }
            }
        }
        let det = det.ok_or(PrivacyError::Corrupt("the vault has no deterministic root key"))?;
        let current = current.ok_or(PrivacyError::Corrupt("the vault has no current root key"))?;
        Ok(Self {
            versions,
            current,
            ff1: PiiKind::ALL.into_iter().map(|k| (k, crypto::derive(&det, &format!("ff1/{k}")))).collect(),
            hmac: PiiKind::ALL.into_iter().map(|k| (k, crypto::derive(&det, &format!("hmac/{k}")))).collect(),
            audit: crypto::derive(&det, "audit"),
            token_ids: TokenIds::new(&crypto::derive(&det, "token-ids")),
        })
    }

    async fn rows(db: &Db) -> Result<Vec<(String, i64, Option<Vec<u8>>, String, String)>, PrivacyError> {
        let rows = sqlx::query(
            "SELECT purpose, version, wrapped, master_id, state FROM vault_keyring ORDER BY purpose, version",
        )
        .fetch_all(db.pool())
        .await
        .map_err(sb_store::StoreError::from)?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| PrivacyError::Store(e.into()))
    }

    async fn create(db: &Db, master: &MasterKey) -> Result<(), PrivacyError> {
        let mut tx = db.begin_write().await?;
        for (purpose, state) in [(DETERMINISTIC, KeyState::Current), (ROOT, KeyState::Current)] {
            // ON CONFLICT: another process creating the vault at the same moment wins cleanly.
            sqlx::query(
                "INSERT INTO vault_keyring (purpose, version, wrapped, master_id, state, created_at_ms) \
                 VALUES ($1, 1, $2, $3, $4, $5) ON CONFLICT (purpose, version) DO NOTHING",
            )
            .bind(purpose)
            .bind(crypto::wrap(&master.0, &crypto::random_key()).to_vec())
            .bind(master.id())
            .bind(state.as_str())
            .bind(time::to_ms(chrono::Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(sb_store::StoreError::from)?;
        }
        tx.commit().await.map_err(sb_store::StoreError::from)?;
        Ok(())
    }

    /// Adds root version `current + 1`, makes it current and the old one previous.
    pub async fn add_version(db: &Db, master: &MasterKey) -> Result<i64, PrivacyError> {
        let mut tx = db.begin_write().await?;
        let next: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM vault_keyring WHERE purpose = $1")
                .bind(ROOT)
                .fetch_one(&mut *tx)
                .await
                .map_err(sb_store::StoreError::from)?;
        sqlx::query("UPDATE vault_keyring SET state = 'previous' WHERE purpose = $1 AND state = 'current'")
            .bind(ROOT)
            .execute(&mut *tx)
            .await
            .map_err(sb_store::StoreError::from)?;
        sqlx::query(
            "INSERT INTO vault_keyring (purpose, version, wrapped, master_id, state, created_at_ms) VALUES ($1, $2, $3, $4, 'current', $5)",
        )
        .bind(ROOT)
        .bind(next)
        .bind(crypto::wrap(&master.0, &crypto::random_key()).to_vec())
        .bind(master.id())
        .bind(time::to_ms(chrono::Utc::now()))
        .execute(&mut *tx)
        .await
        .map_err(sb_store::StoreError::from)?;
        tx.commit().await.map_err(sb_store::StoreError::from)?;
        Ok(next)
    }

    pub fn current(&self) -> &RootVersion {
        &self.versions[&self.current]
    }

    pub fn version(&self, v: i64) -> Result<&RootVersion, PrivacyError> {
        self.versions.get(&v).ok_or(PrivacyError::Corrupt("data refers to a retired or unknown key version"))
    }

    pub fn ff1_key(&self, kind: PiiKind) -> &[u8; 32] {
        &self.ff1[&kind]
    }

    pub fn hmac_key(&self, kind: PiiKind) -> &[u8; 32] {
        &self.hmac[&kind]
    }
}

/// One row of `switchboard privacy keys`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyVersionInfo {
    /// `root` or `deterministic`.
    pub purpose: String,
    /// Version number.
    pub version: i64,
    /// Current, previous or retired.
    pub state: String,
    /// Subject keys still wrapped with it.
    pub subject_keys: i64,
    /// Fingerprints still made with it.
    pub fingerprints: i64,
}
