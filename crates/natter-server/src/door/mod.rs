//! Front doors: each turns one protocol's lines into hub commands and renders hub events back
//! into that protocol's bytes. The connection loop around them ([`crate::conn`]) is shared.

pub mod irc;
pub mod native;
pub mod text;

use crate::config::Limits;
use crate::limits::{RateLimiter, Strikes};
use natter_core::hub::SessionId;
use natter_core::{Command, ErrorCode, Event, HubHandle, Outbox, Registration, RequestId, SessionKind};
use std::net::SocketAddr;
use std::time::Duration;

/// What the connection loop does after a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// End the session with this reason (sent to the peer, and to the rooms as a quit).
    Close(String),
}

/// A protocol spoken on a connection.
pub(crate) trait Door: Send + 'static {
    /// Which front door this is, for the hub.
    const KIND: SessionKind;

    /// Whether a line left unterminated for a moment counts as complete. True for doors
    /// that serve simple socket clients; IRC frames strictly by CRLF, so it says false.
    const FLUSH_PARTIAL: bool = true;

    /// How often [`Door::on_tick`] runs (keepalive checks), or `None` for never.
    const TICK: Option<Duration> = None;

    /// The render-cache slot for events rendered once for all recipients, or `None` when this
    /// event must be rendered for this session alone.
    fn cache_slot(event: &Event) -> Option<usize>;

    /// The render-cache slot for this session: lets a door whose rendering depends on
    /// negotiated options (IRC capabilities) pick a variant; defaults to [`Door::cache_slot`].
    fn slot(&self, event: &Event) -> Option<usize> {
        Self::cache_slot(event)
    }

    /// Renders an event onto `out`. Called once per shared event (whose result is cached) or
    /// per delivery for private ones; `observe` has seen the event before.
    fn render(&mut self, event: &Event, out: &mut Vec<u8>);

    /// Lets the door track state from its own session's events (current room, nick).
    fn observe(&mut self, _event: &Event) {}

    /// The session just logged in as `nick` and is in `lobby` (before any event arrives).
    fn on_registered(&mut self, _nick: &str, _lobby: &str) {}

    /// Handles one complete line from the peer.
    fn on_line(&mut self, line: &[u8], ctx: &mut SessionCtx) -> impl Future<Output = Flow> + Send;

    /// Runs every [`Door::TICK`]: a door may check the peer is alive (IRC PING).
    fn on_tick(&mut self, _ctx: &mut SessionCtx) -> Flow {
        Flow::Continue
    }

    /// A line exceeded the limit and was dropped.
    fn on_too_long(&mut self, ctx: &mut SessionCtx, max: usize) -> Flow {
        let message = format!("line too long: at most {max} bytes per line; it was dropped");
        ctx.reject(None, ErrorCode::TooLong, &message)
    }
}

/// True for events whose rendering does not depend on who receives them.
pub(crate) fn is_shared(event: &Event) -> bool {
    matches!(
        event,
        Event::Message(_)
            | Event::Join { .. }
            | Event::Part { .. }
            | Event::Quit { .. }
            | Event::Nick { .. }
            | Event::Topic { req: None, .. }
            | Event::Notice { req: None, room: Some(_), .. }
            | Event::RoomChanged { .. }
            | Event::Kick { .. }
    )
}

/// True for a tag-only message (IRC `TAGMSG`, e.g. typing notices) or its acknowledgement:
/// doors without message tags show nothing for it.
pub(crate) fn is_tag_only(event: &Event) -> bool {
    match event {
        Event::Message(m) | Event::Ack { message: m, .. } => m.text.is_empty() && m.tags.is_some(),
        _ => false,
    }
}

/// Everything a door needs to act for its session.
pub(crate) struct SessionCtx {
    pub hub: HubHandle,
    pub outbox: Outbox,
    pub session: Option<SessionId>,
    pub peer: SocketAddr,
    pub limits: Limits,
    pub kind: SessionKind,
    pub rate: RateLimiter,
    pub strikes: Strikes,
    pub lobby: String,
}

impl SessionCtx {
    pub fn new(hub: HubHandle, peer: SocketAddr, limits: Limits, kind: SessionKind) -> Self {
        Self {
            hub,
            outbox: Outbox::new(limits.outbox),
            session: None,
            peer,
            limits,
            kind,
            rate: RateLimiter::new(limits.msg_rate, limits.msg_burst),
            strikes: Strikes::default(),
            lobby: "#lobby".into(),
        }
    }

    /// The room every session starts in.
    pub fn lobby(&self) -> String {
        self.lobby.clone()
    }

