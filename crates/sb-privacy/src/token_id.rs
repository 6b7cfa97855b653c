//! Tokens as encrypted row ids.
//!
//! A token's body is one AES-256 block — the kind's code, the row's random 56-bit salt and its id —
//! encrypted under a vault key and written as 26 characters of Crockford's base32. Without the
//! key a token is indistinguishable from random and says nothing about the value (nor about
//! when it was made); with it, the vault finds the row by its primary key. So the vault needs
//! no index on tokens, and each new token costs one random index insertion (the fingerprint)
//! instead of two: first-time tokenisation is bound by those page writes.
//!
//! The row must hold the token's salt: a forged or mistyped token names no row (the kind byte
//! and the 56-bit salt must both match). Row ids are never reused (a counter, not `MAX(id)`);
//! and should a vault be restored from a backup, whose counter is behind, a token minted after
//! the backup decodes to an id the restored vault may hand out again, but with another salt:
//! it names nothing rather than another person's value. Tokens made before this scheme (random
//! bodies, stored in the `token` column) keep working through that column.

use aes::Aes256;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

use crate::PiiKind;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters of a token body.
pub(crate) const BODY_LEN: usize = 26;

/// A fixed code per kind, inside the block: never renumber (tokens in the lake carry them).
fn kind_code(kind: PiiKind) -> u8 {
    match kind {
        PiiKind::Msisdn => 1,
        PiiKind::Imsi => 2,
        PiiKind::Imei => 3,
        PiiKind::OtherParty => 4,
        PiiKind::Name => 5,
        PiiKind::Address => 6,
        PiiKind::Email => 7,
        PiiKind::TaxCode => 8,
        PiiKind::Iban => 9,
        PiiKind::BirthDate => 10,
        PiiKind::CellId => 11,
        PiiKind::Ip => 12,
        PiiKind::FreeText => 13,
    }
}

/// Bits of a row's salt (the block's bytes 1 to 7).
pub(crate) const SALT_MASK: i64 = (1 << 56) - 1;

/// A new row's salt.
pub(crate) fn random_salt() -> i64 {
    let mut b = [0u8; 8];
    crate::crypto::random_bytes(&mut b);
    i64::from_le_bytes(b) & SALT_MASK
}

/// Encrypts and decrypts token bodies.
#[derive(Clone)]
pub(crate) struct TokenIds(Aes256);

