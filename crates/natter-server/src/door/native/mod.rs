//! The native front door: newline-delimited JSON frames (`docs/protocol.md`).
//!
//! A request's `id` travels through the hub inside its [`RequestToken`] and comes back on
//! every answer and refusal; refusals become error codes in one table ([`refusals`]).

mod refusals;
mod render;
mod tutorial;
mod udp;

pub(crate) use udp::UdpNativeDoor;

use super::{Credentials, Door, Flow, SessionCtx, slots};
use natter_core::command::Paging;
use natter_core::metrics::Disconnect;
use natter_core::password::Password;
use natter_core::resume::ResumeToken;
use natter_core::store::HistoryQuery;
use natter_core::{Command, DoorNote, Event, RenderSlot, Req, RequestToken, SessionKind, Target};
use natter_proto::command::help_lines;
use natter_proto::native::{
    CLIENT_SECRET_BYTES, ClientFrame, ErrorCode, RequestId, ServerFrame, parse_client_frame,
    write_server_frame,
};
use render::{frame, room_change};

/// Speaks native frames for one connection.
#[derive(Debug)]
pub struct NativeDoor {
    /// The line limit, told to the client in `welcome` so that it can refuse longer frames.
    /// (32 bits, so that the door with its flag stays one word: it lives in every idle
    /// native connection's task.)
    max_line: u32,
    /// Logged in with the chat-room tutorial's `login`: answers in its dialect ([`tutorial`]).
    tutorial: bool,
}

impl NativeDoor {
    /// A door for a connection whose lines are limited to `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self { max_line: u32::try_from(max_line).unwrap_or(u32::MAX), tutorial: false }
    }
}

/// Which tutorial request an answer belongs to: its `type` in the tutorial dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TutorialAsk {
    Login,
    Broadcast,
    Sendto,
    Help,
    Ls,
    Ignore,
}

/// The token of a tutorial request.
fn tutorial_token(ask: TutorialAsk) -> Req {
    Some(RequestToken::new(ask))
}

