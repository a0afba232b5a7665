//! The native front door: newline-delimited JSON frames (`docs/protocol.md`).
//!
//! A request's `id` travels through the hub inside its [`RequestToken`] and comes back on
//! every answer and refusal; refusals become error codes in one table ([`refusals`]).

mod refusals;
mod render;

use super::{Door, Flow, SessionCtx, slots};
use natter_core::store::HistoryQuery;
use natter_core::{Command, DoorNote, Event, RenderSlot, Req, RequestToken, SessionKind, Target};
use natter_proto::command::help_lines;
use natter_proto::native::{
    ClientFrame, ErrorCode, RequestId, ServerFrame, parse_client_frame, write_server_frame,
};
use render::{frame, room_change};

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

/// What the native door answers by itself, in order with the hub's answers.
#[derive(Debug)]
enum NativeNote {
    /// Answer to `ping`.
    Pong(Option<RequestId>),
    /// A frame the door refuses before the hub sees it (bad JSON, wrong version...).
    Error {
        /// The request's id, when it could be read.
        id: Option<RequestId>,
        /// Why.
        code: ErrorCode,
        /// What to do.
        message: String,
    },
}

/// The token that carries a client's request id through the hub.
fn token(id: Option<RequestId>) -> Req {
    id.map(RequestToken::new)
}

/// The client's request id carried by a token of this door.
fn id_of(req: &Req) -> Option<RequestId> {
    req.as_ref().and_then(|t| t.get::<RequestId>()).cloned()
}

/// Refuses a frame with a code of the native protocol's own.
fn refuse(ctx: &mut SessionCtx, id: Option<RequestId>, code: ErrorCode, message: &str) -> Flow {
    ctx.reject_note(message, DoorNote::new(NativeNote::Error { id, code, message: message.to_string() }))
}

impl Door for NativeDoor {
    const KIND: SessionKind = SessionKind::Native;

    fn cache_slot(event: &Event) -> Option<RenderSlot> {
        super::is_shared(event).then_some(slots::NATIVE)
    }

    fn render(&mut self, event: &Event, out: &mut Vec<u8>) {
        if super::is_meta_only(event) {
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
            Err(e) => return refuse(ctx, e.id, e.code, &e.message),
        };
        if ctx.session.is_none() {
            return match frame {
                ClientFrame::Hello { v, nick, password, id } => {
                    if v != natter_proto::PROTOCOL_VERSION {
                        let msg = format!(
                            "protocol version {v} is not supported; this server speaks version {}",
                            natter_proto::PROTOCOL_VERSION
                        );
                        return refuse(ctx, id, ErrorCode::UnsupportedVersion, &msg);
                    }
                    ctx.register_as(nick, None, String::new(), password, token(id)).await.0
                }
                ClientFrame::Login { msg } => ctx.register(msg.trim().to_string(), None).await,
                ClientFrame::Ping { id } => ctx.note(DoorNote::new(NativeNote::Pong(id))),
                ClientFrame::Quit { .. } => Flow::Close("bye".into()),
                _ => refuse(
                    ctx,
                    None,
                    ErrorCode::NotRegistered,
                    "log in first: send {\"type\":\"hello\",\"nick\":\"...\"}",
                ),
            };
        }
        let command = match frame {
            ClientFrame::Hello { id, .. } => {
                return refuse(
                    ctx,
                    id,
                    ErrorCode::AlreadyRegistered,
                    "you are already logged in; use nick to rename",
                );
            }
            ClientFrame::Login { .. } => {
                return refuse(
                    ctx,
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
                        return refuse(
                            ctx,
                            id,
                            ErrorCode::BadFrame,
                            "send needs exactly one of \"room\" or \"to\"",
                        );
                    }
                };
                let req = token(id);
                if !ctx.allow_message() {
                    return ctx.rate_limited(req);
                }
                Command::Say { target, text, action, notice, meta: None, cid, req }
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
            ClientFrame::Join { room, key, id } => Command::Join { room, key, req: token(id) },
            ClientFrame::Part { room, reason, id } => Command::Part { room, reason, req: token(id) },
            ClientFrame::Nick { nick, id } => Command::Nick { nick, req: token(id) },
            ClientFrame::Topic { room, topic, id } => Command::Topic { room, topic, req: token(id) },
            ClientFrame::Who { room, detail, id } => Command::Who { room, detail, req: token(id) },
            ClientFrame::Ls {} => Command::Who { room: None, detail: false, req: None },
            ClientFrame::Mode { room, changes, id } if changes.is_empty() => {
                Command::RoomModes { room, req: token(id) }
            }
            ClientFrame::Mode { room, changes, id } => Command::Mode {
                room,
                changes: changes.into_iter().map(room_change).collect(),
                req: token(id),
            },
            ClientFrame::Bans { room, id } => Command::Bans { room, req: token(id) },
            ClientFrame::Kick { room, nick, reason, id } => {
                Command::Kick { room, nick, reason, req: token(id) }
            }
            ClientFrame::Invite { room, nick, id } => Command::Invite { room, nick, req: token(id) },
            ClientFrame::Away { text, id } => Command::Away { text, req: token(id) },
            ClientFrame::Whois { nick, id } => Command::Whois { nick, req: token(id) },
            ClientFrame::Whowas { nick, id } => Command::Whowas { nick, count: 0, req: token(id) },
            ClientFrame::Rooms { id } => Command::Rooms { req: token(id) },
            ClientFrame::IgnoreAll { on, id } => Command::IgnoreAll { on, req: token(id) },
            // An empty nick asks for the list of ignored users.
            ClientFrame::Ignore { nick, id } => {
                Command::Ignore { nick: (!nick.trim().is_empty()).then_some(nick), req: token(id) }
            }
            ClientFrame::Unignore { nick, id } => Command::Unignore { nick, req: token(id) },
            ClientFrame::History { room, before, after, limit, id } => {
                let query =
                    HistoryQuery { before, after, limit: limit.unwrap_or(50), ..HistoryQuery::default() };
                Command::History { room, query, around: false, req: token(id) }
            }
            ClientFrame::Ephemeral { room, on, id } => Command::SetEphemeral { room, on, req: token(id) },
            ClientFrame::Help {} => {
                let text = help_lines().join("\n");
                return ctx.local(Event::Notice { req: None, room: None, text: text.into() });
            }
            ClientFrame::Ping { id } => return ctx.note(DoorNote::new(NativeNote::Pong(id))),
            ClientFrame::Quit { reason } => return Flow::Close(reason.unwrap_or_else(|| "quit".into())),
        };
        ctx.command(command).await
    }
}
