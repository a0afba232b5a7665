//! The hand-written serializer of the hottest server frames (`message`, `ack`) writes exactly
//! what serde writes, for any content.

use natter_proto::native::{MessageFrame, RequestId, ServerFrame, write_server_frame};
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
    prop_oneof![Just(None), any::<i64>().prop_map(|n| Some(RequestId::Num(n))), text().prop_map(|t| Some(RequestId::Text(t)))]
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
    ) {
        let frame = ServerFrame::Ack { id, cid: cow(cid), mid, room: cow(room), ts, duplicate, away: cow(away) };
        let mut ours = Vec::new();
        write_server_frame(&frame, &mut ours);
        prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(serde_line(&frame)).unwrap());
    }
}
