//! A peer's address, as the server keeps it. [`AddressKey`] is what the connection caps count
//! and the cloaks hide: an IPv4 address, or the /64 of an IPv6 address, the block one
//! subscriber gets and a single host can hop around in at will (counting or cloaking single
//! IPv6 addresses would let one host pass for millions); an IPv4 address seen on an IPv6
//! socket (`::ffff:a.b.c.d`) is itself. [`PeerAddr`] is the address and port every
//! connection's context holds, in 20 bytes instead of a `SocketAddr`'s 32 (IPv6 flow and scope
//! ids, which the server never uses): that context lives in every idle connection.

use std::net::{IpAddr, SocketAddr};

/// A peer's IP address and port, shown as a `SocketAddr` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr {
    ip: IpAddr,
    port: u16,
}

impl PeerAddr {
    /// The IP address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        Self { ip: addr.ip(), port: addr.port() }
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        SocketAddr::new(self.ip, self.port).fmt(f)
    }
}

/// One sender as the caps count senders and the cloaks hide them: an IPv4 address (as its
/// IPv4-mapped IPv6 form), or an IPv6 address with its last 64 bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct AddressKey(u128);

impl AddressKey {
    /// The key of `ip` (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(u128::from(v4.to_ipv6_mapped())),
            IpAddr::V6(v6) => Self(u128::from(v6) & !u128::from(u64::MAX)),
        }
    }

    /// The key as 16 bytes, for a keyed hash.
    pub fn bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::AddressKey;

    #[test]
    fn an_ipv6_64_is_one_key_and_mapped_ipv4_is_itself() {
        let key = |s: &str| AddressKey::of(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
    }

    #[test]
    fn a_peer_address_is_small_and_shown_as_a_socket_address() {
        use super::PeerAddr;
        assert!(std::mem::size_of::<PeerAddr>() <= 20);
        for addr in ["192.0.2.1:6667", "[2001:db8::1]:7878"] {
            let peer = PeerAddr::from(addr.parse::<std::net::SocketAddr>().unwrap());
            assert_eq!(peer.to_string(), addr);
        }
    }
}
