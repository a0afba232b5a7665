//! Reads a client's WebSocket frames (RFC 6455 §5) into the lines the doors read: the payload
//! of each data message, unmasked, followed by a newline. Pure: bytes in, bytes out, no I/O.
//!
//! Payload bytes stream straight into the line buffer as they arrive, so a message is never
//! held whole here: an oversized one is cut by the line buffer's own limit (the door answers
//! it as it answers an oversized line over TCP) and a fragmented one costs nothing extra.
//! Frame headers are parsed by tungstenite's [`FrameHeader`]; what this file adds is the
//! state across reads and the rules a server enforces on what a client sends.

use super::utf8::Utf8Check;
use std::io::Cursor;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// Longest control frame payload (RFC 6455 §5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// Close codes this server sends (RFC 6455 §7.4.1).
pub(crate) mod close_code {
    /// Normal closure.
    pub(crate) const NORMAL: u16 = 1000;
    /// The peer broke the protocol.
    pub(crate) const PROTOCOL_ERROR: u16 = 1002;
    /// A text message was not UTF-8.
    pub(crate) const INVALID_PAYLOAD: u16 = 1007;
}

/// Why a client's frames were refused: the close frame's code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The close code the client is sent.
    pub code: u16,
    /// The close reason, naming what was wrong.
    pub reason: &'static str,
}

impl Violation {
    const fn protocol(reason: &'static str) -> Self {
        Self { code: close_code::PROTOCOL_ERROR, reason }
    }
}

/// What [`Decoder::decode`] stopped at.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Everything usable was consumed; the rest (part of a header or of a control frame)
    /// waits for more bytes.
    NeedInput,
    /// The output has no more room; more may be decodable from the input.
    Full,
    /// A ping: answer it with a pong carrying this payload.
    Ping(ControlPayload),
    /// The client closed the connection (with this code, when it gave one).
    Close(Option<u16>),
}

/// A control frame's payload (at most 125 bytes), kept without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ControlPayload {
    bytes: [u8; MAX_CONTROL_PAYLOAD],
    len: u8,
}

impl ControlPayload {
    fn new(payload: &[u8]) -> Self {
        let mut bytes = [0; MAX_CONTROL_PAYLOAD];
        bytes[..payload.len()].copy_from_slice(payload);
        Self { bytes, len: payload.len() as u8 }
    }

    /// The payload.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A data frame whose payload is being read.
#[derive(Debug)]
struct Payload {
    remaining: u64,
    mask: [u8; 4],
    /// Payload bytes of this frame already read (the mask's phase).
    offset: usize,
    /// The last frame of its message.
    last: bool,
}

/// The state of one connection's incoming frames.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    payload: Option<Payload>,
    /// A data message has begun and its last frame has not come.
    in_message: bool,
    /// The message in progress is text: its bytes are checked as UTF-8.
    text: bool,
    /// The last payload byte of the message in progress, to end it with one newline.
    last_byte: Option<u8>,
    /// The message's last frame is read; its end (the newline) waits for room.
    ending: bool,
    utf8: Utf8Check,
}

impl Decoder {
    /// True between messages: no frame or message begun, so a decoder made anew would go on
    /// the same (a parked connection keeps none).
    pub(crate) fn at_rest(&self) -> bool {
        self.payload.is_none() && !self.in_message && !self.ending
    }

