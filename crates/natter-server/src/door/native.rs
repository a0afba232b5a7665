//! The native front door: newline-delimited JSON frames (`docs/protocol.md`).

use super::{Door, Flow, SessionCtx};
use natter_core::command::RoomChange;
use natter_core::event::{MemberInfo, RoomStanding};
use natter_core::store::HistoryQuery;
use natter_core::{ChatMessage, Command, Event, SessionKind, Target};
use natter_proto::command::help_lines;
use natter_proto::native::{
    BanFrame, ClientFrame, ErrorCode, MessageFrame, ModeChange, ModesFrame, RoomInfo, ServerFrame, UserFrame,
    parse_client_frame, write_server_frame,
};
use std::borrow::Cow;

/// Speaks native frames for one connection.
#[derive(Debug)]
pub struct NativeDoor {
    /// The line limit, told to the client in `welcome` so that it can refuse longer frames.
    max_line: usize,
}

impl NativeDoor {
    /// A door for a connection whose lines are limited to `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self { max_line }
    }
}

/// Render-cache slot of native frames.
const SLOT: usize = 0;

pub(crate) fn message_frame(m: &ChatMessage) -> MessageFrame<'_> {
    MessageFrame {
        room: m.room.as_deref().map(Cow::Borrowed),
        from: Cow::Borrowed(&m.from),
        to: m.to.as_deref().map(Cow::Borrowed),
        text: Cow::Borrowed(&m.text),
        action: m.action,
        notice: m.notice,
        mid: m.mid,
        ts: m.ts,
    }
}

fn b(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

/// A native mode change as the core's room change.
pub(crate) fn room_change(m: ModeChange) -> RoomChange {
    match m {
        ModeChange::TopicLock { on } => RoomChange::TopicLock(on),
        ModeChange::NoExternal { on } => RoomChange::NoExternal(on),
        ModeChange::Moderated { on } => RoomChange::Moderated(on),
        ModeChange::InviteOnly { on } => RoomChange::InviteOnly(on),
        ModeChange::Secret { on } => RoomChange::Secret(on),
        ModeChange::Key { key } => RoomChange::Key(key),
        ModeChange::Limit { limit } => RoomChange::Limit(limit),
        ModeChange::Ban { mask, on } => RoomChange::Ban { mask, on },
        ModeChange::Op { nick, on } => RoomChange::Operator { nick, on },
        ModeChange::Voice { nick, on } => RoomChange::Voice { nick, on },
    }
}

/// The core's room change as a native mode change.
pub(crate) fn mode_change(c: &RoomChange) -> ModeChange {
    match c.clone() {
        RoomChange::TopicLock(on) => ModeChange::TopicLock { on },
        RoomChange::NoExternal(on) => ModeChange::NoExternal { on },
        RoomChange::Moderated(on) => ModeChange::Moderated { on },
        RoomChange::InviteOnly(on) => ModeChange::InviteOnly { on },
        RoomChange::Secret(on) => ModeChange::Secret { on },
        RoomChange::Key(key) => ModeChange::Key { key },
        RoomChange::Limit(limit) => ModeChange::Limit { limit },
        RoomChange::Ban { mask, on } => ModeChange::Ban { mask, on },
        RoomChange::Operator { nick, on } => ModeChange::Op { nick, on },
        RoomChange::Voice { nick, on } => ModeChange::Voice { nick, on },
    }
}

fn member_frame(m: &MemberInfo) -> UserFrame<'_> {
    UserFrame {
        nick: b(&m.nick),
        ident: b(&m.ident),
        realname: b(&m.realname),
        op: m.op,
        voice: m.voice,
        away: m.away.as_deref().map(b),
        rooms: Vec::new(),
        ts: None,
    }
}

fn standing(r: &RoomStanding) -> Cow<'_, str> {
    match (r.op, r.voice) {
        (true, _) => Cow::Owned(format!("@{}", r.room)),
        (false, true) => Cow::Owned(format!("+{}", r.room)),
        _ => b(&r.room),
    }
}

