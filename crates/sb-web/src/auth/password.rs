//! Password hashes (argon2id, OWASP's parameters) and one-time passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

/// argon2id with 19 MiB of memory, 2 passes, 1 lane: OWASP's recommended minimum.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string (`$argon2id$v=19$…`) of `password` under a fresh random salt.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes encode as a salt");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing cannot fail with valid parameters")
        .to_string()
}

/// Whether `password` matches the PHC string `stored`. A malformed hash matches nothing.
pub fn verify(stored: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else { return false };
    hasher().verify_password(password.as_bytes(), &parsed).is_ok()
}

/// Spends the time of one verification, so that an unknown user name answers as slowly as
/// a wrong password (no user enumeration by timing).
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not a password anyone has"));
    let _ = verify(dummy, password);
}

/// A random one-time password: 20 characters from an alphabet without look-alikes (≈ 112 bits).
pub fn one_time() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char).collect()
}

/// Why a new password is refused, if it is.
pub fn check_new(password: &str, min_length: usize) -> Result<(), String> {
    if password.chars().count() < min_length {
        return Err(format!("at least {min_length} characters"));
    }
    if password.chars().count() > 256 {
        return Err("at most 256 characters".into());
    }
    if password.trim().is_empty() {
        return Err("not only spaces".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_verifies_against_its_hash_and_nothing_else_does() {
        let h = super::hash("correct horse battery");
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify(&h, "correct horse battery"));
        assert!(!super::verify(&h, "correct horse battery!"));
        assert!(!super::verify("garbage", "x"));
    }

    #[test]
    fn one_time_passwords_are_long_and_different() {
        let (a, b) = (super::one_time(), super::one_time());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(super::check_new(&a, 12).is_ok());
        assert!(super::check_new("short", 12).is_err());
    }
}
