//! WebSocket for the load generator (RFC 6455): the opening handshake's request and the check
//! of its answer, masked client frames, and server frames decoded in place.
//!
//! The receive side must cost no more per delivery than finding a newline does, so server
//! frames are decoded where they lie in the read buffer: an unfragmented message is handed out
//! as a slice of it, and the fragments of a fragmented one are moved together over their own
//! headers in the same buffer. Nothing is allocated per message. The connections' reader
//! ([`crate::conn::LineReader`]) and writer ([`crate::conn::WriteHalf`]) use this module;
//! the scenarios see messages as lines and do not know WebSocket is there.

use std::ops::Range;

/// Frame opcodes (RFC 6455 §5.2).
pub mod opcode {
    /// A further fragment of a message.
    pub const CONTINUATION: u8 = 0x0;
    /// A text message (UTF-8).
    pub const TEXT: u8 = 0x1;
    /// A binary message.
    pub const BINARY: u8 = 0x2;
    /// The closing handshake.
    pub const CLOSE: u8 = 0x8;
    /// A keep-alive the peer must answer with a pong.
    pub const PING: u8 = 0x9;
    /// The answer to a ping.
    pub const PONG: u8 = 0xA;
}

/// Longest control frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest frame header: 2 bytes, a 64-bit length and a mask.
pub const MAX_HEADER: usize = 14;

/// What is wrong with frames the server sent; the connection cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// RFC 6455 §5.1: a server must not mask what it sends.
    #[error("the server sent a masked frame")]
    Masked,
    /// No extension was negotiated, so the reserved bits must be clear.
    #[error("the server set a reserved bit (no extension was negotiated)")]
    Reserved,
    /// An opcode RFC 6455 does not define.
    #[error("the server sent a frame with the unknown opcode {0:#x}")]
    Opcode(u8),
    /// Control frames are at most 125 bytes and never fragmented.
    #[error("the server sent a control frame that is fragmented or longer than 125 bytes")]
    Control,
    /// A close frame's body is empty or starts with a two-byte code.
    #[error("the server sent a close frame of 1 byte")]
    CloseBody,
    /// A continuation frame arrived while no message was being fragmented.
    #[error("the server sent a continuation frame outside a fragmented message")]
    Continuation,
    /// A new message started before the fragmented one ended.
    #[error("the server started a message inside a fragmented one")]
    Interleaved,
    /// A message longer than the reader accepts.
    #[error("the server sent a message of {len} bytes, more than the {max} accepted")]
    TooLong {
        /// The message's length so far.
        len: u64,
        /// The most accepted.
        max: usize,
    },
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The last frame of its message.
    pub fin: bool,
    /// The frame's opcode (see [`opcode`]).
    pub opcode: u8,
    /// The masking key, when the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
    /// Bytes the header takes (2 to 14).
    pub header_len: usize,
}

/// Parses the frame header at the start of `bytes`: `Ok(None)` when more bytes are needed.
/// Refuses what no frame may be (reserved bits without an extension, unknown opcodes,
/// fragmented or long control frames), whoever sent it.
pub fn parse_header(bytes: &[u8]) -> Result<Option<Header>, FrameError> {
    let [first, second, rest @ ..] = bytes else { return Ok(None) };
    if first & 0x70 != 0 {
        return Err(FrameError::Reserved);
    }
    let fin = first & 0x80 != 0;
    let opcode = first & 0x0F;
    match opcode {
        opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => {}
        opcode::CLOSE | opcode::PING | opcode::PONG => {
            if !fin || usize::from(second & 0x7F) > MAX_CONTROL_PAYLOAD {
                return Err(FrameError::Control);
            }
        }
        other => return Err(FrameError::Opcode(other)),
    }
    let (len, rest, extra) = match second & 0x7F {
        126 => match rest {
            [a, b, rest @ ..] => (u64::from(u16::from_be_bytes([*a, *b])), rest, 2),
            _ => return Ok(None),
        },
        127 => match rest.split_first_chunk::<8>() {
            Some((len, rest)) => (u64::from_be_bytes(*len), rest, 8),
            None => return Ok(None),
        },
        len => (u64::from(len), rest, 0),
    };
    let mask = if second & 0x80 != 0 {
        match rest.first_chunk::<4>() {
            Some(mask) => Some(*mask),
            None => return Ok(None),
        }
    } else {
        None
    };
    let header_len = 2 + extra + if mask.is_some() { 4 } else { 0 };
    Ok(Some(Header { fin, opcode, mask, len, header_len }))
}