    /// Decodes from `input` into `out`, appending at most `room` bytes. Returns how many input
    /// bytes were consumed and where it stopped; the caller keeps the unconsumed rest and
    /// passes it again with more bytes.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        room: usize,
    ) -> Result<(usize, Step), Violation> {
        let limit = out.len() + room;
        let mut at = 0;
        loop {
            if let Some(payload) = &mut self.payload {
                let take = (limit - out.len()).min(input.len() - at);
                let take = take.min(usize::try_from(payload.remaining).unwrap_or(usize::MAX));
                if take == 0 && payload.remaining > 0 {
                    let step = if out.len() == limit { Step::Full } else { Step::NeedInput };
                    return Ok((at, step));
                }
                let start = out.len();
                out.extend_from_slice(&input[at..at + take]);
                unmask(&mut out[start..], payload.mask, payload.offset);
                at += take;
                payload.offset += take;
                payload.remaining -= take as u64;
                if self.text {
                    self.utf8.feed(&out[start..]).map_err(|()| Self::not_utf8())?;
                }
                if let Some(&last) = out[start..].last() {
                    self.last_byte = Some(last);
                }
                if payload.remaining > 0 {
                    continue;
                }
                self.ending = payload.last;
                self.payload = None;
            }
            if self.ending {
                // The newline needs a byte of room; without it the message ends next time.
                if out.len() == limit {
                    return Ok((at, Step::Full));
                }
                self.ending = false;
                self.end_message(out)?;
                continue;
            }
            let mut cursor = Cursor::new(&input[at..]);
            let (header, length) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return Ok((at, Step::NeedInput)),
                Err(_) => return Err(Violation::protocol("unknown frame opcode")),
            };
            let header_len = cursor.position() as usize;
            if header.rsv1 || header.rsv2 || header.rsv3 {
                return Err(Violation::protocol("reserved bits set: no extension was negotiated"));
            }
            let Some(mask) = header.mask else {
                return Err(Violation::protocol("client frames must be masked"));
            };
            match header.opcode {
                OpCode::Data(data) => {
                    match (data, self.in_message) {
                        (Data::Continue, false) => {
                            return Err(Violation::protocol("continuation frame outside a message"));
                        }
                        (Data::Text | Data::Binary, true) => {
                            return Err(Violation::protocol("new message before the last one ended"));
                        }
                        (Data::Text, false) => self.begin_message(true),
                        (Data::Binary, false) => self.begin_message(false),
                        _ => {}
                    }
                    at += header_len;
                    self.payload =
                        Some(Payload { remaining: length, mask, offset: 0, last: header.is_final });
                }
                OpCode::Control(control) => {
                    if !header.is_final {
                        return Err(Violation::protocol("control frames must not be fragmented"));
                    }
                    if length > MAX_CONTROL_PAYLOAD as u64 {
                        return Err(Violation::protocol("control frame payload over 125 bytes"));
                    }
                    let end = header_len + length as usize;
                    if input.len() - at < end {
                        return Ok((at, Step::NeedInput));
                    }
                    let mut payload = ControlPayload::new(&input[at + header_len..at + end]);
                    let len = usize::from(payload.len);
                    unmask(&mut payload.bytes[..len], mask, 0);
                    at += end;
                    match control {
                        Control::Ping => return Ok((at, Step::Ping(payload))),
                        Control::Pong => {}
                        Control::Close => return Ok((at, Step::Close(close_status(payload.as_slice())?))),
                        Control::Reserved(_) => return Err(Violation::protocol("unknown frame opcode")),
                    }
                }
            }
        }
    }

    fn begin_message(&mut self, text: bool) {
        self.in_message = true;
        self.text = text;
        self.last_byte = None;
        self.utf8 = Utf8Check::default();
    }

    /// Ends a data message: one newline, unless the client already ended it with one (or it
    /// was empty: nothing to read).
    fn end_message(&mut self, out: &mut Vec<u8>) -> Result<(), Violation> {
        self.in_message = false;
        if self.text && !self.utf8.is_complete() {
            return Err(Self::not_utf8());
        }
        if !matches!(self.last_byte, None | Some(b'\n')) {
            out.push(b'\n');
        }
        Ok(())
    }

    fn not_utf8() -> Violation {
        Violation {
            code: close_code::INVALID_PAYLOAD,
            reason: "text message is not UTF-8: send UTF-8 or a binary message",
        }
    }
}

/// The status code of a close frame's payload: none, or two bytes and UTF-8 text.
fn close_status(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(Violation::protocol("close frame payload of one byte")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            let valid = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            if !valid {
                return Err(Violation::protocol("close frame with an invalid status code"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(Violation {
                    code: close_code::INVALID_PAYLOAD,
                    reason: "close reason is not UTF-8",
                });
            }
            Ok(Some(code))
        }
    }
}

/// Applies a client's mask to payload bytes that start `offset` bytes into the frame.
fn unmask(bytes: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte ^= mask[(offset + i) & 3];
    }
}

