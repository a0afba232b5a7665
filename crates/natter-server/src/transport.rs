//! What the connection loop needs from a byte stream: readiness, reads and writes that never
//! wait, and an async write for the rare backlog. A plain TCP connection is itself a
//! transport (its methods are tokio's, so the plain path compiles to what it was); TLS and
//! Unix-socket connections are others ([`crate::tls::TlsTransport`], `UnixStream`). The
//! connection loop is generic over it, so a plain connection carries no TLS state at all.

use std::io;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use tokio::net::{TcpStream, UnixStream};

/// A connection's byte stream, as the readiness-driven connection loop uses it.
pub(crate) trait Transport: AsyncWrite + Unpin + Send + Sync + 'static {
    /// True when no one on the network can read the bytes: TLS, or a Unix socket (which
    /// never leaves the machine).
    const SECURE: bool = false;

    /// True when the peer's input comes as whole messages, each already a complete line
    /// (WebSocket): a line left unterminated is then a message still arriving, never one to
    /// complete after a pause.
    const MESSAGES: bool = false;

    /// True when an idle connection over this transport can be parked ([`crate::park`]): its
    /// socket handed over as it is ([`Transport::into_parked`]). TLS keeps state of its own
    /// beside the socket (keys, sequence numbers), and is never parked.
    const PARKABLE: bool = false;

    /// True when the transport keeps nothing beside its socket that parking would lose: a
    /// WebSocket between messages (no frame half read, no frame half written, no pong owed).
    /// Asked only of a [`Transport::PARKABLE`] one.
    fn at_rest(&self) -> bool {
        true
    }

    /// The bare socket, out of tokio's reactor, for the park. Called only when
    /// [`Transport::PARKABLE`]; an error means the socket is gone (closed).
    fn into_parked(self) -> io::Result<ParkedSocket>
    where
        Self: Sized,
    {
        drop(self);
        Err(io::Error::other("this transport is never parked"))
    }

    /// The transport again, from the socket [`Transport::into_parked`] gave the park
    /// (registered with the reactor anew).
    fn from_parked(socket: ParkedSocket) -> io::Result<Self>
    where
        Self: Sized,
    {
        drop(socket);
        Err(io::Error::other("this transport is never parked"))
    }

    /// The SHA-256 fingerprint of the client certificate the peer presented (TLS only).
    fn client_certificate(&self) -> Option<Box<str>> {
        None
    }

    /// Ready when a read may find bytes (or the end of the stream). A read after readiness
    /// may still find nothing (`WouldBlock`): the loop then waits again.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Appends what is available, without waiting, to `buf`'s spare capacity (at most that
    /// much). `Ok(0)` is the end of the stream.
    fn try_read_into(&mut self, buf: &mut Vec<u8>) -> io::Result<usize>;

    /// Writes what the stream takes without waiting; `WouldBlock` when it takes nothing.
    fn try_write(&mut self, bytes: &[u8]) -> io::Result<usize>;

    /// For a transport that carries messages: the render-cache slot where renderings in
    /// `slot` are kept in this transport's encoding ([`Transport::encode`]), when connections
    /// can share it; `None` to encode per connection.
    fn encoded_slot(&self, _slot: natter_core::RenderSlot) -> Option<natter_core::RenderSlot> {
        None
    }

    /// Appends rendered lines to `out` as this transport carries them: as they are on a byte
    /// stream; one message per line on WebSocket. What [`Transport::try_write_encoded`]
    /// writes.
    fn encode(&self, lines: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(lines);
    }

    /// [`Transport::try_write`] for bytes already encoded ([`Transport::encode`]): the
    /// connection loop's batches, encoded once per event in the render cache.
    fn try_write_encoded(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.try_write(bytes)
    }

    /// Writes encoded bytes, waiting for the socket; the rare path of a full socket.
    fn poll_write_encoded(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(self).poll_write(cx, bytes)
    }

    /// True when the peer's bytes (or its end) wait to be read right now, asked of the socket
    /// itself (one byte peeked). Used only when a partial line's pause runs out: a task that
    /// comes back late (a busy server, its cooperative budget spent) may find the rest of the
    /// line already there, and must read it rather than cut the line at the pause.
    fn bytes_waiting(&self) -> bool {
        false
    }

    /// True when bytes already taken by [`Transport::try_write`] still wait inside the
    /// transport (TLS records the socket did not take): the writer must then flush, with
    /// `AsyncWriteExt::flush`, before it goes idle.
    fn has_pending_output(&self) -> bool {
        false
    }
}

