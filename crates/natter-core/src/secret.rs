//! Secrets the hub compares with what clients send (the server password, operators' names and
//! passwords) and the digest that stands for a client's own secret.
//!
//! A comparison that stops at the first differing byte tells a patient guesser, by its timing,
//! how much of a guess was right. Both sides are hashed to a fixed length and the digests
//! compared in constant time, so that neither the content nor the length of a secret shows.

use sha2::{Digest, Sha256};
use std::num::NonZeroU64;
use subtle::ConstantTimeEq;

/// A configured secret, kept as its digest.
#[derive(Clone)]
pub(crate) struct Secret([u8; 32]);

impl Secret {
    pub fn new(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// True when `given` is the secret; takes as long whatever `given` is.
    pub fn matches(&self, given: &str) -> subtle::Choice {
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        digest.ct_eq(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What stands for a client's secret (see `Registration::client_secret`): 64 bits of its
/// SHA-256 digest, the same in every run of the server (the store keeps it beside each client
/// message id), from which the secret cannot be found.
pub(crate) fn client_digest(secret: &str) -> NonZeroU64 {
    let digest =
        Sha256::new().chain_update(b"natter client secret\n").chain_update(secret.as_bytes()).finalize();
    let value = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    NonZeroU64::new(value).unwrap_or(NonZeroU64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secret_itself_matches() {
        let s = Secret::new("s3cret");
        assert!(bool::from(s.matches("s3cret")));
        for wrong in ["", "s3cre", "s3cret ", "S3cret", "s3cretss3cret"] {
            assert!(!bool::from(s.matches(wrong)), "{wrong:?}");
        }
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn a_client_digest_is_stable_and_tells_secrets_apart() {
        assert_eq!(client_digest("a secret of the client"), client_digest("a secret of the client"));
        assert_ne!(client_digest("a secret of the client"), client_digest("a secret of the client."));
    }
}
