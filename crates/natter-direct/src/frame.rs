//! Wire framing of natter direct, pure (no I/O).
//!
//! One packet is `type (1 byte) || body`. Over UDP a packet is one datagram; over TCP each
//! packet is preceded by its length as a big-endian `u16`, so no frame exceeds 65535 bytes
//! and a decoder never buffers more than that. Inside the encrypted session, chat messages
//! are [`AppMsg`]s.

use natter_proto::decode::decode_text;

use crate::session::HsMsg;

/// Version byte carried in the first packet, so mismatched builds fail clearly.
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest chat message (UTF-8 bytes); longer typed lines are refused locally.
pub const MAX_MESSAGE: usize = 60 * 1024;
/// Largest TCP frame body (type byte included).
pub const MAX_FRAME: usize = u16::MAX as usize;
/// Largest first packet a TCP listener reads from a new connection. A connector's first
/// packet is a PAKE message (35 bytes); anything announced bigger is not natter direct and is
/// refused from its length prefix, so a stranger never makes the listener hold a whole
/// 64 KiB frame. The margin leaves room for a later version to say so in its first packet.
pub const MAX_FIRST_PACKET: usize = 256;

const T_PAKE: u8 = 1;
const T_NOISE: u8 = 2;
const T_DATA: u8 = 3;
const T_ABORT: u8 = 4;

/// Why the handshake was abandoned; sent in the clear as a courtesy so the other side can
/// print a precise message (an attacker could forge it, but it could also just cut the line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortReason {
    /// The codes did not match.
    WrongCode,
    /// The listener already has (or had) its peer.
    Busy,
    /// Protocol error or version mismatch.
    Protocol,
}

impl AbortReason {
    fn to_byte(self) -> u8 {
        match self {
            Self::WrongCode => 1,
            Self::Busy => 2,
            Self::Protocol => 3,
        }
    }

    fn from_byte(b: u8) -> Self {
        match b {
            1 => Self::WrongCode,
            2 => Self::Busy,
            _ => Self::Protocol,
        }
    }
}

/// One packet of the natter direct protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// SPAKE2 message, with the sender's protocol version.
    Pake {
        /// Protocol version of the sender.
        version: u8,
        /// The SPAKE2 message.
        msg: Vec<u8>,
    },
    /// Noise handshake message.
    Noise(Vec<u8>),
    /// Sealed session message (`nonce || ciphertext`).
    Data(Vec<u8>),
    /// The sender gives up the handshake.
    Abort(AbortReason),
}

/// A packet that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Empty packet.
    #[error("empty packet")]
    Empty,
    /// The type byte is unknown: the peer is not natter direct (or is a newer version).
    #[error("unknown packet type {0}: the peer is not speaking natter direct")]
    UnknownType(u8),
    /// A packet's body does not have the required shape.
    #[error("malformed {0} packet")]
    Malformed(&'static str),
    /// A frame was announced larger than allowed.
    #[error("frame too large")]
    TooLarge,
    /// A chat message in the session is malformed.
    #[error("malformed chat message from the peer")]
    BadMessage,
}

impl Packet {
    /// Converts a handshake message into a packet.
    pub fn from_hs(msg: HsMsg) -> Self {
        match msg {
            HsMsg::Pake(msg) => Packet::Pake { version: PROTOCOL_VERSION, msg },
            HsMsg::Noise(m) => Packet::Noise(m),
        }
    }

    /// Encodes as `type || body` (one datagram).
    pub fn encode(&self) -> Vec<u8> {
        let (t, body): (u8, &[u8]) = match self {
            Packet::Pake { version, msg } => {
                let mut out = vec![T_PAKE, *version];
                out.extend_from_slice(msg);
                return out;
            }
            Packet::Noise(m) => (T_NOISE, m),
            Packet::Data(m) => (T_DATA, m),
            Packet::Abort(r) => return vec![T_ABORT, r.to_byte()],
        };
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(t);
        out.extend_from_slice(body);
        out
    }

    /// Encodes with the TCP length prefix.
    pub fn encode_stream(&self) -> Result<Vec<u8>, FrameError> {
        let body = self.encode();
        let len = u16::try_from(body.len()).map_err(|_| FrameError::TooLarge)?;
        let mut out = Vec::with_capacity(2 + body.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes one packet (one datagram, or one TCP frame without its length prefix).
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let (&t, body) = bytes.split_first().ok_or(FrameError::Empty)?;
        match t {
            T_PAKE => {
                let (&version, msg) = body.split_first().ok_or(FrameError::Malformed("PAKE"))?;
                Ok(Packet::Pake { version, msg: msg.to_vec() })
            }
            T_NOISE if !body.is_empty() => Ok(Packet::Noise(body.to_vec())),
            T_NOISE => Err(FrameError::Malformed("Noise")),
            T_DATA => Ok(Packet::Data(body.to_vec())),
            T_ABORT => match body {
                [r] => Ok(Packet::Abort(AbortReason::from_byte(*r))),
                _ => Err(FrameError::Malformed("abort")),
            },
            other => Err(FrameError::UnknownType(other)),
        }
    }
}

/// Reassembles length-prefixed packets from a TCP byte stream, whatever the read sizes.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: Vec<u8>,
}

