//! A kind's directory entries in about 30 bytes each, whatever the table's fill.
//!
//! A hash map of 29-byte entries sizes its slots by powers of two: at 2 million entries (a
//! 2-million-line operator's MSISDNs, IMSIs or IMEIs) it holds 4,194,304 slots, 126 MB a kind,
//! and the old table's 63 MB besides while it grows. Here the entries are one array sorted by key, found through
//! a bucket index (the position of the first entry of each range of the keys' top bits, one
//! bucket for about eight entries: 0.5 bytes an entry), so a look costs the bucket's position
//! and a few adjacent entries. Entries added since the array was built wait in a small map, and
//! are merged in once they reach an eighth of it. The keys are HMACs, uniformly random, so the
//! buckets stay even.

use std::collections::HashMap;

use super::{Body, FpKey};

/// Entries a table's map of recent entries holds at least before they are merged: a small
/// table stays a map.
const MIN_MERGE: usize = 1 << 16;

/// Entries per bucket of the index, on average.
const PER_BUCKET: usize = 8;

/// A kind's fingerprint → body entries.
pub(super) struct Table {
    /// Sorted by key; no key twice, and none of `recent`'s.
    sorted: Vec<(FpKey, Body)>,
    /// `starts[b]`: the index in `sorted` of the first entry of bucket `b`; one more at the end.
    starts: Vec<u32>,
    /// A key's bucket: its first eight bytes (big-endian) shifted right by this.
    shift: u32,
    /// Entries added since `sorted` was built.
    recent: HashMap<FpKey, Body, sb_core::hash::BuildIdentity>,
    /// `recent` is merged once it holds more than this (and an eighth of `sorted`).
    min_merge: usize,
}

impl Default for Table {
    fn default() -> Self {
        Self::with_min_merge(MIN_MERGE)
    }
}

impl Table {
    fn with_min_merge(min_merge: usize) -> Self {
        Self { sorted: Vec::new(), starts: vec![0, 0], shift: 64, recent: HashMap::default(), min_merge }
    }

    /// A table of `entries` (in any order; of a key given twice, the last counts).
    pub fn from_entries(mut entries: Vec<(FpKey, Body)>) -> Self {
        // A saved snapshot comes in key order already.
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            // Stable: of equal keys, the last given stays last, and is kept.
            entries.sort_by_key(|e| e.0);
            entries.reverse();
            entries.dedup_by_key(|e| e.0);
            entries.reverse();
        }
        entries.shrink_to_fit();
        let mut t = Self { sorted: entries, ..Self::default() };
        t.index();
        t
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A key's bucket.
    fn bucket(&self, key: &FpKey) -> usize {
        let top = u64::from_be_bytes(key.0[..8].try_into().expect("eight bytes"));
        top.checked_shr(self.shift).unwrap_or(0) as usize
    }

    /// The index in `sorted` of `key`.
    fn position(&self, key: &FpKey) -> Option<usize> {
        let b = self.bucket(key);
        let (start, end) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        self.sorted[start..end].iter().position(|e| e.0 == *key).map(|i| start + i)
    }

    pub fn get(&self, key: &FpKey) -> Option<&Body> {
        match self.position(key) {
            Some(i) => Some(&self.sorted[i].1),
            None => self.recent.get(key),
        }
    }

    pub fn insert(&mut self, key: FpKey, body: Body) {
        if let Some(i) = self.position(&key) {
            self.sorted[i].1 = body;
            return;
        }
        self.recent.insert(key, body);
        if self.recent.len() > self.min_merge.max(self.sorted.len() / 8) {
            self.merge();
        }
    }

    /// Every entry: in key order after [`Table::merge`], the recent ones last otherwise.
    pub fn iter(&self) -> impl Iterator<Item = (&FpKey, &Body)> {
        self.sorted.iter().map(|(k, v)| (k, v)).chain(self.recent.iter())
    }

