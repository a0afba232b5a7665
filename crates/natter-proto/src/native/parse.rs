//! Parsing: a line into a client or server frame, and a precise error code when it is not one.

use serde::Deserialize;

use super::{ClientFrame, ErrorCode, FrameError, RequestId, ServerFrame, fast_read};

/// How a `send` frame written by a serializer starts.
const SEND_PREFIX: &[u8] = br#"{"type":"send","#;

/// Parses one line (without its newline) into a client frame, with a precise error code for
/// each way it can be wrong.
pub fn parse_client_frame(line: &[u8]) -> Result<ClientFrame, FrameError> {
    // Messages are most of the traffic, and serde reads an internally tagged enum by buffering
    // the whole object first: a plain `send` frame is read by hand instead.
    if line.starts_with(SEND_PREFIX)
        && let Some(frame) = fast_read::parse_send(line)
    {
        return Ok(frame);
    }
    match serde_json::from_slice::<ClientFrame>(line) {
        Ok(frame) => Ok(frame),
        Err(err) => Err(classify(line, err)),
    }
}

/// Parses one line from the server into a frame (used by clients).
pub fn parse_server_frame(line: &[u8]) -> Result<ServerFrame<'static>, FrameError> {
    serde_json::from_slice::<ServerFrame<'static>>(line).map_err(|err| FrameError {
        code: ErrorCode::BadFrame,
        message: format!("unreadable frame from server: {err}"),
        id: None,
    })
}

fn classify(line: &[u8], err: serde_json::Error) -> FrameError {
    if std::str::from_utf8(line).is_err() {
        return FrameError {
            code: ErrorCode::InvalidUtf8,
            message: "frames must be UTF-8 JSON".into(),
            id: None,
        };
    }
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice::<serde_json::Value>(line) else {
        return FrameError {
            code: ErrorCode::InvalidJson,
            message: format!("not a JSON object ({err}); send one JSON object per line"),
            id: None,
        };
    };
    let id = object.get("id").and_then(|v| RequestId::deserialize(v).ok());
    match object.get("type") {
        Some(serde_json::Value::String(kind)) if !is_client_frame_type(kind) => FrameError {
            code: ErrorCode::UnknownType,
            message: format!("unknown frame type {kind:?}; see docs/protocol.md for the frame types"),
            id,
        },
        None => FrameError { code: ErrorCode::BadFrame, message: "frame has no \"type\" field".into(), id },
        // serde quotes the value it could not use: in a frame that carries a password, that
        // value may be the password, which is never shown back.
        Some(serde_json::Value::String(kind)) if carries_secret(kind) => FrameError {
            code: ErrorCode::BadFrame,
            message: format!("malformed {kind} frame: its fields must be strings (see docs/protocol.md)"),
            id,
        },
        _ => FrameError { code: ErrorCode::BadFrame, message: format!("malformed frame: {err}"), id },
    }
}

/// True for the frame types that may carry a password.
fn carries_secret(kind: &str) -> bool {
    matches!(kind, "hello" | "login" | "register" | "passwd")
}

/// True when `kind` names a client frame type. Asks serde with the tag alone, so that an
/// unknown variant further inside the frame (a `mode` change, say) does not count.
fn is_client_frame_type(kind: &str) -> bool {
    match serde_json::from_value::<ClientFrame>(serde_json::json!({ "type": kind })) {
        Ok(_) => true,
        Err(err) => !err.to_string().starts_with("unknown variant"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::client_frame_line;

    #[test]
    fn parses_hello_and_send() {
        assert_eq!(
            parse_client_frame(br#"{"type":"hello","nick":"ann","id":1}"#).unwrap(),
            ClientFrame::Hello {
                v: 1,
                nick: "ann".into(),
                password: None,
                account: None,
                account_password: None,
                resume: None,
                client_secret: None,
                id: Some(RequestId::Num(1))
            }
        );
        let f = parse_client_frame(br##"{"type":"send","room":"#lobby","text":"hi","cid":"c1"}"##).unwrap();
        assert!(
            matches!(f, ClientFrame::Send { ref room, cid: Some(_), .. } if room.as_deref() == Some("#lobby"))
        );
    }

    #[test]
    fn a_malformed_frame_with_a_password_does_not_show_the_password_back() {
        for line in [
            &br#"{"type":"login","name":"bob","password":12345678901}"#[..],
            br#"{"type":"register","password":["hunter22"]}"#,
            br#"{"type":"passwd","old":"a","new":98765432}"#,
            br#"{"type":"hello","nick":"bob","account_password":55555555}"#,
        ] {
            let err = parse_client_frame(line).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadFrame);
            for secret in ["12345678901", "hunter22", "98765432", "55555555"] {
                assert!(!err.message.contains(secret), "{}", err.message);
            }
        }
        // Other frames keep serde's precise message.
        let err = parse_client_frame(br#"{"type":"join","id":39}"#).unwrap_err();
        assert_eq!(err.message, "malformed frame: missing field `room`");
    }

    #[test]
    fn tutorial_frames_parse() {
        assert_eq!(
            parse_client_frame(br#"{"type":"login","msg":"bob"}"#).unwrap(),
            ClientFrame::Login { msg: Some("bob".into()), name: None, password: None, id: None }
        );
        assert_eq!(parse_client_frame(br#"{"type":"ls"}"#).unwrap(), ClientFrame::Ls {});
    }

    #[test]
    fn errors_are_classified() {
        assert_eq!(parse_client_frame(b"{nope").unwrap_err().code, ErrorCode::InvalidJson);
        assert_eq!(parse_client_frame(b"[1,2]").unwrap_err().code, ErrorCode::InvalidJson);
        let e = parse_client_frame(br#"{"type":"dance","id":"x"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownType);
        assert_eq!(e.id, Some(RequestId::Text("x".into())));
        assert_eq!(parse_client_frame(br#"{"type":"join","id":3}"#).unwrap_err().code, ErrorCode::BadFrame);
        assert_eq!(parse_client_frame(br#"{"nick":"a"}"#).unwrap_err().code, ErrorCode::BadFrame);
        assert_eq!(parse_client_frame(b"{\"type\":\"\xff\"}").unwrap_err().code, ErrorCode::InvalidUtf8);
        // An unknown value inside a known frame is a bad frame, not an unknown frame type.
        let e = parse_client_frame(br##"{"type":"mode","room":"#a","changes":[{"mode":"dance"}],"id":4}"##)
            .unwrap_err();
        assert_eq!((e.code, &e.id), (ErrorCode::BadFrame, &Some(RequestId::Num(4))), "{e:?}");
        assert!(e.message.contains("dance"), "{e:?}");
        let e =
            parse_client_frame(br##"{"type":"mode","room":"#a","changes":[{"mode":"mode"}]}"##).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadFrame, "{e:?}");
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(bytes: Vec<u8>) {
            let _ = parse_client_frame(&bytes);
            let _ = parse_server_frame(&bytes);
        }

        #[test]
        fn send_round_trips(text in ".{0,200}", cid in proptest::option::of("[a-z0-9]{1,8}")) {
            let frame = ClientFrame::Send { room: Some("#r".into()), to: None, text, action: false, notice: false, cid, id: Some(RequestId::Num(9)) };
            let line = client_frame_line(&frame);
            proptest::prop_assert_eq!(parse_client_frame(&line[..line.len()-1]).unwrap(), frame);
        }
    }
}
