//! Keeps `docs/protocol.md` honest: every example frame in it must parse with the protocol's
//! own parsers, and every frame type and error code must be shown at least once.
//!
//! Convention of the document: examples are fenced code blocks whose info string is `wire`;
//! each line is `→ ` + a client frame, `← ` + a server frame, or `✗ ` + a line the client sends
//! that must be refused (the next line, when it is an `← ` error, names the expected code).
//! Blocks marked `wire udp` show frames over UDP, where client frames also carry a `token`
//! (read by the UDP door, not by the frame): it must be one the UDP door can read.

use natter_proto::native::{ErrorCode, TOKEN_FIELD, frame_token, parse_client_frame, parse_server_frame};
use serde_json::Value;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Client,
    Server,
    Invalid,
}

#[derive(Debug)]
struct Example {
    line_no: usize,
    dir: Dir,
    json: String,
    /// In a `wire udp` block.
    udp: bool,
}

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Every line of every ```wire block, in document order, grouped by block.
fn wire_blocks(doc: &str) -> Vec<Vec<Example>> {
    enum State {
        Outside,
        Wire(Vec<Example>, bool),
        Other,
    }
    let mut blocks = Vec::new();
    let mut state = State::Outside;
    for (i, line) in doc.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim_end();
        if let Some(info) = trimmed.strip_prefix("```") {
            state = match state {
                State::Outside if info.trim() == "wire" => State::Wire(Vec::new(), false),
                State::Outside if info.trim() == "wire udp" => State::Wire(Vec::new(), true),
                State::Outside => State::Other,
                State::Wire(block, _) => {
                    assert!(!block.is_empty(), "docs/protocol.md:{line_no}: empty wire block");
                    blocks.push(block);
                    State::Outside
                }
                State::Other => State::Outside,
            };
            continue;
        }
        let State::Wire(block, udp) = &mut state else { continue };
        let udp = *udp;
        let (dir, json) = if let Some(rest) = trimmed.strip_prefix("→ ") {
            (Dir::Client, rest)
        } else if let Some(rest) = trimmed.strip_prefix("← ") {
            (Dir::Server, rest)
        } else if let Some(rest) = trimmed.strip_prefix("✗ ") {
            (Dir::Invalid, rest)
        } else {
            panic!("docs/protocol.md:{line_no}: wire lines start with \"→ \", \"← \" or \"✗ \": {trimmed:?}");
        };
        block.push(Example { line_no, dir, json: json.to_string(), udp });
    }
    assert!(matches!(state, State::Outside), "docs/protocol.md: unterminated code block");
    blocks
}

/// True when every field of the documented frame survives a parse and re-serialization with
/// the same value: catches misspelled or misplaced fields, which serde would silently ignore.
fn fields_survive(original: &Value, reserialized: &Value) -> Result<(), String> {
    let (Value::Object(orig), Value::Object(back)) = (original, reserialized) else {
        return Err("not an object".into());
    };
    for (key, value) in orig {
        match back.get(key) {
            Some(v) if v == value => {}
            Some(v) => return Err(format!("field {key:?} reads back as {v}, not {value}")),
            None => return Err(format!("field {key:?} is not part of this frame type")),
        }
    }
    Ok(())
}

fn frame_type(json: &str) -> String {
    let value: Value = serde_json::from_str(json).expect("already parsed");
    value["type"].as_str().expect("frames have a type").to_string()
}