/// The native frame for an event.
pub(crate) fn frame(event: &Event) -> ServerFrame<'_> {
    match event {
        Event::Welcome { req, nick } => ServerFrame::Welcome {
            v: natter_proto::PROTOCOL_VERSION,
            nick: b(nick),
            server: Cow::Owned(format!("natter {}", env!("CARGO_PKG_VERSION"))),
            max_line: None,
            id: req.clone(),
        },
        Event::Message(m) => ServerFrame::Message(message_frame(m)),
        Event::Ack { req, cid, message, duplicate, away } => ServerFrame::Ack {
            id: req.clone(),
            cid: cid.as_deref().map(b),
            mid: message.mid,
            room: message.room.as_deref().map(b),
            ts: message.ts,
            duplicate: *duplicate,
            away: away.as_deref().map(b),
        },
        Event::Join { room, nick, ts, .. } => ServerFrame::Join { room: b(room), nick: b(nick), ts: *ts },
        Event::Part { room, nick, reason, ts, .. } => {
            ServerFrame::Part { room: b(room), nick: b(nick), reason: reason.as_deref().map(b), ts: *ts }
        }
        Event::Quit { nick, reason, ts, .. } => {
            ServerFrame::Quit { nick: b(nick), reason: reason.as_deref().map(b), ts: *ts }
        }
        Event::Nick { old, new, ts, .. } => ServerFrame::Nick { old: b(old), new: b(new), ts: *ts },
        Event::Topic { req, room, topic, by, .. } => {
            ServerFrame::Topic { id: req.clone(), room: b(room), topic: b(topic), by: by.as_deref().map(b) }
        }
        Event::Joined { req, room, topic, members, operators, voiced, ephemeral, history, .. } => {
            ServerFrame::Joined {
                id: req.clone(),
                room: b(room),
                topic: b(topic),
                members: members.iter().map(|m| b(m)).collect(),
                ephemeral: *ephemeral,
                operators: operators.iter().map(|m| b(m)).collect(),
                voiced: voiced.iter().map(|m| b(m)).collect(),
                history: history.iter().map(|m| message_frame(m)).collect(),
            }
        }
        Event::Members { req, room, nicks, info } => ServerFrame::Members {
            id: req.clone(),
            room: room.as_deref().map(b),
            nicks: nicks.iter().map(|n| b(n)).collect(),
            users: info.iter().map(member_frame).collect(),
        },
        Event::RoomChanged { room, by, changes, ts, .. } => ServerFrame::Mode {
            room: b(room),
            by: b(by),
            changes: changes.iter().map(mode_change).collect(),
            ts: *ts,
        },
        Event::RoomModes { req, room, modes, created_ts } => ServerFrame::RoomModes {
            id: req.clone(),
            room: b(room),
            modes: ModesFrame {
                topic_lock: modes.topic_lock,
                no_external: modes.no_external,
                moderated: modes.moderated,
                invite_only: modes.invite_only,
                secret: modes.secret,
                key: modes.key.as_deref().map(b),
                limit: modes.limit,
            },
            created_ts: *created_ts,
        },
        Event::Bans { req, room, bans } => ServerFrame::Bans {
            id: req.clone(),
            room: b(room),
            bans: bans.iter().map(|x| BanFrame { mask: b(&x.mask), by: b(&x.by), ts: x.ts }).collect(),
        },
        Event::Kick { room, nick, by, reason, ts, .. } => ServerFrame::Kick {
            room: b(room),
            nick: b(nick),
            by: b(by),
            reason: reason.as_deref().map(b),
            ts: *ts,
        },
        Event::Invite { req, room, from, to, .. } => {
            ServerFrame::Invite { id: req.clone(), room: b(room), from: b(from), to: b(to) }
        }
        Event::Away { req, nick, text, .. } => {
            ServerFrame::Away { id: req.clone(), nick: b(nick), text: text.as_deref().map(b) }
        }
        Event::UserInfo { req, user } => ServerFrame::UserInfo {
            id: req.clone(),
            user: UserFrame {
                nick: b(&user.nick),
                ident: b(&user.ident),
                realname: b(&user.realname),
                op: user.server_op,
                voice: false,
                away: user.away.as_deref().map(b),
                rooms: user.rooms.iter().map(standing).collect(),
                ts: Some(user.signon_ts),
            },
        },
        Event::Whowas { req, nick, entries } => ServerFrame::Whowas {
            id: req.clone(),
            nick: b(nick),
            users: entries
                .iter()
                .map(|p| UserFrame {
                    nick: b(&p.nick),
                    ident: b(&p.ident),
                    realname: b(&p.realname),
                    ts: Some(p.ts),
                    ..Default::default()
                })
                .collect(),
        },
        Event::Rooms { req, rooms } => ServerFrame::Rooms {
            id: req.clone(),
            rooms: rooms
                .iter()
                .map(|r| RoomInfo {
                    name: b(&r.name),
                    members: r.members,
                    topic: b(&r.topic),
                    ephemeral: r.ephemeral,
                })
                .collect(),
        },
        Event::History { req, room, messages, more } => ServerFrame::History {
            id: req.clone(),
            room: b(room),
            messages: messages.iter().map(|m| message_frame(m)).collect(),
            more: *more,
        },
        Event::IgnoreMode { req, on } => ServerFrame::IgnoreMode { id: req.clone(), on: *on },
        Event::Ignoring { req, nicks } => {
            ServerFrame::Ignoring { id: req.clone(), nicks: nicks.iter().map(|n| b(n)).collect() }
        }
        Event::Notice { req, room, text } => {
            ServerFrame::Notice { id: req.clone(), room: room.as_deref().map(b), text: b(text) }
        }
        Event::Wallops { from, text, .. } => ServerFrame::Notice {
            id: None,
            room: None,
            text: Cow::Owned(format!("wallops from {from}: {text}")),
        },
        // Only IRC asks for this (INVITE with no parameters); a notice keeps other doors honest.
        Event::Invites { req, rooms } => {
            let list: Vec<&str> = rooms.iter().map(|r| &**r).collect();
            let text = Cow::Owned(format!("invited to: {}", list.join(" ")));
            ServerFrame::Notice { id: req.clone(), room: None, text }
        }
        // Only IRC asks for these (CHATHISTORY TARGETS); a notice keeps other doors honest.
        Event::Conversations { req, rooms } => {
            let list: Vec<&str> = rooms.iter().map(|(r, _)| &**r).collect();
            let text = Cow::Owned(format!("active rooms: {}", list.join(" ")));
            ServerFrame::Notice { id: req.clone(), room: None, text }
        }
        Event::Error { req, code, message } => {
            ServerFrame::Error { id: req.clone(), code: *code, message: b(message) }
        }
        Event::Pong { req } => ServerFrame::Pong { id: req.clone() },
        Event::Bye { reason } => ServerFrame::Bye { reason: b(reason) },
    }
}

