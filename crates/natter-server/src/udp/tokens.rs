//! Tokens that prove things about UDP peers while the server keeps no state for them.
//!
//! - An **address token** proves that an address receives what the server sends it: the
//!   server's first reply to a new address carries one, and only a datagram that carries it
//!   back lets the address join. It is an HMAC of the address and a five-minute time slot
//!   under a key made at start, so the server remembers nothing about addresses that have
//!   not proved themselves (state kept for them would be the next flood's target), and a
//!   token is good for 5 to 10 minutes. Six characters, because a person with `nc -u` types
//!   it: 30 bits, which a blind forger cannot guess at the rate one address may send.
//! - A **session token** proves that a datagram comes from the native client that logged in
//!   from that address (not from someone who writes its address as the source): 130 bits,
//!   carried by every datagram the client sends after `welcome`.
//!
//! Both are written in lower-case Crockford base32 (no `i`, `l`, `o`, `u`); typed tokens
//! are read leniently (upper case, `o` for `0`, `i` or `l` for `1`) and compared in constant
//! time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

/// How long one address token is issued for; the one before it is accepted too.
pub(crate) const SLOT: Duration = Duration::from_secs(300);

/// Characters of an address token.
pub(crate) const ADDRESS_TOKEN_LEN: usize = 6;

/// Characters of a session token (5 bits each).
pub(crate) const SESSION_TOKEN_LEN: usize = 26;

/// Crockford's base32 alphabet, lower case.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// An address token, as sent and as typed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AddressToken([u8; ADDRESS_TOKEN_LEN]);

impl AddressToken {
    /// The token's text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("base32 is ASCII")
    }
}

/// A session token, as sent in `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SessionToken([u8; SESSION_TOKEN_LEN]);

impl SessionToken {
    /// The token's text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("base32 is ASCII")
    }
}

/// The server's key and clock for tokens: one per UDP socket, shared by its member tasks.
pub(crate) struct Tokens {
    key: [u8; 32],
    start: Instant,
    sessions: AtomicU64,
}

