//! Kinds of personal data and what may be done with each.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A kind of personal data. Each has its own keys, its own token prefix and a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// A line's number (E.164 digits).
    Msisdn,
    /// A SIM's subscriber identity.
    Imsi,
    /// A device identity.
    Imei,
    /// The other party of a call or SMS.
    OtherParty,
    /// A person's name.
    Name,
    /// A postal address.
    Address,
    /// An e-mail address.
    Email,
    /// An Italian tax code (codice fiscale).
    TaxCode,
    /// A bank account.
    Iban,
    /// A date of birth (`YYYY-MM-DD`).
    BirthDate,
    /// A radio cell: location data.
    CellId,
    /// An IP address.
    Ip,
    /// Free text that may hold anything (notes, comments).
    FreeText,
}

impl PiiKind {
    /// Every kind.
    pub const ALL: [PiiKind; 13] = [
        Self::Msisdn,
        Self::Imsi,
        Self::Imei,
        Self::OtherParty,
        Self::Name,
        Self::Address,
        Self::Email,
        Self::TaxCode,
        Self::Iban,
        Self::BirthDate,
        Self::CellId,
        Self::Ip,
        Self::FreeText,
    ];

    /// The name used in config, permissions (`privacy.reveal.msisdn`) and key derivation.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Msisdn => "msisdn",
            Self::Imsi => "imsi",
            Self::Imei => "imei",
            Self::OtherParty => "other_party",
            Self::Name => "name",
            Self::Address => "address",
            Self::Email => "email",
            Self::TaxCode => "tax_code",
            Self::Iban => "iban",
            Self::BirthDate => "birth_date",
            Self::CellId => "cell_id",
            Self::Ip => "ip",
            Self::FreeText => "free_text",
        }
    }

    /// The prefix of this kind's tokens; it says what a token stands for, nothing about the value.
    pub const fn token_prefix(self) -> &'static str {
        match self {
            Self::Msisdn => "msi",
            Self::Imsi => "ims",
            Self::Imei => "ime",
            Self::OtherParty => "opa",
            Self::Name => "nam",
            Self::Address => "adr",
            Self::Email => "eml",
            Self::TaxCode => "tax",
            Self::Iban => "iba",
            Self::BirthDate => "bir",
            Self::CellId => "cel",
            Self::Ip => "ipa",
            Self::FreeText => "txt",
        }
    }

    /// The kind whose tokens start with `prefix`.
    pub fn from_token_prefix(prefix: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.token_prefix() == prefix)
    }

    /// The permission that allows revealing this kind.
    pub fn reveal_permission(self) -> String {
        format!("privacy.reveal.{}", self.as_str())
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PiiKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let all: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown kind of personal data `{s}`, expected one of: {}", all.join(", "))
        })
    }
}

/// What a field policy does with a value before it is stored anywhere outside the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A random surrogate token, stable per value (the vault remembers it): joins still work,
    /// the token says nothing about the value, the vault can reveal it, erasure unlinks it.
    Token,
    /// FF1 format-preserving encryption (radix 10): same length, same country prefix.
    /// Weaker than `token` for small domains; see docs/privacy.md.
    Fpe,
    /// AES-256-GCM-SIV under the subject's own key: revealable, destroyed by erasure.
    Encrypt,
    /// Keyed one-way HMAC: for analytics-only fields, never revealable.
    Hmac,
    /// Not kept at all.
    Drop,
    /// Kept coarse: a birth date's year, an address's province, a cell's area, an IP's /24.
    Generalize,
}

impl Method {
    /// The name used in config.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Fpe => "fpe",
            Self::Encrypt => "encrypt",
            Self::Hmac => "hmac",
            Self::Drop => "drop",
            Self::Generalize => "generalize",
        }
    }
}
