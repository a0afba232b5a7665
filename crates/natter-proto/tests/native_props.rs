//! The hand-written serializer of the hottest server frames (`message`, `ack`) writes exactly
//! what serde writes, for any content.

use natter_proto::native::{
    ClientFrame, MessageFrame, RequestId, ServerFrame, parse_client_frame, write_server_frame,
};
use proptest::prelude::*;
use std::borrow::Cow;

/// Text with what JSON must escape: quotes, backslashes, every control character, non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('"'),
            Just('\\'),
            (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
            Just('\u{7f}'),
            Just('é'),
            Just('🦀'),
            Just('\u{2028}'),
            any::<char>(),
            proptest::char::range('a', 'z'),
        ],
        0..40,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn cow(s: Option<String>) -> Option<Cow<'static, str>> {
    s.map(Cow::Owned)
}

fn request_id() -> impl Strategy<Value = Option<RequestId>> {
    prop_oneof![
        Just(None),
        any::<i64>().prop_map(|n| Some(RequestId::Num(n))),
        text().prop_map(|t| Some(RequestId::Text(t)))
    ]
}

fn serde_line(frame: &ServerFrame<'_>) -> Vec<u8> {
    let mut line = serde_json::to_vec(frame).unwrap();
    line.push(b'\n');
    line
}

proptest! {
    #[test]
    fn messages_are_written_as_serde_writes_them(
        room in prop::option::of(text()), from in text(), to in prop::option::of(text()), body in text(),
        action: bool, notice: bool, mid in prop::option::of(any::<u64>()), ts: u64,
    ) {
        let frame = ServerFrame::Message(MessageFrame {
            room: cow(room), from: Cow::Owned(from), to: cow(to), text: Cow::Owned(body), action, notice, mid, ts,
        });
        let mut ours = Vec::new();
        write_server_frame(&frame, &mut ours);
        prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(serde_line(&frame)).unwrap());
    }

    #[test]
    fn acks_are_written_as_serde_writes_them(
        id in request_id(), cid in prop::option::of(text()), mid in prop::option::of(any::<u64>()),
        room in prop::option::of(text()), ts: u64, duplicate: bool, away in prop::option::of(text()),
        offline: bool,
    ) {
        let frame =
            ServerFrame::Ack { id, cid: cow(cid), mid, room: cow(room), ts, duplicate, away: cow(away), offline };
        let mut ours = Vec::new();
        write_server_frame(&frame, &mut ours);
        prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(serde_line(&frame)).unwrap());
    }
}

/// A value token as a client might write it, valid JSON or not.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        text().prop_map(|t| serde_json::to_string(&t).unwrap()),
        "[a-z #]{0,12}".prop_map(|t| format!("\"{t}\"")),
        Just("\"tab\there\"".to_string()),
        Just("\"send\"".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        prop_oneof![
            Just("007"),
            Just("-0"),
            Just("1.5"),
            Just("1e3"),
            Just("99999999999999999999"),
            Just("-")
        ]
        .prop_map(str::to_string),
        prop_oneof![Just("true"), Just("false"), Just("null"), Just("{}"), Just("[1]"), Just("tru")]
            .prop_map(str::to_string),
    ]
}

/// A frame-like line: mostly `{"type":"send","text":...` and then a few fields in any order,
/// some repeated or unknown, sometimes with spaces, sometimes cut short.
fn send_like_line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("type"),
        Just("room"),
        Just("to"),
        Just("text"),
        Just("cid"),
        Just("action"),
        Just("notice"),
        Just("id"),
        Just("id"),
        Just("extra"),
        Just("te\\u0078t"),
    ];
    (
        prop::bool::weighted(0.9),
        prop::option::weighted(0.8, "[a-z .]{0,12}"),
        prop::collection::vec((key, value(), prop::bool::weighted(0.1)), 0..4),
        prop::bool::weighted(0.95),
        prop_oneof![8 => Just(0usize), 1 => 1usize..4],
    )
        .prop_map(|(prefix, body, fields, close, cut)| {
            let mut line = String::from(if prefix { r#"{"type":"send""# } else { "{" });
            let mut parts: Vec<String> = body.map(|t| format!(r#""text":"{t}""#)).into_iter().collect();
            for (k, v, spaced) in &fields {
                let gap = if *spaced { " " } else { "" };
                parts.push(format!("\"{k}\"{gap}:{gap}{v}"));
            }
            for (i, part) in parts.iter().enumerate() {
                if prefix || i > 0 {
                    line.push(',');
                }
                line.push_str(part);
            }
            if close {
                line.push('}');
            }
            let mut keep = line.len().saturating_sub(cut);
            while !line.is_char_boundary(keep) {
                keep -= 1;
            }
            line.truncate(keep);
            line
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Whatever the hand-written reader of `send` frames accepts, serde reads the same way;
    /// whatever it leaves, serde still answers.
    #[test]
    fn send_frames_read_as_serde_reads_them(line in send_like_line()) {
        let ours = parse_client_frame(line.as_bytes());
        let serde = serde_json::from_slice::<ClientFrame>(line.as_bytes());
        match (ours, serde) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "{line}: ours {a:?}, serde {b:?}"),
        }
    }

    #[test]
    fn serialized_send_frames_read_back(
        room in prop::option::of(text()), to in prop::option::of(text()), body in text(),
        action: bool, notice: bool, cid in prop::option::of(text()), id in request_id(),
    ) {
        let frame = ClientFrame::Send { room, to, text: body, action, notice, cid, id };
        let line = serde_json::to_vec(&frame).unwrap();
        prop_assert_eq!(parse_client_frame(&line).unwrap(), frame);
    }
}