impl Door for NativeDoor {
    const KIND: SessionKind = SessionKind::Native;

    fn cache_slot(event: &Event) -> Option<usize> {
        super::is_shared(event).then_some(SLOT)
    }

    fn render(&mut self, event: &Event, out: &mut Vec<u8>) {
        if super::is_tag_only(event) {
            return;
        }
        let mut frame = frame(event);
        if let ServerFrame::Welcome { max_line, .. } = &mut frame {
            *max_line = Some(self.max_line);
        }
        write_server_frame(&frame, out);
    }

    async fn on_line(&mut self, line: &[u8], ctx: &mut SessionCtx) -> Flow {
        let frame = match parse_client_frame(line) {
            Ok(frame) => frame,
            Err(e) => return ctx.reject(e.id, e.code, &e.message),
        };
        if ctx.session.is_none() {
            return match frame {
                ClientFrame::Hello { v, nick, password, id } => {
                    if v != natter_proto::PROTOCOL_VERSION {
                        let msg = format!(
                            "protocol version {v} is not supported; this server speaks version {}",
                            natter_proto::PROTOCOL_VERSION
                        );
                        return ctx.reject(id, ErrorCode::UnsupportedVersion, &msg);
                    }
                    ctx.register_as(nick, None, String::new(), password, id).await.0
                }
                ClientFrame::Login { msg } => ctx.register(msg.trim().to_string(), None).await,
                ClientFrame::Ping { id } => ctx.local(Event::Pong { req: id }),
                ClientFrame::Quit { .. } => Flow::Close("bye".into()),
                _ => ctx.reject(
                    None,
                    ErrorCode::NotRegistered,
                    "log in first: send {\"type\":\"hello\",\"nick\":\"...\"}",
                ),
            };
        }
        let command = match frame {
            ClientFrame::Hello { id, .. } => {
                return ctx.reject(
                    id,
                    ErrorCode::AlreadyRegistered,
                    "you are already logged in; use nick to rename",
                );
            }
            ClientFrame::Login { .. } => {
                return ctx.reject(
                    None,
                    ErrorCode::AlreadyRegistered,
                    "you are already logged in; use nick to rename",
                );
            }
            ClientFrame::Send { room, to, text, action, notice, cid, id } => {
                let target = match (room, to) {
                    (Some(room), None) => Target::Room(room),
                    (None, Some(to)) => Target::Nick(to),
                    _ => {
                        return ctx.reject(
                            id,
                            ErrorCode::BadFrame,
                            "send needs exactly one of \"room\" or \"to\"",
                        );
                    }
                };
                if !ctx.allow_message() {
                    return ctx.rate_limited(id);
                }
                Command::Say { target, text, action, notice, tags: None, cid, req: id }
            }
            ClientFrame::Broadcast { msg } => {
                if !ctx.allow_message() {
                    return ctx.rate_limited(None);
                }
                Command::say(Target::Room(ctx.lobby()), msg)
            }
            ClientFrame::Sendto { nickname, msg } => {
                if !ctx.allow_message() {
                    return ctx.rate_limited(None);
                }
                Command::say(Target::Nick(nickname), msg)
            }
            ClientFrame::Join { room, key, id } => Command::Join { room, key, req: id },
            ClientFrame::Part { room, reason, id } => Command::Part { room, reason, req: id },
            ClientFrame::Nick { nick, id } => Command::Nick { nick, req: id },
            ClientFrame::Topic { room, topic, id } => Command::Topic { room, topic, req: id },
            ClientFrame::Who { room, detail, id } => Command::Who { room, detail, req: id },
            ClientFrame::Ls {} => Command::Who { room: None, detail: false, req: None },
            ClientFrame::Mode { room, changes, id } if changes.is_empty() => {
                Command::RoomModes { room, req: id }
            }
            ClientFrame::Mode { room, changes, id } => {
                Command::Mode { room, changes: changes.into_iter().map(room_change).collect(), req: id }
            }
            ClientFrame::Bans { room, id } => Command::Bans { room, req: id },
            ClientFrame::Kick { room, nick, reason, id } => Command::Kick { room, nick, reason, req: id },
            ClientFrame::Invite { room, nick, id } => Command::Invite { room, nick, req: id },
            ClientFrame::Away { text, id } => Command::Away { text, req: id },
            ClientFrame::Whois { nick, id } => Command::Whois { nick, req: id },
            ClientFrame::Whowas { nick, id } => Command::Whowas { nick, count: 0, req: id },
            ClientFrame::Rooms { id } => Command::Rooms { req: id },
            ClientFrame::IgnoreAll { on, id } => Command::IgnoreAll { on, req: id },
            // An empty nick asks for the list of ignored users.
            ClientFrame::Ignore { nick, id } => {
                Command::Ignore { nick: (!nick.trim().is_empty()).then_some(nick), req: id }
            }
            ClientFrame::Unignore { nick, id } => Command::Unignore { nick, req: id },
            ClientFrame::History { room, before, after, limit, id } => {
                let query =
                    HistoryQuery { before, after, limit: limit.unwrap_or(50), ..HistoryQuery::default() };
                Command::History { room, query, around: false, req: id }
            }
            ClientFrame::Ephemeral { room, on, id } => Command::SetEphemeral { room, on, req: id },
            ClientFrame::Help {} => {
                let text = help_lines().join("\n");
                return ctx.local(Event::Notice { req: None, room: None, text: text.into() });
            }
            ClientFrame::Ping { id } => return ctx.local(Event::Pong { req: id }),
            ClientFrame::Quit { reason } => return Flow::Close(reason.unwrap_or_else(|| "quit".into())),
        };
        ctx.command(command).await
    }
}
