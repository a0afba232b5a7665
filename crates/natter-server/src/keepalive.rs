//! Finding peers that vanished. A laptop closed mid-session or a dropped mobile link sends
//! nothing, not even a FIN: without a check, its session (and its nick) would stay forever,
//! since native and text sessions may rightly be silent for hours. The operating system's
//! TCP keepalive is the check that costs nothing while the peer is there: after `idle` of
//! silence in both directions the kernel sends a probe, which any live TCP stack answers
//! without the client's help (a person on netcat cannot answer an application ping); after
//! [`PROBES`] unanswered probes [`INTERVAL`] apart the socket fails, the connection loop sees
//! it, and the session quits with "connection lost". IRC also pings at the application level
//! (`docs/irc.md`), which finds clients that are connected but hung.

use socket2::{SockRef, TcpKeepalive};
use std::time::Duration;
use tokio::net::TcpStream;

/// Time between unanswered probes.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Unanswered probes after which the peer counts as gone.
pub const PROBES: u32 = 3;

/// The keepalive settings for connections silent for `idle`: probes every [`INTERVAL`],
/// [`PROBES`] of them, where the system lets a program choose (elsewhere its defaults).
pub fn settings(idle: Duration) -> TcpKeepalive {
    let keepalive = TcpKeepalive::new().with_time(idle);
    #[cfg(any(
        target_os = "android",
        target_os = "freebsd",
        target_os = "linux",
        target_os = "macos",
        target_os = "netbsd",
        target_os = "windows",
    ))]
    let keepalive = keepalive.with_interval(INTERVAL).with_retries(PROBES);
    keepalive
}

/// Turns keepalive on for an accepted connection. A failure is logged, not fatal: the
/// session works, it only is not probed.
pub fn enable(stream: &TcpStream, keepalive: &TcpKeepalive) {
    if let Err(e) = SockRef::from(stream).set_tcp_keepalive(keepalive) {
        tracing::debug!(error = %e, "cannot turn TCP keepalive on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_accepted_socket_is_probed_after_the_idle_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(!SockRef::from(&accepted).keepalive().unwrap(), "off until turned on");
        enable(&accepted, &settings(Duration::from_secs(60)));
        let socket = SockRef::from(&accepted);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
        #[cfg(target_os = "linux")]
        {
            assert_eq!(socket.tcp_keepalive_interval().unwrap(), INTERVAL);
            assert_eq!(socket.tcp_keepalive_retries().unwrap(), PROBES);
        }
    }
}
