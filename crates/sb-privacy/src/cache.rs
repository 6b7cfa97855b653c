//! The ingestion hot path's memory: value → token, without a database round trip.
//!
//! Keys are keyed 128-bit SipHash values of (kind, scope, value) under a random key made at
//! start, so the cache holds no cleartext and its keys mean nothing outside this process.
//! Bounded: each shard keeps two generations and drops the older one when the newer fills
//! (an approximation of LRU without per-hit bookkeeping). Erasure removes a subject's entries.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::{Arc, Mutex};

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::PiiKind;

const SHARDS: usize = 16;

type Map = HashMap<u128, Entry, sb_core::hash::BuildIdentity>;

#[derive(Clone)]
struct Entry {
    token: Arc<str>,
    subject: i64,
}

#[derive(Default)]
struct Shard {
    current: Map,
    previous: Map,
}

pub(crate) struct TokenCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    k0: u64,
    k1: u64,
}

impl TokenCache {
    /// A cache holding about `capacity` entries (never more than that).
    pub fn new(capacity: usize) -> Self {
        let mut k = [0u8; 16];
        crate::crypto::random_bytes(&mut k);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: (capacity / SHARDS / 2).max(1),
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

    fn shard(&self, key: u128) -> &Mutex<Shard> {
        &self.shards[(key >> 64) as usize % SHARDS]
    }

    /// The tokens of `keys` held now, taking each shard's lock once for all of them. A hit in
    /// the older generation moves to the newer.
    pub fn get_many(&self, keys: &[u128]) -> Vec<Option<Arc<str>>> {
        // Shards are always locked in index order, one at a time elsewhere: no deadlock.
        let mut shards: Vec<_> = self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner())).collect();
        keys.iter()
            .map(|&key| {
                let s = &mut shards[(key >> 64) as usize % SHARDS];
                if let Some(e) = s.current.get(&key) {
                    return Some(Arc::clone(&e.token));
                }
                let e = s.previous.remove(&key)?;
                let token = Arc::clone(&e.token);
                Self::insert_into(s, self.per_shard, key, e);
                Some(token)
            })
            .collect()
    }

    pub fn insert(&self, key: u128, token: Arc<str>, subject: i64) {
        let mut s = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        Self::insert_into(&mut s, self.per_shard, key, Entry { token, subject });
    }

    fn insert_into(s: &mut Shard, per_shard: usize, key: u128, e: Entry) {
        if s.current.len() >= per_shard {
            s.previous = std::mem::take(&mut s.current);
        }
        s.current.insert(key, e);
    }

    /// Forgets every token of these subjects (after erasure or retention).
    pub fn forget_subjects(&self, subjects: &[i64]) {
        if subjects.is_empty() {
            return;
        }
        for shard in &self.shards {
            let mut s = shard.lock().unwrap_or_else(|p| p.into_inner());
            s.current.retain(|_, e| !subjects.contains(&e.subject));
            s.previous.retain(|_, e| !subjects.contains(&e.subject));
        }
    }

    /// Forgets everything (another process destroyed subjects this one may hold).
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut s = shard.lock().unwrap_or_else(|p| p.into_inner());
            s.current.clear();
            s.previous.clear();
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

    #[test]
    fn the_cache_stays_within_its_capacity_and_forgets_subjects() {
        let c = TokenCache::new(320);
        for i in 0..10_000 {
            let k = c.key(PiiKind::Msisdn, "", &i.to_string());
            c.insert(k, Arc::from(format!("t{i}")), i % 3);
        }
        assert!(c.len() <= 320, "{}", c.len());
        let k = c.key(PiiKind::Msisdn, "", "9999");
        let unknown = c.key(PiiKind::Msisdn, "", "1");
        let many = c.get_many(&[k, unknown, k]);
        assert_eq!(many.iter().map(Option::as_deref).collect::<Vec<_>>(), vec![Some("t9999"), None, Some("t9999")]);
        c.forget_subjects(&[9999 % 3]);
        assert!(c.get_many(&[k])[0].is_none());
    }

    #[test]
    fn kind_and_scope_separate_entries() {
        let c = TokenCache::new(100);
        assert_ne!(c.key(PiiKind::Msisdn, "", "1"), c.key(PiiKind::OtherParty, "", "1"));
        assert_ne!(c.key(PiiKind::OtherParty, "2026-11", "1"), c.key(PiiKind::OtherParty, "2026-12", "1"));
    }
}
