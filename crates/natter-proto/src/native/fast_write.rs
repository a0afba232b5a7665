//! The fast writer: `message` and `ack` frames written by hand, byte for byte as serde writes
//! them; every other server frame goes through serde.

use super::{MessageFrame, RequestId, ServerFrame};

/// Serializes a server frame as one line (with the trailing newline) onto `out`.
///
/// Messages and acknowledgements, nearly all of the traffic, are written by hand, byte for
/// byte what serde writes (a property test holds them to it): serde's way through an
/// internally tagged enum costs several times more, once per message.
pub fn write_server_frame(frame: &ServerFrame<'_>, out: &mut Vec<u8>) {
    match frame {
        ServerFrame::Message(m) => write_message(m, out),
        ServerFrame::Ack { id, cid, mid, room, ts, duplicate, away, offline } => {
            out.extend_from_slice(br#"{"type":"ack""#);
            match id {
                Some(RequestId::Num(n)) => number_field(out, "id", *n),
                Some(RequestId::Text(t)) => json_field(out, "id", t),
                None => {}
            }
            if let Some(cid) = cid {
                json_field(out, "cid", cid);
            }
            if let Some(mid) = mid {
                number_field(out, "mid", *mid);
            }
            if let Some(room) = room {
                json_field(out, "room", room);
            }
            number_field(out, "ts", *ts);
            if *duplicate {
                out.extend_from_slice(br#","duplicate":true"#);
            }
            if let Some(away) = away {
                json_field(out, "away", away);
            }
            if *offline {
                out.extend_from_slice(br#","offline":true"#);
            }
            out.push(b'}');
        }
        // Serializing our own types into a Vec cannot fail.
        _ => serde_json::to_writer(&mut *out, frame).expect("server frames always serialize"),
    }
    out.push(b'\n');
}

fn write_message(m: &MessageFrame<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"type":"message""#);
    if let Some(room) = &m.room {
        json_field(out, "room", room);
    }
    json_field(out, "from", &m.from);
    if let Some(to) = &m.to {
        json_field(out, "to", to);
    }
    json_field(out, "text", &m.text);
    if m.action {
        out.extend_from_slice(br#","action":true"#);
    }
    if m.notice {
        out.extend_from_slice(br#","notice":true"#);
    }
    if let Some(mid) = m.mid {
        number_field(out, "mid", mid);
    }
    number_field(out, "ts", m.ts);
    out.push(b'}');
}

/// `,"key":value` for a number.
fn number_field(out: &mut Vec<u8>, key: &str, value: impl itoa::Integer) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// `,"key":"value"` for a string (`key` needs no escaping).
fn json_field(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    json_string(out, value);
}

/// A JSON string, escaped as serde_json escapes it: quote, backslash and control characters
/// (short forms where JSON has them, else `\u00xx`); everything else as is.
fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most text needs no escaping: one pass without early exit (which the compiler turns
    // into wide compares) settles it.
    let plain = !bytes.iter().fold(false, |any, &b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if plain {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::parse_server_frame;

    #[test]
    fn server_frames_round_trip() {
        let frame = ServerFrame::Message(MessageFrame {
            room: Some("#lobby".into()),
            from: "ann".into(),
            to: None,
            text: "hello \"there\"".into(),
            action: false,
            notice: false,
            mid: Some(4),
            ts: 1_700_000_000_000,
        });
        let mut out = Vec::new();
        write_server_frame(&frame, &mut out);
        assert!(out.ends_with(b"\n"));
        assert_eq!(parse_server_frame(&out[..out.len() - 1]).unwrap(), frame);
    }

    // The property tests in tests/native_props.rs hold whole `message` and `ack` frames to
    // serde's bytes; these pin the pieces, byte by byte.

    #[test]
    fn strings_are_escaped_as_serde_escapes_them() {
        let controls: String = (0u8..0x20).map(char::from).collect();
        for s in [&*controls, "", "plain", "\"", "\\", "a\nb", "\u{7f} é 🦀 \u{2028}", "x\u{1f}\"\\y"] {
            let mut ours = Vec::new();
            json_string(&mut ours, s);
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn messages_and_acks_are_written_as_serde_writes_them() {
        let message = ServerFrame::Message(MessageFrame {
            room: None,
            from: "ann".into(),
            to: Some("bob".into()),
            text: "tab\there \"q\"".into(),
            action: true,
            notice: true,
            mid: None,
            ts: 7,
        });
        let ack = ServerFrame::Ack {
            id: Some(RequestId::Text("r\n1".into())),
            cid: Some("c1".into()),
            mid: Some(u64::MAX),
            room: Some("#a".into()),
            ts: 0,
            duplicate: true,
            away: Some("lunch".into()),
            offline: true,
        };
        let numbered = ServerFrame::Ack {
            id: Some(RequestId::Num(i64::MIN)),
            cid: None,
            mid: None,
            room: None,
            ts: 1,
            duplicate: false,
            away: None,
            offline: false,
        };
        for frame in [message, ack, numbered] {
            let mut ours = Vec::new();
            write_server_frame(&frame, &mut ours);
            let mut serde = serde_json::to_vec(&frame).unwrap();
            serde.push(b'\n');
            assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(serde).unwrap());
        }
    }
}
