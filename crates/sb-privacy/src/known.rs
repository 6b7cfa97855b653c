//! Which fingerprints the vault may hold, in memory, so that a value never seen before goes
//! straight to insertion instead of costing a lookup query first.
//!
//! Per kind, the set holds the first 8 bytes of every fingerprint in the vault, read once on
//! first use and grown by this process's own lookups and inserts. It is only a hint: "absent"
//! skips the lookup, and the insert's unique constraint still decides (a value another process
//! tokenised meanwhile conflicts, and its token is then looked up); "present" costs the usual
//! lookup, which may find nothing (an erased value), and then the value is created. A kind
//! with more than [`MAX_ENTRIES`] fingerprints is not held: every value is looked up.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use sb_store::sqlx::{self, Row};
use sb_store::{Db, StoreError};

use crate::{PiiKind, PrivacyError};

/// Fingerprints held per kind at most (about 10 bytes each).
pub(crate) const MAX_ENTRIES: usize = 8_000_000;

/// Fingerprints are keyed hashes already: their bytes are the hash.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Set = HashSet<u64, BuildHasherDefault<Identity>>;

enum KindSet {
    Held(Set),
    TooLarge,
}

/// The per-kind fingerprint hints of one vault.
#[derive(Default)]
pub(crate) struct KnownFingerprints {
    kinds: Mutex<HashMap<PiiKind, KindSet>>,
}

pub(crate) fn short(fp: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = fp.len().min(8);
    b[..n].copy_from_slice(&fp[..n]);
    u64::from_le_bytes(b)
}

impl KnownFingerprints {
    /// Loads `kind`'s fingerprints when not held yet.
    async fn ensure(&self, db: &Db, kind: PiiKind) -> Result<(), PrivacyError> {
        if self.lock().contains_key(&kind) {
            return Ok(());
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vault_tokens WHERE kind = $1")
            .bind(kind.as_str())
            .fetch_one(db.pool())
            .await
            .map_err(StoreError::from)?;
        let loaded = if count as usize > MAX_ENTRIES {
            KindSet::TooLarge
        } else {
            let rows = sqlx::query("SELECT fingerprint FROM vault_tokens WHERE kind = $1")
                .bind(kind.as_str())
                .fetch_all(db.pool())
                .await
                .map_err(StoreError::from)?;
            let mut set = Set::with_capacity_and_hasher(rows.len(), Default::default());
            for row in rows {
                let fp: Vec<u8> = row.try_get(0).map_err(StoreError::from)?;
                set.insert(short(&fp));
            }
            KindSet::Held(set)
        };
        // Another task may have loaded it meanwhile: keep the one that is there (it may
        // already hold newer fingerprints).
        self.lock().entry(kind).or_insert(loaded);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PiiKind, KindSet>> {
        self.kinds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For each fingerprint set, whether the vault may hold one of them.
    pub async fn maybe_present(&self, db: &Db, kind: PiiKind, fps: &[Vec<Vec<u8>>]) -> Result<Vec<bool>, PrivacyError> {
        self.ensure(db, kind).await?;
        let kinds = self.lock();
        Ok(match kinds.get(&kind) {
            Some(KindSet::Held(set)) => fps.iter().map(|s| s.iter().any(|fp| set.contains(&short(fp)))).collect(),
            _ => vec![true; fps.len()],
        })
    }

    /// Records fingerprints now in the vault.
    pub fn add<'a>(&self, kind: PiiKind, fps: impl IntoIterator<Item = &'a [u8]>) {
        let mut kinds = self.lock();
        if let Some(KindSet::Held(set)) = kinds.get_mut(&kind) {
            set.extend(fps.into_iter().map(short));
            if set.len() > MAX_ENTRIES {
                kinds.insert(kind, KindSet::TooLarge);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_fingerprints_take_the_first_eight_bytes() {
        assert_eq!(short(&[1, 0, 0, 0, 0, 0, 0, 0, 9, 9]), 1);
        assert_eq!(short(&[2]), 2);
    }
}
