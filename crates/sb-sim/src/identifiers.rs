//! Building identifiers from their parts. Check digits and letters always come from
//! sb-core, so the generator and the parsers cannot disagree.

use chrono::{Datelike, NaiveDate};
use sb_core::{iban, luhn, tax_code};

use crate::population::Sex;

/// Letters replacing digits in omocodia variants, for 0 to 9.
const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";
/// Digit positions of a tax code, replaced right to left in omocodia variants.
const OMOCODIA_POSITIONS: [usize; 7] = [14, 13, 12, 10, 9, 7, 6];
/// How many omocodia variants a tax code has.
pub(crate) const OMOCODIA_VARIANTS: usize = OMOCODIA_POSITIONS.len();

fn letters(name: &str) -> impl Iterator<Item = u8> + '_ {
    name.bytes().filter(u8::is_ascii_alphabetic).map(|b| b.to_ascii_uppercase())
}

fn is_vowel(b: u8) -> bool {
    matches!(b, b'A' | b'E' | b'I' | b'O' | b'U')
}

/// Consonants in order, then vowels, then `X`: the first three.
fn three_letters(consonants: &[u8], name: &str) -> [u8; 3] {
    let mut out = [b'X'; 3];
    let vowels = letters(name).filter(|&b| is_vowel(b));
    for (slot, b) in out.iter_mut().zip(consonants.iter().copied().chain(vowels)) {
        *slot = b;
    }
    out
}

fn surname_code(surname: &str) -> [u8; 3] {
    let consonants: Vec<u8> = letters(surname).filter(|&b| !is_vowel(b)).collect();
    three_letters(&consonants, surname)
}

fn first_name_code(name: &str) -> [u8; 3] {
    let consonants: Vec<u8> = letters(name).filter(|&b| !is_vowel(b)).collect();
    if consonants.len() >= 4 {
        // With four or more consonants the second is skipped.
        [consonants[0], consonants[2], consonants[3]]
    } else {
        three_letters(&consonants, name)
    }
}

/// The tax code (codice fiscale) of a person, check letter included.
pub(crate) fn tax_code(surname: &str, name: &str, birth: NaiveDate, sex: Sex, place: &str) -> [u8; 16] {
    let mut code = [0u8; 16];
    code[..3].copy_from_slice(&surname_code(surname));
    code[3..6].copy_from_slice(&first_name_code(name));
    let year = birth.year().rem_euclid(100) as u8;
    code[6] = b'0' + year / 10;
    code[7] = b'0' + year % 10;
    code[8] = tax_code::MONTHS[birth.month0() as usize];
    let day = birth.day() as u8 + if sex == Sex::Female { 40 } else { 0 };
    code[9] = b'0' + day / 10;
    code[10] = b'0' + day % 10;
    code[11..15].copy_from_slice(place.as_bytes());
    code[15] = tax_code::check_char(&code[..15]);
    code
}

/// Omocodia variant `n` (1 to 7) of `code`: the `n` rightmost digits replaced by letters,
/// which is how the revenue agency tells apart people whose codes would collide.
pub(crate) fn omocodia(code: [u8; 16], n: usize) -> [u8; 16] {
    let mut out = code;
    for &pos in OMOCODIA_POSITIONS.iter().take(n) {
        if out[pos].is_ascii_digit() {
            out[pos] = OMOCODIA[usize::from(out[pos] - b'0')];
        }
    }
    out[15] = tax_code::check_char(&out[..15]);
    out
}

/// A VAT number (partita IVA): 7-digit company number, 3-digit office, check digit.
/// Its check digit follows the Luhn rule.
pub(crate) fn vat_number(company: u32, office: u32) -> String {
    let payload = format!("{:07}{:03}", company % 10_000_000, office % 1000);
    format!("{payload}{}", luhn::check_digit(&payload))
}

/// An Italian IBAN from bank (ABI), branch (CAB) and account.
pub(crate) fn iban_it(abi: &str, cab: u32, account: u64) -> String {
    let abi_cab_account = format!("{abi}{:05}{:012}", cab % 100_000, account % 1_000_000_000_000);
    // The national CIN letter uses the same odd/even tables as the tax-code check letter.
    let cin = tax_code::check_char(abi_cab_account.as_bytes()) as char;
    let bban = format!("{cin}{abi_cab_account}");
    format!("IT{:02}{bban}", iban::check_digits("IT", &bban))
}

