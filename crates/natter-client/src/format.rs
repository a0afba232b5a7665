//! Turning events into text: one line per event for line mode, JSON lines for `--json`, and
//! the timestamp and wording shared with the TUI, so both front ends say the same thing.

use crate::conn::{Event, Status};
use natter_proto::native::{AccountChangeFrame, MessageFrame, ServerFrame};
use serde_json::{Value, json};
use std::sync::LazyLock;

/// The system time zone, read once: looking it up for every line drawn would read the zone
/// files again and again.
static LOCAL_ZONE: LazyLock<jiff::tz::TimeZone> = LazyLock::new(jiff::tz::TimeZone::system);

/// Local wall-clock time (hours, minutes, seconds) of a server timestamp in milliseconds, so
/// people read times in their own zone; UTC for a timestamp out of the calendar's range.
pub fn local_hms(ts_ms: u64) -> (u32, u32, u32) {
    match i64::try_from(ts_ms).ok().and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()) {
        Some(ts) => {
            let t = LOCAL_ZONE.to_datetime(ts);
            (t.hour() as u32, t.minute() as u32, t.second() as u32)
        }
        None => {
            let s = ts_ms / 1000;
            (((s / 3600) % 24) as u32, ((s / 60) % 60) as u32, (s % 60) as u32)
        }
    }
}

/// ` and K more` after the `listed` names of a list of `count` (the server lists a big room
/// a page at a time), or nothing when the list is whole.
fn and_more(listed: usize, count: u64) -> String {
    match count.saturating_sub(listed as u64) {
        0 => String::new(),
        more => format!(" and {more} more"),
    }
}

/// `HH:MM` for the TUI.
pub fn hhmm(ts_ms: u64) -> String {
    let (h, m, _) = local_hms(ts_ms);
    format!("{h:02}:{m:02}")
}

/// `HH:MM:SS` for line mode.
pub fn hhmmss(ts_ms: u64) -> String {
    let (h, m, s) = local_hms(ts_ms);
    format!("{h:02}:{m:02}:{s:02}")
}

/// Text from the network (someone else's message, topic, reason, and every name: the server
/// could be anyone's) as it is safe to show on one line of the terminal: control characters
/// shown as pictures (an escape sequence reads `␛[2J` instead of clearing the screen), line
/// breaks as ` ⏎ `, bidi runs closed (see `natter_proto::display`), tabs as a space (the TUI
/// lays out columns itself).
pub fn sanitize(text: &str) -> String {
    let safe = natter_proto::display::safe_line(text);
    if safe.contains('\t') { safe.replace('\t', " ") } else { safe.into_owned() }
}

/// The conversation a message belongs to: its room, or for a private message the other person.
pub fn conversation(msg: &MessageFrame<'_>, me: &str) -> String {
    match (&msg.room, &msg.to) {
        (Some(room), _) => room.to_string(),
        (None, Some(to)) if natter_proto::names::fold(&msg.from) == natter_proto::names::fold(me) => {
            to.to_string()
        }
        _ => msg.from.to_string(),
    }
}

/// One message as a line, without timestamp: `#room <nick> text`, `#room * nick waves`, or for
/// private ones `[ann -> bob] text`.
pub fn message_text(msg: &MessageFrame<'_>) -> String {
    let text = sanitize(&msg.text);
    let from = sanitize(&msg.from);
    match (msg.room.as_deref().map(sanitize), &msg.to) {
        (Some(room), _) if msg.action => format!("{room} * {from} {text}"),
        (Some(room), _) => format!("{room} <{from}> {text}"),
        (None, to) => {
            let to = to.as_deref().map(sanitize).unwrap_or_else(|| "you".into());
            if msg.action {
                format!("[{from} -> {to}] * {from} {text}")
            } else {
                format!("[{from} -> {to}] {text}")
            }
        }
    }
}

