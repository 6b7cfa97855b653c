//! The vault's directory in memory: a value's token from its fingerprint, without a query.
//!
//! Per kind, the directory holds every row of the vault as the first 12 bytes of its
//! fingerprint and its token's 128-bit body (the token is an encrypted row id, so the body is
//! computed from the row's id and salt as the rows stream in): 30 bytes a slot. Loaded on first
//! use, it is brought up to date before each use with the rows added since one mark shared by
//! every kind, by any process (row ids are handed out and committed in order). So a value the
//! vault holds gets its token without a query, and a value it does not hold goes straight to
//! insertion; only a row made before tokens were encrypted ids (its token a stored random text)
//! is still looked up.
//!
//! 96 bits of fingerprint name a row: two of a kind's values sharing them, with 8 million
//! values held, happens about once in 10^14 loads of a new value. A row can only disappear by
//! erasure or retention, and both move the vault's change counter, on which the vault empties
//! the directory (as it empties its token cache); a key rotation, which rewrites fingerprints
//! in place, empties it too, and while two root versions are live every value is looked up.
//! A value another process inserts between the directory's refresh and our own insert conflicts
//! on the unique index, and is then looked up. A kind with more than [`MAX_ENTRIES`] rows is
//! not held: its values are looked up.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use futures_util::TryStreamExt;
use sb_store::sqlx::{self, Row};
use sb_store::{Db, StoreError};

use crate::token_id::{PackedToken, TokenIds};
use crate::{PiiKind, PrivacyError};

/// Rows held per kind at most (30 to 60 bytes each, as the table's free slots go).
pub(crate) const MAX_ENTRIES: usize = 8_000_000;

/// The first 12 bytes of a fingerprint (an HMAC: uniformly random already).
#[derive(Clone, Copy, PartialEq, Eq)]
struct FpKey([u8; 12]);

impl FpKey {
    fn of(fp: &[u8]) -> Self {
        let mut b = [0u8; 12];
        let n = fp.len().min(12);
        b[..n].copy_from_slice(&fp[..n]);
        Self(b)
    }
}

impl Hash for FpKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from_le_bytes(self.0[..8].try_into().expect("eight bytes")));
    }
}

/// A row's token body, or `None` for a token kept as text (made before bodies were row ids).
type Body = Option<[u8; 16]>;

type Map = HashMap<FpKey, Body, sb_core::hash::BuildIdentity>;

enum KindMap {
    /// Every row of the kind up to the shared high-water mark.
    Held(Map),
    TooLarge,
}

/// What the directory says of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    /// The vault holds no row of it: make one.
    Absent,
    /// Its token.
    Token(PackedToken),
    /// Ask the vault's database.
    Ask,
}

#[derive(Default)]
struct State {
    kinds: HashMap<PiiKind, KindMap>,
    /// Rows up to this id are in every held map (row ids are handed out across kinds from one
    /// counter and committed in order, so rows after it are exactly those with a larger id).
    /// `None` while no kind is held.
    high_water: Option<i64>,
}

/// The per-kind directories of one vault.
#[derive(Default)]
pub(crate) struct Directory {
    state: Mutex<State>,
}

/// A stored row's body: computed from its id and salt, or read from its legacy token text.
fn body_of(ids: &TokenIds, kind: PiiKind, id: i64, salt: Option<i64>, legacy: Option<&str>) -> Body {
    match legacy {
        None => Some(ids.body(kind, id, salt.unwrap_or(0)).to_be_bytes()),
        // Legacy tokens are looked up: their text is what the vault returns.
        Some(_) => None,
    }
}

impl Directory {
    /// Brings `kind`'s map up to date: on first use every row of the kind (streamed), then the
    /// rows added since the shared mark — by this process or any other, of any kind held — in
    /// one indexed query.
    async fn refresh(&self, db: &Db, ids: &TokenIds, kind: PiiKind) -> Result<(), PrivacyError> {
        let (held, mark) = {
            let state = self.lock();
            (state.kinds.get(&kind).map(|k| matches!(k, KindMap::Held(_))), state.high_water)
        };
        match held {
            Some(false) => Ok(()),
            Some(true) => self.catch_up(db, ids, mark.unwrap_or(0)).await,
            None => self.load_kind(db, ids, kind, mark).await,
        }
    }