/// Appends one frame to `out`: the header (the shortest length form) and the payload, masked
/// with `mask` when given (a client must mask every frame, RFC 6455 §5.3).
pub fn encode_frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    let first = opcode & 0x0F | if fin { 0x80 } else { 0 };
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    out.push(first);
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let start = out.len();
    match mask {
        Some(mask) => {
            out.extend_from_slice(&mask);
            out.extend_from_slice(payload);
            apply_mask(&mut out[start + 4..], mask);
        }
        None => out.extend_from_slice(payload),
    }
}

/// XORs `bytes` with the masking key, as both masking and unmasking do (RFC 6455 §5.3).
pub fn apply_mask(bytes: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = bytes.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let masked = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&masked.to_ne_bytes());
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask) {
        *byte ^= key;
    }
}

/// A fresh masking key: random, so that what a client sends cannot be chosen by a page to look
/// like something else to a proxy (the reason RFC 6455 masks). One per connection is enough
/// for a load generator, whose payloads nobody hostile picks.
pub fn random_mask() -> [u8; 4] {
    let mut mask = [0; 4];
    if getrandom::fill(&mut mask).is_err() {
        // No system randomness: any key is still a valid mask.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0x5eed_1234);
        mask = nanos.to_ne_bytes();
    }
    mask
}

/// A control frame's payload, kept without allocating.
#[derive(Clone, PartialEq, Eq)]
pub struct ControlPayload {
    bytes: [u8; MAX_CONTROL_PAYLOAD],
    len: u8,
}

impl ControlPayload {
    /// Copies `payload` (at most 125 bytes; longer input is cut).
    pub fn new(payload: &[u8]) -> Self {
        let len = payload.len().min(MAX_CONTROL_PAYLOAD);
        let mut bytes = [0; MAX_CONTROL_PAYLOAD];
        bytes[..len].copy_from_slice(&payload[..len]);
        Self { bytes, len: len as u8 }
    }

    /// The payload.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// A close frame's payload in words: its code and reason.
    pub fn close_reason(&self) -> String {
        match self.as_slice() {
            [] => "no close code".into(),
            [a, b, reason @ ..] => {
                format!("close code {}: {}", u16::from_be_bytes([*a, *b]), String::from_utf8_lossy(reason))
            }
            [_] => "a broken close frame".into(),
        }
    }
}

impl std::fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ControlPayload({:?})", String::from_utf8_lossy(self.as_slice()))
    }
}

/// What [`MessageDecoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole message: its payload is `payload` of the input, and the first `consumed` bytes
    /// of the input (the message and the frames before it) are done with once it is used.
    Message {
        /// Where the message's payload lies in the input.
        payload: Range<usize>,
        /// Input bytes the message used up.
        consumed: usize,
    },
    /// No whole message yet; the first `consumed` bytes of the input are done with (control
    /// frames). A fragmented message in progress keeps its bytes: then `consumed` is 0.
    NeedInput {
        /// Input bytes done with.
        consumed: usize,
    },
    /// The server closed the WebSocket (its close frame's payload). Nothing follows.
    Closed {
        /// Input bytes done with.
        consumed: usize,
        /// The close frame's payload: code and reason.
        close: ControlPayload,
    },
}

/// Decodes server frames into messages inside the caller's buffer. The input given to each
/// call is the buffer's pending bytes from their start; they may move between calls (the
/// buffer is compacted or grown) as long as they keep their order: the decoder only keeps
/// offsets relative to that start.
#[derive(Debug)]
pub struct MessageDecoder {
    /// Longest message accepted.
    max: usize,
    /// Input bytes already walked: the assembled fragments, then frames done with.
    walked: usize,
    /// Payload bytes of a fragmented message assembled so far at the input's start.
    fragment: Option<usize>,
    /// The payload of the latest ping, to answer.
    pong: Option<Box<ControlPayload>>,
}

