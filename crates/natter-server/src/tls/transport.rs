//! A TLS connection as the connection loop drives it: reads and writes that never wait,
//! straight on rustls' buffers and the socket (tokio-rustls did the handshake and serves the
//! rare waiting writes). Everything here belongs to TLS connections alone.

use crate::transport::Transport;
use std::io::{self, BufRead};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Most TLS reads from the socket in one [`Transport::try_read_into`] that yield no
/// plaintext (a record split over reads, handshake or alert records): past it the read
/// reports nothing for now and the connection loop comes back, so a peer cannot hold its
/// task in one call.
const MAX_READS_PER_CALL: usize = 8;

/// A TLS connection after its handshake. Boxed: rustls' state is large, and a connection
/// task moves its stream around.
pub(crate) struct TlsTransport {
    stream: Box<TlsStream<TcpStream>>,
    /// Decrypted bytes (or the end of the stream) wait in rustls: the next read finds them
    /// without the socket becoming readable.
    buffered: bool,
}

impl TlsTransport {
    pub(super) fn new(stream: TlsStream<TcpStream>) -> Self {
        // The handshake may have read the first application bytes along with its last record.
        Self { stream: Box::new(stream), buffered: true }
    }
}

/// The socket as `std::io` sees it, without waiting: what rustls reads from and writes to.
struct NoWait<'a>(&'a TcpStream);

impl io::Read for NoWait<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl io::Write for NoWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends what rustls holds, without waiting: `Ok` when all of it went, `WouldBlock` when the
/// socket is full.
fn send_pending(tcp: &TcpStream, tls: &mut rustls::ServerConnection) -> io::Result<()> {
    while tls.wants_write() {
        if tls.write_tls(&mut NoWait(tcp))? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

impl Transport for TlsTransport {
    const SECURE: bool = true;

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffered {
            return Poll::Ready(Ok(()));
        }
        self.stream.get_ref().0.poll_read_ready(cx)
    }

    fn try_read_into(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let room = buf.capacity() - buf.len();
        // Without room a chunk of plaintext would read as the end of the stream.
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // Until a read leaves bytes behind, readiness is the socket's again: a read that finds
        // nothing must not leave the loop believing there is more (it would spin).
        self.buffered = false;
        let (tcp, tls) = self.stream.get_mut();
        for _ in 0..MAX_READS_PER_CALL {
            match tls.reader().fill_buf() {
                Ok(plain) => {
                    // Empty: the peer closed the TLS session cleanly.
                    let n = plain.len().min(room);
                    buf.extend_from_slice(&plain[..n]);
                    tls.reader().consume(n);
                    // More decrypted bytes (or the end) wait: the loop must come back.
                    self.buffered = n > 0 && tls.reader().fill_buf().is_ok();
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // 0 is the end of the socket: rustls notes it, and its reader says whether the
            // session was closed cleanly.
            tls.read_tls(&mut NoWait(tcp))?;
            if let Err(e) = tls.process_new_packets() {
                // rustls queued an alert saying why; the peer gets it if the socket takes it.
                let _ = send_pending(tcp, tls);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Answers rustls owes the peer (key updates) go now if the socket takes them,
            // else with the next write.
            match send_pending(tcp, tls) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn try_write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let (tcp, tls) = self.stream.get_mut();
        // What waits goes first: rustls never holds more than one socket's refusal.
        send_pending(tcp, tls)?;
        let taken = io::Write::write(&mut tls.writer(), bytes)?;
        if taken == 0 && !bytes.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match send_pending(tcp, tls) {
            Ok(()) => Ok(taken),
            // Taken, encrypted, waiting: `has_pending_output` says so, and the writer flushes.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(taken),
            Err(e) => Err(e),
        }
    }

    fn client_certificate(&self) -> Option<Box<str>> {
        let cert = self.stream.get_ref().1.peer_certificates()?.first()?;
        Some(natter_proto::fingerprint::sha256(cert).into())
    }

    fn has_pending_output(&self) -> bool {
        self.stream.get_ref().1.wants_write()
    }

    fn bytes_waiting(&self) -> bool {
        self.buffered || crate::transport::peek_socket(socket2::SockRef::from(self.stream.get_ref().0))
    }
}

/// Reads through tokio-rustls, for the HTTP server (which reads by polling).
impl AsyncRead for TlsTransport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // rustls may keep decrypted bytes past what was asked: the connection loop that
        // takes the stream over after a WebSocket upgrade must look there first.
        self.buffered = true;
        Pin::new(&mut *self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTransport {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // tokio-rustls sends a close_notify first: the peer sees a clean end, not a truncation.
        Pin::new(&mut *self.stream).poll_shutdown(cx)
    }
}

/// A server-side TLS connection over loopback and the client's end, for tests.
#[cfg(test)]
pub(crate) async fn test_pair() -> (TlsTransport, tokio_rustls::client::TlsStream<TcpStream>) {
    let dir = tempfile::tempdir().unwrap();
    let made = crate::cert::make(&["127.0.0.1".into()], 1).unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, &made.cert_pem).unwrap();
    std::fs::write(&key, &made.key_pem).unwrap();
    let tls = super::Tls::load(&cert, &key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let addr = client.peer_addr().unwrap().to_string();
    let trust = natter_client::tls::ClientTls::new(&addr, natter_client::tls::Trust::Anything).unwrap();
    let (server, client) = tokio::join!(tls.accept(server), trust.connect(client));
    (server.unwrap(), client.unwrap().0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A read that finds nothing leaves readiness to the socket: the connection loop must
    /// sleep until the peer sends, not spin on a stale "more is buffered".
    #[tokio::test]
    async fn a_read_that_finds_nothing_leaves_the_connection_waiting_for_the_socket() {
        let (mut server, mut client) = test_pair().await;
        let mut buf = Vec::with_capacity(4096);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // Whatever the handshake left, then nothing.
        while server.try_read_into(&mut buf).is_ok() {}
        assert!(server.poll_read_ready(&mut cx).is_pending(), "ready with nothing to read");
        client.write_all(b"hello\n").await.unwrap();
        client.flush().await.unwrap();
        std::future::poll_fn(|cx| server.poll_read_ready(cx)).await.unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"\n") {
            let mut buf = Vec::with_capacity(4096);
            match server.try_read_into(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::future::poll_fn(|cx| server.poll_read_ready(cx)).await.unwrap()
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, b"hello\n");
    }
}