    /// Queues an event for this session only (answers the door gives by itself).
    pub fn local(&mut self, event: Event) -> Flow {
        // Once logged in, answers go through the hub so that they stay behind the hub's
        // answers to earlier commands (a client's PING must not overtake them).
        // A full hub queue falls back to the outbox (order may then slip; nothing is lost).
        if let Some(session) = self.session
            && self.hub.try_command(session, Command::Echo { event: Box::new(event.clone()) })
        {
            return Flow::Continue;
        }
        match self.outbox.send(event) {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close("too slow: your connection fell too far behind".into()),
        }
    }

    /// Answers a bad request with an error; repeated bad requests end the session.
    pub fn reject(&mut self, req: Option<RequestId>, code: ErrorCode, message: &str) -> Flow {
        if self.strikes.hit() {
            return Flow::Close(format!("too many invalid requests (last: {message})"));
        }
        self.local(Event::Error { req, code, message: message.into() })
    }

    /// Takes one message token; false when the session is over its rate.
    pub fn allow_message(&mut self) -> bool {
        self.rate.allow()
    }

    /// Answers a message refused by the rate limit: a warning first, a disconnect when the
    /// flood goes on.
    pub fn rate_limited(&mut self, req: Option<RequestId>) -> Flow {
        let excess = self.rate.excess();
        if excess > self.limits.msg_burst.max(10) {
            return Flow::Close("flooding: too many messages too fast".into());
        }
        let message = format!(
            "slow down: at most {} messages per second; this message was not sent; keep flooding and you will be disconnected",
            self.limits.msg_rate
        );
        self.local(Event::Error { req, code: ErrorCode::RateLimited, message: message.into() })
    }

    /// Logs in with `nick`; on refusal the error goes to the peer, who may try again.
    pub async fn register(&mut self, nick: String, req: Option<RequestId>) -> Flow {
        self.register_as(nick, None, String::new(), None, req).await.0
    }

    /// Logs in with a real name and the server password the client gave (IRC `USER`, `PASS`).
    /// Also returns the code of the hub's refusal, if it refused (IRC hangs up on a bad
    /// password).
    pub async fn register_as(
        &mut self,
        nick: String,
        user: Option<&str>,
        realname: String,
        password: Option<String>,
        req: Option<RequestId>,
    ) -> (Flow, Option<ErrorCode>) {
        let registration = Registration {
            nick,
            ident: format!("{}@{}", user.unwrap_or(kind_user(self.kind)), self.peer.ip()),
            kind: self.kind,
            outbox: self.outbox.clone(),
            realname,
            lobby: self.kind != SessionKind::Irc || self.limits.irc_lobby,
            password,
            req: req.clone(),
        };
        match self.hub.register(registration).await {
            Ok(Ok(registered)) => {
                self.session = Some(registered.session);
                (Flow::Continue, None)
            }
            Ok(Err(refused)) => (self.reject(req, refused.code, &refused.message), Some(refused.code)),
            Err(_) => (Flow::Close("the server is shutting down".into()), None),
        }
    }

    /// Ends the session from our side: the hub tells the rooms, then closes the outbox, which
    /// makes the connection loop send the goodbye and hang up.
    pub async fn end(&mut self, reason: String) {
        match self.session {
            Some(session) => {
                if self.hub.command(session, Command::Quit { reason: Some(reason.clone()) }).await.is_err() {
                    self.outbox.close(&reason, false);
                }
            }
            None => self.outbox.close(&reason, false),
        }
    }

    /// Hands a command to the hub.
    pub async fn command(&mut self, command: Command) -> Flow {
        let Some(session) = self.session else {
            return self.reject(None, ErrorCode::NotRegistered, "log in first");
        };
        match self.hub.command(session, command).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close("the server is shutting down".into()),
        }
    }
}

fn kind_user(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Native => "native",
        SessionKind::Text => "text",
        SessionKind::Udp => "udp",
        SessionKind::Irc => "irc",
        SessionKind::Console => "console",
    }
}

/// One item of an IRC-style mode string (`+tnk key`), as typed in IRC `MODE` and text `/mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModeItem {
    /// A change for the hub.
    Change(natter_core::command::RoomChange),
    /// `b` without a mask: list the bans.
    ListBans,
    /// A letter natter does not know.
    Unknown(char),
    /// A letter that needs a parameter and has none.
    NeedsParam(char),
}