impl MessageDecoder {
    /// A decoder accepting messages of up to `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max, walked: 0, fragment: None, pong: None }
    }

    /// The payload of the latest ping not answered yet (RFC 6455 §5.5.3 allows answering only
    /// the latest of several).
    pub fn take_pong(&mut self) -> Option<ControlPayload> {
        self.pong.take().map(|p| *p)
    }

    /// Decodes frames from `input` until a message is whole, more input is needed, or the
    /// server closed. Fragments are moved together inside `input`.
    pub fn decode(&mut self, input: &mut [u8]) -> Result<Decoded, FrameError> {
        loop {
            let rest = &input[self.walked.min(input.len())..];
            let Some(header) = parse_header(rest)? else { return Ok(self.need_input()) };
            if header.mask.is_some() {
                return Err(FrameError::Masked);
            }
            let so_far = match header.opcode {
                opcode::CONTINUATION => self.fragment.unwrap_or(0) as u64,
                _ => 0,
            };
            if header.len.saturating_add(so_far) > self.max as u64 {
                return Err(FrameError::TooLong { len: header.len.saturating_add(so_far), max: self.max });
            }
            // Fits in usize: at most `max` plus a header.
            let total = header.header_len + header.len as usize;
            if rest.len() < total {
                return Ok(self.need_input());
            }
            let payload = self.walked + header.header_len..self.walked + total;
            self.walked += total;
            match header.opcode {
                opcode::TEXT | opcode::BINARY if self.fragment.is_some() => {
                    return Err(FrameError::Interleaved);
                }
                opcode::TEXT | opcode::BINARY if header.fin => return Ok(self.message(payload)),
                opcode::TEXT | opcode::BINARY => {
                    let len = payload.len();
                    input.copy_within(payload, 0);
                    self.fragment = Some(len);
                }
                opcode::CONTINUATION => {
                    let Some(have) = self.fragment else { return Err(FrameError::Continuation) };
                    let len = payload.len();
                    input.copy_within(payload, have);
                    if header.fin {
                        self.fragment = None;
                        return Ok(self.message(0..have + len));
                    }
                    self.fragment = Some(have + len);
                }
                opcode::PING => self.pong = Some(Box::new(ControlPayload::new(&input[payload]))),
                opcode::PONG => {}
                opcode::CLOSE => {
                    if payload.len() == 1 {
                        return Err(FrameError::CloseBody);
                    }
                    let close = ControlPayload::new(&input[payload]);
                    let consumed = std::mem::take(&mut self.walked);
                    self.fragment = None;
                    return Ok(Decoded::Closed { consumed, close });
                }
                // `parse_header` lets no other opcode through.
                other => return Err(FrameError::Opcode(other)),
            }
        }
    }

    fn message(&mut self, payload: Range<usize>) -> Decoded {
        Decoded::Message { payload, consumed: std::mem::take(&mut self.walked) }
    }

    fn need_input(&mut self) -> Decoded {
        if self.fragment.is_some() {
            Decoded::NeedInput { consumed: 0 }
        } else {
            Decoded::NeedInput { consumed: std::mem::take(&mut self.walked) }
        }
    }
}

/// The opening handshake's request (RFC 6455 §4.1) with a fresh random key, and what the
/// answer must hold.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    /// The HTTP request to send.
    pub request: Vec<u8>,
    /// The `Sec-WebSocket-Accept` the server must answer with.
    pub accept: String,
    /// The subprotocol asked for, which the answer must confirm.
    pub subprotocol: Option<&'static str>,
}

impl ClientHandshake {
    /// The request for `path` on `host` (as `Host:` names it), asking for `subprotocol`.
    pub fn new(host: &str, path: &str, subprotocol: Option<&'static str>) -> Self {
        let key = tungstenite::handshake::client::generate_key();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        );
        if let Some(name) = subprotocol {
            request += &format!("Sec-WebSocket-Protocol: {name}\r\n");
        }
        request += "\r\n";
        Self { request: request.into_bytes(), accept, subprotocol }
    }

    /// A check of the answer, fed one line at a time.
    pub fn response(&self) -> ResponseCheck<'_> {
        ResponseCheck {
            handshake: self,
            lines: 0,
            upgrade: false,
            connection: false,
            accept: false,
            protocol: None,
        }
    }
}