/// `payload` followed by its Luhn check digit.
pub(crate) fn with_luhn(payload: String) -> String {
    let check = luhn::check_digit(&payload);
    let mut s = payload;
    s.push(char::from(b'0' + check));
    s
}

/// A bijection of `0..modulus` onto itself that looks random: `(i·a + b) mod modulus`.
/// Used so that numbers drawn for different lines never collide.
pub(crate) struct Scatter {
    a: u128,
    b: u128,
    modulus: u128,
}

impl Scatter {
    /// `key` picks the multiplier and offset; `modulus` must only have the prime factors 2, 3 and 5.
    pub(crate) fn new(key: u64, modulus: u64) -> Self {
        // Primes above 5 are coprime with such a modulus, so the map is a bijection.
        const MULTIPLIERS: [u64; 4] = [2_654_435_761, 1_000_000_007, 998_244_353, 4_294_967_291];
        let a = u128::from(MULTIPLIERS[(key % 4) as usize]);
        Self { a, b: u128::from(key >> 2) % u128::from(modulus), modulus: u128::from(modulus) }
    }

    pub(crate) fn map(&self, i: u64) -> u64 {
        ((u128::from(i) * self.a + self.b) % self.modulus) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sb_core::{Iban, TaxCode};

    fn code(surname: &str, name: &str, y: i32, m: u32, d: u32, sex: Sex, place: &str) -> String {
        let birth = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        String::from_utf8(tax_code(surname, name, birth, sex, place).to_vec()).unwrap()
    }

    #[test]
    fn tax_codes_follow_the_consonant_vowel_rules() {
        // The textbook example: Mario Rossi, born in Rome on 10 December 1985 (fictitious).
        assert_eq!(code("Rossi", "Mario", 1985, 12, 10, Sex::Male, "H501"), "RSSMRA85T10H501O");
        // Four consonants in the name: first, third and fourth.
        assert_eq!(&code("Bianchi", "Gianfranco", 1970, 1, 1, Sex::Male, "F205")[3..6], "GFR");
        // Short surnames are padded with X; women add 40 to the day.
        let c = code("Fo", "Ida", 1990, 3, 5, Sex::Female, "A944");
        assert_eq!(&c[..11], "FOXDIA90C45");
        // Apostrophes and spaces are ignored.
        assert_eq!(&code("D'Angelo", "Anna", 2000, 7, 1, Sex::Female, "L219")[..6], "DNGNNA");
        assert_eq!(&code("De Luca", "Luca", 2000, 7, 1, Sex::Male, "L219")[..3], "DLC");
        for c in [c, code("Re", "Ai", 2001, 2, 28, Sex::Male, "Z129")] {
            TaxCode::parse(&c).unwrap();
        }
    }

    #[test]
    fn omocodia_variants_stay_valid_and_distinct() {
        let base = tax_code("Rossi", "Mario", NaiveDate::from_ymd_opt(1985, 12, 10).unwrap(), Sex::Male, "H501");
        let variants: Vec<_> = (1..=OMOCODIA_VARIANTS).map(|n| omocodia(base, n)).collect();
        assert_eq!(&variants[0][..], b"RSSMRA85T10H50MG");
        for v in &variants {
            TaxCode::parse(std::str::from_utf8(v).unwrap()).unwrap();
            assert_ne!(v, &base);
        }
    }

    #[test]
    fn the_iban_cin_matches_a_published_example() {
        // IT60 X054 2811 1010 0000 0123 456 is the standard Italian example.
        assert_eq!(iban_it("05428", 11101, 123_456), "IT60X0542811101000000123456");
        Iban::parse(&iban_it("03069", 1234, 987_654_321)).unwrap();
    }

    #[test]
    fn vat_numbers_carry_the_luhn_check_digit() {
        // Doubling every second digit from the right of 0123456789 sums to 43.
        assert_eq!(vat_number(123_456, 789), "01234567897");
    }

    #[test]
    fn scatter_is_a_bijection() {
        let s = Scatter::new(12345, 1000);
        let mut seen: Vec<u64> = (0..1000).map(|i| s.map(i)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 1000);
    }
}