impl TokenIds {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(Aes256::new(key.into()))
    }

    /// The token of row `id` of `kind` with its `salt`: `<prefix>_<26 characters>`.
    pub fn encode(&self, kind: PiiKind, id: i64, salt: i64) -> String {
        let body = encode_body(self.body(kind, id, salt));
        let mut out = String::with_capacity(kind.token_prefix().len() + 1 + BODY_LEN);
        out.push_str(kind.token_prefix());
        out.push('_');
        out.push_str(std::str::from_utf8(&body).expect("ASCII alphabet"));
        out
    }

    /// The 128-bit body of row `id`'s token: one AES block, no text.
    pub fn body(&self, kind: PiiKind, id: i64, salt: i64) -> u128 {
        let mut block = [0u8; 16];
        block[0] = kind_code(kind);
        block[1..8].copy_from_slice(&(salt & SALT_MASK).to_be_bytes()[1..]);
        block[8..].copy_from_slice(&id.to_be_bytes());
        let mut b = block.into();
        self.0.encrypt_block(&mut b);
        u128::from_be_bytes(b.into())
    }

    /// The row id and salt a token of `kind` stands for, if `token` is one made by
    /// [`TokenIds::encode`] with this key. The row must also hold that salt.
    pub fn decode(&self, kind: PiiKind, token: &str) -> Option<(i64, i64)> {
        let body = token.strip_prefix(kind.token_prefix())?.strip_prefix('_')?;
        let mut b = decode_body(body)?.to_be_bytes().into();
        self.0.decrypt_block(&mut b);
        let block: [u8; 16] = b.into();
        if block[0] != kind_code(kind) {
            return None;
        }
        let mut salt = [0u8; 8];
        salt[1..].copy_from_slice(&block[1..8]);
        Some((i64::from_be_bytes(block[8..].try_into().expect("eight bytes")), i64::from_be_bytes(salt)))
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

/// Each byte's value in [`ALPHABET`], or 0xff.
const DIGITS: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The inverse of [`encode_body`]; `None` for anything it could not have made.
pub(crate) fn decode_body(body: &str) -> Option<u128> {
    let bytes = body.as_bytes();
    // 26 characters carry 130 bits: the first may use only its three low bits.
    if bytes.len() != BODY_LEN || DIGITS[usize::from(bytes[0])] > 7 {
        return None;
    }
    let mut n: u128 = 0;
    for &c in bytes {
        let v = DIGITS[usize::from(c)];
        if v == 0xff {
            return None;
        }
        n = (n << 5) | u128::from(v);
    }
    Some(n)
}

/// A token in 17 bytes instead of its text (about 30): the kind of its prefix and its 128-bit
/// body. Tokens are ordered as their text is, so sorting packed tokens sorts the tokens.
///
/// ```
/// use sb_privacy::PackedToken;
/// let text = "msi_0123456789abcdefghjkmnpqrs";
/// let packed = PackedToken::parse(text).unwrap();
/// assert_eq!(packed.to_string(), text);
/// assert_eq!(&*packed.to_arc(), text);
/// let mut out = String::from("x ");
/// packed.push_to(&mut out);
/// assert_eq!(out, format!("x {text}"));
/// assert_eq!(PackedToken::from_bytes(packed.to_bytes()), Some(packed));
/// assert!(PackedToken::parse("msi_not-a-token").is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PackedToken {
    /// The prefix's kind, as its index in [`PiiKind::ALL`].
    kind: u8,
    /// Big-endian, so that byte order is the text's order.
    body: [u8; 16],
}

impl PackedToken {
    /// The packed form of `token`, if it is `<prefix>_<26 base32 characters>` (every token a
    /// vault makes); `None` for other text (the value of another policy than `token`).
    pub fn parse(token: &str) -> Option<Self> {
        let (prefix, body) = token.split_once('_')?;
        let kind = PiiKind::ALL.iter().position(|k| k.token_prefix() == prefix)?;
        Some(Self { kind: u8::try_from(kind).ok()?, body: decode_body(body)?.to_be_bytes() })
    }

    /// The token of `kind` whose body is `body`.
    pub(crate) fn from_body(kind: PiiKind, body: u128) -> Self {
        let index = PiiKind::ALL.iter().position(|k| *k == kind).expect("every kind is in ALL");
        Self { kind: u8::try_from(index).expect("few kinds"), body: body.to_be_bytes() }
    }

    /// The token in 17 bytes (its kind's index, then its body), for files of one process.
    pub fn to_bytes(&self) -> [u8; 17] {
        let mut b = [0u8; 17];
        b[0] = self.kind;
        b[1..].copy_from_slice(&self.body);
        b
    }

    /// The inverse of [`PackedToken::to_bytes`]; `None` for a kind that does not exist.
    pub fn from_bytes(b: [u8; 17]) -> Option<Self> {
        (usize::from(b[0]) < PiiKind::ALL.len())
            .then(|| Self { kind: b[0], body: b[1..].try_into().expect("sixteen bytes") })
    }

    /// The kind whose prefix the token carries.
    pub fn kind(&self) -> PiiKind {
        PiiKind::ALL[usize::from(self.kind)]
    }

    /// A number spread evenly over `u64` (the body is a cipher block or random bytes).
    pub fn spread(&self) -> u64 {
        u64::from_le_bytes(self.body[8..].try_into().expect("eight bytes"))
    }
}

impl PackedToken {
    /// The token's text, on the stack: the buffer and its length.
    fn text(&self) -> ([u8; 48], usize) {
        let prefix = self.kind().token_prefix().as_bytes();
        let mut text = [0u8; 48];
        let n = prefix.len() + 1 + BODY_LEN;
        text[..prefix.len()].copy_from_slice(prefix);
        text[prefix.len()] = b'_';
        text[prefix.len() + 1..n].copy_from_slice(&encode_body(u128::from_be_bytes(self.body)));
        (text, n)
    }

