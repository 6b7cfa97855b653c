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
    /// Every fingerprint of the kind's rows up to the shared high-water mark.
    Held(Set),
    TooLarge,
}

#[derive(Default)]
struct State {
    kinds: HashMap<PiiKind, KindSet>,
    /// Rows up to this id are in every held set (row ids are handed out across kinds from one
    /// counter and committed in order, so rows after it are exactly those with a larger id).
    /// `None` while no kind is held.
    high_water: Option<i64>,
}

/// The per-kind fingerprint hints of one vault.
#[derive(Default)]
pub(crate) struct KnownFingerprints {
    state: Mutex<State>,
}

pub(crate) fn short(fp: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = fp.len().min(8);
    b[..n].copy_from_slice(&fp[..n]);
    u64::from_le_bytes(b)
}

impl KnownFingerprints {
    /// Brings `kind`'s set up to date: on first use every fingerprint of the kind (streamed),
    /// then the rows added since the shared mark — by this process or any other, of any kind
    /// held — in one indexed query.
    async fn refresh(&self, db: &Db, kind: PiiKind) -> Result<(), PrivacyError> {
        let (held, mark) = {
            let state = self.lock();
            (state.kinds.get(&kind).map(|k| matches!(k, KindSet::Held(_))), state.high_water)
        };
        match held {
            Some(false) => Ok(()),
            Some(true) => self.catch_up(db, mark.unwrap_or(0)).await,
            None => self.load_kind(db, kind, mark).await,
        }
    }

    /// First use of `kind`: all its rows, by its index.
    async fn load_kind(&self, db: &Db, kind: PiiKind, mark: Option<i64>) -> Result<(), PrivacyError> {
        // With no kind held yet, the mark starts at the newest row now: rows after it are read
        // by the next catch-up (or are in this stream already: sets ignore repeats).
        let start_mark = match mark {
            Some(m) => m,
            None => sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM vault_tokens")
                .fetch_one(db.pool())
                .await
                .map_err(StoreError::from)?
                .unwrap_or(0),
        };
        let mut rows =
            sqlx::query("SELECT fingerprint FROM vault_tokens WHERE kind = $1").bind(kind.as_str()).fetch(db.pool());
        let mut set = Set::default();
        let mut too_large = false;
        while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
            let fp: Vec<u8> = row.try_get(0).map_err(StoreError::from)?;
            set.insert(short(&fp));
            if set.len() > MAX_ENTRIES {
                too_large = true;
                break;
            }
        }
        drop(rows);
        let mut state = self.lock();
        state.kinds.insert(kind, if too_large { KindSet::TooLarge } else { KindSet::Held(set) });
        state.high_water.get_or_insert(start_mark);
        Ok(())
    }

    /// The rows added after `since`, into the sets of their kinds.
    async fn catch_up(&self, db: &Db, since: i64) -> Result<(), PrivacyError> {
        let mut rows =
            sqlx::query("SELECT id, kind, fingerprint FROM vault_tokens WHERE id > $1").bind(since).fetch(db.pool());
        let mut fresh: Vec<(String, u64)> = Vec::new();
        let mut high_water = since;
        while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
            high_water = high_water.max(row.try_get::<i64, _>(0).map_err(StoreError::from)?);
            let kind: String = row.try_get(1).map_err(StoreError::from)?;
            let fp: Vec<u8> = row.try_get(2).map_err(StoreError::from)?;
            fresh.push((kind, short(&fp)));
        }
        drop(rows);
        let mut state = self.lock();
        for (kind, fp) in fresh {
            let Ok(kind) = kind.parse::<PiiKind>() else { continue };
            if let Some(KindSet::Held(set)) = state.kinds.get_mut(&kind) {
                set.insert(fp);
                if set.len() > MAX_ENTRIES {
                    state.kinds.insert(kind, KindSet::TooLarge);
                }
            }
        }
        if state.high_water.is_some_and(|m| m < high_water) {
            state.high_water = Some(high_water);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
        let state = self.lock();
        Ok(match state.kinds.get(&kind) {
            Some(KindSet::Held(set)) => fps.iter().map(|s| s.iter().any(|fp| set.contains(&short(fp)))).collect(),
            _ => vec![true; fps.len()],
        })
    }

    /// Whether the vault may hold any value of `kind` (see [`KnownFingerprints::maybe_present`]
    /// for `exact_versions`): other parties who are not customers are no longer stored, so
    /// their fingerprints need not be computed at all while none of the old kind remain.
    pub async fn may_hold_any(&self, db: &Db, kind: PiiKind, exact_versions: bool) -> Result<bool, PrivacyError> {
        if !exact_versions {
            return Ok(true);
        }
        self.refresh(db, kind).await?;
        Ok(match self.lock().kinds.get(&kind) {
            Some(KindSet::Held(set)) => !set.is_empty(),
            _ => true,
        })
    }

    /// Records fingerprints now in the vault.
    pub fn add<'a>(&self, kind: PiiKind, fps: impl IntoIterator<Item = &'a [u8]>) {
        let mut state = self.lock();
        if let Some(KindSet::Held(set)) = state.kinds.get_mut(&kind) {
            set.extend(fps.into_iter().map(short));
            if set.len() > MAX_ENTRIES {
                state.kinds.insert(kind, KindSet::TooLarge);
            }
        }
    }

    /// Records rows `first..=last` just inserted by this process: when nothing was added by
    /// anyone between the high-water mark and them, the mark moves past them, so the next
    /// refresh does not read them back.
    pub fn advance(&self, first: i64, last: i64) {
        let mut state = self.lock();
        if state.high_water == Some(first - 1) {
            state.high_water = Some(last);
        }
    }

    /// Forgets everything (after a rotation changed fingerprints in place); reloaded on use.
    pub fn clear(&self) {
        *self.lock() = State::default();
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
