//! Verification of the customer app's bearer tokens (issued by self-care, later).

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::config::{JwtAlgorithm, JwtConfig};

/// Checks signature, expiry and, when configured, issuer and audience.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier").field("algorithms", &self.validation.algorithms).finish_non_exhaustive()
    }
}

/// The claims Switchboard reads from a customer token.
#[derive(Debug, Clone, Deserialize)]
pub struct CustomerClaims {
    /// The customer's id at the operator.
    pub sub: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
}

impl JwtVerifier {
    /// The verifier `[auth.jwt]` describes; `None` when no key is configured (customer
    /// tokens are then refused).
    pub fn from_config(c: &JwtConfig) -> Result<Option<Self>, String> {
        let (key, alg) = match c.algorithm {
            JwtAlgorithm::Hs256 => {
                let secret = match (&c.hs256_secret, &c.hs256_secret_file) {
                    (Some(_), Some(_)) => {
                        return Err(
                            "auth.jwt.hs256_secret and auth.jwt.hs256_secret_file are both set: keep one".into()
                        );
                    }
                    (Some(s), None) => s.expose_secret().as_bytes().to_vec(),
                    (None, Some(path)) => std::fs::read_to_string(path)
                        .map_err(|e| format!("auth.jwt.hs256_secret_file: cannot read {}: {e}", path.display()))?
                        .trim_end()
                        .as_bytes()
                        .to_vec(),
                    (None, None) => return Ok(None),
                };
                if secret.len() < 32 {
                    return Err("auth.jwt.hs256_secret: at least 32 bytes".into());
                }
                (DecodingKey::from_secret(&secret), Algorithm::HS256)
            }
            JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => {
                let Some(path) = &c.public_key_file else { return Ok(None) };
                let pem = std::fs::read(path)
                    .map_err(|e| format!("auth.jwt.public_key_file: cannot read {}: {e}", path.display()))?;
                let parsed = if c.algorithm == JwtAlgorithm::Rs256 {
                    DecodingKey::from_rsa_pem(&pem).map(|k| (k, Algorithm::RS256))
                } else {
                    DecodingKey::from_ec_pem(&pem).map(|k| (k, Algorithm::ES256))
                };
                parsed.map_err(|e| format!("auth.jwt.public_key_file: not a usable PEM public key: {e}"))?
            }
        };
        let mut validation = Validation::new(alg);
        validation.leeway = c.leeway_s;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(iss) = &c.issuer {
            validation.set_issuer(&[iss]);
        }
        match &c.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Some(Self { key, validation }))
    }

    /// The claims of a valid token; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<CustomerClaims> {
        decode::<CustomerClaims>(token, &self.key, &self.validation).ok().map(|d| d.claims)
    }
}
