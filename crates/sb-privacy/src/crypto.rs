//! The primitives, in one place: HKDF, HMAC, AES-256-GCM-SIV, AES key wrap, randomness.
//! Every secret byte array here is `Zeroizing`, wiped when dropped.

use aes_gcm_siv::aead::Aead;
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use aes_kw::KwAes256;
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use rand::{RngCore, TryRngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::PrivacyError;

/// A 256-bit secret key, wiped on drop.
pub(crate) type Key = Zeroizing<[u8; 32]>;
/// Bytes of a nonce of AES-GCM-SIV.
pub(crate) const NONCE_LEN: usize = 12;
/// Bytes of a wrapped 256-bit key (AES-KW adds 8).
pub(crate) const WRAPPED_LEN: usize = 40;

/// A fresh random key from the operating system's generator.
pub(crate) fn random_key() -> Key {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.try_fill_bytes(k.as_mut()).expect("the OS random generator failed");
    k
}

/// Fills `buf` with random bytes from a cryptographically secure, OS-seeded generator.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    rand::rng().fill_bytes(buf);
}

/// HKDF-SHA256 of `root` for one purpose.
pub(crate) fn derive(root: &[u8; 32], info: &str) -> Key {
    let mut out = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(b"switchboard-privacy-v1"), root)
        .expand(info.as_bytes(), out.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// HMAC-SHA256 of length-prefixed parts (so that ("ab","c") and ("a","bc") differ).
pub(crate) fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    MacKey::new(key).mac(parts)
}

/// An HMAC-SHA256 key with its padded blocks already hashed: each MAC then costs two
/// compressions of SHA-256 instead of four (a fingerprint is made per value looked up). The
/// state is as secret as the key; it is wiped on drop (`hmac`'s `zeroize` feature).
pub(crate) struct MacKey(Hmac<Sha256>);

impl MacKey {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self(<Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length fits HMAC"))
    }

    /// The MAC of length-prefixed parts, as [`hmac`] makes it.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.0.clone();
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

/// AES-256-GCM-SIV: `nonce || ciphertext+tag`, with `aad` bound to it.
pub(crate) fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = Aes256GcmSiv::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce);
    let ct = cipher
        .encrypt(&Nonce::from(nonce), aes_gcm_siv::aead::Payload { msg: plaintext, aad })
        .expect("AES-GCM-SIV encryption of a bounded message cannot fail");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens what [`seal`] made; fails if the key, the data or the `aad` differ.
pub(crate) fn open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, PrivacyError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(PrivacyError::Corrupt("ciphertext too short"));
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
    let cipher = Aes256GcmSiv::new(key.into());
    cipher
        .decrypt(&Nonce::from(nonce), aes_gcm_siv::aead::Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| PrivacyError::Corrupt("ciphertext does not authenticate"))
}

/// Wraps a data key under a key-encryption key (AES-KW, RFC 3394).
pub(crate) fn wrap(kek: &[u8; 32], key: &[u8; 32]) -> [u8; WRAPPED_LEN] {
    let kw = KwAes256::new(kek.into());
    let mut out = [0u8; WRAPPED_LEN];
    kw.wrap_key(key, &mut out).expect("a 32-byte key wraps into 40 bytes");
    out
}

/// Unwraps what [`wrap`] made; fails if the key-encryption key is not the one used.
pub(crate) fn unwrap(kek: &[u8; 32], wrapped: &[u8]) -> Result<Key, PrivacyError> {
    if wrapped.len() != WRAPPED_LEN {
        return Err(PrivacyError::Corrupt("wrapped key of the wrong length"));
    }
    let kw = KwAes256::new(kek.into());
    let mut out = Zeroizing::new([0u8; 32]);
    kw.unwrap_key(wrapped, out.as_mut()).map_err(|_| PrivacyError::Corrupt("wrapped key does not unwrap"))?;
    Ok(out)
}

/// 128 random bits as 26 characters of Crockford's base32, lower case: the tokens made before
/// migration 0002 looked like this (tests use it to make such tokens).
#[cfg(test)]
pub(crate) fn random_token_body() -> String {
    let mut bytes = [0u8; 16];
    random_bytes(&mut bytes);
    let body = crate::token_id::encode_body(u128::from_be_bytes(bytes));
    String::from_utf8(body.to_vec()).expect("ASCII alphabet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_key_and_context() {
        let k = random_key();
        let sealed = seal(&k, b"393401234567", b"ctx");
        assert_eq!(open(&k, &sealed, b"ctx").unwrap().as_slice(), b"393401234567");
        assert!(open(&k, &sealed, b"other").is_err());
        assert!(open(&random_key(), &sealed, b"ctx").is_err());
    }

    #[test]
    fn a_wrapped_key_unwraps_only_under_its_kek() {
        let (kek, key) = (random_key(), random_key());
        let w = wrap(&kek, &key);
        assert_eq!(*unwrap(&kek, &w).unwrap(), *key);
        assert!(unwrap(&random_key(), &w).is_err());
    }

    #[test]
    fn a_prepared_mac_key_gives_the_fingerprints_already_stored() {
        // RFC 4231 test case 2's key and data, framed as `hmac` frames its parts: the stored
        // fingerprints were made with a fresh HMAC per value, and must still be found.
        let key: [u8; 32] = *b"Jefe\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        let mut fresh = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
        for p in [&b""[..], b"what do ya want for nothing?"] {
            fresh.update(&(p.len() as u64).to_be_bytes());
            fresh.update(p);
        }
        let expected: [u8; 32] = fresh.finalize().into_bytes().into();
        let prepared = MacKey::new(&key);
        let parts: [&[u8]; 2] = [b"", b"what do ya want for nothing?"];
        assert_eq!(prepared.mac(&parts), expected);
        assert_eq!(prepared.mac(&parts), expected, "the prepared state is not consumed");
        assert_eq!(hmac(&key, &parts), expected);
        assert_ne!(prepared.mac(&[b"", b"what do ya want for nothing!"]), expected);
    }

    #[test]
    fn tokens_are_26_unambiguous_characters() {
        let t = random_token_body();
        assert_eq!(t.len(), 26);
        assert!(t.bytes().all(|b| b"0123456789abcdefghjkmnpqrstvwxyz".contains(&b)));
        assert_ne!(t, random_token_body());
    }
}