/// The socket of a parked connection, out of tokio's reactor (still non-blocking).
#[derive(Debug)]
pub(crate) enum ParkedSocket {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
    /// A WebSocket at rest ([`Transport::at_rest`]) over TCP: all it keeps is how it sends.
    WebSocketTcp(std::net::TcpStream, Outgoing),
    /// A WebSocket at rest over a Unix socket.
    WebSocketUnix(std::os::unix::net::UnixStream, Outgoing),
}

impl std::os::fd::AsRawFd for ParkedSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Self::Tcp(socket) | Self::WebSocketTcp(socket, _) => socket.as_raw_fd(),
            Self::Unix(socket) | Self::WebSocketUnix(socket, _) => socket.as_raw_fd(),
        }
    }
}

/// How a WebSocket connection sends lines to its client. Here rather than beside the
/// WebSocket transport because a parked WebSocket ([`ParkedSocket`]) keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outgoing {
    /// Text messages (the native protocol, `text.ircv3.net`): lines that are not UTF-8 are
    /// sent with U+FFFD in place of the bad bytes, since a browser closes the connection on
    /// a text message that is not UTF-8.
    Text,
    /// Binary messages (`binary.ircv3.net`): the bytes as they are.
    Binary,
}

impl Transport for TcpStream {
    const PARKABLE: bool = true;

    fn into_parked(self) -> io::Result<ParkedSocket> {
        self.into_std().map(ParkedSocket::Tcp)
    }

    fn from_parked(socket: ParkedSocket) -> io::Result<Self> {
        match socket {
            ParkedSocket::Tcp(socket) => TcpStream::from_std(socket),
            _ => Err(io::Error::other("not a plain TCP stream")),
        }
    }

    fn bytes_waiting(&self) -> bool {
        peek_socket(socket2::SockRef::from(self))
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }

    fn try_read_into(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        read_draining(self, buf)
    }

    fn try_write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, bytes)
    }
}

/// Reads what the socket has without waiting, through `AsyncRead`: a read that did not fill
/// the room tells tokio the socket is drained (edge-triggered epoll), so the next readiness
/// wait does not first cost a second read that only answers `WouldBlock`, one system call per
/// message received. (`try_read_buf` keeps the readiness until it sees `WouldBlock`.)
///
/// The waker is a no-op: on `WouldBlock` tokio stores it, and the connection loop's next
/// readiness wait replaces it with its own before sleeping; readiness that arrives between the
/// two stays recorded and is seen then.
fn read_draining<R: tokio::io::AsyncRead + Unpin>(stream: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match tokio_util::io::poll_read_buf(std::pin::Pin::new(stream), &mut cx, buf) {
        Poll::Ready(read) => read,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl Transport for UnixStream {
    const SECURE: bool = true;
    const PARKABLE: bool = true;

    fn into_parked(self) -> io::Result<ParkedSocket> {
        self.into_std().map(ParkedSocket::Unix)
    }

    fn from_parked(socket: ParkedSocket) -> io::Result<Self> {
        match socket {
            ParkedSocket::Unix(socket) => UnixStream::from_std(socket),
            _ => Err(io::Error::other("not a plain Unix socket")),
        }
    }

    fn bytes_waiting(&self) -> bool {
        peek_socket(socket2::SockRef::from(self))
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        UnixStream::poll_read_ready(self, cx)
    }

    fn try_read_into(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        read_draining(self, buf)
    }

    fn try_write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        UnixStream::try_write(self, bytes)
    }
}

/// Whether a (non-blocking) socket has bytes or its end to read: one byte peeked, nothing
/// taken.
pub(crate) fn peek_socket(socket: socket2::SockRef<'_>) -> bool {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
    match socket.peek(&mut byte) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

#[cfg(test)]
mod tests {
    use super::Transport;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn bytes_waiting_sees_the_socket_not_the_runtime() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        assert!(!server.bytes_waiting(), "nothing sent yet");
        client.write_all(b"rest of a line\n").await.unwrap();
        // The runtime has not been asked about readiness: the socket itself answers.
        while !server.bytes_waiting() {
            tokio::task::yield_now().await;
        }
        let mut buf = Vec::with_capacity(64);
        while buf.len() < 15 {
            match server.try_read_into(&mut buf) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => server.readable().await.unwrap(),
                Err(e) => panic!("{e}"),
            }
        }
        assert!(!server.bytes_waiting(), "all read");
        drop(client);
        while !server.bytes_waiting() {
            tokio::task::yield_now().await;
        }
    }
}