    /// The token's text in a shared string, written once (no intermediate `String`).
    pub fn to_arc(&self) -> std::sync::Arc<str> {
        let (text, n) = self.text();
        std::sync::Arc::from(std::str::from_utf8(&text[..n]).expect("ASCII prefix and alphabet"))
    }

    /// Appends the token's text to `out` (no allocation of its own).
    pub fn push_to(&self, out: &mut String) {
        let (text, n) = self.text();
        out.push_str(std::str::from_utf8(&text[..n]).expect("ASCII prefix and alphabet"));
    }
}

impl std::fmt::Display for PackedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (text, n) = self.text();
        f.write_str(std::str::from_utf8(&text[..n]).expect("ASCII prefix and alphabet"))
    }
}

impl Ord for PackedToken {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Prefixes have one length and the body's characters one width: text order is the
        // prefixes' order, then the bodies'.
        (self.kind().token_prefix(), self.body).cmp(&(other.kind().token_prefix(), other.body))
    }
}

impl PartialOrd for PackedToken {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_decode_to_their_id_and_kind_only() {
        let ids = TokenIds::new(&[3u8; 32]);
        let t = ids.encode(PiiKind::Msisdn, 42, 0x00ab_cdef_0123_4567);
        assert_eq!(t.len(), PiiKind::Msisdn.token_prefix().len() + 1 + BODY_LEN);
        assert_eq!(ids.decode(PiiKind::Msisdn, &t), Some((42, 0x00ab_cdef_0123_4567)));
        assert_ne!(ids.encode(PiiKind::Msisdn, 42, 1), t, "the same id with another salt is another token");
        assert_eq!(
            ids.decode(PiiKind::Imsi, &t.replacen(PiiKind::Msisdn.token_prefix(), PiiKind::Imsi.token_prefix(), 1)),
            None
        );
        assert_eq!(TokenIds::new(&[4u8; 32]).decode(PiiKind::Msisdn, &t), None);
        assert_ne!(
            ids.encode(PiiKind::Msisdn, 43, 0x00ab_cdef_0123_4567)[..10],
            t[..10],
            "consecutive ids look unrelated"
        );
        let codes: std::collections::HashSet<u8> = PiiKind::ALL.iter().map(|k| kind_code(*k)).collect();
        assert_eq!(codes.len(), PiiKind::ALL.len(), "one code per kind");
    }

    #[test]
    fn packed_tokens_read_back_as_their_text_and_sort_as_it_does() {
        let ids = TokenIds::new(&[5u8; 32]);
        let mut texts: Vec<String> = (0..200)
            .map(|i| ids.encode(if i % 3 == 0 { PiiKind::Imsi } else { PiiKind::Msisdn }, i, 77))
            .chain([format!("opa_{}", crate::crypto::random_token_body())])
            .collect();
        let mut packed: Vec<PackedToken> = texts.iter().map(|t| PackedToken::parse(t).expect(t)).collect();
        for (t, p) in texts.iter().zip(&packed) {
            assert_eq!(&p.to_string(), t);
        }
        texts.sort();
        packed.sort();
        assert_eq!(packed.iter().map(ToString::to_string).collect::<Vec<_>>(), texts);
        let p = PiiKind::Msisdn.token_prefix();
        for bad in [
            String::new(),
            "393401234567".to_owned(),
            format!("{p}_{}", "0".repeat(25)),
            format!("{p}_{}", "z".repeat(26)),
            format!("{p}_{}u", "0".repeat(25)),
            format!("zzz_{}", "0".repeat(26)),
        ] {
            assert_eq!(PackedToken::parse(&bad), None, "{bad}");
        }
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
        // A random body decodes to some id and salt only when its kind byte matches (1/256);
        // it then names no row, whose salt would have to match too (the vault checks).
        let decoded = (0..64)
            .filter(|_| ids.decode(PiiKind::Msisdn, &format!("{p}_{}", crate::crypto::random_token_body())).is_some())
            .count();
        assert!(decoded < 8, "{decoded} of 64 random bodies passed the kind check");
    }
}