/// Text of a status change. The server's name, the nick it gave and its reasons are its
/// words: [`sanitize`]d.
pub fn status_text(status: &Status) -> String {
    let s = sanitize;
    match status {
        Status::Connected { addr, server, nick, reconnected: false, .. } => {
            format!("connected to {addr} ({}) as {}", s(server), s(nick))
        }
        Status::Connected { addr, nick, moved_from: Some(previous), .. } => {
            format!("connected to {addr} as {} (moved from {previous})", s(nick))
        }
        Status::Connected { addr, nick, .. } => format!("reconnected to {addr} as {}", s(nick)),
        Status::Reconnecting { next, delay, reason, .. } if delay.is_zero() => {
            format!("disconnected ({}); trying {next} now", s(reason))
        }
        Status::Reconnecting { next, attempt, delay, reason } => {
            format!(
                "disconnected ({}); reconnecting to {next} in {:.1} s (attempt {attempt})",
                s(reason),
                delay.as_secs_f64()
            )
        }
        Status::CaughtUp { room, count } => format!("caught up on {}: {count} missed message(s)", s(room)),
        Status::Closed { reason } => format!("session closed: {}", s(reason)),
    }
}

/// Text of a server frame other than a message, or `None` for frames not worth a line. Every
/// string from the server goes through [`sanitize`], names included.
pub fn frame_text(frame: &ServerFrame<'_>) -> Option<String> {
    use ServerFrame as S;
    let s = sanitize;
    Some(match frame {
        S::Join { room, nick, .. } => format!("{} joined {}", s(nick), s(room)),
        S::Part { room, nick, reason, .. } => match reason {
            Some(r) => format!("{} left {} ({})", s(nick), s(room), s(r)),
            None => format!("{} left {}", s(nick), s(room)),
        },
        S::Quit { nick, reason, .. } => match reason {
            Some(r) => format!("{} quit ({})", s(nick), s(r)),
            None => format!("{} quit", s(nick)),
        },
        S::Nick { old, new, .. } => format!("{} is now known as {}", s(old), s(new)),
        S::Topic { room, topic, by, .. } => match (topic.is_empty(), by) {
            (true, _) => format!("{} has no topic", s(room)),
            (false, Some(by)) => format!("topic of {}: {} (set by {})", s(room), s(topic), s(by)),
            (false, None) => format!("topic of {}: {}", s(room), s(topic)),
        },
        S::Joined { room, topic, members, count, .. } => {
            let count = count.unwrap_or(members.len() as u64);
            let names = s(&members.join(" "));
            let mut t = format!(
                "you joined {} ({count} member(s): {names}{})",
                s(room),
                and_more(members.len(), count)
            );
            if !topic.is_empty() {
                t.push_str(&format!("; topic: {}", s(topic)));
            }
            t
        }
        S::Members { room, nicks, count, more, .. } => {
            let where_ = room.as_deref().map_or("online".to_string(), |r| format!("in {}", s(r)));
            let count = count.unwrap_or(nicks.len() as u64);
            // The count is the whole list's; a page says where the next one starts.
            let mut t = format!("{count} {where_}: {}", s(&nicks.join(" ")));
            if *more && let Some(last) = nicks.last() {
                t.push_str(&format!(
                    " and more (/who {} {} lists the next)",
                    s(room.as_deref().unwrap_or("*")),
                    s(last)
                ));
            }
            t
        }
        S::Rooms { rooms, .. } => {
            let list: Vec<String> = rooms
                .iter()
                .map(|r| {
                    let mut t = format!("{} ({})", s(&r.name), r.members);
                    if !r.topic.is_empty() {
                        t.push_str(&format!(" {}", s(&r.topic)));
                    }
                    t
                })
                .collect();
            format!("rooms: {}", list.join(", "))
        }
        S::History { room, messages, more, .. } if messages.is_empty() => {
            format!("no {}messages in {}", if *more { "more " } else { "" }, s(room))
        }
        S::History { .. } => return None,
        S::IgnoreMode { on: true, .. } => "ignore mode on: room messages hidden, private ones shown".into(),
        S::IgnoreMode { on: false, .. } => "ignore mode off".into(),
        S::Ignoring { nicks, .. } if nicks.is_empty() => "you ignore nobody".into(),
        S::Ignoring { nicks, .. } => format!("you ignore: {}", s(&nicks.join(" "))),
        S::Notice { text, .. } => s(text),
        S::Account { change, account, .. } => match change {
            AccountChangeFrame::Registered => {
                format!("registered the account {}; you are logged in as it", s(account))
            }
            AccountChangeFrame::LoggedIn => format!("you are logged in as {}", s(account)),
            AccountChangeFrame::LoggedOut => format!("you logged out of {}", s(account)),
            AccountChangeFrame::PasswordChanged => format!("changed the password of {}", s(account)),
        },
        S::NickProtected { nick, grace_secs: 0 } => format!(
            "the nickname {0} is registered: its owner may take it back; /login {0} PASSWORD if it is yours",
            s(nick)
        ),
        S::NickProtected { nick, grace_secs } => format!(
            "the nickname {0} is registered: /login {0} PASSWORD within {grace_secs} s, or you will be renamed",
            s(nick)
        ),
        S::Error { code, message, .. } => format!("error: {} ({})", s(message), code.as_str()),
        S::Bye { reason } => format!("server says goodbye: {}", s(reason)),
        S::Mode { room, by, changes, .. } => {
            format!("{} changed {}: {}", s(by), s(room), s(&format!("{changes:?}")))
        }
        S::RoomModes { room, modes, .. } => format!("{} settings: {}", s(room), s(&format!("{modes:?}"))),
        S::Bans { room, bans, .. } => {
            let masks: Vec<&str> = bans.iter().map(|b| &*b.mask).collect();
            format!("{} bans: {}", s(room), s(&masks.join(" ")))
        }
        S::Kick { room, nick, by, reason, .. } => match reason {
            Some(r) => format!("{} was kicked from {} by {} ({})", s(nick), s(room), s(by), s(r)),
            None => format!("{} was kicked from {} by {}", s(nick), s(room), s(by)),
        },
        S::Invite { id: Some(_), room, to, .. } => format!("you invited {} to {}", s(to), s(room)),
        S::Invite { room, from, .. } => format!("{} invites you to {}", s(from), s(room)),
        S::Away { nick, text: Some(t), .. } => format!("{} is away: {}", s(nick), s(t)),
        S::Away { nick, text: None, .. } => format!("{} is back", s(nick)),
        S::UserInfo { user, .. } => {
            let from = user.real_host.as_deref().map(|h| format!(" (connecting from {})", s(h)));
            let from = from.unwrap_or_default();
            let account =
                user.account.as_deref().map(|a| format!(", logged in as {}", s(a))).unwrap_or_default();
            format!("{} is {}{from}{account} in {}", s(&user.nick), s(&user.ident), s(&user.rooms.join(" ")))
        }
        S::Whowas { nick, users, .. } => format!("{} was seen {} time(s) recently", s(nick), users.len()),
        // A resume token is kept, never shown: whoever sees it could log in as you.
        S::Welcome { .. }
        | S::Verify { .. }
        | S::Pong { .. }
        | S::Ack { .. }
        | S::Message(_)
        | S::ResumeToken { .. } => return None,
    })
}