impl Tokens {
    /// Tokens under a fresh random key.
    pub fn new() -> std::io::Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| std::io::Error::other(format!("no random key for UDP tokens: {e}")))?;
        Ok(Self::with_key(key))
    }

    fn with_key(key: [u8; 32]) -> Self {
        Self { key, start: Instant::now(), sessions: AtomicU64::new(0) }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn slot(&self) -> u64 {
        self.start.elapsed().as_secs() / SLOT.as_secs()
    }

    fn address_token_in(&self, peer: SocketAddr, slot: u64) -> AddressToken {
        let ip = peer.ip().to_canonical();
        let octets = match ip {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        let digest = self.mac(&[b"address", &slot.to_be_bytes(), &octets, &peer.port().to_be_bytes()]);
        let mut token = [0u8; ADDRESS_TOKEN_LEN];
        base32(&digest, &mut token);
        AddressToken(token)
    }

    /// The token `peer` must send back to show that it receives.
    pub fn address_token(&self, peer: SocketAddr) -> AddressToken {
        self.address_token_in(peer, self.slot())
    }

    /// True when `typed` is the token of `peer` for this slot or the one before.
    pub fn proves(&self, peer: SocketAddr, typed: &[u8]) -> bool {
        if typed.len() != ADDRESS_TOKEN_LEN {
            return false;
        }
        let mut normal = [0u8; ADDRESS_TOKEN_LEN];
        for (n, &b) in normal.iter_mut().zip(typed) {
            *n = match b.to_ascii_lowercase() {
                b'o' => b'0',
                b'i' | b'l' => b'1',
                b => b,
            };
        }
        let slot = self.slot();
        let now = self.address_token_in(peer, slot).0.ct_eq(&normal);
        let before = match slot.checked_sub(1) {
            Some(earlier) => self.address_token_in(peer, earlier).0.ct_eq(&normal),
            None => 0.into(),
        };
        bool::from(now | before)
    }

    /// A new session token, never issued before by this server.
    pub fn session_token(&self) -> SessionToken {
        let n = self.sessions.fetch_add(1, Ordering::Relaxed);
        let digest = self.mac(&[b"session", &n.to_be_bytes()]);
        let mut token = [0u8; SESSION_TOKEN_LEN];
        base32(&digest, &mut token);
        SessionToken(token)
    }
}

/// Fills `out` with base32 characters taken from the bits of `bytes`, first bits first.
fn base32(bytes: &[u8], out: &mut [u8]) {
    debug_assert!(out.len() * 5 <= bytes.len() * 8);
    for (i, c) in out.iter_mut().enumerate() {
        let bit = i * 5;
        let pair = (u16::from(bytes[bit / 8]) << 8) | u16::from(*bytes.get(bit / 8 + 1).unwrap_or(&0));
        let index = (pair >> (11 - bit % 8)) & 31;
        *c = ALPHABET[usize::from(index)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn base32_reads_five_bits_at_a_time() {
        let mut out = [0u8; 8];
        base32(&[0xff; 5], &mut out);
        assert_eq!(&out, b"zzzzzzzz");
        // 00001 00010 00011 00100: 1, 2, 3, 4.
        base32(&[0x08, 0x86, 0x40, 0, 0], &mut out);
        assert_eq!(&out[..4], b"1234");
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_token_proves_that_address_for_five_to_ten_minutes() {
        let tokens = Tokens::with_key([7; 32]);
        let ann = addr("192.0.2.1:4000");
        let token = tokens.address_token(ann);
        assert_eq!(token.as_str().len(), ADDRESS_TOKEN_LEN);
        assert!(token.as_str().bytes().all(|b| ALPHABET.contains(&b)));
        assert!(tokens.proves(ann, token.as_str().as_bytes()));
        assert!(tokens.proves(ann, token.as_str().to_uppercase().as_bytes()), "typed in capitals");
        // Another port, another address, the IPv4-mapped form of the same one.
        assert!(!tokens.proves(addr("192.0.2.1:4001"), token.as_str().as_bytes()));
        assert!(!tokens.proves(addr("192.0.2.2:4000"), token.as_str().as_bytes()));
        assert!(tokens.proves(addr("[::ffff:192.0.2.1]:4000"), token.as_str().as_bytes()));
        assert!(!tokens.proves(ann, b""));
        assert!(!tokens.proves(ann, &token.as_str().as_bytes()[..5]));
        tokio::time::advance(SLOT).await;
        assert!(tokens.proves(ann, token.as_str().as_bytes()), "the previous slot's token still counts");
        assert_ne!(tokens.address_token(ann), token, "a new slot, a new token");
        tokio::time::advance(SLOT).await;
        assert!(!tokens.proves(ann, token.as_str().as_bytes()), "two slots later it has expired");
        let other_server = Tokens::with_key([8; 32]);
        assert!(!other_server.proves(ann, tokens.address_token(ann).as_str().as_bytes()));
    }

    #[test]
    fn typed_lookalikes_are_read_as_the_digits() {
        let tokens = Tokens::with_key([1; 32]);
        // Find an address whose token has a 0 or a 1 in it.
        let (peer, token) = (1000..2000)
            .map(|port| {
                let peer = SocketAddr::from(([198, 51, 100, 7], port));
                (peer, tokens.address_token(peer))
            })
            .find(|(_, t)| t.as_str().contains(['0', '1']))
            .unwrap();
        let typed = token.as_str().replace('0', "O").replace('1', "l");
        assert!(tokens.proves(peer, typed.as_bytes()), "{typed} for {}", token.as_str());
    }

    #[test]
    fn session_tokens_are_long_and_never_the_same() {
        let tokens = Tokens::with_key([3; 32]);
        let issued: std::collections::HashSet<_> = (0..1000).map(|_| tokens.session_token()).collect();
        assert_eq!(issued.len(), 1000);
        assert!(issued.iter().all(|t| t.as_str().len() == SESSION_TOKEN_LEN));
    }
}
