//! SCRAM-SHA-256 (RFC 5802, RFC 7677): the credential an account keeps for it, and the
//! server's check of a client's proof.
//!
//! SCRAM lets a client prove it knows the password without sending it, and lets it check that
//! the server knew the password too. The server keeps no password and no hash it could log in
//! with: only a salt, an iteration count, and two keys derived from the password (`StoredKey`,
//! `ServerKey`, RFC 5802 §3). They are derived when the password is set (registration, a
//! change of password, or the first password login of an account made before SCRAM), on the
//! hashing threads, never on the hub's task. Checking a proof costs two HMACs.
//!
//! The exchange's messages (`n=`, `r=`, `p=` attributes) are parsed in `natter_proto::sasl`;
//! this module knows only the keys.

use base64ct::{Base64, Encoding};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// PBKDF2 iterations for new credentials. RFC 7677 asks for at least 4096; the cost is paid
/// by the client at every SCRAM login and by the server once per password. A copy of the
/// database lets a guesser test a password at this cost, far less than argon2id's:
/// `docs/accounts.md` says so.
pub const SCRAM_ITERATIONS: u32 = 10_000;

/// Bytes of a new credential's salt.
const SALT_BYTES: usize = 16;

/// Most iterations a stored credential may ask for (a damaged row must not make a client
/// spend minutes).
const MAX_ITERATIONS: u32 = 1_000_000;

/// The prefix of a stored credential (RFC 5803's form for LDAP, which names the mechanism).
const PREFIX: &str = "SCRAM-SHA-256$";

type HmacSha256 = Hmac<Sha256>;

/// An account's SCRAM-SHA-256 credential: what the server needs to check a proof.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// The salt, sent to the client.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`: a proof is right when the key it reveals hashes to this.
    stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server's final message.
    server_key: [u8; 32],
}

impl std::fmt::Debug for ScramCredential {
    // The keys stay out of logs: with them an offline guesser tests passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// Why a stored credential could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SCRAM-SHA-256 credential")]
pub struct NotACredential;

impl ScramCredential {
    /// Derives the credential of `password` with a fresh random salt.
    pub fn new(password: &str) -> Result<Self, getrandom::Error> {
        let mut salt = vec![0; SALT_BYTES];
        getrandom::fill(&mut salt)?;
        Ok(Self::derive(password, salt, SCRAM_ITERATIONS))
    }

    /// Derives the credential of `password` with this salt and count (RFC 5802 §3). The
    /// password is used as given: natter does not apply SASLprep, and says so in its docs (a
    /// client that normalises a password natter stored unnormalised fails, as with PLAIN).
    pub fn derive(password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, b"Server Key");
        Self { iterations, salt, stored_key, server_key }
    }

    /// Checks a client's proof of `auth_message` (the three messages joined, RFC 5802 §3);
    /// the server's signature, which the client checks in turn, when it is right.
    pub fn verify(&self, auth_message: &[u8], proof: &[u8]) -> Option<[u8; 32]> {
        if proof.len() != 32 {
            return None;
        }
        let signature = hmac(&self.stored_key, auth_message);
        let mut client_key = [0u8; 32];
        for (k, (p, s)) in client_key.iter_mut().zip(proof.iter().zip(signature)) {
            *k = p ^ s;
        }
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        bool::from(stored.ct_eq(&self.stored_key)).then(|| hmac(&self.server_key, auth_message))
    }

    /// The form kept in the store: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`
    /// (RFC 5803), base64.
    pub fn to_stored(&self) -> String {
        format!(
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            Base64::encode_string(&self.salt),
            Base64::encode_string(&self.stored_key),
            Base64::encode_string(&self.server_key)
        )
    }

    /// Reads the stored form back.
    pub fn from_stored(stored: &str) -> Result<Self, NotACredential> {
        let rest = stored.strip_prefix(PREFIX).ok_or(NotACredential)?;
        let (params, keys) = rest.split_once('$').ok_or(NotACredential)?;
        let (iterations, salt) = params.split_once(':').ok_or(NotACredential)?;
        let (stored_key, server_key) = keys.split_once(':').ok_or(NotACredential)?;
        let iterations: u32 = iterations.parse().map_err(|_| NotACredential)?;
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(NotACredential);
        }
        let salt = Base64::decode_vec(salt).map_err(|_| NotACredential)?;
        let key = |text: &str| -> Result<[u8; 32], NotACredential> {
            Base64::decode_vec(text).ok().and_then(|v| v.try_into().ok()).ok_or(NotACredential)
        };
        if salt.is_empty() {
            return Err(NotACredential);
        }
        Ok(Self { iterations, salt, stored_key: key(stored_key)?, server_key: key(server_key)? })
    }
}

/// A salt that does not give away whether `name` is an account: answered to a SCRAM login
/// as an account that is not (or has no SCRAM credential yet), derived from a key the server
/// draws at start so that it is the same at every try.
pub fn stand_in_salt(key: &[u8; 32], folded_name: &str) -> Vec<u8> {
    hmac(key, folded_name.as_bytes())[..SALT_BYTES].to_vec()
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3's example exchange: user `user`, password `pencil`.
    #[test]
    fn the_rfc_7677_example_verifies() {
        let salt = Base64::decode_vec("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = ScramCredential::derive("pencil", salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = Base64::decode_vec("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=").unwrap();
        let signature = credential.verify(auth_message.as_bytes(), &proof).expect("the proof is right");
        assert_eq!(Base64::encode_string(&signature), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        let mut wrong = proof.clone();
        wrong[0] ^= 1;
        assert!(credential.verify(auth_message.as_bytes(), &wrong).is_none());
        assert!(credential.verify(auth_message.as_bytes(), &proof[..31]).is_none());
        assert!(credential.verify(b"another exchange", &proof).is_none());
    }

    #[test]
    fn a_credential_reads_back_as_stored_and_damage_is_refused() {
        let credential = ScramCredential::derive("correct horse", b"0123456789abcdef".to_vec(), 4096);
        let stored = credential.to_stored();
        assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
        assert_eq!(ScramCredential::from_stored(&stored), Ok(credential));
        for damaged in [
            "",
            "$argon2id$v=19$m=19456,t=2,p=1$abc$def",
            "SCRAM-SHA-256$",
            "SCRAM-SHA-256$0:AAAA$AAAA:AAAA",
            "SCRAM-SHA-256$99999999999:AAAA$AAAA:AAAA",
            "SCRAM-SHA-256$4096:$AAAA:AAAA",
            "SCRAM-SHA-256$4096:!!!!$AAAA:AAAA",
            &stored[..stored.len() - 4],
        ] {
            assert_eq!(ScramCredential::from_stored(damaged), Err(NotACredential), "{damaged}");
        }
    }

    #[test]
    fn stand_in_salts_are_stable_per_name_and_differ_between_names() {
        let key = [7u8; 32];
        assert_eq!(stand_in_salt(&key, "ann"), stand_in_salt(&key, "ann"));
        assert_ne!(stand_in_salt(&key, "ann"), stand_in_salt(&key, "bob"));
        assert_eq!(stand_in_salt(&key, "ann").len(), SALT_BYTES);
    }
}
