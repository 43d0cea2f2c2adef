//! Dashboard passwords (and any other argon2id-hashed secret: PINs, API key secrets).
//!
//! Hashing runs on the blocking pool, never on the async runtime. Verifying against a missing
//! hash still does the full work against a fixed dummy hash, so an unknown email costs the same
//! time as a wrong password.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::OsRng;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{DomainError, DomainResult, FieldError};

/// Minimum password length in characters.
pub const MIN_PASSWORD_LENGTH: usize = 12;
/// Maximum password length in bytes (argon2 would take more, but nobody types this much).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// argon2id parameters: 19 MiB, 2 passes, 1 lane (OWASP's recommended minimum).
fn argon2() -> Argon2<'static> {
    // The parameters are constants known to be valid; `Params::DEFAULT` is the fallback that
    // can never be reached but keeps this free of `expect`.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a random value, used when there is no real hash to compare with.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(b"switchboard-dummy-password", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

/// Passwords that are long enough but still among the first an attacker tries.
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456123456",
    "password1234",
    "password12345",
    "password123456",
    "passwordpassword",
    "qwertyuiopasdf",
    "qwertyuiop123",
    "qwerty123456",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "iloveyou1234",
    "administrator",
    "administrator1",
    "letmein12345",
    "welcome12345",
    "welcome123456",
    "changeme1234",
    "trustno1trustno1",
    "abc123abc123",
    "abcdefghijkl",
    "abcdef123456",
    "aaaaaaaaaaaa",
    "111111111111",
    "000000000000",
    "passw0rd1234",
    "p@ssw0rd1234",
    "p@ssword1234",
    "football1234",
    "baseball1234",
    "superman1234",
    "starwars1234",
    "princess1234",
    "sunshine1234",
    "whatever1234",
    "monkey123456",
    "dragon123456",
    "master123456",
    "switchboard1",
    "switchboard123",
    "freeswitch123",
    "correcthorsebatterystaple",
];

/// A password that satisfies the policy; its value never appears in `Debug` output.
#[derive(Debug, Clone)]
pub struct NewPassword(SecretString);

impl NewPassword {
    /// Checks the policy: at least 12 characters, not one of the common passwords, not made of
    /// one repeated character, not the account's email.
    pub fn parse(input: &SecretString, email: Option<&str>) -> Result<Self, FieldError> {
        let value = input.expose_secret();
        let weak = |code: &str, message: &str| FieldError::new("password", code, message);
        if value.chars().count() < MIN_PASSWORD_LENGTH {
            return Err(weak("too_short", "a password needs at least 12 characters"));
        }
        if value.len() > MAX_PASSWORD_BYTES {
            return Err(weak("too_long", "a password has at most 1024 bytes"));
        }
        let lower = value.to_lowercase();
        if COMMON_PASSWORDS.contains(&lower.as_str()) {
            return Err(weak(
                "too_common",
                "this password is too common; choose another",
            ));
        }
        let mut chars = value.chars();
        if let Some(first) = chars.next()
            && chars.all(|c| c == first)
        {
            return Err(weak(
                "too_common",
                "a password cannot be one repeated character",
            ));
        }
        if let Some(email) = email
            && (lower == email.to_lowercase()
                || email
                    .split('@')
                    .next()
                    .is_some_and(|local| local.len() >= 6 && lower == local))
        {
            return Err(weak(
                "too_common",
                "a password cannot be your email address",
            ));
        }
        Ok(Self(input.clone()))
    }

    /// The secret, for hashing.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// Hashes a secret with argon2id on the blocking pool; returns the PHC string.
pub async fn hash_secret(secret: SecretString) -> DomainResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(secret.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| DomainError::Internal(format!("argon2 hashing failed: {e}")))
    })
    .await
    .map_err(|e| DomainError::Internal(format!("hashing task failed: {e}")))?
}

/// Verifies a secret against a PHC hash on the blocking pool. With no hash, verifies against
/// a dummy hash and answers `false`, taking the same time.
pub async fn verify_secret(secret: SecretString, hash: Option<String>) -> DomainResult<bool> {
    tokio::task::spawn_blocking(move || {
        let (phc, real) = match hash {
            Some(h) => (h, true),
            None => (DUMMY_HASH.clone(), false),
        };
        let parsed = match PasswordHash::new(&phc) {
            Ok(parsed) => parsed,
            // A corrupt stored hash must not crash the request; it simply never matches.
            Err(_) => return false,
        };
        let ok = argon2()
            .verify_password(secret.expose_secret().as_bytes(), &parsed)
            .is_ok();
        ok && real
    })
    .await
    .map_err(|e| DomainError::Internal(format!("verification task failed: {e}")))
}

/// A fresh random password for generated accounts (first administrator): 24 characters.
pub fn generate_password() -> SecretString {
    SecretString::from(super::tokens::random_token(18))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn policy_refuses_weak_passwords() {
        for (bad, code) in [
            ("short", "too_short"),
            ("elevenchars", "too_short"),
            ("Password1234", "too_common"),
            ("zzzzzzzzzzzzzz", "too_common"),
            ("ada@example.com", "too_common"),
        ] {
            let err = NewPassword::parse(&secret(bad), Some("ada@example.com")).err();
            assert_eq!(err.map(|e| e.code), Some(code.to_owned()), "{bad}");
        }
    }

    #[test]
    fn policy_accepts_a_decent_password() {
        assert!(
            NewPassword::parse(&secret("violet-harbour-lamp"), Some("ada@example.com")).is_ok()
        );
    }

    #[tokio::test]
    async fn hash_then_verify_round_trips_and_rejects_others() -> DomainResult<()> {
        let hash = hash_secret(secret("violet-harbour-lamp")).await?;
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_secret(secret("violet-harbour-lamp"), Some(hash.clone())).await?);
        assert!(!verify_secret(secret("violet-harbour-lamP"), Some(hash)).await?);
        assert!(!verify_secret(secret("anything"), None).await?);
        assert!(!verify_secret(secret("anything"), Some("not-a-hash".into())).await?);
        Ok(())
    }
}