/// Appends one server frame (unmasked, never fragmented) holding `payload`.
pub(crate) fn encode(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let header = FrameHeader { is_final: true, rsv1: false, rsv2: false, rsv3: false, opcode, mask: None };
    out.reserve(header.len(payload.len() as u64) + payload.len());
    // Writing into a Vec cannot fail.
    let _ = header.format(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A close frame with a status code and reason (cut to fit a control frame).
pub(crate) fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
    encode(out, OpCode::Control(Control::Close), &payload[..2 + cut]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tungstenite::protocol::frame::Frame;

    /// A client frame as tungstenite writes it (masked).
    fn client_frame(opcode: OpCode, payload: &[u8], last: bool, mask: [u8; 4]) -> Vec<u8> {
        let header =
            FrameHeader { is_final: last, rsv1: false, rsv2: false, rsv3: false, opcode, mask: Some(mask) };
        let mut frame = Frame::from_payload(header, payload.to_vec().into());
        let mut out = Vec::new();
        frame.header_mut().mask = Some(mask);
        frame.format(&mut out).unwrap();
        out
    }

    fn text(payload: &[u8], last: bool) -> Vec<u8> {
        client_frame(OpCode::Data(Data::Text), payload, last, [1, 2, 3, 4])
    }

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, Vec<Step>), Violation> {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let mut steps = Vec::new();
        let mut at = 0;
        loop {
            let (used, step) = decoder.decode(&input[at..], &mut out, 1 << 20)?;
            at += used;
            if step == Step::NeedInput {
                return Ok((out, steps));
            }
            steps.push(step);
        }
    }

    #[test]
    fn text_messages_become_lines() {
        let mut input = text(b"hello", true);
        input.extend(text(b"second\n", true));
        input.extend(text(b"", true));
        let (out, steps) = decode_all(&input).unwrap();
        assert_eq!(out, b"hello\nsecond\n");
        assert!(steps.is_empty());
    }

    #[test]
    fn fragments_join_and_control_frames_interleave() {
        let mut input = text(b"hel", false);
        input.extend(client_frame(OpCode::Control(Control::Ping), b"p", true, [9, 9, 9, 9]));
        input.extend(client_frame(OpCode::Data(Data::Continue), b"lo", true, [5, 6, 7, 8]));
        let (out, steps) = decode_all(&input).unwrap();
        assert_eq!(out, b"hello\n");
        assert_eq!(steps, vec![Step::Ping(ControlPayload::new(b"p"))]);
    }

    #[test]
    fn broken_frames_are_refused_with_a_reason() {
        let unmasked = {
            let mut out = Vec::new();
            encode(&mut out, OpCode::Data(Data::Text), b"hi");
            out
        };
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (unmasked, close_code::PROTOCOL_ERROR),
            (client_frame(OpCode::Data(Data::Continue), b"x", true, [1; 4]), close_code::PROTOCOL_ERROR),
            ([text(b"a", false), text(b"b", true)].concat(), close_code::PROTOCOL_ERROR),
            (
                client_frame(OpCode::Control(Control::Ping), &[0; 126], true, [1; 4]),
                close_code::PROTOCOL_ERROR,
            ),
            (client_frame(OpCode::Control(Control::Ping), b"x", false, [1; 4]), close_code::PROTOCOL_ERROR),
            (text(b"caf\xe9", true), close_code::INVALID_PAYLOAD),
            (text(b"caf\xc3", true), close_code::INVALID_PAYLOAD),
            (
                client_frame(OpCode::Control(Control::Close), &[3, 0xe8, 0xff], true, [1; 4]),
                close_code::INVALID_PAYLOAD,
            ),
            (
                client_frame(OpCode::Control(Control::Close), &[0, 5], true, [1; 4]),
                close_code::PROTOCOL_ERROR,
            ),
            (vec![0x83, 0x80, 0, 0, 0, 0], close_code::PROTOCOL_ERROR),
            (vec![0xc1, 0x80, 0, 0, 0, 0], close_code::PROTOCOL_ERROR),
        ];
        for (input, code) in cases {
            assert_eq!(decode_all(&input).map(|_| ()).unwrap_err().code, code, "{input:?}");
        }
    }

    /// At rest only between messages: not inside a frame's payload, not between a message's
    /// fragments (a parked connection keeps no decoder).
    #[test]
    fn the_decoder_is_at_rest_only_between_messages() {
        let mut decoder = Decoder::default();
        assert!(decoder.at_rest());
        let mut out = Vec::new();
        let first = text(b"hel", false);
        let (used, _) = decoder.decode(&first[..first.len() - 1], &mut out, 1024).unwrap();
        assert!(used > 0 && !decoder.at_rest(), "inside a payload");
        decoder.decode(&first[used..], &mut out, 1024).unwrap();
        assert!(!decoder.at_rest(), "between fragments");
        let last = client_frame(OpCode::Data(Data::Continue), b"lo", true, [5, 6, 7, 8]);
        decoder.decode(&last, &mut out, 1024).unwrap();
        assert_eq!(out, b"hello\n");
        assert!(decoder.at_rest());
    }

    #[test]
    fn binary_messages_pass_any_bytes() {
        let input = client_frame(OpCode::Data(Data::Binary), b"caf\xe9", true, [7, 7, 7, 7]);
        assert_eq!(decode_all(&input).unwrap().0, b"caf\xe9\n");
    }

    #[test]
    fn a_close_frame_ends_with_its_code() {
        let input = client_frame(OpCode::Control(Control::Close), &[3, 0xe8, b'o', b'k'], true, [1; 4]);
        assert_eq!(decode_all(&input).unwrap().1, vec![Step::Close(Some(1000))]);
    }

    #[test]
    fn server_frames_read_back_with_tungstenite() {
        for len in [0usize, 5, 125, 126, 65_535, 65_536, 100_000] {
            let payload = vec![b'x'; len];
            let mut out = Vec::new();
            encode(&mut out, OpCode::Data(Data::Text), &payload);
            let mut cursor = Cursor::new(&out);
            let (header, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert_eq!((header.is_final, header.mask, length), (true, None, len as u64));
            assert_eq!(&out[cursor.position() as usize..], &payload[..]);
        }
        let mut out = Vec::new();
        encode_close(&mut out, 1002, &"é".repeat(100));
        assert!(out.len() <= 2 + MAX_CONTROL_PAYLOAD);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }

    proptest! {
        /// Whatever the read boundaries and the room the line buffer gives, the same messages
        /// come out as tungstenite framed them.
        #[test]
        fn any_split_and_room_gives_the_same_lines(
            messages in proptest::collection::vec(("[a-zé€😀 ]{0,300}", 1usize..4), 1..6),
            cuts in proptest::collection::vec(1usize..97, 1..20),
            room in 1usize..64,
            mask in any::<[u8; 4]>(),
        ) {
            let mut input = Vec::new();
            let mut expected = Vec::new();
            for (message, fragments) in &messages {
                let bytes = message.as_bytes();
                let size = bytes.len().div_ceil(*fragments).max(1);
                let chunks: Vec<&[u8]> = if bytes.is_empty() { vec![&[][..]] } else { bytes.chunks(size).collect() };
                for (i, chunk) in chunks.iter().enumerate() {
                    let opcode = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
                    input.extend(client_frame(opcode, chunk, i + 1 == chunks.len(), mask));
                }
                if !bytes.is_empty() {
                    expected.extend_from_slice(bytes);
                    expected.push(b'\n');
                }
            }
            let mut decoder = Decoder::default();
            let mut out = Vec::new();
            let mut pending: Vec<u8> = Vec::new();
            let mut fed = 0;
            let mut cut = cuts.iter().cycle();
            while fed < input.len() {
                let more = (*cut.next().unwrap()).min(input.len() - fed);
                pending.extend_from_slice(&input[fed..fed + more]);
                fed += more;
                loop {
                    let (used, step) = decoder.decode(&pending, &mut out, room).unwrap();
                    pending.drain(..used);
                    if step != Step::Full {
                        break;
                    }
                }
            }
            prop_assert!(pending.is_empty(), "{} bytes left undecoded", pending.len());
            prop_assert_eq!(out, expected);
        }
    }
}
