//! Which fingerprints the vault may hold, in memory, so that a value never seen before goes
//! straight to insertion instead of costing a lookup query first.
//!
//! Per kind, the set holds the first 8 bytes of every fingerprint in the vault: streamed once
//! on first use, then brought up to date before each use with the rows added since (by any
//! process: row ids are handed out and committed in order). It is a hint: "absent" skips the
//! lookup, and the insert's unique constraint still decides (a value another process tokenised
//! in the instant between refresh and insert conflicts, and its token is then looked up);
//! "present" costs the usual lookup, which may find nothing (an erased value), and then the
//! value is created. During a key rotation, and for a kind with more than [`MAX_ENTRIES`]
//! fingerprints, every value is looked up.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use futures_util::TryStreamExt;
use sb_store::sqlx::{self, Row};
use sb_store::{Db, StoreError};

use crate::{PiiKind, PrivacyError};

/// Fingerprints held per kind at most (about 10 bytes each).
pub(crate) const MAX_ENTRIES: usize = 8_000_000;

type Set = HashSet<u64, sb_core::hash::BuildIdentity>;

enum KindSet {
    /// Every fingerprint of rows up to `high_water` (row ids are handed out and committed in
    /// order, so rows after it are exactly those with a larger id).
    Held {
        set: Set,
        high_water: i64,
    },
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
    /// Brings `kind`'s set up to date: on first use every fingerprint (streamed), then only
    /// the rows added since — by this process or any other — in one indexed query.
    async fn refresh(&self, db: &Db, kind: PiiKind) -> Result<(), PrivacyError> {
        let since = match self.lock().get(&kind) {
            Some(KindSet::TooLarge) => return Ok(()),
            Some(KindSet::Held { high_water, .. }) => *high_water,
            None => i64::MIN,
        };
        // First use: the kind's rows (by its index). Then: rows after the high-water mark, by
        // primary key, whatever their kind (only the newest rows, few), filtered here.
        let mut rows = if since == i64::MIN {
            sqlx::query("SELECT id, kind, fingerprint FROM vault_tokens WHERE kind = $1").bind(kind.as_str())
        } else {
            sqlx::query("SELECT id, kind, fingerprint FROM vault_tokens WHERE id > $1").bind(since)
        }
        .fetch(db.pool());
        let mut fresh: Vec<u64> = Vec::new();
        let mut high_water = since.max(0);
        let mut too_large = false;
        while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
            let id: i64 = row.try_get(0).map_err(StoreError::from)?;
            high_water = high_water.max(id);
            let row_kind: String = row.try_get(1).map_err(StoreError::from)?;
            if row_kind != kind.as_str() {
                continue;
            }
            let fp: Vec<u8> = row.try_get(2).map_err(StoreError::from)?;
            fresh.push(short(&fp));
            if fresh.len() > MAX_ENTRIES {
                too_large = true;
                break;
            }
        }
        drop(rows);
        let mut kinds = self.lock();
        let entry = kinds.entry(kind).or_insert_with(|| KindSet::Held { set: Set::default(), high_water: 0 });
        if let KindSet::Held { set, high_water: hw } = entry {
            set.extend(fresh);
            *hw = (*hw).max(high_water);
            too_large |= set.len() > MAX_ENTRIES;
        }
        if too_large {
            kinds.insert(kind, KindSet::TooLarge);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PiiKind, KindSet>> {
        self.kinds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For each fingerprint set, whether the vault may hold one of them. `exact_versions`:
    /// whether one root version is live (during a rotation, fingerprints of existing rows
    /// change in place, which the set cannot follow: every value is then looked up).
    pub async fn maybe_present(
        &self,
        db: &Db,
        kind: PiiKind,
        fps: &[Vec<Vec<u8>>],
        exact_versions: bool,
    ) -> Result<Vec<bool>, PrivacyError> {
        if !exact_versions {
            return Ok(vec![true; fps.len()]);
        }
        self.refresh(db, kind).await?;
        let kinds = self.lock();
        Ok(match kinds.get(&kind) {
            Some(KindSet::Held { set, .. }) => {
                fps.iter().map(|s| s.iter().any(|fp| set.contains(&short(fp)))).collect()
            }
            _ => vec![true; fps.len()],
        })
    }

    /// Records fingerprints now in the vault.
    pub fn add<'a>(&self, kind: PiiKind, fps: impl IntoIterator<Item = &'a [u8]>) {
        let mut kinds = self.lock();
        if let Some(KindSet::Held { set, .. }) = kinds.get_mut(&kind) {
            set.extend(fps.into_iter().map(short));
            if set.len() > MAX_ENTRIES {
                kinds.insert(kind, KindSet::TooLarge);
            }
        }
    }

    /// Records rows `first..=last` just inserted by this process: when nothing was added by
    /// anyone between the high-water mark and them, the mark moves past them, so the next
    /// refresh does not read them back.
    pub fn advance(&self, kind: PiiKind, first: i64, last: i64) {
        if let Some(KindSet::Held { high_water, .. }) = self.lock().get_mut(&kind)
            && *high_water == first - 1
        {
            *high_water = last;
        }
    }

    /// Forgets everything (after a rotation changed fingerprints in place); reloaded on use.
    pub fn clear(&self) {
        self.lock().clear();
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
