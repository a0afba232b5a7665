//! The tutorial dialect: what a session that logged in with the chat-room tutorial's
//! `{"type":"login","msg":NICK}` receives instead of native frames.
//!
//! That client reads with `recv(1024)` and parses each read as one JSON object with `type`,
//! `success` and `msg` (a missing `msg` kills its receive thread). So every answer and event is
//! one such object on its own line, each under 1024 bytes (longer text is split into several
//! objects), and the connection loop writes them one at a time, a few milliseconds apart
//! ([`PACE`]), so that two never arrive in one read. Nothing is replayed at login.

use super::{NativeNote, TutorialAsk};
use crate::door::listing::names_and_more;
use crate::door::text::render_text;
use natter_core::{Event, Refusal, Req};
use natter_proto::display::SafeLine;
use std::time::Duration;

/// The pause between two objects to one tutorial session: long enough that the client has
/// read the first before the second arrives, short enough to read a screenful in a blink.
pub(crate) const PACE: Duration = Duration::from_millis(20);

/// Largest object written, newline included: the client reads at most 1024 bytes at a time.
const MAX_OBJECT: usize = 1023;

/// The tutorial request an answer belongs to, if it carries one.
fn ask_of(req: &Req) -> Option<TutorialAsk> {
    req.as_ref().and_then(|t| t.get::<TutorialAsk>()).copied()
}

/// The `type` a tutorial client expects for the answer to `ask`.
fn type_of(ask: TutorialAsk) -> &'static str {
    match ask {
        TutorialAsk::Login => "login",
        TutorialAsk::Broadcast => "broadcast",
        TutorialAsk::Sendto => "sendto",
        TutorialAsk::Help => "help",
        TutorialAsk::Ls => "ls",
        TutorialAsk::Ignore => "ignore",
    }
}

/// Renders `event` as zero or more tutorial objects, one per line.
pub(super) fn render(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::Welcome { nick, .. } => object(
            out,
            "login",
            true,
            &format!(
                "welcome to natter, {nick}! Your lines go to everyone, @nick text goes to one person, \
                 /ls lists who is online, /i hides group messages."
            ),
        ),
        Event::Joined { room, members, count, .. } => {
            let text = format!("you are in {room} ({count} here: {})", names_and_more(members, *count, ", "));
            object(out, "notice", true, &text)
        }
        // The client prints `msg` as it is: what people typed is made inert first, as text
        // mode shows it.
        Event::Message(m) => {
            let said = SafeLine(&m.text);
            let text = match (&m.room, m.action, m.notice) {
                (_, true, _) => format!("* {} {said}", m.from),
                (Some(_), false, true) => format!("-{}- {said}", m.from),
                (Some(_), false, false) => format!("{}: {said}", m.from),
                (None, false, _) => format!("{} (private): {said}", m.from),
            };
            if m.text.is_empty() {
                return;
            }
            object(out, if m.room.is_some() { "broadcast" } else { "sendto" }, true, &text)
        }
        // The tutorial's own server does not echo what its client sent.
        Event::Ack { .. } => {}
        Event::Members { req, room, nicks, count, .. } => {
            let place = room.as_deref().unwrap_or("online");
            let kind = ask_of(req).map_or("notice", type_of);
            object(out, kind, true, &format!("{place} ({count}): {}", names_and_more(nicks, *count, ", ")))
        }
        Event::IgnoreMode { on, .. } => {
            let text = if *on {
                "ignore mode on: group messages are hidden, private messages still arrive"
            } else {
                "ignore mode off: you see group messages again"
            };
            object(out, "ignore", true, text)
        }
        Event::Notice { req, text, .. } => object(out, ask_of(req).map_or("notice", type_of), true, text),
        Event::Error { req, refusal } => refused(out, ask_of(req), refusal),
        Event::Local(note) => match note.get::<NativeNote>() {
            Some(NativeNote::Error { message, .. }) => object(out, "error", false, message),
            Some(NativeNote::Pong(_)) | None => {}
        },
        Event::Join { room, nick, .. } => object(out, "notice", true, &format!("{nick} joined {room}")),
        Event::Part { room, nick, reason, .. } => {
            object(out, "notice", true, &format!("{nick} left {room}{}", because(reason)))
        }
        Event::Quit { nick, reason, .. } => {
            object(out, "notice", true, &format!("{nick} went offline{}", because(reason)))
        }
        Event::Nick { old, new, .. } => object(out, "notice", true, &format!("{old} is now {new}")),
        Event::Kick { room, nick, by, reason, .. } => {
            object(out, "notice", true, &format!("{nick} was removed from {room} by {by}{}", because(reason)))
        }
        Event::Bye { reason } => object(out, "bye", true, &format!("disconnected: {reason}")),
        // Everything else reads as text mode says it, without its clock and markers.
        other => {
            for line in render_text(other).lines() {
                let line = line.trim_start_matches("*** ");
                // `[HH:MM] ` or, for history from another day, `[YYYY-MM-DD HH:MM] `.
                let line = match line.strip_prefix('[') {
                    Some(rest) if rest.get(5..7) == Some("] ") => &rest[7..],
                    Some(rest) if rest.get(16..18) == Some("] ") => &rest[18..],
                    _ => line,
                };
                if !line.trim().is_empty() {
                    object(out, "notice", true, line);
                }
            }
        }
    }
}