/// Why the server's answer to the opening handshake is not an accepted WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Not `101 Switching Protocols`.
    #[error(
        "the server answered {0:?} instead of 101 Switching Protocols (is it a natter server with HTTP on this port?)"
    )]
    Status(String),
    /// A header RFC 6455 §4.1 requires is missing or wrong.
    #[error("the server's 101 answer lacks {0}")]
    Missing(&'static str),
    /// The key proof does not match the key sent.
    #[error("the server's Sec-WebSocket-Accept does not match the key sent")]
    Accept,
    /// The server chose another subprotocol than the one asked for (or one when none was).
    #[error("the server chose the subprotocol {got:?}, not {wanted:?}")]
    Subprotocol {
        /// What was asked for.
        wanted: Option<&'static str>,
        /// What the answer named.
        got: Option<String>,
    },
    /// More header lines than any sane answer has.
    #[error("the server's answer has more than {0} header lines")]
    TooLong(usize),
}

/// Most header lines accepted in the handshake's answer.
const MAX_RESPONSE_LINES: usize = 100;

/// Checks the server's answer to a [`ClientHandshake`], line by line (without line ends).
#[derive(Debug)]
pub struct ResponseCheck<'a> {
    handshake: &'a ClientHandshake,
    lines: usize,
    upgrade: bool,
    connection: bool,
    accept: bool,
    protocol: Option<String>,
}

