//! The ingestion hot path's memory: value → token, without a database round trip.
//!
//! Keys are keyed 128-bit SipHash values of (kind, scope, value) under a random key made at
//! start, so the cache holds no cleartext and its keys mean nothing outside this process.
//!
//! An entry is 33 bytes: the key, the token's 128-bit body (the encrypted block of
//! [`crate::token_id`], or a legacy random body, both 26 base32 characters) and the kind whose
//! prefix the token carries; the token's text is written again on each hit. With the tables'
//! free slots (34 bytes a slot, tables 44–87 % full) that is 39 to 77 bytes an entry, where
//! holding each token's text took about 130: an operator's millions of line identifiers fit,
//! instead of being looked up again in the vault.
//!
//! Bounded: the cache is split into shards of two tables; each shard drops its older table when
//! the newer one reaches its share (an approximation of LRU without per-hit bookkeeping).
//! Tables grow with their entries, up to 2^14 slots, so a small vault's cache stays small.
//! Erasure empties the cache (entries do not name their subject: erasing is rare, holding a
//! subject id per entry is not).

use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::PiiKind;
use crate::token_id::PackedToken;

/// Entries per table at most: 7/8 of 2^14 slots, the most a table of that size holds without
/// growing again.
const TABLE_ENTRIES: usize = 14_336;

/// A cache key: uniformly random already, so its low eight bytes are the table's hash.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key([u8; 16]);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from_le_bytes(self.0[..8].try_into().expect("eight bytes")));
    }
}

type Table = std::collections::HashMap<Key, PackedToken, sb_core::hash::BuildIdentity>;

#[derive(Default)]
struct Shard {
    current: Table,
    previous: Table,
}

pub(crate) struct TokenCache {
    shards: Vec<Mutex<Shard>>,
    per_table: usize,
    k0: u64,
    k1: u64,
}