#[test]
fn every_example_frame_parses() {
    let doc = doc();
    let blocks = wire_blocks(&doc);
    let examples: Vec<&Example> = blocks.iter().flatten().collect();
    assert!(examples.len() > 50, "expected many examples, found {}", examples.len());

    let mut failures = Vec::new();
    for block in &blocks {
        for (i, ex) in block.iter().enumerate() {
            let at = format!("docs/protocol.md:{}", ex.line_no);
            match ex.dir {
                Dir::Client => match parse_client_frame(ex.json.as_bytes()) {
                    Ok(frame) => {
                        let mut original: Value = serde_json::from_str(&ex.json).unwrap();
                        if ex.udp
                            && let Some(token) = original.as_object_mut().unwrap().remove(TOKEN_FIELD)
                            && frame_token(ex.json.as_bytes()).as_deref() != token.as_str()
                        {
                            failures.push(format!("{at}: the UDP door cannot read this token: {}", ex.json));
                        }
                        let back = serde_json::to_value(&frame).unwrap();
                        if let Err(e) = fields_survive(&original, &back) {
                            failures.push(format!("{at}: client frame: {e}: {}", ex.json));
                        }
                    }
                    Err(e) => failures.push(format!("{at}: client frame does not parse ({e}): {}", ex.json)),
                },
                Dir::Server => match parse_server_frame(ex.json.as_bytes()) {
                    Ok(frame) => {
                        let original: Value = serde_json::from_str(&ex.json).unwrap();
                        let back = serde_json::to_value(&frame).unwrap();
                        if original != back {
                            // Server frames are written by the same serializer: exact match.
                            let detail = fields_survive(&original, &back).err().unwrap_or_default();
                            failures.push(format!(
                                "{at}: server frame does not round-trip ({detail}): {}\n  reads back as {back}",
                                ex.json
                            ));
                        }
                    }
                    Err(e) => failures.push(format!("{at}: server frame does not parse ({e}): {}", ex.json)),
                },
                Dir::Invalid => match parse_client_frame(ex.json.as_bytes()) {
                    Ok(frame) => failures.push(format!("{at}: meant to be invalid, parses as {frame:?}")),
                    Err(e) => {
                        let next = block.get(i + 1).filter(|n| n.dir == Dir::Server);
                        let Some(next) = next else {
                            failures.push(format!("{at}: an invalid line must be followed by its error"));
                            continue;
                        };
                        let Ok(value) = serde_json::from_str::<Value>(&next.json) else { continue };
                        let code = serde_json::to_value(e.code).unwrap();
                        if value["type"] != "error" || value["code"] != code {
                            failures.push(format!(
                                "{at}: the parser answers {code} ({}), the document shows {}",
                                e.message, next.json
                            ));
                        }
                        let id = e.id.map(|id| serde_json::to_value(id).unwrap());
                        if value.get("id") != id.as_ref() {
                            failures.push(format!(
                                "{at}: the parser echoes id {id:?}, the document shows {}",
                                next.json
                            ));
                        }
                    }
                },
            }
        }
    }
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_frame_type_and_error_code_is_shown() {
    let doc = doc();
    let blocks = wire_blocks(&doc);
    let mut client = BTreeSet::new();
    let mut server = BTreeSet::new();
    let mut codes = BTreeSet::new();
    for ex in blocks.iter().flatten() {
        match ex.dir {
            Dir::Client => {
                client.insert(frame_type(&ex.json));
            }
            Dir::Server => {
                let value: Value = serde_json::from_str(&ex.json).unwrap();
                server.insert(value["type"].as_str().unwrap().to_string());
                if let Some(code) = value.get("code").and_then(Value::as_str) {
                    codes.insert(code.to_string());
                }
            }
            Dir::Invalid => {}
        }
    }
    let want_client = [
        "hello",
        "send",
        "join",
        "part",
        "nick",
        "topic",
        "who",
        "rooms",
        "ignore_all",
        "ignore",
        "unignore",
        "history",
        "ephemeral",
        "ping",
        "quit",
        "login",
        "broadcast",
        "sendto",
        "help",
        "ls",
        "mode",
        "bans",
        "kick",
        "invite",
        "away",
        "whois",
        "whowas",
        "register",
        "logout",
        "passwd",
    ];
    let want_server = [
        "welcome",
        "message",
        "ack",
        "join",
        "part",
        "quit",
        "nick",
        "topic",
        "joined",
        "members",
        "rooms",
        "history",
        "ignore_mode",
        "ignoring",
        "notice",
        "error",
        "pong",
        "bye",
        "mode",
        "room_modes",
        "bans",
        "kick",
        "invite",
        "away",
        "user_info",
        "whowas",
        "verify",
        "account",
        "nick_protected",
    ];
    // Every code a client can provoke; `store_failed` and `other` cannot be.
    let want_codes = [
        ErrorCode::InvalidJson,
        ErrorCode::UnknownType,
        ErrorCode::BadFrame,
        ErrorCode::TooLong,
        ErrorCode::InvalidUtf8,
        ErrorCode::NotRegistered,
        ErrorCode::AlreadyRegistered,
        ErrorCode::InvalidNick,
        ErrorCode::NickInUse,
        ErrorCode::InvalidRoom,
        ErrorCode::NoSuchRoom,
        ErrorCode::NoSuchNick,
        ErrorCode::NotInRoom,
        ErrorCode::NotOperator,
        ErrorCode::EmptyMessage,
        ErrorCode::RateLimited,
        ErrorCode::UnsupportedVersion,
        ErrorCode::CannotSend,
        ErrorCode::Banned,
        ErrorCode::InviteOnly,
        ErrorCode::BadKey,
        ErrorCode::RoomFull,
        ErrorCode::UserNotInRoom,
        ErrorCode::AlreadyInRoom,
        ErrorCode::BadPassword,
        ErrorCode::BadToken,
        ErrorCode::TooManyAttempts,
        ErrorCode::BadCredentials,
        ErrorCode::AccountExists,
        ErrorCode::AlreadyLoggedIn,
        ErrorCode::NotLoggedIn,
        ErrorCode::WeakPassword,
        ErrorCode::NickRegistered,
        ErrorCode::MailboxFull,
    ];
    let missing_client: Vec<_> = want_client.iter().filter(|t| !client.contains(**t)).collect();
    let missing_server: Vec<_> = want_server.iter().filter(|t| !server.contains(**t)).collect();
    let missing_codes: Vec<_> =
        want_codes.iter().map(|c| c.as_str()).filter(|c| !codes.contains(*c)).collect();
    assert!(missing_client.is_empty(), "client frames without an example: {missing_client:?}");
    assert!(missing_server.is_empty(), "server frames without an example: {missing_server:?}");
    assert!(missing_codes.is_empty(), "error codes without an example: {missing_codes:?}");
    // And every error code, provokable or not, is at least named in the error table.
    for code in want_codes.iter().map(|c| c.as_str()).chain(["store_failed", "other"]) {
        assert!(doc.contains(&format!("| `{code}` |")), "error code {code} missing from the table");
    }
}
