//! Validated identifiers: after `parse`, a value is known to be well formed.
//!
//! All of them are personal data. `Debug` prints `<redacted>` and there is no
//! `Display`; code that must write the value calls `as_str()` on purpose.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid identifier. Never holds the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Wrong number of characters.
    #[error("{kind}: expected {expected} characters, found {found}")]
    Length {
        /// The identifier kind (`msisdn`, `iban`, …).
        kind: &'static str,
        /// The accepted length(s), in words.
        expected: &'static str,
        /// The length found.
        found: usize,
    },
    /// A character not allowed at some position.
    #[error("{kind}: unexpected character at position {position} (expected {expected})")]
    Character {
        /// The identifier kind.
        kind: &'static str,
        /// 1-based position of the offending character.
        position: usize,
        /// What belongs there.
        expected: &'static str,
    },
    /// The check digit or character does not match.
    #[error("{kind}: check digit does not match")]
    Check {
        /// The identifier kind.
        kind: &'static str,
    },
    /// A structural rule other than length or check (a prefix, a country).
    #[error("{kind}: {rule}")]
    Rule {
        /// The identifier kind.
        kind: &'static str,
        /// The rule that failed.
        rule: &'static str,
    },
}

fn all_digits(kind: &'static str, s: &str) -> Result<(), IdError> {
    match s.bytes().position(|b| !b.is_ascii_digit()) {
        Some(i) => Err(IdError::Character { kind, position: i + 1, expected: "a digit" }),
        None => Ok(()),
    }
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The identifier as written in files and sent to the vault.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the identifier, giving back its text.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

identifier! {
    /// A mobile line number in E.164 form without `+`: 8 to 15 digits, country code first.
    Msisdn
}

impl Msisdn {
    /// Accepts `393401234567`, `+393401234567` or `00393401234567`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const KIND: &str = "msisdn";
        let digits = s.strip_prefix('+').or_else(|| s.strip_prefix("00")).unwrap_or(s);
        if !(8..=15).contains(&digits.len()) {
            return Err(IdError::Length { kind: KIND, expected: "8 to 15", found: digits.len() });
        }
        all_digits(KIND, digits)?;
        if digits.starts_with('0') {
            return Err(IdError::Rule { kind: KIND, rule: "a country code cannot start with 0" });
        }
        Ok(Self(digits.to_owned()))
    }
}

identifier! {
    /// An IMSI: 15 digits, mobile country code first (222 for Italy).
    Imsi
}

impl Imsi {
    /// Accepts exactly 15 digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const KIND: &str = "imsi";
        if s.len() != 15 {
            return Err(IdError::Length { kind: KIND, expected: "15", found: s.len() });
        }
        all_digits(KIND, s)?;
        Ok(Self(s.to_owned()))
    }

    /// The mobile country code (first three digits).
    pub fn mcc(&self) -> &str {
        &self.0[..3]
    }
}

identifier! {
    /// A device IMEI: 14 digits and a Luhn check digit.
    Imei
}

impl Imei {
    /// Accepts 15 digits whose last one is the Luhn check digit.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const KIND: &str = "imei";
        if s.len() != 15 {
            return Err(IdError::Length { kind: KIND, expected: "15", found: s.len() });
        }
        all_digits(KIND, s)?;
        if !luhn::is_valid(s) {
            return Err(IdError::Check { kind: KIND });
        }
        Ok(Self(s.to_owned()))
    }
}

identifier! {
    /// A SIM card's ICCID: `89` (telecom), 18 or 19 digits, and a Luhn check digit.
    Iccid
}

impl Iccid {
    /// Accepts 19 or 20 digits starting with `89` whose last one is the Luhn check digit.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const KIND: &str = "iccid";
        if !(19..=20).contains(&s.len()) {
            return Err(IdError::Length { kind: KIND, expected: "19 or 20", found: s.len() });
        }
        all_digits(KIND, s)?;
        if !s.starts_with("89") {
            return Err(IdError::Rule { kind: KIND, rule: "must start with 89" });
        }
        if !luhn::is_valid(s) {
            return Err(IdError::Check { kind: KIND });
        }
        Ok(Self(s.to_owned()))
    }
}

identifier! {
    /// An Italian tax code (codice fiscale) of a person: 16 characters with a check letter.
    TaxCode
}

impl TaxCode {
    /// Accepts the 16-character form, upper or lower case, including omocodia variants.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let upper = s.to_ascii_uppercase();
        tax_code::validate(&upper)?;
        Ok(Self(upper))
    }
}

