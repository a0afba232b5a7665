//! A WebSocket connection as the connection loop drives it: every message the client sends
//! becomes a line, every line a door writes becomes a message. The doors, their limits and the
//! slow-reader rule run unchanged over it, exactly as over TCP or TLS.
//!
//! Idle, it holds no buffer: input bytes not yet decoded (part of a frame header) and framed
//! output the socket did not take are the only things kept, and only while they exist.

use super::decoder::{self, Decoder, Step, Violation, close_code};
use crate::door::slots;
pub(crate) use crate::transport::Outgoing;
use crate::transport::{ParkedSocket, Transport};
use natter_core::RenderSlot;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::AsyncWrite;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// Most socket reads in one [`Transport::try_read_into`] that yield no line bytes (control
/// frames, header pieces): past it the read reports nothing for now and the loop comes back.
const MAX_READS_PER_CALL: usize = 8;

/// How much the socket is asked for at a time.
const READ_CHUNK: usize = 4096;

/// Framed output kept for the socket at most; past it the transport takes no more lines, and
/// the connection loop waits (or, for a reader that never drains, disconnects it).
const MAX_FRAMED: usize = 64 * 1024;

/// A WebSocket connection after its handshake, over any transport (plain TCP, TLS).
pub(crate) struct WsTransport<S> {
    inner: S,
    decoder: Decoder,
    outgoing: Outgoing,
    /// Received bytes not decoded yet (part of a header or of a control frame).
    raw: Vec<u8>,
    /// Framed bytes the socket has not taken yet.
    framed: Vec<u8>,
    /// The pong owed for the latest ping (one only: RFC 6455 §5.5.3 allows answering the
    /// latest of several), sent before the next message. Boxed: idle connections owe none.
    pong: Option<Box<decoder::ControlPayload>>,
    /// Decodable input is left (the line buffer was full), or the end is known: the next read
    /// finds it without the socket becoming readable.
    buffered: bool,
    /// The client's close frame came (or its socket ended): reads return the end.
    ended: bool,
    /// Why the connection is being closed, for the close frame at shutdown.
    close: Option<Violation>,
    /// The close frame was framed.
    close_sent: bool,
}

impl<S: Transport> WsTransport<S> {
    /// Wraps a connection whose handshake is done; `early` holds bytes the HTTP server read
    /// after the handshake request (frames the client sent at once).
    pub(crate) fn new(inner: S, early: &[u8], outgoing: Outgoing) -> Self {
        Self {
            inner,
            decoder: Decoder::default(),
            outgoing,
            raw: early.to_vec(),
            framed: Vec::new(),
            pong: None,
            buffered: !early.is_empty(),
            ended: false,
            close: None,
            close_sent: false,
        }
    }

    /// Decodes what `raw` holds into `buf` (at most `room` bytes); `Ok(None)` when more input
    /// is needed.
    fn decode_raw(&mut self, buf: &mut Vec<u8>, room: usize) -> io::Result<Option<()>> {
        let start = buf.len();
        loop {
            let left = room - (buf.len() - start);
            let step = self.decoder.decode(&self.raw, buf, left);
            let (used, step) = match step {
                Ok(decoded) => decoded,
                Err(violation) => return Err(self.violation(violation)),
            };
            self.raw.drain(..used);
            match step {
                Step::NeedInput => {
                    if self.raw.is_empty() {
                        self.raw = Vec::new();
                    }
                    return Ok(None);
                }
                Step::Full => {
                    self.buffered = true;
                    return Ok(Some(()));
                }
                Step::Ping(payload) => {
                    self.pong = Some(Box::new(payload));
                    // Sent now if the socket takes it, else before the next line.
                    match self.send_framed() {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                Step::Close(_) => {
                    self.ended = true;
                    self.raw = Vec::new();
                    return Ok(Some(()));
                }
            }
        }
    }

    /// Records why the client is being closed; the error ends the connection loop, whose
    /// shutdown sends the close frame.
    fn violation(&mut self, violation: Violation) -> io::Error {
        self.close = Some(violation);
        self.ended = true;
        io::Error::new(io::ErrorKind::InvalidData, violation.reason)
    }

    /// Frames the owed pong (if any), then writes framed bytes until the socket takes no
    /// more: `Ok` when nothing is left, `WouldBlock` when some is.
    fn send_framed(&mut self) -> io::Result<()> {
        if let Some(pong) = self.pong.take() {
            decoder::encode(&mut self.framed, OpCode::Control(Control::Pong), pong.as_slice());
        }
        let mut sent = 0;
        let result = loop {
            if sent == self.framed.len() {
                break Ok(());
            }
            match self.inner.try_write(&self.framed[sent..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) => break Err(e),
            }
        };
        self.framed.drain(..sent);
        if self.framed.is_empty() {
            // An idle connection keeps no output buffer.
            self.framed = Vec::new();
        }
        result
    }

    /// Frames each whole line of `bytes` (and a last unterminated one) as one message, while
    /// the framed output stays under its bound; returns how many bytes of `bytes` it took.
    fn frame_lines(&mut self, bytes: &[u8]) -> usize {
        let mut taken = 0;
        while taken < bytes.len() && self.framed.len() < MAX_FRAMED {
            let rest = &bytes[taken..];
            let used = memchr::memchr(b'\n', rest).map_or(rest.len(), |end| end + 1);
            encode_line(self.outgoing, &rest[..used], &mut self.framed);
            taken += used;
        }
        taken
    }

    /// Keeps the rest of the frame that a partial write of encoded bytes cut (`bytes[sent..]`
    /// up to that frame's end) to go first next time, so that whatever is framed later (a
    /// pong, the close frame) starts on a frame boundary; returns how far `bytes` was taken.
    fn finish_cut_frame(&mut self, bytes: &[u8], sent: usize) -> usize {
        let end = frame_end(bytes, sent - 1);
        self.framed.extend_from_slice(&bytes[sent..end]);
        end
    }
    /// Frames the close frame once: the reason of a violation, else a normal closure.
    fn frame_close(&mut self) {
        if self.close_sent {
            return;
        }
        self.close_sent = true;
        let (code, reason) = match self.close {
            Some(violation) => (violation.code, violation.reason),
            None => (close_code::NORMAL, ""),
        };
        decoder::encode_close(&mut self.framed, code, reason);
    }

    /// Writes the framed bytes, waiting for the socket.
    fn poll_send_framed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(pong) = self.pong.take() {
            decoder::encode(&mut self.framed, OpCode::Control(Control::Pong), pong.as_slice());
        }
        while !self.framed.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.framed))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.framed.drain(..n);
        }
        self.framed = Vec::new();
        Poll::Ready(Ok(()))
    }
}

