//! Address cloaks: what other users see instead of someone's IP address (`nick!user@host`,
//! WHOIS, WHO, the native `ident`), so that joining a room does not hand one's address to
//! everyone in it.
//!
//! A cloak is a keyed hash (HMAC-SHA256, as the UDP tokens) of the address: the same address always gets the same
//! cloak, so room bans on a cloak keep working, but without the key nobody can go back from
//! a cloak to the address (IPv4 has only 2³² addresses: an unkeyed hash would be reversed by
//! trying them all). IPv6 addresses are cloaked by their /64, the block one subscriber gets,
//! so that a ban on a cloak is not dodged by moving within it. The key comes from the
//! configured `cloak_secret`, or is made once at random and kept next to the database, so that
//! cloaks (and the bans on them) survive a restart.

use crate::address::AddressKey;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::net::IpAddr;

/// How a cloak ends: says what it is to anyone reading it.
const SUFFIX: &str = ".cloak";

/// Length in bytes of the key: HMAC-SHA256's block (a shorter key is padded to it).
const KEY_BYTES: usize = 64;

/// The server's cloaking key.
#[derive(Clone)]
pub struct Cloak {
    key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for Cloak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is the secret that keeps addresses hidden: never in a log.
        f.write_str("Cloak { .. }")
    }
}

/// Why the cloaking key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum CloakError {
    /// The key file exists but is not a key.
    #[error(
        "the cloak key file {path} is damaged (expected {} hexadecimal digits); delete it to \
         make a new one (everyone's cloak changes) or set cloak_secret",
        KEY_BYTES * 2
    )]
    Damaged {
        /// The file.
        path: String,
    },
    /// The key file could not be read or written.
    #[error(
        "cannot {action} the cloak key file {path} ({problem}); check the directory's permissions or set cloak_secret"
    )]
    Io {
        /// `read` or `create`.
        action: &'static str,
        /// The file.
        path: String,
        /// Why.
        problem: std::io::Error,
    },
    /// The system gave no random bytes.
    #[error("cannot make a cloak key: no random numbers from the system ({0})")]
    Random(String),
    /// The key the nodes of a cluster share could not be read from (or kept in) the database.
    #[error("cannot read the cloak key the nodes share from the database: {0}")]
    Shared(String),
    /// The shared key in the database is not a key.
    #[error(
        "the cloak key in the database (table shared_settings, name cloak_key) is damaged: delete that row \
         to make a new one (everyone's cloak changes), or set cloak_secret"
    )]
    SharedDamaged,
}