/// Reads mode words the IRC way: letters after `+`/`-`, parameters taken in order by `k`
/// (when set), `l` (when set), `b`, `o` and `v`.
pub(crate) fn parse_modes<'a>(words: impl IntoIterator<Item = &'a str>) -> Vec<ModeItem> {
    use natter_core::command::RoomChange as C;
    let mut words = words.into_iter();
    let Some(letters) = words.next() else { return Vec::new() };
    let mut params = words;
    let mut on = true;
    let mut items = Vec::new();
    for c in letters.chars() {
        let item = match c {
            '+' => {
                on = true;
                continue;
            }
            '-' => {
                on = false;
                continue;
            }
            't' => ModeItem::Change(C::TopicLock(on)),
            'n' => ModeItem::Change(C::NoExternal(on)),
            'm' => ModeItem::Change(C::Moderated(on)),
            'i' => ModeItem::Change(C::InviteOnly(on)),
            's' => ModeItem::Change(C::Secret(on)),
            'k' if on => match params.next() {
                Some(key) => ModeItem::Change(C::Key(Some(key.to_string()))),
                None => ModeItem::NeedsParam('k'),
            },
            'k' => {
                // `-k` takes the (ignored) key as a parameter when one is given.
                let _ = params.next();
                ModeItem::Change(C::Key(None))
            }
            'l' if on => match params.next() {
                Some(n) => match n.parse::<u32>() {
                    Ok(n) if n > 0 => ModeItem::Change(C::Limit(Some(n))),
                    _ => continue,
                },
                None => ModeItem::NeedsParam('l'),
            },
            'l' => ModeItem::Change(C::Limit(None)),
            'b' => match params.next() {
                Some(mask) => ModeItem::Change(C::Ban { mask: mask.to_string(), on }),
                None => ModeItem::ListBans,
            },
            'o' | 'v' => match params.next() {
                Some(nick) if c == 'o' => ModeItem::Change(C::Operator { nick: nick.to_string(), on }),
                Some(nick) => ModeItem::Change(C::Voice { nick: nick.to_string(), on }),
                None => ModeItem::NeedsParam(c),
            },
            other => ModeItem::Unknown(other),
        };
        items.push(item);
    }
    items
}

/// IRC mode letters for applied room changes, with their parameters: `("+o-k", ["ann", "*"])`.
pub(crate) fn mode_string(changes: &[natter_core::command::RoomChange]) -> (String, Vec<String>) {
    use natter_core::command::RoomChange as C;
    let mut letters = String::new();
    let mut params = Vec::new();
    let mut sign = None;
    for change in changes {
        let (on, c, param) = match change {
            C::TopicLock(on) => (*on, 't', None),
            C::NoExternal(on) => (*on, 'n', None),
            C::Moderated(on) => (*on, 'm', None),
            C::InviteOnly(on) => (*on, 'i', None),
            C::Secret(on) => (*on, 's', None),
            C::Key(Some(k)) => (true, 'k', Some(k.clone())),
            C::Key(None) => (false, 'k', Some("*".to_string())),
            C::Limit(Some(l)) => (true, 'l', Some(l.to_string())),
            C::Limit(None) => (false, 'l', None),
            C::Ban { mask, on } => (*on, 'b', Some(mask.clone())),
            C::Operator { nick, on } => (*on, 'o', Some(nick.clone())),
            C::Voice { nick, on } => (*on, 'v', Some(nick.clone())),
        };
        if sign != Some(on) {
            letters.push(if on { '+' } else { '-' });
            sign = Some(on);
        }
        letters.push(c);
        params.extend(param);
    }
    (letters, params)
}

/// A room's settings as IRC mode letters with parameters (`+ntk key`).
pub(crate) fn modes_of(modes: &natter_core::event::RoomModes) -> (String, Vec<String>) {
    let mut letters = String::from("+");
    let mut params = Vec::new();
    for (on, c) in [
        (modes.invite_only, 'i'),
        (modes.moderated, 'm'),
        (modes.no_external, 'n'),
        (modes.secret, 's'),
        (modes.topic_lock, 't'),
    ] {
        if on {
            letters.push(c);
        }
    }
    if let Some(k) = &modes.key {
        letters.push('k');
        params.push(k.to_string());
    }
    if let Some(l) = modes.limit {
        letters.push('l');
        params.push(l.to_string());
    }
    (letters, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::command::RoomChange as C;

    #[test]
    fn mode_words_parse_like_irc() {
        let items = parse_modes(["+kmo-v", "pw", "ann", "bob"]);
        assert_eq!(
            items,
            [
                ModeItem::Change(C::Key(Some("pw".into()))),
                ModeItem::Change(C::Moderated(true)),
                ModeItem::Change(C::Operator { nick: "ann".into(), on: true }),
                ModeItem::Change(C::Voice { nick: "bob".into(), on: false }),
            ]
        );
        assert_eq!(parse_modes(["b"]), [ModeItem::ListBans]);
        assert_eq!(parse_modes(["+l"]), [ModeItem::NeedsParam('l')]);
        assert_eq!(parse_modes(["+X"]), [ModeItem::Unknown('X')]);
        assert!(parse_modes(["+l", "lots"]).is_empty());
        assert!(parse_modes([]).is_empty());
    }

    #[test]
    fn changes_print_as_mode_strings() {
        let (letters, params) = mode_string(&[
            C::Operator { nick: "ann".into(), on: true },
            C::Key(Some("k".into())),
            C::Moderated(false),
        ]);
        assert_eq!(letters, "+ok-m");
        assert_eq!(params, ["ann", "k"]);
    }
}