/// One event as a line of line mode's text output; `None` for events not worth a line.
pub fn event_line(event: &Event) -> Option<String> {
    match event {
        Event::Message { msg, .. } => Some(format!("{} {}", hhmmss(msg.ts), message_text(msg))),
        Event::Frame(ServerFrame::History { messages, more: _, .. }) if !messages.is_empty() => Some(
            messages
                .iter()
                .map(|m| format!("{} {}", hhmmss(m.ts), message_text(m)))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Event::Frame(f) => frame_text(f).map(|t| format!("-- {t}")),
        Event::Status(s) => Some(format!("-- {}", status_text(s))),
        Event::SendFailed { message, code, .. } => {
            Some(format!("-- error: message not sent: {} ({})", sanitize(message), code.as_str()))
        }
        Event::Warning(w) => Some(format!("-- warning: {}", sanitize(w))),
        Event::Acked { .. } | Event::Lag(_) => None,
    }
}

/// One event as a JSON value for `--json`: server frames as the server sent them (own messages
/// and history marked with `own`/`history`), client-side events with their own `type`.
pub fn event_json(event: &Event) -> Option<Value> {
    let to_value = |f: &ServerFrame<'_>| serde_json::to_value(f).ok();
    match event {
        Event::Message { msg, own, history } => {
            let mut v = to_value(&ServerFrame::Message(msg.clone()))?;
            if let Value::Object(o) = &mut v {
                if *own {
                    o.insert("own".into(), Value::Bool(true));
                }
                if *history {
                    o.insert("history".into(), Value::Bool(true));
                }
            }
            Some(v)
        }
        Event::Frame(f) => to_value(f),
        Event::Acked { cid, mid, duplicate } => {
            Some(json!({"type": "ack", "cid": cid, "mid": mid, "duplicate": duplicate}))
        }
        Event::SendFailed { cid, code, message } => {
            Some(json!({"type": "send_failed", "cid": cid, "code": code, "message": message}))
        }
        Event::Status(s) => Some(match s {
            Status::Connected { addr, server, nick, reconnected, moved_from } => {
                json!({"type": "status", "state": "connected", "addr": addr, "server": server, "nick": nick, "reconnected": reconnected, "moved_from": moved_from})
            }
            Status::Reconnecting { next, attempt, delay, reason } => {
                json!({"type": "status", "state": "reconnecting", "next": next, "attempt": attempt, "delay_ms": delay.as_millis() as u64, "reason": reason})
            }
            Status::CaughtUp { room, count } => {
                json!({"type": "status", "state": "caught_up", "room": room, "count": count})
            }
            Status::Closed { reason } => json!({"type": "status", "state": "closed", "reason": reason}),
        }),
        Event::Warning(w) => Some(json!({"type": "warning", "message": w})),
        Event::Lag(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn msg(
        room: Option<&str>,
        from: &str,
        to: Option<&str>,
        text: &str,
        action: bool,
    ) -> MessageFrame<'static> {
        MessageFrame {
            room: room.map(|r| Cow::Owned(r.into())),
            from: Cow::Owned(from.into()),
            to: to.map(|r| Cow::Owned(r.into())),
            text: Cow::Owned(text.into()),
            action,
            notice: false,
            mid: Some(1),
            ts: 0,
        }
    }

    #[test]
    fn messages_read_like_chat() {
        assert_eq!(message_text(&msg(Some("#a"), "ann", None, "hi", false)), "#a <ann> hi");
        assert_eq!(message_text(&msg(Some("#a"), "ann", None, "waves", true)), "#a * ann waves");
        assert_eq!(message_text(&msg(None, "ann", Some("bob"), "psst", false)), "[ann -> bob] psst");
        assert_eq!(message_text(&msg(Some("#a"), "evil", None, "\u{1b}[2Jx", false)), "#a <evil> ␛[2Jx");
    }

    #[test]
    fn nothing_from_the_server_can_drive_the_terminal_or_break_the_line() {
        let hostile = "\u{1b}]52;c;eA==\u{7}\u{9b}1m\u{202e}x\n-- fake\tnotice";
        let shown = "␛]52;c;eA==␇�1m\u{202e}x ⏎ -- fake notice\u{202c}";
        assert_eq!(
            message_text(&msg(Some("#a"), "evil", None, hostile, false)),
            format!("#a <evil> {shown}")
        );
        // Names too: a hostile server is not held to natter's name rules.
        assert_eq!(
            message_text(&msg(Some(hostile), hostile, None, "hi", false)),
            format!("{shown} <{shown}> hi")
        );
        let part = ServerFrame::Part {
            room: Cow::Owned(hostile.into()),
            nick: Cow::Owned("ann".into()),
            reason: Some(Cow::Owned(hostile.into())),
            ts: 0,
        };
        let line = event_line(&Event::Frame(part)).unwrap();
        assert_eq!(line, format!("-- ann left {shown} ({shown})"));
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }

    #[test]
    fn a_page_of_members_says_how_to_get_the_next() {
        let members = |nicks: &[&str], more: bool| ServerFrame::Members {
            id: None,
            room: Some(Cow::Borrowed("#big")),
            nicks: nicks.iter().map(|n| Cow::Owned(n.to_string())).collect(),
            users: Vec::new(),
            more,
            count: Some(1500),
        };
        assert_eq!(
            frame_text(&members(&["ann", "bob"], true)).unwrap(),
            "1500 in #big: ann bob and more (/who #big bob lists the next)"
        );
        assert_eq!(frame_text(&members(&["zed"], false)).unwrap(), "1500 in #big: zed");
    }

    #[test]
    fn conversations_of_private_messages_are_the_other_person() {
        assert_eq!(conversation(&msg(None, "ann", Some("bob"), "x", false), "bob"), "ann");
        assert_eq!(conversation(&msg(None, "bob", Some("ann"), "x", false), "Bob"), "ann");
        assert_eq!(conversation(&msg(Some("#r"), "bob", None, "x", false), "bob"), "#r");
    }

    #[test]
    fn json_marks_own_messages() {
        let e = Event::Message { msg: msg(Some("#a"), "me", None, "x", false), own: true, history: false };
        let v = event_json(&e).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["own"], true);
        assert_eq!(v["text"], "x");
    }
}
