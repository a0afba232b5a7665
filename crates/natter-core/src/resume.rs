//! Resume tokens: what lets a client that logged in to an account once log in again (after a
//! reconnect, or the next start of `natter connect`) without keeping the password.
//!
//! A token is 256 random bits, given to the client once as 43 characters of URL-safe base64.
//! The store keeps only its SHA-256 digest, so a copy of the database lets nobody resume; the
//! lookup is by digest (an index lookup compares whole digests of a secret nobody can choose,
//! so its timing tells a guesser nothing about a token they do not have). Tokens are revoked
//! by logging out (that session's), by changing the password and by `natter user passwd|del`
//! (all of the account's), and expire after [`TOKEN_IDLE_EXPIRY_MS`] unused; an account keeps
//! at most [`MAX_TOKENS_PER_ACCOUNT`], the least recently used dropped first.

use base64ct::{Base64UrlUnpadded, Encoding as _};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// Random bytes in a token: 256 bits, beyond guessing however many tries an attacker gets.
pub const TOKEN_BYTES: usize = 32;

/// Characters of a token as written (URL-safe base64 without padding of [`TOKEN_BYTES`]).
pub const TOKEN_CHARS: usize = 43;

/// Tokens an account keeps: one per device or client, a few to spare; a new one beyond this
/// drops the least recently used, so a loop of logins cannot grow the store.
pub const MAX_TOKENS_PER_ACCOUNT: usize = 10;

/// A token unused this long (90 days) no longer logs in, and is deleted.
pub const TOKEN_IDLE_EXPIRY_MS: u64 = 90 * 24 * 60 * 60 * 1000;

/// A resume token as the client holds it: wiped from memory when dropped, never shown by
/// `Debug` (no log line or panic message can carry it).
#[derive(Clone, PartialEq, Eq)]
pub struct ResumeToken(Zeroizing<String>);

impl ResumeToken {
    /// Takes a token a client sent (checked by [`ResumeToken::digest`]).
    pub fn new(token: String) -> Self {
        Self(Zeroizing::new(token))
    }

    /// A fresh token from the system's randomness, with its digest; `None` when the system
    /// has no randomness to give (then no token is issued: better none than a guessable one).
    pub fn generate() -> Option<(Self, TokenDigest)> {
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        getrandom::fill(&mut bytes[..]).ok()?;
        let token = Self::new(Base64UrlUnpadded::encode_string(&bytes[..]));
        Some((token, TokenDigest::of(&bytes)))
    }

    /// The token itself, to send to its client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest the store keeps for this token; `None` when it is not a token's shape (not
    /// 43 characters of URL-safe base64 decoding to 32 bytes): such a token was never issued
    /// and is refused without a lookup.
    pub fn digest(&self) -> Option<TokenDigest> {
        if self.0.len() != TOKEN_CHARS {
            return None;
        }
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        // Constant-time decoding: how long it takes says nothing about the token.
        match Base64UrlUnpadded::decode(self.0.as_bytes(), &mut bytes[..]) {
            Ok(decoded) if decoded.len() == TOKEN_BYTES => Some(TokenDigest::of(&bytes)),
            _ => None,
        }
    }
}

impl fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumeToken(..)")
    }
}

/// The SHA-256 digest of a token's bytes: what the store keeps and looks tokens up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    fn of(bytes: &[u8; TOKEN_BYTES]) -> Self {
        Self(Sha256::new().chain_update(b"natter resume token\n").chain_update(bytes).finalize().into())
    }
}

impl fmt::Debug for TokenDigest {
    // The digest is no secret, but short is enough to tell two apart in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenDigest({:02x}{:02x}{:02x}{:02x}..)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// A stored token: whose it is and when it was made and last used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's digest.
    pub digest: TokenDigest,
    /// The account's folded name.
    pub folded: String,
    /// When it was issued, ms since the epoch.
    pub created_ts: u64,
    /// When it last logged in (or was issued), ms since the epoch.
    pub last_used_ts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_has_the_shape_it_is_checked_for_and_its_own_digest() {
        let (token, digest) = ResumeToken::generate().expect("randomness");
        assert_eq!(token.expose().len(), TOKEN_CHARS);
        assert!(token.expose().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(token.digest(), Some(digest));
        let (other, other_digest) = ResumeToken::generate().expect("randomness");
        assert_ne!(token, other);
        assert_ne!(digest, other_digest);
        assert_eq!(format!("{token:?}"), "ResumeToken(..)");
    }

    #[test]
    fn anything_not_shaped_like_a_token_has_no_digest() {
        let (token, _) = ResumeToken::generate().expect("randomness");
        let t = token.expose();
        let long = "A".repeat(100_000);
        let bad = [
            "",
            "abc",
            &t[..42],
            &format!("{t}A"),
            &format!("{}=", &t[..42]),
            &format!("{}+", &t[..42]),
            &format!("{}é", &t[..41]),
            "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            &long,
        ];
        for b in bad {
            assert_eq!(ResumeToken::new(b.to_string()).digest(), None, "{b:?}");
        }
        // The last character of 43 carries 2 bits of padding: non-canonical ones are refused.
        assert_eq!(ResumeToken::new(format!("{}B", &"A".repeat(42))).digest(), None);
    }
}