impl ResponseCheck<'_> {
    /// Takes the next line: `Ok(true)` once the blank line ends a valid answer, `Ok(false)` when
    /// more lines are needed.
    pub fn line(&mut self, line: &[u8]) -> Result<bool, HandshakeError> {
        self.lines += 1;
        if self.lines > MAX_RESPONSE_LINES {
            return Err(HandshakeError::TooLong(MAX_RESPONSE_LINES));
        }
        let text = String::from_utf8_lossy(line);
        if self.lines == 1 {
            let mut words = text.split_ascii_whitespace();
            let http = words.next().is_some_and(|v| v.starts_with("HTTP/1."));
            return if http && words.next() == Some("101") {
                Ok(false)
            } else {
                Err(HandshakeError::Status(text.chars().take(200).collect()))
            };
        }
        if line.is_empty() {
            return self.finish().map(|()| true);
        }
        let Some((name, value)) = text.split_once(':') else { return Ok(false) };
        let value = value.trim();
        let tokens = || value.split(',').map(str::trim);
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => self.upgrade |= tokens().any(|t| t.eq_ignore_ascii_case("websocket")),
            "connection" => self.connection |= tokens().any(|t| t.eq_ignore_ascii_case("upgrade")),
            "sec-websocket-accept" => self.accept = value == self.handshake.accept,
            "sec-websocket-protocol" => self.protocol = Some(value.to_string()),
            _ => {}
        }
        Ok(false)
    }

    fn finish(&self) -> Result<(), HandshakeError> {
        if !self.upgrade {
            return Err(HandshakeError::Missing("Upgrade: websocket"));
        }
        if !self.connection {
            return Err(HandshakeError::Missing("Connection: Upgrade"));
        }
        if !self.accept {
            return Err(HandshakeError::Accept);
        }
        if self.protocol.as_deref() != self.handshake.subprotocol {
            return Err(HandshakeError::Subprotocol {
                wanted: self.handshake.subprotocol,
                got: self.protocol.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use tungstenite::protocol::frame::FrameHeader;
    use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

    const LENGTHS: [usize; 9] = [0, 1, 5, 125, 126, 127, 65_535, 65_536, 70_000];

    fn tungstenite_opcode(code: u8) -> OpCode {
        OpCode::from(code)
    }

    /// A frame as tungstenite writes it, payload masked when a mask is given.
    fn tungstenite_frame(fin: bool, code: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let header =
            FrameHeader { is_final: fin, opcode: tungstenite_opcode(code), mask, ..FrameHeader::default() };
        let mut out = Vec::new();
        header.format(payload.len() as u64, &mut out).unwrap();
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(mask) = mask {
            for (i, b) in out[start..].iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        out
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn encoded_frames_are_what_tungstenite_reads() {
        for len in LENGTHS {
            for (fin, code) in [(true, opcode::TEXT), (false, opcode::BINARY), (true, opcode::CONTINUATION)] {
                for mask in [None, Some([0xde, 0xad, 0xbe, 0xef])] {
                    let body = payload(len);
                    let mut ours = Vec::new();
                    encode_frame(&mut ours, fin, code, &body, mask);
                    assert_eq!(ours, tungstenite_frame(fin, code, &body, mask), "len {len}");
                    let mut cursor = Cursor::new(&ours);
                    let (header, parsed_len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
                    assert_eq!(parsed_len, len as u64);
                    assert_eq!((header.is_final, header.mask), (fin, mask));
                    assert_eq!(header.opcode, tungstenite_opcode(code));
                    let mut unmasked = ours[cursor.position() as usize..].to_vec();
                    if let Some(mask) = mask {
                        apply_mask(&mut unmasked, mask);
                    }
                    assert_eq!(unmasked, body);
                }
            }
        }
    }

    #[test]
    fn headers_are_parsed_as_tungstenite_parses_them() {
        let codes = [
            OpCode::Data(Data::Continue),
            OpCode::Data(Data::Text),
            OpCode::Data(Data::Binary),
            OpCode::Control(Control::Close),
            OpCode::Control(Control::Ping),
            OpCode::Control(Control::Pong),
        ];
        for code in codes {
            for len in LENGTHS {
                if matches!(code, OpCode::Control(_)) && len > MAX_CONTROL_PAYLOAD {
                    continue;
                }
                for mask in [None, Some([1, 2, 3, 4])] {
                    let header = FrameHeader { opcode: code, mask, ..FrameHeader::default() };
                    let mut bytes = Vec::new();
                    header.format(len as u64, &mut bytes).unwrap();
                    let ours = parse_header(&bytes).unwrap().unwrap();
                    assert_eq!(ours.header_len, header.len(len as u64));
                    assert_eq!(ours.len, len as u64);
                    assert_eq!(ours.mask, mask);
                    assert_eq!(ours.opcode, u8::from(code));
                    assert!(ours.fin);
                    // Every proper prefix asks for more.
                    for cut in 0..bytes.len() {
                        assert_eq!(parse_header(&bytes[..cut]), Ok(None), "{code:?} {len} cut at {cut}");
                    }
                }
            }
        }
    }

    #[test]
    fn broken_headers_are_refused() {
        assert_eq!(parse_header(&[0x81 | 0x40, 0]), Err(FrameError::Reserved));
        assert_eq!(parse_header(&[0x83, 0]), Err(FrameError::Opcode(3)));
        assert_eq!(parse_header(&[0x8B, 0]), Err(FrameError::Opcode(0xB)));
        assert_eq!(parse_header(&[0x09, 0]), Err(FrameError::Control));
        assert_eq!(parse_header(&[0x89, 126, 0, 126]), Err(FrameError::Control));
        // tungstenite refuses the same opcodes.
        for byte in [0x83u8, 0x8B] {
            assert!(FrameHeader::parse(&mut Cursor::new([byte, 0])).is_err());
        }
    }

    /// Server frames: text, a message in three fragments with a ping and a pong between them,
    /// binary, then a close.
    fn server_stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut s = Vec::new();
        encode_frame(&mut s, true, opcode::TEXT, b"{\"type\":\"welcome\"}", None);
        encode_frame(&mut s, false, opcode::TEXT, b"frag", None);
        encode_frame(&mut s, true, opcode::PING, b"are you there", None);
        encode_frame(&mut s, false, opcode::CONTINUATION, &payload(300), None);
        encode_frame(&mut s, true, opcode::PONG, b"", None);
        encode_frame(&mut s, true, opcode::CONTINUATION, b"end", None);
        encode_frame(&mut s, true, opcode::BINARY, &payload(70_000), None);
        encode_frame(&mut s, true, opcode::TEXT, b"", None);
        encode_frame(&mut s, true, opcode::CLOSE, b"\x03\xe8bye", None);
        let mut fragmented = b"frag".to_vec();
        fragmented.extend(payload(300));
        fragmented.extend_from_slice(b"end");
        (s, vec![b"{\"type\":\"welcome\"}".to_vec(), fragmented, payload(70_000), Vec::new()])
    }

    /// Feeds `stream` in pieces of `step` bytes into a buffer the way the reader keeps one
    /// (pending bytes from `start`, compacted when consumed), collecting messages.
    fn decode_in_steps(
        stream: &[u8],
        step: usize,
    ) -> (Vec<Vec<u8>>, Option<ControlPayload>, Vec<ControlPayload>) {
        let mut decoder = MessageDecoder::new(1 << 20);
        let mut buf = Vec::new();
        let (mut messages, mut pongs) = (Vec::new(), Vec::new());
        let mut fed = 0;
        loop {
            let decoded = decoder.decode(&mut buf).unwrap();
            if let Some(p) = decoder.take_pong() {
                pongs.push(p);
            }
            match decoded {
                Decoded::Message { payload, consumed } => {
                    messages.push(buf[payload].to_vec());
                    buf.drain(..consumed);
                }
                Decoded::NeedInput { consumed } => {
                    buf.drain(..consumed);
                    assert!(fed < stream.len(), "stream ended without a close");
                    let next = (fed + step).min(stream.len());
                    buf.extend_from_slice(&stream[fed..next]);
                    fed = next;
                }
                Decoded::Closed { consumed, close } => {
                    buf.drain(..consumed);
                    assert!(buf.is_empty());
                    return (messages, Some(close), pongs);
                }
            }
        }
    }

    #[test]
    fn messages_whole_fragmented_and_around_control_frames() {
        let (stream, expected) = server_stream();
        for step in [1, 2, 3, 7, 13, 125, 4096, stream.len()] {
            let (messages, close, pongs) = decode_in_steps(&stream, step);
            assert_eq!(messages, expected, "step {step}");
            assert_eq!(close.unwrap().close_reason(), "close code 1000: bye");
            assert_eq!(pongs.len(), 1, "step {step}");
            assert_eq!(pongs[0].as_slice(), b"are you there");
        }
    }

    #[test]
    fn the_same_stream_as_tungstenite_writes_it() {
        let (stream, expected) = server_stream();
        let mut theirs = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let mut cursor = Cursor::new(&stream[at..]);
            let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            let start = at + cursor.position() as usize;
            let code = u8::from(header.opcode);
            theirs.extend(tungstenite_frame(
                header.is_final,
                code,
                &stream[start..start + len as usize],
                None,
            ));
            at = start + len as usize;
        }
        assert_eq!(theirs, stream);
        assert_eq!(decode_in_steps(&theirs, 5).0, expected);
    }

    #[test]
    fn server_protocol_violations() {
        let cases: Vec<(Vec<u8>, FrameError)> = vec![
            (tungstenite_frame(true, opcode::TEXT, b"x", Some([1, 2, 3, 4])), FrameError::Masked),
            (tungstenite_frame(true, opcode::CONTINUATION, b"x", None), FrameError::Continuation),
            (
                [
                    tungstenite_frame(false, opcode::TEXT, b"x", None),
                    tungstenite_frame(true, opcode::TEXT, b"y", None),
                ]
                .concat(),
                FrameError::Interleaved,
            ),
            (tungstenite_frame(true, opcode::CLOSE, b"x", None), FrameError::CloseBody),
            (
                tungstenite_frame(true, opcode::BINARY, &payload(101), None),
                FrameError::TooLong { len: 101, max: 100 },
            ),
            (
                [
                    tungstenite_frame(false, opcode::TEXT, &payload(60), None),
                    tungstenite_frame(true, 0, &payload(60), None),
                ]
                .concat(),
                FrameError::TooLong { len: 120, max: 100 },
            ),
        ];
        for (mut bytes, error) in cases {
            let mut decoder = MessageDecoder::new(100);
            let mut result = decoder.decode(&mut bytes);
            // A first fragment is taken before the violation shows.
            if let Ok(Decoded::NeedInput { consumed: 0 }) = result {
                result = decoder.decode(&mut bytes);
            }
            assert_eq!(result, Err(error));
        }
        // The length check comes before the bytes: a huge length is refused at once.
        let mut huge = vec![0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(MessageDecoder::new(100).decode(&mut huge), Err(FrameError::TooLong { .. })));
    }

    /// No byte sequence makes the decoder panic, loop or hand out a range outside its input.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Bias towards plausible headers.
            if let Some(first) = bytes.first_mut() {
                *first &= 0x8F;
            }
            let mut decoder = MessageDecoder::new(64);
            for _ in 0..len + 2 {
                match decoder.decode(&mut bytes) {
                    Ok(Decoded::Message { payload, consumed }) => {
                        assert!(payload.end <= consumed && consumed <= bytes.len());
                        bytes.drain(..consumed);
                    }
                    Ok(Decoded::NeedInput { consumed }) | Ok(Decoded::Closed { consumed, .. }) => {
                        assert!(consumed <= bytes.len());
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }

    fn answer(handshake: &ClientHandshake, lines: &[&str]) -> Result<bool, HandshakeError> {
        let mut check = handshake.response();
        let mut done = Ok(false);
        for line in lines {
            done = check.line(line.as_bytes());
            if !matches!(done, Ok(false)) {
                break;
            }
        }
        done
    }

    #[test]
    fn handshake_request_and_answer() {
        let h = ClientHandshake::new("127.0.0.1:7878", "/ws", Some("text.ircv3.net"));
        let request = String::from_utf8(h.request.clone()).unwrap();
        let key = request.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap();
        assert_eq!(key.len(), 24);
        assert_eq!(h.accept, tungstenite::handshake::derive_accept_key(key.as_bytes()));
        assert!(request.starts_with("GET /ws HTTP/1.1\r\n") && request.ends_with("\r\n\r\n"));
        assert!(request.contains("Sec-WebSocket-Protocol: text.ircv3.net\r\n"));
        // Two requests, two keys.
        assert_ne!(ClientHandshake::new("h", "/", None).accept, ClientHandshake::new("h", "/", None).accept);

        let accept = format!("Sec-WebSocket-Accept: {}", h.accept);
        let good = ["HTTP/1.1 101 Switching Protocols", "upgrade: WebSocket", "Connection: upgrade", &accept];
        let chosen = [&good[..], &["Sec-WebSocket-Protocol: text.ircv3.net", ""]].concat();
        assert_eq!(answer(&h, &chosen), Ok(true));
        let none = [&good[..], &[""]].concat();
        assert!(matches!(answer(&h, &none), Err(HandshakeError::Subprotocol { .. })));
        let wrong =
            ["HTTP/1.1 101 x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: nope", ""];
        assert_eq!(answer(&h, &wrong), Err(HandshakeError::Accept));
        assert!(matches!(answer(&h, &["HTTP/1.1 403 Forbidden", ""]), Err(HandshakeError::Status(_))));
        assert!(matches!(answer(&h, &["{\"type\":\"error\"}"]), Err(HandshakeError::Status(_))));
        assert_eq!(answer(&h, &["HTTP/1.1 101 x", ""]), Err(HandshakeError::Missing("Upgrade: websocket")));
        let many = vec!["X: y"; 200];
        assert_eq!(answer(&h, &[&["HTTP/1.1 101 x"][..], &many].concat()), Err(HandshakeError::TooLong(100)));

        let plain = ClientHandshake::new("h", "/ws", None);
        let accept = format!("Sec-WebSocket-Accept: {}", plain.accept);
        let lines =
            ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", &accept, ""];
        assert_eq!(answer(&plain, &lines), Ok(true));
    }

    #[test]
    fn masks_differ_and_apply_twice_is_identity() {
        let masks: std::collections::HashSet<[u8; 4]> = (0..16).map(|_| random_mask()).collect();
        assert!(masks.len() > 1);
        let mut bytes = payload(1001);
        apply_mask(&mut bytes, [9, 8, 7, 6]);
        assert_ne!(bytes, payload(1001));
        apply_mask(&mut bytes, [9, 8, 7, 6]);
        assert_eq!(bytes, payload(1001));
    }
}
