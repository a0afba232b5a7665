//! The cluster's wire format: one JSON object per bus message, `{"v":1,"node":...,"event":...}`.
//!
//! JSON, because an operator can read what travels with `nats sub` and because the events are
//! small next to what a node does for each; the version lets a node refuse what a newer one
//! says instead of misreading it (nodes are upgraded one at a time, see docs/cluster.md).
//! Decoding never trusts the bus: a payload over the limit, malformed, of another version or
//! from a node whose name could not be one is refused with a reason, and the caller drops it.

use natter_core::cluster::{ClusterEvent, NodeEvent};
use serde::{Deserialize, Serialize};

/// The version this node speaks.
pub const VERSION: u32 = 1;

/// Why a payload from the bus was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Larger than any event a node sends.
    #[error("a cluster message of {size} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not an event of this version's format.
    #[error("a malformed cluster message: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Another version's.
    #[error("a cluster message of version {0}; this node speaks version {VERSION}")]
    Version(u32),
    /// The sender's name is not a node name.
    #[error("a cluster message from {0:?}, which is not a node name")]
    Node(String),
}

#[derive(Serialize)]
struct Outgoing<'a> {
    v: u32,
    node: &'a str,
    event: &'a ClusterEvent,
}

#[derive(Deserialize)]
struct Incoming {
    node: String,
    event: ClusterEvent,
}

/// Encodes an event for the bus.
pub fn encode(event: &NodeEvent) -> Vec<u8> {
    let outgoing = Outgoing { v: VERSION, node: &event.node, event: &event.event };
    // Serialising plain data to a Vec cannot fail.
    serde_json::to_vec(&outgoing).expect("a cluster event serialises")
}

/// Decodes a payload from the bus of at most `max` bytes.
pub fn decode(payload: &[u8], max: usize) -> Result<NodeEvent, DecodeError> {
    if payload.len() > max {
        return Err(DecodeError::TooLarge { size: payload.len(), max });
    }
    #[derive(Deserialize)]
    struct Versioned {
        v: u32,
    }
    let Versioned { v } = serde_json::from_slice(payload)?;
    if v != VERSION {
        return Err(DecodeError::Version(v));
    }
    let Incoming { node, event } = serde_json::from_slice(payload)?;
    if !valid_node_name(&node) {
        return Err(DecodeError::Node(node));
    }
    Ok(NodeEvent { node, event })
}

/// Whether `name` can be a node's name: 1 to 64 ASCII letters, digits, `-` and `_` (it goes
/// into logs and the store as it is).
pub fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::cluster::{Act, RoomMessage};
    use proptest::prelude::*;

    fn message() -> NodeEvent {
        NodeEvent {
            node: "node-1".into(),
            event: ClusterEvent::RoomMessage(RoomMessage {
                room: "#r".into(),
                room_name: "#R".into(),
                mid: 7,
                ts: 1,
                from: "ann".into(),
                from_key: "ann".into(),
                ident: "native@host".into(),
                account: None,
                text: "hello \u{1F600} \"quoted\"\n".into(),
                action: false,
                notice: true,
                bot: false,
                ephemeral: false,
                cid: Some("0123456789abcdef:c1".into()),
                meta: None,
            }),
        }
    }

    #[test]
    fn events_round_trip() {
        for event in [
            message(),
            NodeEvent { node: "b".into(), event: ClusterEvent::Hello },
            NodeEvent {
                node: "b".into(),
                event: ClusterEvent::Act { session: 3, act: Act::Part { room: "#x".into(), reason: None } },
            },
        ] {
            assert_eq!(decode(&encode(&event), 1 << 20).unwrap(), event);
        }
    }

    #[test]
    fn what_is_not_an_event_of_this_version_is_refused_with_its_reason() {
        let good = encode(&message());
        assert!(matches!(decode(&good, 10), Err(DecodeError::TooLarge { max: 10, .. })));
        assert!(matches!(decode(b"", 100), Err(DecodeError::Malformed(_))));
        assert!(matches!(decode(b"{\"v\":1", 100), Err(DecodeError::Malformed(_))));
        assert!(matches!(decode(b"\xff\xfe", 100), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            decode(br#"{"v":2,"node":"a","event":"Hello"}"#, 100),
            Err(DecodeError::Version(2))
        ));
        assert!(matches!(decode(br#"{"v":1,"node":"a b","event":"Hello"}"#, 100), Err(DecodeError::Node(_))));
        assert!(matches!(
            decode(br#"{"v":1,"node":"a","event":"Goodbye!"}"#, 100),
            Err(DecodeError::Malformed(_))
        ));
        let e = decode(br#"{"v":1,"node":"a","event":{"Act":{"session":1,"act":{"Nick":{}}}}}"#, 200)
            .unwrap_err();
        assert!(e.to_string().starts_with("a malformed cluster message: "), "{e}");
    }

    proptest! {
        #[test]
        fn no_payload_makes_decoding_panic(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&payload, 1 << 20);
        }

        #[test]
        fn cut_events_are_refused(cut in 0usize..200) {
            let good = encode(&message());
            let cut = cut.min(good.len() - 1);
            prop_assert!(decode(&good[..cut], 1 << 20).is_err());
        }
    }
}