impl<S: Transport> Transport for WsTransport<S> {
    const SECURE: bool = S::SECURE;
    const MESSAGES: bool = true;
    const PARKABLE: bool = S::PARKABLE;

    fn at_rest(&self) -> bool {
        self.raw.is_empty()
            && self.framed.is_empty()
            && self.pong.is_none()
            && !self.buffered
            && !self.ended
            && self.close.is_none()
            && self.decoder.at_rest()
            && self.inner.at_rest()
    }

    fn into_parked(self) -> io::Result<ParkedSocket> {
        match self.inner.into_parked()? {
            ParkedSocket::Tcp(socket) => Ok(ParkedSocket::WebSocketTcp(socket, self.outgoing)),
            ParkedSocket::Unix(socket) => Ok(ParkedSocket::WebSocketUnix(socket, self.outgoing)),
            _ => Err(io::Error::other("a WebSocket inside a WebSocket")),
        }
    }

    fn from_parked(socket: ParkedSocket) -> io::Result<Self> {
        let (inner, outgoing) = match socket {
            ParkedSocket::WebSocketTcp(socket, outgoing) => (ParkedSocket::Tcp(socket), outgoing),
            ParkedSocket::WebSocketUnix(socket, outgoing) => (ParkedSocket::Unix(socket), outgoing),
            _ => return Err(io::Error::other("not a WebSocket")),
        };
        Ok(Self::new(S::from_parked(inner)?, &[], outgoing))
    }

    fn encoded_slot(&self, slot: RenderSlot) -> Option<RenderSlot> {
        // Binary messages (binary.ircv3.net) are rare: framed per connection.
        (self.outgoing == Outgoing::Text).then(|| slots::framed(slot))
    }

    fn encode(&self, lines: &[u8], out: &mut Vec<u8>) {
        let mut rest = lines;
        while !rest.is_empty() {
            let used = memchr::memchr(b'\n', rest).map_or(rest.len(), |end| end + 1);
            encode_line(self.outgoing, &rest[..used], out);
            rest = &rest[used..];
        }
    }

    fn try_write_encoded(&mut self, bytes: &[u8]) -> io::Result<usize> {
        // What waits (whole frames) goes first; encoded bytes never interleave with it.
        self.send_framed()?;
        match self.inner.try_write(bytes) {
            Ok(sent) if sent < bytes.len() && sent > 0 => Ok(self.finish_cut_frame(bytes, sent)),
            other => other,
        }
    }

