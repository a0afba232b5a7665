//! Account passwords: the rules a new one must meet, and their argon2id hashes.
//!
//! A stored password is only ever its argon2id hash (a PHC string carrying salt and
//! parameters), so a copy of the database does not give the passwords away; guessing from it
//! costs an attacker what each hash costs. Hashing takes tens of milliseconds of CPU on
//! purpose, so it never runs on the hub's task (see `hub/verifier.rs`). The parameters and
//! why they were chosen are in `docs/accounts.md`.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use std::fmt;
use std::sync::LazyLock;
use zeroize::Zeroizing;

/// Fewest characters a new password may have: shorter ones fall to guessing even through the
/// login throttle.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Most bytes a password may have: bounds the work of hashing one (and fits an IRC line).
pub const MAX_PASSWORD_BYTES: usize = 256;

/// argon2id memory cost in KiB: OWASP's recommendation (m=19 MiB, t=2, p=1).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// argon2id passes over the memory.
pub const ARGON2_ITERATIONS: u32 = 2;
/// argon2id lanes: one, since the server limits how many hashes run at once instead.
pub const ARGON2_LANES: u32 = 1;

/// A password as a client typed it: wiped from memory when dropped, never shown by `Debug`
/// (so that no log line or panic message can carry it).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Takes ownership of a password (the `String` is wiped when this is dropped).
    pub fn new(password: String) -> Self {
        Self(Zeroizing::new(password))
    }

    /// The password itself, for hashing or checking it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Password {
    fn from(p: &str) -> Self {
        Self::new(p.to_string())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    TooLong,
}

impl fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordProblem::TooShort => {
                write!(f, "the password is too short: use at least {MIN_PASSWORD_CHARS} characters")
            }
            PasswordProblem::TooLong => {
                write!(f, "the password is too long: use at most {MAX_PASSWORD_BYTES} bytes")
            }
        }
    }
}

/// Checks a new password against the rules (length only: a passphrase of common words is a
/// good password, and character-class rules make people write worse ones).
pub fn check_new_password(password: &str) -> Result<(), PasswordProblem> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordProblem::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    Ok(())
}

/// Hashing failed: only when the system's random number generator fails (the salt).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, None)
        .expect("the argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The argon2id hash of `password` with a fresh random salt, as a PHC string. Blocking: tens
/// of milliseconds of CPU.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    hasher().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| HashError(e.to_string()))
}

/// What the store keeps of a password: its argon2id hash, for password logins, and its
/// SCRAM-SHA-256 credential, for SASL SCRAM logins (`crate::scram`).
pub struct PasswordSecrets {
    /// The argon2id PHC string.
    pub hash: String,
    /// The SCRAM credential in its stored form.
    pub scram: String,
}

/// Both secrets of a new password. Blocking: tens of milliseconds of CPU.
pub fn password_secrets(password: &str) -> Result<PasswordSecrets, HashError> {
    let hash = hash_password(password)?;
    let scram = crate::scram::ScramCredential::new(password).map_err(|e| HashError(e.to_string()))?;
    Ok(PasswordSecrets { hash, scram: scram.to_stored() })
}

/// The hash checked when there is no account by the name given: a login for an unknown name
/// costs what a wrong password does, so its timing does not tell which names are registered.
static DECOY: LazyLock<String> = LazyLock::new(|| hash_password("natter decoy password").unwrap_or_default());

/// True when `password` is the one `phc` was made from (argon2 compares in constant time).
/// `phc: None` (no such account) checks against a decoy and answers false, taking as long.
/// A stored hash that is not a valid PHC string never matches.
pub fn verify_password(password: &str, phc: Option<&str>) -> bool {
    let (hash, real) = match phc {
        Some(h) => (h, true),
        None => (DECOY.as_str(), false),
    };
    // The parameters come from the stored string: hashes made with other parameters (older
    // accounts) still verify.
    let ok = hasher().verify_password(password.as_bytes(), hash).is_ok();
    ok && real
}

/// True when `phc` was made with weaker parameters than today's: the hub rehashes such a
/// password at its owner's next login.
pub fn needs_rehash(phc: &str) -> bool {
    let expected = format!("$argon2id$v=19$m={ARGON2_MEMORY_KIB},t={ARGON2_ITERATIONS},p={ARGON2_LANES}$");
    !phc.starts_with(&expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_need_eight_characters_and_at_most_256_bytes() {
        assert_eq!(check_new_password(""), Err(PasswordProblem::TooShort));
        assert_eq!(check_new_password("1234567"), Err(PasswordProblem::TooShort));
        assert_eq!(check_new_password("12345678"), Ok(()));
        // Characters, not bytes: eight accented letters are eight.
        assert_eq!(check_new_password("éééééééé"), Ok(()));
        assert_eq!(check_new_password("ééé"), Err(PasswordProblem::TooShort));
        assert_eq!(check_new_password(&"a".repeat(256)), Ok(()));
        assert_eq!(check_new_password(&"a".repeat(257)), Err(PasswordProblem::TooLong));
        assert_eq!(check_new_password(&"é".repeat(129)), Err(PasswordProblem::TooLong));
    }

    #[test]
    fn a_hash_is_argon2id_with_the_documented_parameters_and_verifies_only_its_password() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(!needs_rehash(&hash));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("correct horsE", Some(&hash)));
        assert!(!verify_password("", Some(&hash)));
        // Salted: the same password hashes differently each time.
        assert_ne!(hash, hash_password("correct horse").unwrap());
    }

    #[test]
    fn unknown_accounts_and_damaged_hashes_never_verify() {
        assert!(!verify_password("natter decoy password", None));
        assert!(!verify_password("anything", Some("not a hash")));
        assert!(!verify_password("anything", Some("")));
        assert!(needs_rehash("$argon2id$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA"));
    }

    #[test]
    fn a_password_never_shows_in_debug_output() {
        let p = Password::from("hunter22hunter22");
        assert_eq!(format!("{p:?}"), "Password(..)");
        assert_eq!(p.expose(), "hunter22hunter22");
    }
}