/// What `help` answers in the tutorial dialect: the commands of the tutorial's own client.
const TUTORIAL_HELP: &str = "a plain line goes to everyone in the room\n\
@nick text goes privately to nick\n\
/ls lists who is online\n\
/i toggles ignore mode: group messages hidden, private ones still shown\n\
/help shows this help";

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

    fn slot(&self, event: &Event) -> Option<RenderSlot> {
        // The tutorial dialect is rare: rendered per session rather than given a slot.
        if self.tutorial { None } else { Self::cache_slot(event) }
    }

    fn paced(&self) -> Option<std::time::Duration> {
        self.tutorial.then_some(tutorial::PACE)
    }

    fn render(&mut self, event: &Event, out: &mut Vec<u8>) {
        if super::is_meta_only(event) {
            return;
        }
        if self.tutorial {
            return tutorial::render(event, out);
        }
        let mut frame = frame(event);
        if let ServerFrame::Welcome { max_line, .. } = &mut frame {
            *max_line = Some(self.max_line as usize);
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
                ClientFrame::Hello {
                    v,
                    nick,
                    password,
                    account,
                    account_password,
                    resume,
                    client_secret,
                    id,
                } => {
                    if v != natter_proto::PROTOCOL_VERSION {
                        let msg = format!(
                            "protocol version {v} is not supported; this server speaks version {}",
                            natter_proto::PROTOCOL_VERSION
                        );
                        return refuse(ctx, id, ErrorCode::UnsupportedVersion, &msg);
                    }
                    if client_secret.as_ref().is_some_and(|s| !CLIENT_SECRET_BYTES.contains(&s.len())) {
                        let msg = format!(
                            "client_secret must be {} to {} bytes: a random string your client keeps \
                             for its lifetime",
                            CLIENT_SECRET_BYTES.start(),
                            CLIENT_SECRET_BYTES.end()
                        );
                        return refuse(ctx, id, ErrorCode::BadFrame, &msg);
                    }
                    let login = match (account, account_password) {
                        (None, None) => None,
                        (Some(name), Some(password)) => Some((name, password)),
                        _ => {
                            let msg = "hello needs both \"account\" and \"account_password\" to log in to an account";
                            return refuse(ctx, id, ErrorCode::BadFrame, msg);
                        }
                    };
                    if login.is_some() && resume.is_some() {
                        let msg = "hello logs in to an account with \"account_password\" or with \"resume\", not both";
                        return refuse(ctx, id, ErrorCode::BadFrame, msg);
                    }
                    let given = Credentials { password, client_secret, ..Credentials::default() };
                    let resume = resume.map(ResumeToken::new);
                    let flow = ctx.register_resuming(nick, given, resume, token(id.clone())).await.0;
                    match login {
                        // Logged in: the account's login follows the welcome.
                        Some((name, password)) if flow == Flow::Continue && ctx.session.is_some() => {
                            let password = Password::new(password);
                            let from = Some(ctx.peer.ip());
                            ctx.command(Command::Login { name, password, from, req: token(id) }).await
                        }
                        _ => flow,
                    }
                }
                ClientFrame::Login { msg: Some(msg), .. } => {
                    // The tutorial's client: its dialect from here on, refusals included.
                    self.tutorial = true;
                    ctx.register(msg.trim().to_string(), tutorial_token(TutorialAsk::Login)).await
                }
                ClientFrame::Ping { id } => ctx.note(DoorNote::new(NativeNote::Pong(id))),
                ClientFrame::Quit { .. } => ctx.close(Disconnect::Quit, "bye"),
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
            ClientFrame::Login { name: Some(name), password: Some(password), id, .. } => Command::Login {
                name,
                password: Password::new(password),
                from: Some(ctx.peer.ip()),
                req: token(id),
            },
            ClientFrame::Login { msg: Some(_), .. } => {
                return refuse(
                    ctx,
                    None,
                    ErrorCode::AlreadyRegistered,
                    "you are already logged in; use nick to rename",
                );
            }
            ClientFrame::Login { id, .. } => {
                return refuse(ctx, id, ErrorCode::BadFrame, "login needs \"name\" and \"password\"");
            }
            ClientFrame::Register { password, id } => Command::Register {
                password: Password::new(password),
                from: Some(ctx.peer.ip()),
                req: token(id),
            },
            ClientFrame::Logout { id } => Command::Logout { req: token(id) },
            ClientFrame::ResumeToken { id } => Command::IssueToken { req: token(id) },
            ClientFrame::Passwd { old, new, id } => Command::Passwd {
                old: Password::new(old),
                new: Password::new(new),
                from: Some(ctx.peer.ip()),
                req: token(id),
            },
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
                let req = tutorial_token(TutorialAsk::Broadcast);
                if !ctx.allow_message() {
                    return ctx.rate_limited(req);
                }
                let target = Target::Room(ctx.lobby());
                Command::Say { target, text: msg, action: false, notice: false, meta: None, cid: None, req }
            }
            ClientFrame::Sendto { nickname, msg } => {
                let req = tutorial_token(TutorialAsk::Sendto);
                if !ctx.allow_message() {
                    return ctx.rate_limited(req);
                }
                let target = Target::Nick(nickname);
                Command::Say { target, text: msg, action: false, notice: false, meta: None, cid: None, req }
            }
            ClientFrame::Join { room, key, id } => Command::Join { room, key, req: token(id) },
            ClientFrame::Part { room, reason, id } => Command::Part { room, reason, req: token(id) },
            ClientFrame::Nick { nick, id } => Command::Nick { nick, req: token(id) },
            ClientFrame::Topic { room, topic, id } => Command::Topic { room, topic, req: token(id) },
            ClientFrame::Who { room, detail, after, limit, id } => {
                Command::Who { room, detail, page: Paging { after, limit }, req: token(id) }
            }
            ClientFrame::Ls {} => Command::Who {
                room: None,
                detail: false,
                page: Paging::default(),
                req: tutorial_token(TutorialAsk::Ls),
            },
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
            // The tutorial's `ignore` toggles ignore mode (its `/i`).
            ClientFrame::Ignore { nick, .. } if self.tutorial && nick.trim().is_empty() => {
                Command::IgnoreAll { on: None, req: tutorial_token(TutorialAsk::Ignore) }
            }
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
                let (text, req) = if self.tutorial {
                    (TUTORIAL_HELP.to_string(), tutorial_token(TutorialAsk::Help))
                } else {
                    (help_lines().join("\n"), None)
                };
                return ctx.local(Event::Notice { req, room: None, text: text.into() });
            }
            ClientFrame::Ping { id } => return ctx.note(DoorNote::new(NativeNote::Pong(id))),
            ClientFrame::Quit { reason } => {
                return ctx.close(Disconnect::Quit, reason.unwrap_or_else(|| "quit".into()));
            }
        };
        ctx.command(command).await
    }
}

#[cfg(test)]
mod tests {
    /// The door lives in every idle native connection's task: one word.
    #[test]
    fn the_native_door_is_one_word() {
        assert_eq!(std::mem::size_of::<super::NativeDoor>(), 8);
    }
}
