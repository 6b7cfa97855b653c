//! The vault's directory in memory: a value's token from its fingerprint, without a query.
//!
//! Per kind, the directory holds every row of the vault as the first 12 bytes of its
//! fingerprint and its token's 128-bit body (the token is an encrypted row id, so the body is
//! computed from the row's id and salt as the rows stream in): about 30 bytes a row, in a
//! sorted array with a bucket index ([`table`]), not in a hash map whose free slots would
//! double that. Loaded on first use, it is brought up to date before each use with the rows
//! added since one mark shared by every kind, by any process (row ids are handed out and
//! committed in order). So a value the
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
//!
//! Streaming every row costs a new process seconds (a driver round trip per row), so the
//! directory is also **saved in the vault** ([`Directory::save`], after each ingested file):
//! per kind, parts of 65,536 entries of 29 bytes (the fingerprint's 12 bytes, a tag, the
//! body), with the high-water mark, the vault's change generation, the fingerprint version and a
//! check of the token-id key they hold for. A new process reads a valid snapshot in a few rows,
//! then the rows added since its mark. Erasure and rotation delete every snapshot (they are
//! invalid anyway: the generation or the fingerprint version moves); a snapshot holds nothing
//! the vault's own index does not (fingerprints are keyed hashes, bodies encrypted row ids).

mod table;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use futures_util::TryStreamExt;
use sb_store::sqlx::{self, Row};
use sb_store::{Db, StoreError};

use crate::keys::Keyring;
use crate::token_id::{PackedToken, TokenIds};
use crate::vault::FpSet;
use crate::{PiiKind, PrivacyError};

/// Rows held per kind at most (about 30 bytes each, 240 MB for a kind at the most).
pub(crate) const MAX_ENTRIES: usize = 8_000_000;

/// The first 12 bytes of a fingerprint (an HMAC: uniformly random already).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// A kind's rows: about 30 bytes each ([`table`]).
type Map = table::Table;

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

/// What this process last saved or read of a kind's snapshot.
#[derive(Clone, Copy)]
struct Saved {
    /// Entries in the snapshot.
    len: usize,
    /// Its high-water mark.
    high_water: i64,
}

#[derive(Default)]
struct State {
    kinds: HashMap<PiiKind, KindMap>,
    /// Per held kind, the snapshot in the vault that matches this process's map (if any).
    saved: HashMap<PiiKind, Saved>,
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
    async fn refresh(&self, db: &Db, keys: &Keyring, kind: PiiKind) -> Result<(), PrivacyError> {
        let ids = &keys.token_ids;
        let (held, mark) = {
            let state = self.lock();
            (state.kinds.get(&kind).map(|k| matches!(k, KindMap::Held(_))), state.high_water)
        };
        match held {
            Some(false) => Ok(()),
            Some(true) => self.catch_up(db, ids, mark.unwrap_or(0)).await,
            None => {
                if let Some((map, saved)) = read_snapshot(db, keys, kind).await? {
                    let since = {
                        let mut state = self.lock();
                        state.kinds.insert(kind, KindMap::Held(map));
                        state.saved.insert(kind, saved);
                        // The rows after the older of the two marks, into every map held.
                        let mark = *state.high_water.get_or_insert(saved.high_water);
                        mark.min(saved.high_water)
                    };
                    return self.catch_up(db, ids, since).await;
                }
                self.load_kind(db, ids, kind, mark).await
            }
        }
    }

