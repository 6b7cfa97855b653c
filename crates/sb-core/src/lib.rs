//! Shared vocabulary of Switchboard.
//!
//! Every other crate speaks in these types: validated identifiers of the telecom
//! world ([`Msisdn`], [`Imsi`], [`Imei`], [`Iccid`]) and of Italian customers
//! ([`TaxCode`], [`Iban`]), the kinds of usage records ([`UsageKind`]), and the
//! [`Clock`] that time-dependent code reads so tests can move time.
//!
//! Identifiers are personal data: their `Debug` output is redacted, and they have
//! no `Display`, so the value only leaves through an explicit `as_str()`.
//!
//! ```
//! use sb_core::{Msisdn, luhn};
//! let line = Msisdn::parse("393401234567").unwrap();
//! assert_eq!(format!("{line:?}"), "Msisdn(<redacted>)");
//! assert!(luhn::is_valid("490154203237518"));
//! ```

pub mod clock;
pub mod consumer;
pub mod fs;
pub mod hash;
pub mod ids;
pub mod monitor;
pub mod secret;
pub mod usage;

pub use clock::{Clock, ManualClock, SystemClock};
pub use consumer::{AmountE4, ConsumerError, LineUsage, Topups, UsageBatch, UsageConsumer};
pub use ids::{Iban, Iccid, IdError, Imei, Imsi, Msisdn, TaxCode, iban, luhn, tax_code};
pub use usage::{TopupChannel, UsageKind};
