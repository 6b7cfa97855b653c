//! Secrets in configuration: shown masked, never in clear.

use secrecy::SecretString;
use serde::Serializer;

/// What a set secret looks like in `switchboard config show`.
pub const MASK: &str = "********";

/// Serializes a configured secret as [`MASK`]; use with
/// `#[serde(serialize_with = "sb_core::secret::mask", skip_serializing_if = "Option::is_none")]`.
pub fn mask<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str(MASK),
        None => s.serialize_none(),
    }
}