impl Cloak {
    /// A key derived from an operator's secret (any length, any text).
    pub fn from_secret(secret: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"natter cloak secret\0");
        hash.update(secret.as_bytes());
        let mut key = [0u8; KEY_BYTES];
        key[..32].copy_from_slice(&hash.finalize());
        Self { key }
    }

    /// The key for the database at `db`: read from `<db>.cloak-key`, made at random and written
    /// there on the first start. A server keeping nothing (`:memory:`) gets a new key each
    /// run: it keeps no bans for the cloaks to outlive.
    pub fn for_database(db: &str) -> Result<Self, CloakError> {
        if db == ":memory:" {
            return Self::random();
        }
        let path = format!("{db}.cloak-key");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(text.trim()).ok_or(CloakError::Damaged { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let cloak = Self::random()?;
                cloak.write_new(&path)?;
                Ok(cloak)
            }
            Err(problem) => Err(CloakError::Io { action: "read", path, problem }),
        }
    }

    /// The key the nodes of a cluster share: `shared` keeps the new random key it is given
    /// unless the database holds one already, and returns the one it holds, so that every node
    /// cloaks an address alike (bans on cloaks hold on every node) without the operator
    /// configuring a secret.
    pub fn shared(
        shared: impl FnOnce(String) -> Result<String, natter_core::StoreError>,
    ) -> Result<Self, CloakError> {
        let stored = shared(Self::random()?.to_hex()).map_err(|e| CloakError::Shared(e.to_string()))?;
        Self::parse(stored.trim()).ok_or(CloakError::SharedDamaged)
    }

    fn to_hex(&self) -> String {
        use std::fmt::Write as _;
        let mut hex = String::with_capacity(KEY_BYTES * 2);
        for byte in self.key {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }

    fn random() -> Result<Self, CloakError> {
        let mut key = [0u8; KEY_BYTES];
        getrandom::fill(&mut key).map_err(|e| CloakError::Random(e.to_string()))?;
        Ok(Self { key })
    }

    fn parse(hex: &str) -> Option<Self> {
        if hex.len() != KEY_BYTES * 2 || !hex.is_ascii() {
            return None;
        }
        let mut key = [0u8; KEY_BYTES];
        for (byte, pair) in key.iter_mut().zip(hex.as_bytes().chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(Self { key })
    }

    /// Writes the key to a new file readable by its owner only. A file that appeared in the
    /// meantime is not overwritten (a second server on the same database is refused by the
    /// store's lock before this runs).
    fn write_new(&self, path: &str) -> Result<(), CloakError> {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let io = |problem| CloakError::Io { action: "create", path: path.to_string(), problem };
        let mut file = options.open(path).map_err(io)?;
        let mut hex = self.to_hex();
        hex.push('\n');
        file.write_all(hex.as_bytes()).and_then(|()| file.sync_all()).map_err(io)
    }

    /// The cloak of `ip`: 16 hexadecimal digits and `.cloak`.
    pub fn host(&self, ip: IpAddr) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&self.key.into());
        mac.update(b"cloak");
        mac.update(&AddressKey::of(ip).bytes());
        let digest = mac.finalize().into_bytes();
        let mut host = String::with_capacity(16 + SUFFIX.len());
        for byte in &digest[..8] {
            let _ = write!(host, "{byte:02x}");
        }
        host.push_str(SUFFIX);
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_cloak_hides_the_address_and_stays_the_same() {
        let cloak = Cloak::from_secret("s3cret");
        let host = cloak.host(ip("203.0.113.7"));
        assert!(host.ends_with(".cloak") && host.len() == 16 + 6, "{host}");
        assert!(host[..16].bytes().all(|b| b.is_ascii_hexdigit()), "{host}");
        assert!(!host.contains("203") || !host.contains("113"), "{host}");
        assert_eq!(host, Cloak::from_secret("s3cret").host(ip("203.0.113.7")), "same key, same cloak");
        assert_ne!(host, cloak.host(ip("203.0.113.8")), "neighbours differ");
        assert_ne!(host, Cloak::from_secret("other").host(ip("203.0.113.7")), "the key matters");
        // The same IPv4 address arriving on an IPv6 socket is the same user.
        assert_eq!(host, cloak.host(ip("::ffff:203.0.113.7")));
    }

    #[test]
    fn ipv6_is_cloaked_by_its_64() {
        let cloak = Cloak::from_secret("k");
        let a = cloak.host(ip("2001:db8:1:2::1"));
        assert_eq!(a, cloak.host(ip("2001:db8:1:2:ffff::9")), "one /64, one cloak");
        assert_ne!(a, cloak.host(ip("2001:db8:1:3::1")), "another /64");
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("natter.db");
        let db = db.to_str().unwrap();
        let first = Cloak::for_database(db).unwrap().host(ip("198.51.100.1"));
        let again = Cloak::for_database(db).unwrap().host(ip("198.51.100.1"));
        assert_eq!(first, again, "a restart keeps everyone's cloak");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(format!("{db}.cloak-key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only its owner may read the key: {mode:o}");
        }
        std::fs::write(format!("{db}.cloak-key"), "not a key\n").unwrap();
        let err = Cloak::for_database(db).unwrap_err().to_string();
        assert!(err.contains("cloak-key") && err.contains("damaged") && err.contains("delete it"), "{err}");
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let cloak = Cloak::from_secret("x");
        assert_eq!(format!("{cloak:?}"), "Cloak { .. }");
    }
}