identifier! {
    /// An IBAN, stored without spaces, in upper case, with valid mod-97 check digits.
    Iban
}

impl Iban {
    /// Accepts an IBAN with or without spaces; Italian ones must be 27 characters.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let compact: String = s.chars().filter(|c| *c != ' ').collect::<String>().to_ascii_uppercase();
        iban::validate(&compact)?;
        Ok(Self(compact))
    }
}

/// The Luhn (mod 10) check digit used by IMEIs, ICCIDs and payment cards.
pub mod luhn {
    /// The digit to append to `payload` (ASCII digits only) to make it Luhn-valid.
    pub fn check_digit(payload: &str) -> u8 {
        // Doubling starts from the rightmost payload digit, since the check digit will follow it.
        let sum: u32 = payload
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 0 {
                    let x = d * 2;
                    if x > 9 { x - 9 } else { x }
                } else {
                    d
                }
            })
            .sum();
        ((10 - sum % 10) % 10) as u8
    }

    /// Whether `s` (ASCII digits, check digit last) passes the Luhn check.
    pub fn is_valid(s: &str) -> bool {
        match s.len() {
            0 | 1 => false,
            n => s.bytes().all(|b| b.is_ascii_digit()) && check_digit(&s[..n - 1]) == s.as_bytes()[n - 1] - b'0',
        }
    }
}

/// The check character of Italian tax codes (codice fiscale).
pub mod tax_code {
    use super::IdError;

    const KIND: &str = "tax_code";
    /// Values of characters in odd positions (1st, 3rd, …), for `0-9` then `A-Z`.
    const ODD_DIGITS: [u32; 10] = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21];
    const ODD_LETTERS: [u32; 26] =
        [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];
    /// Month letters, January to December.
    pub const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";
    /// Letters that replace digits in omocodia variants, for 0 to 9.
    const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";

    /// The check letter for the first 15 characters (ASCII upper case).
    pub fn check_char(first15: &[u8]) -> u8 {
        let sum: u32 = first15
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let odd = i % 2 == 0;
                match (odd, c) {
                    (true, b'0'..=b'9') => ODD_DIGITS[usize::from(c - b'0')],
                    (true, _) => ODD_LETTERS[usize::from(c - b'A')],
                    (false, b'0'..=b'9') => u32::from(c - b'0'),
                    (false, _) => u32::from(c - b'A'),
                }
            })
            .sum();
        b'A' + (sum % 26) as u8
    }

    /// Checks shape and check letter of an upper-case 16-character tax code.
    pub fn validate(s: &str) -> Result<(), IdError> {
        let b = s.as_bytes();
        if b.len() != 16 {
            return Err(IdError::Length { kind: KIND, expected: "16", found: b.len() });
        }
        let digit_or_omocodia = |c: u8| c.is_ascii_digit() || OMOCODIA.contains(&c);
        for (i, &c) in b.iter().enumerate() {
            let (ok, expected) = match i {
                0..=5 | 15 => (c.is_ascii_uppercase(), "a letter"),
                8 => (MONTHS.contains(&c), "a month letter"),
                11 => (c.is_ascii_uppercase(), "a letter"),
                6 | 7 | 9 | 10 | 12..=14 => (digit_or_omocodia(c), "a digit"),
                _ => unreachable!("index within 16"),
            };
            if !ok {
                return Err(IdError::Character { kind: KIND, position: i + 1, expected });
            }
        }
        if check_char(&b[..15]) != b[15] {
            return Err(IdError::Check { kind: KIND });
        }
        Ok(())
    }
}

/// IBAN check digits (ISO 13616, mod 97).
pub mod iban {
    use super::IdError;

    const KIND: &str = "iban";

    /// Remainder mod 97 of the number formed by `chars`, letters counting as 10–35.
    fn mod97(chars: impl Iterator<Item = u8>) -> u32 {
        chars.fold(0u32, |acc, c| {
            if c.is_ascii_digit() {
                (acc * 10 + u32::from(c - b'0')) % 97
            } else {
                (acc * 100 + u32::from(c - b'A' + 10)) % 97
            }
        })
    }

    /// The two check digits for `country` (two upper-case letters) and `bban`.
    pub fn check_digits(country: &str, bban: &str) -> u8 {
        let rearranged = bban.bytes().chain(country.bytes()).chain(*b"00");
        (98 - mod97(rearranged)) as u8
    }