    fn poll_write_encoded(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_send_framed(cx))?;
        let sent = ready!(Pin::new(&mut self.inner).poll_write(cx, bytes))?;
        if sent > 0 && sent < bytes.len() {
            return Poll::Ready(Ok(self.finish_cut_frame(bytes, sent)));
        }
        Poll::Ready(Ok(sent))
    }

    fn client_certificate(&self) -> Option<Box<str>> {
        self.inner.client_certificate()
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffered || self.ended {
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_read_ready(cx)
    }

    fn try_read_into(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let room = buf.capacity() - buf.len();
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let start = buf.len();
        self.buffered = false;
        for _ in 0..MAX_READS_PER_CALL {
            if self.ended {
                return Ok(buf.len() - start);
            }
            if !self.raw.is_empty() {
                let left = room - (buf.len() - start);
                if self.decode_raw(buf, left)?.is_some() {
                    // Full, or closed after what was decoded: return what there is (the end
                    // shows at the next read).
                    if buf.len() > start || !self.ended {
                        self.buffered = true;
                        return Ok(buf.len() - start);
                    }
                    return Ok(0);
                }
                if buf.len() > start {
                    return Ok(buf.len() - start);
                }
            }
            self.raw.reserve(READ_CHUNK);
            match self.inner.try_read_into(&mut self.raw) {
                Ok(0) => {
                    self.ended = true;
                    return Ok(buf.len() - start);
                }
                Ok(_) => {}
                Err(e) => {
                    if self.raw.is_empty() {
                        self.raw = Vec::new();
                    }
                    return Err(e);
                }
            }
        }
        // Bytes decoded into nothing (pings, pieces of headers) many times over: come back
        // later rather than hold the task.
        self.buffered = !self.raw.is_empty();
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn try_write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        // What waits goes first: the client reads in order, and the bound holds.
        self.send_framed()?;
        let taken = self.frame_lines(bytes);
        match self.send_framed() {
            Ok(()) => Ok(taken),
            // Taken and framed, waiting: `has_pending_output` says so, and the writer flushes.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(taken),
            Err(e) => Err(e),
        }
    }

    fn has_pending_output(&self) -> bool {
        !self.framed.is_empty() || self.pong.is_some() || self.inner.has_pending_output()
    }
}

/// Appends one line (its `\n` or `\r\n` dropped) as one message.
fn encode_line(outgoing: Outgoing, line: &[u8], out: &mut Vec<u8>) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match outgoing {
        Outgoing::Binary => decoder::encode(out, OpCode::Data(Data::Binary), line),
        Outgoing::Text => match std::str::from_utf8(line) {
            Ok(_) => decoder::encode(out, OpCode::Data(Data::Text), line),
            Err(_) => {
                let line = String::from_utf8_lossy(line);
                decoder::encode(out, OpCode::Data(Data::Text), line.as_bytes());
            }
        },
    }
}

/// Where the server frame containing byte `at` of `bytes` (whole frames from its start) ends.
fn frame_end(bytes: &[u8], at: usize) -> usize {
    let mut start = 0;
    while start <= at && start < bytes.len() {
        let mut cursor = std::io::Cursor::new(&bytes[start..]);
        match tungstenite::protocol::frame::FrameHeader::parse(&mut cursor) {
            Ok(Some((_, length))) => {
                let end = start + cursor.position() as usize + usize::try_from(length).unwrap_or(usize::MAX);
                if end > at {
                    return end.min(bytes.len());
                }
                start = end;
            }
            // Not ours to misread: keep everything.
            _ => return bytes.len(),
        }
    }
    start.min(bytes.len())
}

impl<S: Transport> AsyncWrite for WsTransport<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            match this.try_write(bytes) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready!(this.poll_send_framed(cx))?,
                done => return Poll::Ready(done),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_framed(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.frame_close();
        ready!(this.poll_send_framed(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WebSocket parks where its stream would, so never over TLS: rustls' state beside the
    /// socket is not what the park keeps.
    const _: () = assert!(<WsTransport<tokio::net::TcpStream> as Transport>::PARKABLE);
    const _: () = assert!(!<WsTransport<crate::tls::TlsTransport> as Transport>::PARKABLE);

    #[test]
    fn a_cut_is_completed_to_the_end_of_its_frame() {
        let mut bytes = Vec::new();
        for line in [&b"one"[..], &[b'x'; 300], b"three"] {
            encode_line(Outgoing::Text, line, &mut bytes);
        }
        // Frames: 2 + 3 = 5 bytes, 4 + 300 = 304 bytes, 2 + 5 = 7 bytes.
        let ends = [5, 309, 316];
        for at in 0..bytes.len() {
            let expected = *ends.iter().find(|&&end| end > at).unwrap();
            assert_eq!(frame_end(&bytes, at), expected, "byte {at}");
        }
    }

    #[test]
    fn lines_become_one_message_each_and_bad_utf8_is_replaced() {
        let mut out = Vec::new();
        encode_line(Outgoing::Text, b"caf\xe9\r\n", &mut out);
        let mut cursor = std::io::Cursor::new(&out);
        let (header, len) = tungstenite::protocol::frame::FrameHeader::parse(&mut cursor).unwrap().unwrap();
        assert_eq!(header.opcode, OpCode::Data(Data::Text));
        assert_eq!(&out[cursor.position() as usize..], "caf\u{fffd}".as_bytes());
        assert_eq!(len, 6);
    }
}
