//! The native door's rendering: each core event as the server frame a native client reads.

use super::refusals::error_code;
use super::{NativeNote, id_of};
use natter_core::event::{AccountChange, MemberInfo, RoomStanding};
use natter_core::{ChatMessage, Event, RoomChange};
use natter_proto::names::complete_mask;
use natter_proto::native::{
    AccountChangeFrame, BanFrame, MessageFrame, ModesFrame, RoomChangeFrame, RoomInfo, ServerFrame, UserFrame,
};
use std::borrow::Cow;

pub(super) fn message_frame(m: &ChatMessage) -> MessageFrame<'_> {
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
pub(super) fn room_change(m: RoomChangeFrame) -> RoomChange {
    match m {
        RoomChangeFrame::TopicLock { on } => RoomChange::TopicLock(on),
        RoomChangeFrame::NoExternal { on } => RoomChange::NoExternal(on),
        RoomChangeFrame::Moderated { on } => RoomChange::Moderated(on),
        RoomChangeFrame::InviteOnly { on } => RoomChange::InviteOnly(on),
        RoomChangeFrame::Secret { on } => RoomChange::Secret(on),
        RoomChangeFrame::Key { key } => RoomChange::Key(key),
        RoomChangeFrame::Limit { limit } => RoomChange::Limit(limit),
        RoomChangeFrame::Ban { mask, on } => RoomChange::Ban { mask: complete_mask(&mask), on },
        RoomChangeFrame::Op { nick, on } => RoomChange::Operator { nick, on },
        RoomChangeFrame::Voice { nick, on } => RoomChange::Voice { nick, on },
    }
}

