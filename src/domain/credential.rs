//! Credentials: auth tokens, API-key secrets (stored only as a SHA-256 digest keyed with the
//! server's pepper) and their constant-time comparison.

use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new API-key secret: 32 alphanumeric characters (~190 bits), shown to the caller once.
pub fn generate_key_secret() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// The stored form of a key secret: hex SHA-256 over the pepper and the secret. A fast hash is
/// enough: the secret is random and long, so there is nothing for a dictionary attack to find.
pub fn hash_key_secret(pepper: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(pepper.as_bytes());
    hasher.update([0u8]);
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// Compares two secrets without leaking where they differ through timing.
pub fn secrets_match(expected: &str, presented: &str) -> bool {
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// True when `token` has the form of a Twilio auth token: 32 hex digits.
pub fn is_valid_auth_token(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An API key as stored: the secret itself is never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub sid: String,
    pub account_sid: String,
    pub friendly_name: Option<String>,
    pub secret_hash: String,
    pub date_created: i64,
    pub date_updated: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_alphanumeric() {
        let a = generate_key_secret();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, generate_key_secret());
    }

    #[test]
    fn hashes_depend_on_pepper_and_secret() {
        let h = hash_key_secret("pepper", "secret");
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash_key_secret("pepper", "secret"));
        assert_ne!(h, hash_key_secret("other", "secret"));
        assert_ne!(h, hash_key_secret("pepper", "secreT"));
        assert!(!h.contains("secret"));
    }

    #[test]
    fn comparison_needs_exact_equality() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", "abcd"));
        assert!(!secrets_match("abc", ""));
    }

    #[test]
    fn auth_token_form() {
        assert!(is_valid_auth_token("0123456789abcdef0123456789abcdef"));
        assert!(!is_valid_auth_token("0123456789abcdef0123456789abcde"));
        assert!(!is_valid_auth_token("0123456789abcdef0123456789abcdeg"));
    }
}
