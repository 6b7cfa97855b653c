//! FF1 format-preserving encryption (NIST SP 800-38G), radix 10.
//!
//! Only FF1: FF3 and FF3-1 have published attacks. A value keeps its length and its first
//! `keep` digits (the country code of an MSISDN); the rest is encrypted. The encrypted part
//! must have at least 6 digits (a domain of 10^6 or more): with fewer, an attacker could
//! enumerate the whole domain. Even above that floor, a small domain is weaker than a random
//! token: anyone holding the key and a candidate value can test it, and equal values give
//! equal outputs. Use `token` unless a downstream system needs the format.

use aes::Aes256;
use fpe::ff1::{FF1, FlexibleNumeralString};

use crate::PrivacyError;

/// The smallest number of encrypted digits accepted (domain ≥ 10^6).
pub const MIN_DIGITS: usize = 6;

fn split(value: &str, keep: usize) -> Result<(&str, Vec<u16>), PrivacyError> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PrivacyError::Invalid("FF1 takes digits only".into()));
    }
    if value.len() < keep + MIN_DIGITS {
        return Err(PrivacyError::Invalid(format!(
            "FF1 needs at least {MIN_DIGITS} digits after the {keep} kept ones (a domain of 10^6), found {}",
            value.len().saturating_sub(keep)
        )));
    }
    let (kept, rest) = value.split_at(keep);
    Ok((kept, rest.bytes().map(|b| u16::from(b - b'0')).collect()))
}

fn join(kept: &str, digits: Vec<u16>) -> String {
    let mut out = String::with_capacity(kept.len() + digits.len());
    out.push_str(kept);
    out.extend(digits.into_iter().map(|d| char::from(b'0' + d as u8)));
    out
}

/// An FF1 cipher for one key.
pub(crate) struct Ff1(FF1<Aes256>);

impl Ff1 {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(FF1::<Aes256>::new(key, 10).expect("radix 10 is valid"))
    }

    /// Encrypts all but the first `keep` digits; `tweak` separates fields.
    pub fn encrypt(&self, tweak: &[u8], value: &str, keep: usize) -> Result<String, PrivacyError> {
        let (kept, digits) = split(value, keep)?;
        let out = self
            .0
            .encrypt(tweak, &FlexibleNumeralString::from(digits))
            .map_err(|_| PrivacyError::Invalid("FF1 refused the value's length".into()))?;
        Ok(join(kept, out.into()))
    }

    /// The inverse of [`Ff1::encrypt`].
    pub fn decrypt(&self, tweak: &[u8], value: &str, keep: usize) -> Result<String, PrivacyError> {
        let (kept, digits) = split(value, keep)?;
        let out = self
            .0
            .decrypt(tweak, &FlexibleNumeralString::from(digits))
            .map_err(|_| PrivacyError::Invalid("FF1 refused the value's length".into()))?;
        Ok(join(kept, out.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ff1_round_trips_and_preserves_the_format(value in "39[0-9]{6,13}", tweak in "[a-z_]{1,12}") {
            let f = Ff1::new(&[7u8; 32]);
            let enc = f.encrypt(tweak.as_bytes(), &value, 2).unwrap();
            prop_assert_eq!(enc.len(), value.len());
            prop_assert!(enc.starts_with("39"));
            prop_assert!(enc.bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(f.decrypt(tweak.as_bytes(), &enc, 2).unwrap(), value);
        }
    }

    #[test]
    fn a_domain_below_a_million_is_refused() {
        let f = Ff1::new(&[7u8; 32]);
        assert!(f.encrypt(b"t", "3912345", 2).is_err());
        assert!(f.encrypt(b"t", "39123456", 2).is_ok());
    }

    #[test]
    fn the_tweak_changes_the_output() {
        let f = Ff1::new(&[7u8; 32]);
        assert_ne!(f.encrypt(b"a", "393401234567", 2).unwrap(), f.encrypt(b"b", "393401234567", 2).unwrap());
    }
}