    /// Checks an upper-case IBAN without spaces.
    pub fn validate(s: &str) -> Result<(), IdError> {
        let b = s.as_bytes();
        if !(15..=34).contains(&b.len()) {
            return Err(IdError::Length { kind: KIND, expected: "15 to 34", found: b.len() });
        }
        for (i, &c) in b.iter().enumerate() {
            let ok = match i {
                0 | 1 => c.is_ascii_uppercase(),
                2 | 3 => c.is_ascii_digit(),
                _ => c.is_ascii_uppercase() || c.is_ascii_digit(),
            };
            if !ok {
                return Err(IdError::Character {
                    kind: KIND,
                    position: i + 1,
                    expected: if i < 2 { "a country letter" } else { "a letter or digit" },
                });
            }
        }
        if &b[..2] == b"IT" && b.len() != 27 {
            return Err(IdError::Length { kind: KIND, expected: "27 for IT", found: b.len() });
        }
        if mod97(b[4..].iter().chain(&b[..4]).copied()) != 1 {
            return Err(IdError::Check { kind: KIND });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_good_identifiers_parse() {
        assert!(Imei::parse("490154203237518").is_ok());
        let iccid = format!("8939010000123456789{}", luhn::check_digit("8939010000123456789"));
        assert!(Iccid::parse(&iccid).is_ok());
        assert!(Iccid::parse("1939010000123456789").is_err());
        assert!(Iban::parse("IT60 X054 2811 1010 0000 0123 456").is_ok());
        assert!(Iban::parse("GB82WEST12345698765432").is_ok());
        // A published example of a valid tax code.
        assert!(TaxCode::parse("RSSMRA85T10A562S").is_ok());
        assert!(Msisdn::parse("+393401234567").is_ok());
        assert!(Imsi::parse("222013401234567").is_ok());
    }

    #[test]
    fn a_wrong_check_digit_is_refused_and_the_error_names_no_value() {
        let e = Imei::parse("490154203237519").unwrap_err();
        assert_eq!(e, IdError::Check { kind: "imei" });
        assert!(!e.to_string().contains("49015420323751"));
        assert_eq!(TaxCode::parse("RSSMRA85T10A562T").unwrap_err(), IdError::Check { kind: "tax_code" });
        assert_eq!(Iban::parse("IT61X0542811101000000123456").unwrap_err(), IdError::Check { kind: "iban" });
    }

    #[test]
    fn bad_shapes_name_the_position() {
        assert_eq!(
            Msisdn::parse("39340A234567").unwrap_err(),
            IdError::Character { kind: "msisdn", position: 6, expected: "a digit" }
        );
        assert!(matches!(Imsi::parse("2220134"), Err(IdError::Length { found: 7, .. })));
        assert!(matches!(TaxCode::parse("RSSMRA85Z10A562S"), Err(IdError::Character { position: 9, .. })));
    }

    #[test]
    fn debug_output_is_redacted() {
        let m = Msisdn::parse("393401234567").unwrap();
        assert_eq!(format!("{m:?}"), "Msisdn(<redacted>)");
    }

    proptest! {
        #[test]
        fn luhn_check_digit_makes_any_payload_valid(payload in "[0-9]{1,30}") {
            let full = format!("{payload}{}", luhn::check_digit(&payload));
            prop_assert!(luhn::is_valid(&full));
        }

        #[test]
        fn a_single_changed_digit_breaks_luhn(payload in "[0-9]{14}", pos in 0usize..15, delta in 1u8..10) {
            let mut full = format!("{payload}{}", luhn::check_digit(&payload)).into_bytes();
            full[pos] = b'0' + (full[pos] - b'0' + delta) % 10;
            prop_assert!(!luhn::is_valid(std::str::from_utf8(&full).unwrap()));
        }

        #[test]
        fn iban_check_digits_validate(bban in "[A-Z][0-9]{10}[0-9A-Z]{12}") {
            let iban = format!("IT{:02}{bban}", iban::check_digits("IT", &bban));
            prop_assert!(Iban::parse(&iban).is_ok());
        }

        #[test]
        fn tax_code_check_char_validates(
            letters in "[A-Z]{6}", yy in "[0-9]{2}", m in 0usize..12, dd in 1u8..72, town in "[A-Z][0-9]{3}"
        ) {
            let month = tax_code::MONTHS[m] as char;
            let first = format!("{letters}{yy}{month}{dd:02}{town}");
            let code = format!("{first}{}", tax_code::check_char(first.as_bytes()) as char);
            prop_assert!(TaxCode::parse(&code).is_ok());
        }
    }
}