    /// First use of `kind`: all its rows, by its index.
    async fn load_kind(&self, db: &Db, ids: &TokenIds, kind: PiiKind, mark: Option<i64>) -> Result<(), PrivacyError> {
        // With no kind held yet, the mark starts at the newest row now: rows after it are read
        // by the next catch-up (or are in this stream already: maps ignore repeats).
        let start_mark = match mark {
            Some(m) => m,
            None => sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM vault_tokens")
                .fetch_one(db.pool())
                .await
                .map_err(StoreError::from)?
                .unwrap_or(0),
        };
        let mut rows = sqlx::query("SELECT id, salt, fingerprint, token FROM vault_tokens WHERE kind = $1")
            .bind(kind.as_str())
            .fetch(db.pool());
        let mut map = Map::default();
        let mut too_large = false;
        while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
            let id: i64 = row.try_get(0).map_err(StoreError::from)?;
            let salt: Option<i64> = row.try_get(1).map_err(StoreError::from)?;
            let fp: Vec<u8> = row.try_get(2).map_err(StoreError::from)?;
            let legacy: Option<String> = row.try_get(3).map_err(StoreError::from)?;
            map.insert(FpKey::of(&fp), body_of(ids, kind, id, salt, legacy.as_deref()));
            if map.len() > MAX_ENTRIES {
                too_large = true;
                break;
            }
        }
        drop(rows);
        let mut state = self.lock();
        state.kinds.insert(kind, if too_large { KindMap::TooLarge } else { KindMap::Held(map) });
        state.high_water.get_or_insert(start_mark);
        Ok(())
    }

    /// The rows added after `since`, into the maps of their kinds.
    async fn catch_up(&self, db: &Db, ids: &TokenIds, since: i64) -> Result<(), PrivacyError> {
        let mut rows = sqlx::query("SELECT id, kind, fingerprint, salt, token FROM vault_tokens WHERE id > $1")
            .bind(since)
            .fetch(db.pool());
        let mut fresh: Vec<(PiiKind, FpKey, Body)> = Vec::new();
        let mut high_water = since;
        while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
            let id: i64 = row.try_get(0).map_err(StoreError::from)?;
            high_water = high_water.max(id);
            let kind: String = row.try_get(1).map_err(StoreError::from)?;
            let Ok(kind) = kind.parse::<PiiKind>() else { continue };
            let fp: Vec<u8> = row.try_get(2).map_err(StoreError::from)?;
            let salt: Option<i64> = row.try_get(3).map_err(StoreError::from)?;
            let legacy: Option<String> = row.try_get(4).map_err(StoreError::from)?;
            fresh.push((kind, FpKey::of(&fp), body_of(ids, kind, id, salt, legacy.as_deref())));
        }
        drop(rows);
        let mut state = self.lock();
        for (kind, fp, body) in fresh {
            if let Some(KindMap::Held(map)) = state.kinds.get_mut(&kind) {
                map.insert(fp, body);
                if map.len() > MAX_ENTRIES {
                    state.kinds.insert(kind, KindMap::TooLarge);
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

    /// What the vault holds of each value, given as its fingerprints (one per live root
    /// version). `exact_versions`: whether one root version is live (during a rotation,
    /// fingerprints of existing rows change in place, which the directory cannot follow: every
    /// value is then asked for). An empty set (a value not worth looking up) is `Absent`.
    pub async fn tokens(
        &self,
        db: &Db,
        ids: &TokenIds,
        kind: PiiKind,
        fps: &[Vec<Vec<u8>>],
        exact_versions: bool,
    ) -> Result<Vec<Known>, PrivacyError> {
        let ask = |set: &Vec<Vec<u8>>| if set.is_empty() { Known::Absent } else { Known::Ask };
        if !exact_versions {
            return Ok(fps.iter().map(ask).collect());
        }
        self.refresh(db, ids, kind).await?;
        let state = self.lock();
        Ok(match state.kinds.get(&kind) {
            Some(KindMap::Held(map)) => fps
                .iter()
                .map(|set| {
                    set.iter().find_map(|fp| map.get(&FpKey::of(fp))).map_or(Known::Absent, |body| match body {
                        Some(b) => Known::Token(PackedToken::from_body(kind, u128::from_be_bytes(*b))),
                        None => Known::Ask,
                    })
                })
                .collect(),
            _ => fps.iter().map(ask).collect(),
        })
    }

    /// Whether the vault may hold any value of `kind` (see [`Directory::tokens`] for
    /// `exact_versions`): other parties who are not customers are no longer stored, so their
    /// fingerprints need not be computed at all while none of the old kind remain.
    pub async fn may_hold_any(
        &self,
        db: &Db,
        ids: &TokenIds,
        kind: PiiKind,
        exact_versions: bool,
    ) -> Result<bool, PrivacyError> {
        if !exact_versions {
            return Ok(true);
        }
        self.refresh(db, ids, kind).await?;
        Ok(match self.lock().kinds.get(&kind) {
            Some(KindMap::Held(map)) => !map.is_empty(),
            _ => true,
        })
    }

    /// Records rows now in the vault: their fingerprints and token bodies.
    pub fn add<'a>(&self, kind: PiiKind, rows: impl IntoIterator<Item = (&'a [u8], u128)>) {
        let mut state = self.lock();
        if let Some(KindMap::Held(map)) = state.kinds.get_mut(&kind) {
            map.extend(rows.into_iter().map(|(fp, body)| (FpKey::of(fp), Some(body.to_be_bytes()))));
            if map.len() > MAX_ENTRIES {
                state.kinds.insert(kind, KindMap::TooLarge);
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

    /// Forgets everything (rows were erased or destroyed, or fingerprints rewritten by a
    /// rotation); reloaded on use.
    pub fn clear(&self) {
        *self.lock() = State::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_take_the_first_twelve_bytes_of_a_fingerprint() {
        let fp: Vec<u8> = (1..=32).collect();
        assert_eq!(FpKey::of(&fp).0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(FpKey::of(&[7]).0, [7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_legacy_token_is_asked_for_and_a_row_id_gives_its_body() {
        let ids = TokenIds::new(&[9; 32]);
        assert_eq!(body_of(&ids, PiiKind::Imsi, 5, Some(77), Some("ims_legacy")), None);
        let body = body_of(&ids, PiiKind::Imsi, 5, Some(77), None).expect("a body");
        let token = PackedToken::from_body(PiiKind::Imsi, u128::from_be_bytes(body)).to_string();
        assert_eq!(token, ids.encode(PiiKind::Imsi, 5, 77));
    }
}