/// ` (reason)` when there is one.
fn because(reason: &Option<natter_core::Name>) -> String {
    reason.as_deref().map_or(String::new(), |r| format!(" ({})", SafeLine(r)))
}

/// A refusal, typed as the request it refuses (a refused `login` is `login` with
/// `success: false`, so the client asks for another nickname).
fn refused(out: &mut Vec<u8>, ask: Option<TutorialAsk>, refusal: &Refusal) {
    object(out, ask.map_or("error", type_of), false, &refusal.to_string());
}

/// Writes `{"type":kind,"success":success,"msg":text}` lines, as many as it takes to keep each
/// under [`MAX_OBJECT`] bytes, splitting `text` between characters.
pub(super) fn object(out: &mut Vec<u8>, kind: &str, success: bool, text: &str) {
    let head = format!("{{\"type\":\"{kind}\",\"success\":{success},\"msg\":\"");
    let tail = "\"}\n";
    let room = MAX_OBJECT - head.len() - tail.len();
    let mut rest = text;
    loop {
        out.extend_from_slice(head.as_bytes());
        let mut used = 0;
        let mut taken = 0;
        for (i, c) in rest.char_indices() {
            let size = escaped_len(c);
            if used + size > room {
                break;
            }
            used += size;
            taken = i + c.len_utf8();
        }
        let (piece, after) = rest.split_at(taken);
        escape_into(piece, out);
        out.extend_from_slice(tail.as_bytes());
        if after.is_empty() {
            return;
        }
        rest = after;
    }
}

/// How many bytes `c` takes inside a JSON string.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Appends `s` escaped for a JSON string.
fn escape_into(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn objects(out: &[u8]) -> Vec<serde_json::Value> {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("each line is one JSON object"))
            .collect()
    }

    #[test]
    fn a_short_text_is_one_object() {
        let mut out = Vec::new();
        object(&mut out, "broadcast", true, "ann: \"hi\" \\ there");
        assert_eq!(
            out,
            b"{\"type\":\"broadcast\",\"success\":true,\"msg\":\"ann: \\\"hi\\\" \\\\ there\"}\n"
        );
    }

    proptest! {
        /// Whatever the text, every object fits one 1024-byte read, parses as JSON with the
        /// three keys, and the pieces join back into the text.
        #[test]
        fn long_texts_split_into_objects_that_fit_one_read(text in "\\PC{0,3000}|[\"\\\\\\x00-\\x1f]{0,1500}") {
            let mut out = Vec::new();
            object(&mut out, "sendto", true, &text);
            let mut joined = String::new();
            for line in out.split_inclusive(|&b| b == b'\n') {
                prop_assert!(line.len() < 1024, "{} bytes", line.len());
                let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                prop_assert_eq!(&v["type"], "sendto");
                prop_assert_eq!(&v["success"], true);
                joined.push_str(v["msg"].as_str().unwrap());
            }
            prop_assert_eq!(joined, text);
        }
    }

    #[test]
    fn a_refused_login_says_why() {
        let mut out = Vec::new();
        let req = Some(natter_core::RequestToken::new(TutorialAsk::Login));
        let refusal = Refusal::NickInUse { nick: "ann".into() };
        render(&Event::Error { req, refusal }, &mut out);
        let v = &objects(&out)[0];
        assert_eq!((&v["type"], &v["success"]), (&"login".into(), &false.into()));
        assert_eq!(v["msg"], "the nickname ann is taken; choose another");
    }
}