/// The core's room change as a native mode change.
pub(super) fn mode_change(c: &RoomChange) -> RoomChangeFrame {
    match c.clone() {
        RoomChange::TopicLock(on) => RoomChangeFrame::TopicLock { on },
        RoomChange::NoExternal(on) => RoomChangeFrame::NoExternal { on },
        RoomChange::Moderated(on) => RoomChangeFrame::Moderated { on },
        RoomChange::InviteOnly(on) => RoomChangeFrame::InviteOnly { on },
        RoomChange::Secret(on) => RoomChangeFrame::Secret { on },
        RoomChange::Key(key) => RoomChangeFrame::Key { key },
        RoomChange::Limit(limit) => RoomChangeFrame::Limit { limit },
        RoomChange::Ban { mask, on } => RoomChangeFrame::Ban { mask, on },
        RoomChange::Operator { nick, on } => RoomChangeFrame::Op { nick, on },
        RoomChange::Voice { nick, on } => RoomChangeFrame::Voice { nick, on },
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
        real_host: None,
        account: None,
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
pub(super) fn frame(event: &Event) -> ServerFrame<'_> {
    match event {
        Event::Welcome { req, nick } => ServerFrame::Welcome {
            v: natter_proto::PROTOCOL_VERSION,
            nick: b(nick),
            server: Cow::Owned(format!("natter {}", env!("CARGO_PKG_VERSION"))),
            max_line: None,
            id: id_of(req),
            token: None,
        },
        Event::Message(m) => ServerFrame::Message(message_frame(m)),
        Event::Ack { req, cid, message, duplicate, away, offline } => ServerFrame::Ack {
            id: id_of(req),
            cid: cid.as_deref().map(b),
            mid: message.mid,
            room: message.room.as_deref().map(b),
            ts: message.ts,
            duplicate: *duplicate,
            away: away.as_deref().map(b),
            offline: *offline,
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
            ServerFrame::Topic { id: id_of(req), room: b(room), topic: b(topic), by: by.as_deref().map(b) }
        }
        Event::Joined { req, room, topic, members, count, operators, voiced, ephemeral, history, .. } => {
            ServerFrame::Joined {
                id: id_of(req),
                room: b(room),
                topic: b(topic),
                members: members.iter().map(|m| b(m)).collect(),
                count: (members.len() < *count).then_some(*count as u64),
                ephemeral: *ephemeral,
                operators: operators.iter().map(|m| b(m)).collect(),
                voiced: voiced.iter().map(|m| b(m)).collect(),
                history: history.iter().map(|m| message_frame(m)).collect(),
            }
        }
        Event::Members { req, room, nicks, info, count, more } => ServerFrame::Members {
            id: id_of(req),
            room: room.as_deref().map(b),
            nicks: nicks.iter().map(|n| b(n)).collect(),
            users: info.iter().map(member_frame).collect(),
            more: *more,
            count: (*more || nicks.len() < *count).then_some(*count as u64),
        },
        Event::RoomChanged { room, by, changes, ts, .. } => ServerFrame::Mode {
            room: b(room),
            by: b(by),
            changes: changes.iter().map(mode_change).collect(),
            ts: *ts,
        },
        Event::RoomModes { req, room, modes, created_ts } => ServerFrame::RoomModes {
            id: id_of(req),
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
            id: id_of(req),
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
            ServerFrame::Invite { id: id_of(req), room: b(room), from: b(from), to: b(to) }
        }
        Event::Away { req, nick, text, .. } => {
            ServerFrame::Away { id: id_of(req), nick: b(nick), text: text.as_deref().map(b) }
        }
        Event::UserInfo { req, user } => ServerFrame::UserInfo {
            id: id_of(req),
            user: UserFrame {
                nick: b(&user.nick),
                ident: b(&user.ident),
                realname: b(&user.realname),
                op: user.server_op,
                voice: false,
                away: user.away.as_deref().map(b),
                rooms: user.rooms.iter().map(standing).collect(),
                ts: Some(user.signon_ts),
                real_host: user.real_host.as_deref().map(b),
                account: user.account.as_deref().map(b),
            },
        },
        Event::Whowas { req, nick, entries } => ServerFrame::Whowas {
            id: id_of(req),
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
            id: id_of(req),
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
            id: id_of(req),
            room: b(room),
            messages: messages.iter().map(|m| message_frame(m)).collect(),
            more: *more,
        },
        Event::IgnoreMode { req, on } => ServerFrame::IgnoreMode { id: id_of(req), on: *on },
        Event::Ignoring { req, nicks } => {
            ServerFrame::Ignoring { id: id_of(req), nicks: nicks.iter().map(|n| b(n)).collect() }
        }
        Event::Account { req, change, account } => ServerFrame::Account {
            id: id_of(req),
            change: match change {
                AccountChange::Registered => AccountChangeFrame::Registered,
                AccountChange::LoggedIn => AccountChangeFrame::LoggedIn,
                AccountChange::LoggedOut => AccountChangeFrame::LoggedOut,
                AccountChange::PasswordChanged => AccountChangeFrame::PasswordChanged,
            },
            account: b(account),
        },
        Event::ResumeToken { req, account, token } => {
            ServerFrame::ResumeToken { id: id_of(req), account: b(account), token: b(token.expose()) }
        }
        Event::NickProtected { nick, grace_secs } => {
            ServerFrame::NickProtected { nick: b(nick), grace_secs: *grace_secs }
        }
        Event::Notice { req, room, text } => {
            ServerFrame::Notice { id: id_of(req), room: room.as_deref().map(b), text: b(text) }
        }
        Event::Announcement { from, text, .. } => ServerFrame::Notice {
            id: None,
            room: None,
            text: Cow::Owned(format!("wallops from {from}: {text}")),
        },
        // Only IRC asks for this (INVITE with no parameters); a notice keeps other doors honest.
        Event::Invites { req, rooms } => {
            let list: Vec<&str> = rooms.iter().map(|r| &**r).collect();
            let text = Cow::Owned(format!("invited to: {}", list.join(" ")));
            ServerFrame::Notice { id: id_of(req), room: None, text }
        }
        // Only IRC asks for these (CHATHISTORY TARGETS, ISON, LUSERS); a notice keeps other
        // doors honest.
        Event::ActiveRooms { req, rooms } => {
            let list: Vec<&str> = rooms.iter().map(|(r, _)| &**r).collect();
            let text = Cow::Owned(format!("active rooms: {}", list.join(" ")));
            ServerFrame::Notice { id: id_of(req), room: None, text }
        }
        Event::Users { req, users } => {
            let list: Vec<&str> = users.iter().map(|u| &*u.nick).collect();
            let text = Cow::Owned(format!("online: {}", list.join(" ")));
            ServerFrame::Notice { id: id_of(req), room: None, text }
        }
        Event::ServerStats { req, stats } => {
            let text = Cow::Owned(format!("{} online (most ever {})", stats.users, stats.peak));
            ServerFrame::Notice { id: id_of(req), room: None, text }
        }
        // Watch lists are IRC's (`MONITOR`): the native protocol has no request for them, so
        // these only say, as a notice, what an IRC client would be told. (Account news never
        // gets here: `is_meta_only` leaves it out.)
        Event::Watched { .. }
        | Event::WatchList { .. }
        | Event::AccountOf { .. }
        | Event::Realname { .. }
        | Event::Certificates { .. } => ServerFrame::Notice {
            id: None,
            room: None,
            text: Cow::Owned(crate::door::text::render_text(event)),
        },
        Event::Error { req, refusal } => ServerFrame::Error {
            id: id_of(req),
            code: error_code(refusal),
            message: Cow::Owned(refusal.to_string()),
        },
        Event::Local(note) => match note.get::<NativeNote>() {
            Some(NativeNote::Pong(id)) => ServerFrame::Pong { id: id.clone() },
            Some(NativeNote::Error { id, code, message }) => {
                ServerFrame::Error { id: id.clone(), code: *code, message: b(message) }
            }
            None => unreachable!("only the native door's own notes reach it"),
        },
        Event::Bye { reason } => ServerFrame::Bye { reason: b(reason) },
    }
}
