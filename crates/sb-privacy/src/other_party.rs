//! Tokens of non-customers' numbers: encrypted under their month's key, stored nowhere.
//!
//! The other party of a call or SMS who is not one of our customers gets the token
//! `opa_<month subject>-<26 characters>`: one AES-256 block — the value's length and bytes,
//! zero-padded — encrypted under a key derived from the month subject's data key. The same
//! number in the same month always gets the same token (joins and counts work); two months
//! give unrelated tokens; the vault keeps no row per number, so tokenising the millions of
//! distinct numbers an operator's customers call costs no database write. Revealing decrypts
//! under the month's key; once the retention job destroys that key, the month's tokens can be
//! neither revealed nor produced again (late traffic of that month gets a new month subject).
//!
//! Values that do not fit one block (more than 15 bytes) or are not printable ASCII keep the
//! stored form (a row in `vault_tokens`, as every token had before).

use aes::Aes256;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

use crate::crypto;
use crate::token_id::{decode_body, encode_body};

/// Longest value encrypted in a block (one byte holds the length).
pub(crate) const MAX_LEN: usize = 15;
const PREFIX: &str = "opa_";

/// Whether `value` can have a block token.
pub(crate) fn fits(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_LEN && value.bytes().all(|b| b.is_ascii_graphic())
}

fn cipher(subject_key: &[u8; 32]) -> Aes256 {
    let key = crypto::derive(subject_key, "other-party-token");
    let key: &[u8; 32] = &key;
    Aes256::new(key.into())
}

/// A month's block cipher, derived once (key derivation and the AES key schedule cost more
/// than the block itself, and a month's tokens are made by the million).
#[derive(Clone)]
pub(crate) struct MonthCipher {
    sid: i64,
    aes: Aes256,
}

impl MonthCipher {
    /// The cipher of month subject `sid`, whose data key is `subject_key`.
    pub(crate) fn new(subject_key: &[u8; 32], sid: i64) -> Self {
        Self { sid, aes: cipher(subject_key) }
    }

    /// The month subject.
    pub(crate) fn sid(&self) -> i64 {
        self.sid
    }

    /// The token of `value` (which [`fits`]).
    pub(crate) fn encode(&self, value: &str) -> String {
        let mut block = [0u8; 16];
        block[0] = value.len() as u8;
        block[1..=value.len()].copy_from_slice(value.as_bytes());
        let mut b = block.into();
        self.aes.encrypt_block(&mut b);
        let body = encode_body(u128::from_be_bytes(b.into()));
        format!("{PREFIX}{}-{}", self.sid, std::str::from_utf8(&body).expect("ASCII alphabet"))
    }
}

/// The token of `value` (which [`fits`]) under month subject `sid`, whose data key is `key`.
#[cfg(test)]
pub(crate) fn encode(subject_key: &[u8; 32], sid: i64, value: &str) -> String {
    MonthCipher::new(subject_key, sid).encode(value)
}

/// The month subject and the body of a block token, if `token` is one.
pub(crate) fn parse(token: &str) -> Option<(i64, &str)> {
    let (sid, body) = token.strip_prefix(PREFIX)?.split_once('-')?;
    if sid.is_empty() || !sid.bytes().all(|b| b.is_ascii_digit()) || decode_body(body).is_none() {
        return None;
    }
    Some((sid.parse().ok()?, body))
}

/// The value behind a block token's body, under its month subject's data key; `None` when
/// the body was not made with this key (the padding and the text do not check out).
pub(crate) fn decode(subject_key: &[u8; 32], body: &str) -> Option<String> {
    let mut b = decode_body(body)?.to_be_bytes().into();
    cipher(subject_key).decrypt_block(&mut b);
    let block: [u8; 16] = b.into();
    let len = block[0] as usize;
    if len == 0 || len > MAX_LEN || block[len + 1..].iter().any(|&x| x != 0) {
        return None;
    }
    let value = std::str::from_utf8(&block[1..=len]).ok()?;
    fits(value).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_round_trips_under_its_month_key_only() {
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        let t = encode(&k1, 17, "390612345678");
        assert!(t.starts_with("opa_17-") && t.len() == "opa_17-".len() + 26, "{t}");
        assert_eq!(encode(&k1, 17, "390612345678"), t, "stable within the month");
        assert_ne!(encode(&k2, 18, "390612345678")[7..], t[7..], "unrelated across months");
        let (sid, body) = parse(&t).unwrap();
        assert_eq!(sid, 17);
        assert_eq!(decode(&k1, body).as_deref(), Some("390612345678"));
        assert_eq!(decode(&k2, body), None, "another month's key gives nothing");
    }

    #[test]
    fn what_fits_a_block() {
        assert!(fits("4916") && fits("BANCA-XY") && fits(&"9".repeat(15)));
        assert!(!fits("") && !fits(&"9".repeat(16)) && !fits("with space") && !fits("città"));
        assert_eq!(parse("opa_x-abc"), None);
        assert_eq!(parse("msi_0123456789abcdefghjkmnpqrs"), None);
    }
}
