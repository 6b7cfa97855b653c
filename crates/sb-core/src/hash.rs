//! A hasher for keys that are already uniformly distributed (keyed hashes: cache keys, value
//! fingerprints, record-id digests): their low bits are the hash, as is, instead of hashing
//! them a second time on the hot path.
//!
//! ```
//! use std::collections::HashSet;
//! use sb_core::hash::BuildIdentity;
//! let mut seen: HashSet<u128, BuildIdentity> = HashSet::default();
//! assert!(seen.insert(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834));
//! ```

use std::hash::{BuildHasherDefault, Hasher};

/// The identity hasher: `write_u64` and `write_u128` keep the (low) bits as the hash.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
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
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// For `HashMap`/`HashSet` keyed by already-random values.
pub type BuildIdentity = BuildHasherDefault<IdentityHasher>;