    /// `recent` into `sorted`: the two hold no key in common, so a plain merge.
    pub fn merge(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let mut fresh: Vec<(FpKey, Body)> = self.recent.drain().collect();
        self.recent.shrink_to(0);
        fresh.sort_unstable_by_key(|e| e.0);
        let old = std::mem::take(&mut self.sorted);
        let mut merged = Vec::with_capacity(old.len() + fresh.len());
        let (mut a, mut b) = (old.into_iter().peekable(), fresh.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => {
                    if x.0 < y.0 {
                        a.next()
                    } else {
                        b.next()
                    }
                }
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        self.sorted = merged;
        self.index();
    }

    /// Builds the bucket index of `sorted`.
    fn index(&mut self) {
        let buckets = (self.sorted.len() / PER_BUCKET).max(1).next_power_of_two();
        self.shift = 64 - buckets.trailing_zeros();
        let mut starts = Vec::with_capacity(buckets + 1);
        for (i, e) in self.sorted.iter().enumerate() {
            let b = self.bucket(&e.0);
            while starts.len() <= b {
                starts.push(i as u32);
            }
        }
        starts.resize(buckets + 1, self.sorted.len() as u32);
        self.starts = starts;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> FpKey {
        // Spread like an HMAC: the top bits vary.
        let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ i;
        let mut k = [0u8; 12];
        k[..8].copy_from_slice(&h.to_be_bytes());
        k[8..].copy_from_slice(&(i as u32).to_be_bytes());
        FpKey(k)
    }

    fn body(i: u64) -> Body {
        (!i.is_multiple_of(7)).then(|| u128::from(i).to_be_bytes())
    }

    #[test]
    fn the_table_answers_as_a_map_through_merges_and_overwrites() {
        let mut t = Table::with_min_merge(100);
        let mut m: HashMap<FpKey, Body> = HashMap::new();
        for i in 0..20_000u64 {
            t.insert(key(i), body(i));
            m.insert(key(i), body(i));
            // Some keys come again (a row read twice) with the same or another body.
            if i.is_multiple_of(13) {
                t.insert(key(i / 2), body(i));
                m.insert(key(i / 2), body(i));
            }
        }
        assert!(t.sorted.len() > 10_000, "merged: {} sorted, {} recent", t.sorted.len(), t.recent.len());
        assert_eq!(t.len(), m.len());
        for i in 0..25_000u64 {
            assert_eq!(t.get(&key(i)), m.get(&key(i)), "key {i}");
        }
        let mut listed: Vec<(FpKey, Body)> = t.iter().map(|(k, v)| (*k, *v)).collect();
        listed.sort_by_key(|e| e.0);
        let mut expected: Vec<(FpKey, Body)> = m.into_iter().collect();
        expected.sort_by_key(|e| e.0);
        assert!(listed == expected);
        // Merged, it lists in key order (a saved snapshot is read back without a sort).
        t.merge();
        assert!(t.recent.is_empty() && t.iter().map(|(k, _)| *k).is_sorted());
        assert!((0..25_000u64).all(|i| t.get(&key(i)) == m_get(&expected, i)));
    }

    fn m_get(sorted: &[(FpKey, Body)], i: u64) -> Option<&Body> {
        sorted.binary_search_by_key(&key(i), |e| e.0).ok().map(|p| &sorted[p].1)
    }

    #[test]
    fn a_table_from_entries_keeps_the_last_of_a_key_and_finds_every_one() {
        let mut entries: Vec<(FpKey, Body)> = (0..5_000u64).map(|i| (key(i), body(i))).collect();
        entries.push((key(3), body(8)));
        let t = Table::from_entries(entries);
        assert_eq!(t.len(), 5_000);
        assert_eq!(t.get(&key(3)), Some(&body(8)));
        assert!((0..5_000u64).filter(|&i| i != 3).all(|i| t.get(&key(i)) == Some(&body(i))));
        assert_eq!(t.get(&key(5_000)), None);
        assert!(Table::default().get(&key(1)).is_none() && Table::default().is_empty());
    }
}
