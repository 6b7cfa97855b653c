//! The operator's commercial catalogue (plans and options) and the numbering facts the
//! generator needs (number ranges, device TACs, banks, roaming destinations).

use crate::population::Payment;

/// A tariff plan. `None` in an allowance means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Plan code, the key the CRM uses.
    pub code: &'static str,
    /// Commercial name.
    pub name: &'static str,
    /// The payment type it is sold with; `None` for both.
    pub payment: Option<Payment>,
    /// Monthly fee in euro cents.
    pub monthly_fee_cents: u32,
    /// Data allowance per month in GB.
    pub data_gb: Option<u32>,
    /// Voice minutes per month.
    pub voice_minutes: Option<u32>,
    /// SMS per month.
    pub sms: Option<u32>,
}

/// An option (add-on) a line can subscribe to on top of its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOn {
    /// Option code, the key the CRM uses.
    pub code: &'static str,
    /// Commercial name.
    pub name: &'static str,
    /// `data`, `roaming`, `voice`, `sms`, `vas` or `service`.
    pub category: &'static str,
    /// Monthly fee in euro cents.
    pub monthly_fee_cents: u32,
    /// Extra data per month in GB.
    pub data_gb: u32,
    /// Extra voice minutes per month.
    pub voice_minutes: u32,
    /// Extra SMS per month.
    pub sms: u32,
}

const fn plan(
    code: &'static str,
    name: &'static str,
    payment: Option<Payment>,
    monthly_fee_cents: u32,
    data_gb: Option<u32>,
    voice_minutes: Option<u32>,
    sms: Option<u32>,
) -> Plan {
    Plan { code, name, payment, monthly_fee_cents, data_gb, voice_minutes, sms }
}

const fn add_on(
    code: &'static str,
    name: &'static str,
    category: &'static str,
    monthly_fee_cents: u32,
    (data_gb, voice_minutes, sms): (u32, u32, u32),
) -> AddOn {
    AddOn { code, name, category, monthly_fee_cents, data_gb, voice_minutes, sms }
}

/// Every plan on sale.
pub const PLANS: &[Plan] = &[
    plan("EVO30", "Evo 30", Some(Payment::Prepaid), 590, Some(30), None, Some(100)),
    plan("EVO100", "Evo 100", None, 790, Some(100), None, None),
    plan("EVO200", "Evo 200 5G", None, 990, Some(200), None, None),
    plan("SENIOR", "Senior Semplice", Some(Payment::Prepaid), 390, Some(5), Some(500), Some(100)),
    plan("DATI150", "Internet 150", None, 1290, Some(150), Some(0), Some(0)),
    plan("CASA5G", "Casa 5G", None, 2490, None, Some(0), Some(0)),
    plan("BIZ250", "Business 250", Some(Payment::Postpaid), 1490, Some(250), None, None),
];

/// Code of the option that every line with automatic top-up has.
pub const AUTO_TOPUP_OPTION: &str = "RICARICA_AUTO";

/// Every option on sale.
pub const ADD_ONS: &[AddOn] = &[
    add_on("EUROPA10", "Europa +10 GB", "roaming", 300, (10, 0, 0)),
    add_on("MONDO1", "Mondo 1 GB e 100 minuti", "roaming", 1000, (1, 100, 0)),
    add_on("GIGA20", "Giga extra 20 GB", "data", 300, (20, 0, 0)),
    add_on("GIGA100", "Giga extra 100 GB", "data", 800, (100, 0, 0)),
    add_on("SMS200", "200 SMS", "sms", 100, (0, 0, 200)),
    add_on("ESTERO300", "Chiamate estero 300 minuti", "voice", 500, (0, 300, 0)),
    add_on("NAVIGA_SICURO", "Navigazione sicura", "vas", 199, (0, 0, 0)),
    add_on("TV_MUSICA", "TV e musica", "vas", 499, (0, 0, 0)),
    add_on(AUTO_TOPUP_OPTION, "Ricarica automatica", "service", 0, (0, 0, 0)),
];

/// Italian mobile prefixes (after 39) that ported-in and native numbers use.
pub(crate) const MOBILE_PREFIXES: &[&str] = &[
    "320", "324", "327", "328", "329", "331", "333", "334", "335", "338", "339", "340", "342", "345", "347", "348",
    "349", "351", "366", "380", "388", "389", "391", "392",
];

/// MCC+MNC of the operator's IMSIs.
pub(crate) const IMSI_PREFIX: &str = "22253";
/// Start of the operator's ICCIDs: telecom (89), Italy (39), issuer (53).
pub(crate) const ICCID_PREFIX: &str = "893953";

/// Type allocation codes (first 8 IMEI digits) per device type: smartphones, tablets, routers.
pub(crate) const SMARTPHONE_TACS: &[&str] =
    &["35332811", "35290611", "35438212", "86769704", "35260411", "35875110", "86453905", "35614712"];
pub(crate) const TABLET_TACS: &[&str] = &["35485910", "35203710", "86802303"];
pub(crate) const ROUTER_TACS: &[&str] = &["86117304", "86728703", "86259905"];

/// ABI codes of Italian banks, for IBANs.
pub(crate) const BANK_ABI: &[&str] =
    &["03069", "02008", "05034", "01030", "03111", "05696", "06230", "03032", "07601", "03440"];

/// Roaming destinations with weight, and whether EU "roam like at home" rules apply.
pub(crate) const ROAMING: &[(&[u8; 2], bool, u32)] = &[
    (b"FR", true, 16),
    (b"ES", true, 14),
    (b"DE", true, 12),
    (b"AT", true, 6),
    (b"GR", true, 8),
    (b"HR", true, 6),
    (b"PT", true, 5),
    (b"NL", true, 4),
    (b"BE", true, 3),
    (b"CH", false, 9),
    (b"GB", false, 8),
    (b"US", false, 5),
    (b"AL", false, 2),
    (b"TR", false, 2),
];

/// Foreign numbers: country code plus mobile lead digit, and how many digits follow.
pub(crate) const FOREIGN_NUMBERS: &[(&str, u32)] = &[
    ("336", 8),
    ("4915", 9),
    ("346", 8),
    ("447", 9),
    ("1", 10),
    ("417", 8),
    ("407", 8),
    ("3556", 8),
    ("2126", 8),
    ("4369", 9),
];

/// Short codes of voice services (customer care, information lines).
pub(crate) const VOICE_SHORT_CODES: &[&str] = &["119", "4242", "190", "48200", "40916"];
