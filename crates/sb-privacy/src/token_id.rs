//! Tokens as encrypted row ids.
//!
//! A token's body is one AES-256 block — the kind's code, seven zero bytes and the row's id —
//! encrypted under a vault key and written as 26 characters of Crockford's base32. Without the
//! key a token is indistinguishable from random and says nothing about the value (nor about
//! when it was made); with it, the vault finds the row by its primary key. So the vault needs
//! no index on tokens, and each new token costs one random index insertion (the fingerprint)
//! instead of two: first-time tokenisation is bound by those page writes.
//!
//! The eight fixed bytes (kind and zeros) make a forged or mistyped token fail to decode with
//! probability 1 − 2⁻⁶⁴. Row ids are never reused (a counter, not `MAX(id)`), so a token of an
//! erased value can never come to name another value. Tokens made before this scheme (random
//! bodies, stored in the `token` column) keep working through that column.

use aes::Aes256;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

use crate::PiiKind;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters of a token body.
pub(crate) const BODY_LEN: usize = 26;

fn kind_code(kind: PiiKind) -> u8 {
    PiiKind::ALL.iter().position(|k| *k == kind).expect("every kind is in ALL") as u8 + 1
}

/// Encrypts and decrypts token bodies.
#[derive(Clone)]
pub(crate) struct TokenIds(Aes256);

impl TokenIds {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(Aes256::new(key.into()))
    }

    /// The token of row `id` of `kind`: `<prefix>_<26 characters>`.
    pub fn encode(&self, kind: PiiKind, id: i64) -> String {
        let mut block = [0u8; 16];
        block[0] = kind_code(kind);
        block[8..].copy_from_slice(&id.to_be_bytes());
        let mut b = block.into();
        self.0.encrypt_block(&mut b);
        let body = encode_body(u128::from_be_bytes(b.into()));
        let mut out = String::with_capacity(kind.token_prefix().len() + 1 + BODY_LEN);
        out.push_str(kind.token_prefix());
        out.push('_');
        out.push_str(std::str::from_utf8(&body).expect("ASCII alphabet"));
        out
    }

    /// The row id a token of `kind` stands for, if `token` is one made by [`TokenIds::encode`]
    /// with this key.
    pub fn decode(&self, kind: PiiKind, token: &str) -> Option<i64> {
        let body = token.strip_prefix(kind.token_prefix())?.strip_prefix('_')?;
        let mut b = decode_body(body)?.to_be_bytes().into();
        self.0.decrypt_block(&mut b);
        let block: [u8; 16] = b.into();
        if block[0] != kind_code(kind) || block[1..8].iter().any(|&x| x != 0) {
            return None;
        }
        Some(i64::from_be_bytes(block[8..].try_into().expect("eight bytes")))
    }
}

/// 128 bits as 26 characters of Crockford's base32, lower case.
pub(crate) fn encode_body(mut n: u128) -> [u8; BODY_LEN] {
    let mut body = [0u8; BODY_LEN];
    for c in body.iter_mut().rev() {
        *c = ALPHABET[(n & 31) as usize];
        n >>= 5;
    }
    body
}

/// The inverse of [`encode_body`]; `None` for anything it could not have made.
pub(crate) fn decode_body(body: &str) -> Option<u128> {
    if body.len() != BODY_LEN {
        return None;
    }
    let mut n: u128 = 0;
    for (i, c) in body.bytes().enumerate() {
        let v = ALPHABET.iter().position(|a| *a == c)? as u128;
        // 26 characters carry 130 bits: the first may use only its three low bits.
        if i == 0 && v > 7 {
            return None;
        }
        n = (n << 5) | v;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_decode_to_their_id_and_kind_only() {
        let ids = TokenIds::new(&[3u8; 32]);
        let t = ids.encode(PiiKind::Msisdn, 42);
        assert_eq!(t.len(), PiiKind::Msisdn.token_prefix().len() + 1 + BODY_LEN);
        assert_eq!(ids.decode(PiiKind::Msisdn, &t), Some(42));
        assert_eq!(
            ids.decode(PiiKind::Imsi, &t.replacen(PiiKind::Msisdn.token_prefix(), PiiKind::Imsi.token_prefix(), 1)),
            None
        );
        assert_eq!(TokenIds::new(&[4u8; 32]).decode(PiiKind::Msisdn, &t), None);
        assert_ne!(ids.encode(PiiKind::Msisdn, 43)[..10], t[..10], "consecutive ids look unrelated");
    }

    #[test]
    fn malformed_or_forged_tokens_do_not_decode() {
        let ids = TokenIds::new(&[3u8; 32]);
        let p = PiiKind::Msisdn.token_prefix();
        for bad in
            [String::new(), format!("{p}_"), format!("{p}_{}", "0".repeat(25)), format!("{p}_{}", "z".repeat(26))]
        {
            assert_eq!(ids.decode(PiiKind::Msisdn, &bad), None, "{bad}");
        }
        // A random body (as tokens were made before) decodes with probability 2^-64.
        assert_eq!(ids.decode(PiiKind::Msisdn, &format!("{p}_{}", crate::crypto::random_token_body())), None);
    }
}