impl StreamDecoder {
    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Returns the next complete packet, `Ok(None)` if more bytes are needed.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, FrameError> {
        let Some(len) = self.buf.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize) else {
            return Ok(None);
        };
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if self.buf.len() < 2 + len {
            return Ok(None);
        }
        let packet = Packet::decode(&self.buf[2..2 + len]);
        self.buf.drain(..2 + len);
        packet.map(Some)
    }

    /// Bytes held while waiting for the rest of a frame (at most 2 + 65535).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

const M_TEXT: u8 = 1;
const M_BYE: u8 = 2;

/// A chat-level message inside the encrypted session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppMsg {
    /// A line of chat text.
    Text(String),
    /// The sender leaves and will send nothing more.
    Bye,
}

impl AppMsg {
    /// Encodes as `kind || UTF-8 text`.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            AppMsg::Text(t) => {
                let mut out = Vec::with_capacity(1 + t.len());
                out.push(M_TEXT);
                out.extend_from_slice(t.as_bytes());
                out
            }
            AppMsg::Bye => vec![M_BYE],
        }
    }

    /// Decodes a message; text that is somehow not UTF-8 is decoded leniently.
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        match bytes.split_first() {
            Some((&M_TEXT, text)) if text.len() <= MAX_MESSAGE => {
                Ok(AppMsg::Text(decode_text(text).into_owned()))
            }
            Some((&M_BYE, [])) => Ok(AppMsg::Bye),
            _ => Err(FrameError::BadMessage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Packet> {
        vec![
            Packet::Pake { version: 1, msg: vec![0x41; 33] },
            Packet::Noise(vec![9; 48]),
            Packet::Data(vec![1, 2, 3]),
            Packet::Data(Vec::new()),
            Packet::Abort(AbortReason::WrongCode),
            Packet::Abort(AbortReason::Busy),
            Packet::Abort(AbortReason::Protocol),
        ]
    }

    #[test]
    fn packets_round_trip() {
        for p in samples() {
            assert_eq!(Packet::decode(&p.encode()).unwrap(), p);
        }
        assert_eq!(Packet::decode(&[]), Err(FrameError::Empty));
        assert_eq!(Packet::decode(&[77, 1]), Err(FrameError::UnknownType(77)));
        assert_eq!(Packet::decode(&[T_NOISE]), Err(FrameError::Malformed("Noise")));
    }

    #[test]
    fn stream_decoder_handles_split_and_joined_frames() {
        let mut stream = Vec::new();
        for p in samples() {
            stream.extend(p.encode_stream().unwrap());
        }
        for cut in 0..stream.len() {
            let mut d = StreamDecoder::default();
            let mut got = Vec::new();
            d.extend(&stream[..cut]);
            while let Some(p) = d.next_packet().unwrap() {
                got.push(p);
            }
            d.extend(&stream[cut..]);
            while let Some(p) = d.next_packet().unwrap() {
                got.push(p);
            }
            assert_eq!(got, samples());
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn oversized_frame_cannot_be_encoded() {
        assert_eq!(Packet::Data(vec![0; MAX_FRAME]).encode_stream(), Err(FrameError::TooLarge));
        assert!(Packet::Data(vec![0; MAX_FRAME - 1]).encode_stream().is_ok());
    }

    #[test]
    fn app_messages_round_trip() {
        for m in [AppMsg::Text("héllo 你好".into()), AppMsg::Text(String::new()), AppMsg::Bye] {
            assert_eq!(AppMsg::decode(&m.encode()).unwrap(), m);
        }
        assert_eq!(AppMsg::decode(&[M_BYE, 1]), Err(FrameError::BadMessage));
        assert_eq!(AppMsg::decode(&[]), Err(FrameError::BadMessage));
        let mut big = vec![M_TEXT];
        big.extend(vec![b'a'; MAX_MESSAGE + 1]);
        assert_eq!(AppMsg::decode(&big), Err(FrameError::BadMessage));
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(chunks: Vec<Vec<u8>>) {
            let mut d = StreamDecoder::default();
            for c in &chunks {
                let _ = Packet::decode(c);
                let _ = AppMsg::decode(c);
                d.extend(c);
                loop {
                    match d.next_packet() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        // Callers drop the connection on an error; so does the test.
                        Err(_) => {
                            d = StreamDecoder::default();
                            break;
                        }
                    }
                }
                proptest::prop_assert!(d.pending() < 2 + MAX_FRAME);
            }
        }
    }
}