    /// First use of `kind` without a snapshot: all its rows, by its index.
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
        let mut entries = Vec::new();
        let mut too_large = false;
        while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
            let id: i64 = row.try_get(0).map_err(StoreError::from)?;
            let salt: Option<i64> = row.try_get(1).map_err(StoreError::from)?;
            let fp: Vec<u8> = row.try_get(2).map_err(StoreError::from)?;
            let legacy: Option<String> = row.try_get(3).map_err(StoreError::from)?;
            entries.push((FpKey::of(&fp), body_of(ids, kind, id, salt, legacy.as_deref())));
            if entries.len() > MAX_ENTRIES {
                too_large = true;
                break;
            }
        }
        drop(rows);
        let held = if too_large { KindMap::TooLarge } else { KindMap::Held(Map::from_entries(entries)) };
        let mut state = self.lock();
        state.kinds.insert(kind, held);
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
    /// version). While more than one root version is live (during a rotation, fingerprints of
    /// existing rows change in place, which the directory cannot follow) every value is asked
    /// for. An empty set (a value not worth looking up) is `Absent`.
    pub async fn tokens(
        &self,
        db: &Db,
        keys: &Keyring,
        kind: PiiKind,
        fps: &[FpSet],
    ) -> Result<Vec<Known>, PrivacyError> {
        let ask = |set: &FpSet| if set.is_empty() { Known::Absent } else { Known::Ask };
        if !exact_versions(keys) {
            return Ok(fps.iter().map(ask).collect());
        }
        self.refresh(db, keys, kind).await?;
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

    /// Whether the vault may hold any value of `kind` (always, during a rotation): other
    /// parties who are not customers are no longer stored, so their fingerprints need not be
    /// computed at all while none of the old kind remain.
    pub async fn may_hold_any(&self, db: &Db, keys: &Keyring, kind: PiiKind) -> Result<bool, PrivacyError> {
        if !exact_versions(keys) {
            return Ok(true);
        }
        self.refresh(db, keys, kind).await?;
        Ok(match self.lock().kinds.get(&kind) {
            Some(KindMap::Held(map)) => !map.is_empty(),
            _ => true,
        })
    }

    /// Records rows now in the vault: their fingerprints and token bodies.
    pub fn add<'a>(&self, kind: PiiKind, rows: impl IntoIterator<Item = (&'a [u8], u128)>) {
        let mut state = self.lock();
        if let Some(KindMap::Held(map)) = state.kinds.get_mut(&kind) {
            for (fp, body) in rows {
                map.insert(FpKey::of(fp), Some(body.to_be_bytes()));
            }
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

    /// Saves the kinds held into the vault, for the next process, as of change `generation`
    /// (the one this process's memory reflects). A kind whose map has not changed since its
    /// snapshot only has the snapshot's mark moved on; one that grew by less than a sixteenth
    /// keeps its snapshot (the next process reads the few rows after it). Returns the entries
    /// written.
    pub async fn save(&self, db: &Db, keys: &Keyring, generation: i64) -> Result<usize, PrivacyError> {
        if !exact_versions(keys) {
            return Ok(0);
        }
        let (high_water, kinds) = {
            let state = self.lock();
            let Some(hw) = state.high_water else { return Ok(0) };
            let kinds: Vec<(PiiKind, usize, Option<Saved>)> = state
                .kinds
                .iter()
                .filter_map(|(k, m)| match m {
                    KindMap::Held(map) if !map.is_empty() => Some((*k, map.len(), state.saved.get(k).copied())),
                    _ => None,
                })
                .collect();
            (hw, kinds)
        };
        let check = key_check(keys);
        let mut written = 0;
        for (kind, len, saved) in kinds {
            match saved {
                Some(s) if s.len == len => {
                    if s.high_water < high_water {
                        // Every row of the kind up to the new mark is the snapshot's already.
                        let moved = sqlx::query(
                            "UPDATE vault_directory_parts SET high_water = $1 WHERE kind = $2 AND high_water = $3 \
                             AND generation = $4 AND fp_version = $5",
                        )
                        .bind(high_water)
                        .bind(kind.as_str())
                        .bind(s.high_water)
                        .bind(generation)
                        .bind(keys.current)
                        .execute(db.pool())
                        .await
                        .map_err(StoreError::from)?
                        .rows_affected();
                        if moved > 0 {
                            self.mark_saved(kind, Saved { len, high_water });
                        }
                    }
                }
                Some(s) if len.saturating_sub(s.len) < (s.len / 16).max(1) => {}
                _ => {
                    let Some((parts, saved)) = self.encode(kind) else { continue };
                    let mut tx = db.begin_write().await?;
                    sqlx::query("DELETE FROM vault_directory_parts WHERE kind = $1")
                        .bind(kind.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::from)?;
                    let total = parts.len() as i64;
                    for (i, entries) in parts.into_iter().enumerate() {
                        sqlx::query(
                            "INSERT INTO vault_directory_parts (kind, part, parts, high_water, generation, fp_version, key_check, entries) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(kind.as_str())
                        .bind(i as i64)
                        .bind(total)
                        .bind(saved.high_water)
                        .bind(generation)
                        .bind(keys.current)
                        .bind(check.to_vec())
                        .bind(entries)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::from)?;
                    }
                    tx.commit().await.map_err(StoreError::from)?;
                    written += saved.len;
                    self.mark_saved(kind, saved);
                }
            }
        }
        Ok(written)
    }

    /// Entries of `kind`'s snapshot as this process knows it (saved or read).
    #[cfg(test)]
    pub fn saved_len(&self, kind: PiiKind) -> Option<usize> {
        self.lock().saved.get(&kind).map(|s| s.len)
    }

    /// `kind`'s map as snapshot parts, and what they hold.
    fn encode(&self, kind: PiiKind) -> Option<(Vec<Vec<u8>>, Saved)> {
        let mut state = self.lock();
        let high_water = state.high_water?;
        let Some(KindMap::Held(map)) = state.kinds.get_mut(&kind) else { return None };
        // In key order: the next process's table is then sorted as it reads it.
        map.merge();
        let mut parts = Vec::with_capacity(map.len().div_ceil(PART_ENTRIES));
        let mut part: Vec<u8> = Vec::new();
        for (fp, body) in map.iter() {
            if part.is_empty() {
                part.reserve_exact(PART_ENTRIES * ENTRY_BYTES);
            }
            part.extend_from_slice(&fp.0);
            match body {
                Some(b) => {
                    part.push(1);
                    part.extend_from_slice(b);
                }
                None => part.extend_from_slice(&[0; 17]),
            }
            if part.len() == PART_ENTRIES * ENTRY_BYTES {
                parts.push(std::mem::take(&mut part));
            }
        }
        if !part.is_empty() {
            parts.push(part);
        }
        Some((parts, Saved { len: map.len(), high_water }))
    }

    /// Records what the vault now holds of `kind`, unless the directory was emptied meanwhile.
    fn mark_saved(&self, kind: PiiKind, saved: Saved) {
        let mut state = self.lock();
        if matches!(state.kinds.get(&kind), Some(KindMap::Held(m)) if m.len() >= saved.len) {
            state.saved.insert(kind, saved);
        }
    }
}

/// Entries per snapshot part.
const PART_ENTRIES: usize = 65_536;
/// Bytes of an entry in a part: the fingerprint's 12, a tag (1: a body follows; 0: a legacy
/// token, asked for), the body's 16.
const ENTRY_BYTES: usize = 29;

/// Whether one root version is live, so that fingerprints of stored rows do not change.
fn exact_versions(keys: &Keyring) -> bool {
    keys.versions.len() == 1
}

/// A value only the token-id key gives: a snapshot made under another key is not read.
fn key_check(keys: &Keyring) -> [u8; 16] {
    keys.token_ids.body(PiiKind::FreeText, 0, 0).to_be_bytes()
}

/// `kind`'s snapshot in the vault, if one is valid now: made under the vault's current change
/// generation, fingerprint version and token-id key, and whole.
async fn read_snapshot(db: &Db, keys: &Keyring, kind: PiiKind) -> Result<Option<(Map, Saved)>, PrivacyError> {
    let mut rows = sqlx::query(
        "SELECT part, parts, high_water, entries FROM vault_directory_parts WHERE kind = $1 AND fp_version = $2 \
         AND key_check = $3 AND generation = (SELECT next_id FROM vault_counters WHERE name = 'changes') ORDER BY part",
    )
    .bind(kind.as_str())
    .bind(keys.current)
    .bind(key_check(keys).to_vec())
    .fetch(db.pool());
    let mut entries: Vec<(FpKey, Body)> = Vec::new();
    let mut seen = 0i64;
    let mut header: Option<(i64, i64)> = None;
    while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
        let part: i64 = row.try_get(0).map_err(StoreError::from)?;
        let parts: i64 = row.try_get(1).map_err(StoreError::from)?;
        let high_water: i64 = row.try_get(2).map_err(StoreError::from)?;
        let part_entries: Vec<u8> = row.try_get(3).map_err(StoreError::from)?;
        if part != seen
            || header.is_some_and(|h| h != (parts, high_water))
            || !part_entries.len().is_multiple_of(ENTRY_BYTES)
        {
            return Ok(None);
        }
        header = Some((parts, high_water));
        seen += 1;
        if entries.is_empty() {
            let parts = usize::try_from(parts).unwrap_or(0).min(MAX_ENTRIES.div_ceil(PART_ENTRIES));
            entries.reserve_exact(parts * PART_ENTRIES);
        }
        for e in part_entries.chunks_exact(ENTRY_BYTES) {
            let fp = FpKey(e[..12].try_into().expect("12 bytes"));
            let body = (e[12] == 1).then(|| e[13..].try_into().expect("16 bytes"));
            entries.push((fp, body));
        }
        if entries.len() > MAX_ENTRIES {
            return Ok(None);
        }
    }
    Ok(match header {
        Some((parts, high_water)) if parts == seen => {
            let map = Map::from_entries(entries);
            let len = map.len();
            Some((map, Saved { len, high_water }))
        }
        _ => None,
    })
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