impl TokenCache {
    /// A cache holding at most `capacity` entries (at most about 40 bytes each when full).
    pub fn new(capacity: usize) -> Self {
        let shards = capacity.div_ceil(2 * TABLE_ENTRIES).max(1);
        let per_table = (capacity / (2 * shards)).max(1);
        let mut k = [0u8; 16];
        crate::crypto::random_bytes(&mut k);
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_table,
            k0: u64::from_le_bytes(k[..8].try_into().expect("8 bytes")),
            k1: u64::from_le_bytes(k[8..].try_into().expect("8 bytes")),
        }
    }

    /// The cache key of a value.
    pub fn key(&self, kind: PiiKind, scope: &str, value: &str) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write(kind.as_str().as_bytes());
        h.write_u8(0xff);
        h.write(scope.as_bytes());
        h.write_u8(0xff);
        h.write(value.as_bytes());
        h.finish128().as_u128()
    }

    /// The shard of a key, from its high bits (the table's hash uses the low ones).
    fn shard_of(&self, key: u128) -> usize {
        (((key >> 64) as u64 as u128 * self.shards.len() as u128) >> 64) as usize
    }

    /// The tokens of `keys` held now, taking each shard's lock once for all of them. A hit in
    /// the older table moves to the newer.
    pub fn get_many(&self, keys: &[u128]) -> Vec<Option<PackedToken>> {
        // Shards are always locked in index order, one at a time elsewhere: no deadlock.
        let mut shards: Vec<_> = self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner())).collect();
        keys.iter()
            .map(|&key| {
                let s = &mut shards[self.shard_of(key)];
                let k = Key(key.to_le_bytes());
                if let Some(t) = s.current.get(&k) {
                    return Some(*t);
                }
                let t = s.previous.remove(&k)?;
                Self::insert_into(s, self.per_table, k, t);
                Some(t)
            })
            .collect()
    }

    /// Remembers `token` for `key`; a token not of the form `<prefix>_<body>` is not kept.
    pub fn insert(&self, key: u128, token: &str) {
        let Some(entry) = PackedToken::parse(token) else { return };
        let mut s = self.shards[self.shard_of(key)].lock().unwrap_or_else(|p| p.into_inner());
        Self::insert_into(&mut s, self.per_table, Key(key.to_le_bytes()), entry);
    }

    fn insert_into(s: &mut Shard, per_table: usize, key: Key, e: PackedToken) {
        if s.current.len() >= per_table && !s.current.contains_key(&key) {
            s.previous = std::mem::take(&mut s.current);
        }
        s.current.insert(key, e);
    }

    /// Forgets everything (subjects were erased, by this process or another).
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut s = shard.lock().unwrap_or_else(|p| p.into_inner());
            *s = Shard::default();
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.current.len() + s.previous.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some_token(kind: PiiKind, i: u128) -> String {
        let body = crate::token_id::encode_body(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834));
        format!("{}_{}", kind.token_prefix(), std::str::from_utf8(&body).unwrap())
    }

    #[test]
    fn the_cache_stays_within_its_capacity_and_gives_tokens_back_as_they_were() {
        let c = TokenCache::new(320);
        for i in 0..10_000u32 {
            let k = c.key(PiiKind::Msisdn, "", &i.to_string());
            c.insert(k, &some_token(PiiKind::Msisdn, i.into()));
        }
        assert!(c.len() <= 320, "{}", c.len());
        let k = c.key(PiiKind::Msisdn, "", "9999");
        let unknown = c.key(PiiKind::Msisdn, "", "1");
        let many = c.get_many(&[k, unknown, k]);
        let expected = some_token(PiiKind::Msisdn, 9999);
        assert_eq!(
            many.iter().map(|t| t.map(|t| t.to_string())).collect::<Vec<_>>(),
            vec![Some(expected.clone()), None, Some(expected)]
        );
        c.clear();
        assert!(c.get_many(&[k])[0].is_none());
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn large_caches_are_split_into_fixed_tables_and_hold_what_they_promise() {
        let c = TokenCache::new(1_000_000);
        assert_eq!(c.shards.len(), 1_000_000usize.div_ceil(2 * TABLE_ENTRIES));
        assert!(c.per_table <= TABLE_ENTRIES && c.shards.len() * c.per_table * 2 > 990_000);
        let keys: Vec<u128> = (0..400_000u32).map(|i| c.key(PiiKind::Imsi, "", &i.to_string())).collect();
        for (i, k) in keys.iter().enumerate() {
            c.insert(*k, &some_token(PiiKind::Imsi, i as u128));
        }
        assert!(c.len() <= 1_000_000);
        // Fewer entries than half the capacity, spread over the shards: every one is still held.
        let hits = c.get_many(&keys).iter().filter(|t| t.is_some()).count();
        assert_eq!(hits, keys.len());
        // More new keys than the capacity: the older entries go, a table at a time.
        for i in 0..1_200_000u32 {
            c.insert(c.key(PiiKind::Imsi, "new", &i.to_string()), &some_token(PiiKind::Imsi, i.into()));
        }
        assert!(c.len() <= 1_000_000, "{}", c.len());
        assert!(c.get_many(&keys).iter().all(Option::is_none));
    }

    #[test]
    fn a_token_keeps_its_own_prefix_and_odd_tokens_are_not_kept() {
        let c = TokenCache::new(100);
        // An other-party number that is a customer's line has the line's token.
        let k = c.key(PiiKind::OtherParty, "2026-12", "393401234567");
        let line = some_token(PiiKind::Msisdn, 7);
        c.insert(k, &line);
        assert_eq!(c.get_many(&[k])[0].map(|t| t.to_string()), Some(line));
        for odd in ["msi_short", "nope_0000000000000000000000000", "opa-0123"] {
            let k = c.key(PiiKind::OtherParty, "", odd);
            c.insert(k, odd);
            assert!(c.get_many(&[k])[0].is_none(), "{odd}");
        }
    }

    #[test]
    fn a_hit_in_the_older_table_keeps_the_entry_through_the_next_rotation() {
        let c = TokenCache::new(4);
        assert_eq!((c.shards.len(), c.per_table), (1, 2));
        let k: Vec<u128> = (0..4).map(|i| c.key(PiiKind::Msisdn, "", &i.to_string())).collect();
        let t: Vec<String> = (0..4).map(|i| some_token(PiiKind::Msisdn, i)).collect();
        c.insert(k[0], &t[0]);
        c.insert(k[1], &t[1]);
        c.insert(k[2], &t[2]); // 0 and 1 are the older table now
        assert_eq!(c.get_many(&[k[0]])[0].map(|t| t.to_string()).as_ref(), Some(&t[0])); // 0 moves to the newer
        c.insert(k[3], &t[3]); // the newer table (2, 0) is full: it becomes the older, 1 goes
        let held = c.get_many(&k);
        assert!(held[0].is_some() && held[1].is_none() && held[2].is_some() && held[3].is_some());
    }

    #[test]
    fn kind_and_scope_separate_entries() {
        let c = TokenCache::new(100);
        assert_ne!(c.key(PiiKind::Msisdn, "", "1"), c.key(PiiKind::OtherParty, "", "1"));
        assert_ne!(c.key(PiiKind::OtherParty, "2026-11", "1"), c.key(PiiKind::OtherParty, "2026-12", "1"));
    }
}
