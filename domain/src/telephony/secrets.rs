//! SIP secrets: generated strong, stored encrypted (XChaCha20-Poly1305), and given to
//! FreeSWITCH only as `a1-hash = md5(user:realm:secret)`.
//!
//! Stored form: `v1.<key id>.<base64url(nonce ‖ ciphertext)>`. The key id (first 8 hex digits
//! of the key's SHA-256) lets a wrong key be reported clearly instead of yielding garbage, and
//! leaves room for key rotation. Each ciphertext is bound to its row through the associated
//! data (e.g. `device:<id>`), so secrets cannot be swapped between rows in the database.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use md5::Md5;
use rand_core::{OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Why a secret could not be decrypted or a key not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The key is not 32 bytes of base64.
    #[error(
        "the encryption key must be 32 bytes, base64-encoded (generate one with `openssl rand -base64 32`)"
    )]
    BadKey,
    /// The value was encrypted with another key.
    #[error("the secret was encrypted with key {stored}, but the configured key is {configured}")]
    WrongKey {
        /// Key id in the stored value.
        stored: String,
        /// Key id of the configured key.
        configured: String,
    },
    /// The stored value is damaged or was tampered with.
    #[error("the stored secret is corrupt or was modified")]
    Corrupt,
}

/// Encrypts and decrypts SIP secrets with the configured key.
#[derive(Clone)]
pub struct SecretCipher {
    cipher: XChaCha20Poly1305,
    key_id: String,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCipher")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SecretCipher {
    /// Loads a base64 (standard or url-safe) 32-byte key.
    pub fn from_base64(key: &str) -> Result<Self, CipherError> {
        let key = key.trim();
        let bytes = STANDARD
            .decode(key)
            .or_else(|_| URL_SAFE_NO_PAD.decode(key))
            .map_err(|_| CipherError::BadKey)?;
        if bytes.len() != 32 {
            return Err(CipherError::BadKey);
        }
        let key_id = hex::encode(&Sha256::digest(&bytes)[..4]);
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| CipherError::BadKey)?;
        Ok(Self { cipher, key_id })
    }

    /// A new random key, base64-encoded.
    pub fn generate_key() -> SecretString {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        SecretString::from(STANDARD.encode(bytes))
    }

    /// The key's id (not secret).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. `device:<id>`).
    pub fn encrypt(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: context.as_bytes(),
        };
        // Encryption of an in-memory buffer with a valid key cannot fail.
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .unwrap_or_default();
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        format!("v1.{}.{}", self.key_id, URL_SAFE_NO_PAD.encode(blob))
    }

    /// Decrypts a stored value that was bound to `context`.
    pub fn decrypt(&self, stored: &str, context: &str) -> Result<SecretString, CipherError> {
        let mut parts = stored.splitn(3, '.');
        let (Some("v1"), Some(key_id), Some(blob)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CipherError::Corrupt);
        };
        if key_id != self.key_id {
            return Err(CipherError::WrongKey {
                stored: key_id.to_owned(),
                configured: self.key_id.clone(),
            });
        }
        let blob = URL_SAFE_NO_PAD
            .decode(blob)
            .map_err(|_| CipherError::Corrupt)?;
        if blob.len() < 24 + 16 {
            return Err(CipherError::Corrupt);
        }
        let (nonce, ciphertext) = blob.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| CipherError::Corrupt)?;
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CipherError::Corrupt)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| CipherError::Corrupt)
    }
}

/// `md5(user:realm:secret)` in hex: what FreeSWITCH's `a1-hash` parameter expects.
pub fn a1_hash(user: &str, realm: &str, secret: &SecretString) -> String {
    let mut hasher = Md5::new();
    hasher.update(user.as_bytes());
    hasher.update(b":");
    hasher.update(realm.as_bytes());
    hasher.update(b":");
    hasher.update(secret.expose_secret().as_bytes());
    hex::encode(hasher.finalize())
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

fn random_string(alphabet: &[u8], len: usize) -> String {
    // Rejection sampling keeps the distribution uniform.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        OsRng.fill_bytes(&mut buf);
        for b in buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// A new SIP secret: 24 characters from a 56-symbol alphabet (~139 bits), no look-alikes,
/// safe to type on a phone's web UI.
pub fn generate_sip_secret() -> SecretString {
    SecretString::from(random_string(ALPHANUMERIC, 24))
}

/// A new device SIP user name: `d` and 11 lower-case letters and digits.
pub fn generate_sip_username() -> String {
    format!(
        "d{}",
        random_string(b"abcdefghijkmnpqrstuvwxyz23456789", 11)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> SecretCipher {
        SecretCipher::from_base64(SecretCipher::generate_key().expose_secret())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn round_trip_and_context_binding() {
        let c = cipher();
        let stored = c.encrypt("s3cret", "device:1");
        assert!(stored.starts_with(&format!("v1.{}.", c.key_id())));
        assert!(!stored.contains("s3cret"));
        assert_eq!(
            c.decrypt(&stored, "device:1")
                .map(|s| s.expose_secret().to_owned()),
            Ok("s3cret".into())
        );
        assert_eq!(
            c.decrypt(&stored, "device:2").err(),
            Some(CipherError::Corrupt)
        );
        assert_ne!(c.encrypt("s3cret", "device:1"), stored, "nonces differ");
    }

    #[test]
    fn a_wrong_key_is_reported_as_such() {
        let (a, b) = (cipher(), cipher());
        let stored = a.encrypt("x", "c");
        assert!(matches!(
            b.decrypt(&stored, "c"),
            Err(CipherError::WrongKey { .. })
        ));
        assert_eq!(
            a.decrypt("v1.garbage", "c").err(),
            Some(CipherError::Corrupt)
        );
        assert_eq!(
            SecretCipher::from_base64("c2hvcnQ=").err(),
            Some(CipherError::BadKey)
        );
    }

    #[test]
    fn a1_hash_matches_the_digest_definition() {
        // md5("1000:example.com:1234"), computed independently (Python hashlib).
        assert_eq!(
            a1_hash(
                "1000",
                "example.com",
                &SecretString::from("1234".to_owned())
            ),
            "6fa6428c8d743e2479010ae55bb56ea8"
        );
    }

    #[test]
    fn generated_values_have_the_promised_shape() {
        let s = generate_sip_secret();
        assert_eq!(s.expose_secret().len(), 24);
        assert!(s.expose_secret().bytes().all(|b| ALPHANUMERIC.contains(&b)));
        let u = generate_sip_username();
        assert_eq!(u.len(), 12);
        assert!(u.starts_with('d'));
        assert_ne!(generate_sip_username(), u);
    }
}
