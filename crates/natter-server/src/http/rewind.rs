//! A stream with bytes put back in front: the port's sniffer read the first line of an HTTP
//! request to recognise it, and the HTTP server must read it again.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner`, read after `front`.
pub(crate) struct Rewind<S> {
    front: Vec<u8>,
    /// How much of `front` was read already.
    read: usize,
    inner: S,
}

impl<S> Rewind<S> {
    /// Reads `front` first, then `inner`.
    pub(crate) fn new(front: Vec<u8>, inner: S) -> Self {
        Self { front, read: 0, inner }
    }

    /// The stream and the put-back bytes not read yet.
    pub(crate) fn into_parts(self) -> (S, Vec<u8>) {
        let Self { mut front, read, inner } = self;
        front.drain(..read);
        (inner, front)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.read < this.front.len() {
            let n = (this.front.len() - this.read).min(buf.remaining());
            buf.put_slice(&this.front[this.read..this.read + n]);
            this.read += n;
            if this.read == this.front.len() {
                this.front = Vec::new();
                this.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::Rewind;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn the_front_is_read_before_the_stream() {
        let (mut client, server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b" world").await.unwrap();
        drop(client);
        let mut rewound = Rewind::new(b"hello".to_vec(), server);
        let mut first = [0u8; 3];
        rewound.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"hel");
        let (_, unread) = Rewind::new(b"hello".to_vec(), tokio::io::empty()).into_parts();
        assert_eq!(unread, b"hello");
        let mut rest = String::new();
        rewound.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "lo world");
    }
}
