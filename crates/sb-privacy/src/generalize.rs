//! Coarse versions of values, for kinds where the detail is not needed.

use crate::{PiiKind, PrivacyError};

/// A birth date's year, an address's province, a cell's area (cell id / 100), an IPv4
/// address's /24 network. Other kinds cannot be generalised.
pub fn generalize(kind: PiiKind, value: &str) -> Result<String, PrivacyError> {
    let bad = |what: &str| PrivacyError::Invalid(format!("cannot generalise this {kind}: {what}"));
    match kind {
        PiiKind::BirthDate => {
            let year = value.get(..4).filter(|y| y.bytes().all(|b| b.is_ascii_digit()));
            year.map(str::to_owned).ok_or_else(|| bad("expected YYYY-MM-DD"))
        }
        PiiKind::Address => province(value).ok_or_else(|| bad("no province code such as `(RM)` or `, RM`")),
        PiiKind::CellId => {
            let id: u64 = value.trim().parse().map_err(|_| bad("expected a numeric cell id"))?;
            Ok(format!("area-{}", id / 100))
        }
        PiiKind::Ip => {
            let ip: std::net::Ipv4Addr = value.trim().parse().map_err(|_| bad("expected an IPv4 address"))?;
            let [a, b, c, _] = ip.octets();
            Ok(format!("{a}.{b}.{c}.0/24"))
        }
        other => Err(PrivacyError::Invalid(format!("`generalize` is not available for {other}"))),
    }
}

/// The two-letter province code of an Italian address: `… (RM)` or a trailing `, RM`.
fn province(address: &str) -> Option<String> {
    let is_code = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase());
    if let Some(open) = address.rfind('(') {
        let code = address[open + 1..].split(')').next()?.trim();
        if is_code(code) {
            return Some(code.to_owned());
        }
    }
    let last = address.rsplit([',', ' ']).find(|s| !s.is_empty())?;
    is_code(last).then(|| last.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_generalised_per_kind() {
        assert_eq!(generalize(PiiKind::BirthDate, "1985-12-10").unwrap(), "1985");
        assert_eq!(generalize(PiiKind::Address, "Via Roma 1, 00184 Roma (RM)").unwrap(), "RM");
        assert_eq!(generalize(PiiKind::Address, "Via Po 3, 10121 Torino, TO").unwrap(), "TO");
        assert_eq!(generalize(PiiKind::CellId, "40123").unwrap(), "area-401");
        assert_eq!(generalize(PiiKind::Ip, "10.1.2.3").unwrap(), "10.1.2.0/24");
        assert!(generalize(PiiKind::Msisdn, "393401234567").is_err());
    }

    #[test]
    fn errors_do_not_repeat_the_value() {
        let e = generalize(PiiKind::Address, "Via Segreta 7").unwrap_err().to_string();
        assert!(!e.contains("Segreta"), "{e}");
    }
}
