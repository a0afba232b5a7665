//! Front doors: each turns one protocol's lines into hub commands and renders hub events back
//! into that protocol's bytes. The connection loop around them ([`crate::conn`]) is shared.

mod datagram;
pub mod helpdesk;
pub mod irc;
pub mod listing;
pub mod modes;
pub mod native;
pub mod slots;
pub mod text;
pub mod udp_tutorial;

pub(crate) use datagram::DatagramDoor;

use crate::address::PeerAddr;
use crate::config::SessionSettings;
use crate::limits::{CommandBudget, RateLimiter, Strikes};
use crate::peers::{Admitted, Peers};
use natter_core::hub::SessionId;
use natter_core::metrics::Disconnect;
use natter_core::{
    Command, DoorNote, Event, HubHandle, Outbox, Refusal, Registration, RenderSlot, Req, SessionKind,
};
use std::sync::Arc;
use std::time::Duration;

/// Why a plain-text login is refused under `require_tls`, as every door says it (the native
/// `bye`, text mode's `*** bye:`, IRC's `ERROR`).
pub(crate) const TLS_REQUIRED: &str = "this server requires TLS: connect again with TLS (natter connect --tls; IRC: the TLS port, usually 6697)";

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

    /// The longest line this door's connections read, for a session with `settings`: the
    /// limit its line buffer is made with (and made again with when a parked connection
    /// wakes).
    fn line_limit(settings: &SessionSettings) -> usize {
        settings.max_line as usize
    }

    /// When a client cannot tell two answers apart if they arrive in one read (the chat-room
    /// tutorial's client), the pause between them: each delivery's lines are then written one
    /// at a time. `None`: write batches whole (everyone else).
    fn paced(&self) -> Option<Duration> {
        None
    }

    /// The render-cache slot (see [`slots`]) for events rendered once for all recipients, or
    /// `None` when this event must be rendered for this session alone.
    fn cache_slot(event: &Event) -> Option<RenderSlot>;

    /// The render-cache slot for this session: lets a door whose rendering depends on
    /// negotiated options (IRC capabilities) pick a variant; defaults to [`Door::cache_slot`].
    fn slot(&self, event: &Event) -> Option<RenderSlot> {
        Self::cache_slot(event)
    }

    /// True when this session's output is GB18030 rather than UTF-8 (a text-mode peer that
    /// sends GBK): the UDP door then cuts datagrams at GB18030 character boundaries.
    fn gb18030(&self) -> bool {
        false
    }

    /// Renders an event onto `out`. Called once per shared event (whose result is cached) or
    /// per delivery for private ones; `observe` has seen the event before.
    fn render(&mut self, event: &Event, out: &mut Vec<u8>);

    /// Lets the door track state from its own session's events (current room, nick).
    fn observe(&mut self, _event: &Event) {}

    /// The session just logged in as `nick` and is in `lobby` (before any event arrives).
    fn on_registered(&mut self, _nick: &str, _lobby: &str) {}

    /// The peer presented a TLS client certificate with this SHA-256 fingerprint
    /// (`AA:BB:...`), before its first line: an identity for doors that log in with it (IRC
    /// SASL EXTERNAL). Kept by the door rather than the session context, which every
    /// connection carries.
    fn on_client_certificate(&mut self, _fingerprint: &str) {}

    /// The connection was just handed to this door, before any line: a door may log in at
    /// once (help-desk guests need no name).
    fn on_connect(&mut self, _ctx: &mut SessionCtx) -> impl Future<Output = Flow> + Send {
        std::future::ready(Flow::Continue)
    }

    /// Handles one complete line from the peer.
    fn on_line(&mut self, line: &[u8], ctx: &mut SessionCtx) -> impl Future<Output = Flow> + Send;

    /// Runs every [`Door::TICK`]: a door may check the peer is alive (IRC PING).
    fn on_tick(&mut self, _ctx: &mut SessionCtx) -> Flow {
        Flow::Continue
    }

    /// A line exceeded the limit and was dropped.
    fn on_too_long(&mut self, ctx: &mut SessionCtx, max: usize) -> Flow {
        ctx.reject(None, Refusal::LineTooLong { max })
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

/// True for a metadata-only message (IRC `TAGMSG`, e.g. typing notices) or its
/// acknowledgement, and for news of someone's account (IRC's `account-notify`): doors that
/// carry no such metadata show nothing for it.
pub(crate) fn is_meta_only(event: &Event) -> bool {
    match event {
        Event::Message(m) | Event::Ack { message: m, .. } => m.text.is_empty() && m.meta.is_some(),
        Event::AccountOf { .. } | Event::Realname { .. } => true,
        _ => false,
    }
}

/// Everything a door needs to act for its session.
pub(crate) struct SessionCtx {
    pub hub: HubHandle,
    pub outbox: Outbox,
    pub session: Option<SessionId>,
    pub peer: PeerAddr,
    pub settings: Arc<SessionSettings>,
    pub kind: SessionKind,
    pub rate: RateLimiter,
    pub strikes: Strikes,
    /// Messages dropped by the rate limit and not yet told about ([`SessionCtx::rate_limited_counted`]);
    /// a `u16` (a flood is cut long before) so that it fits beside the flags: this context
    /// lives in every connection's task.
    pub dropped: u16,
    /// What other commands may still cost before they are slowed down.
    pub budget: CommandBudget,
    /// Whether the session's lines wait for its budget.
    pub pace: Pace,
    /// The connection cannot be read on the network: TLS, or the Unix socket.
    pub secure: bool,
    /// The connection is a WebSocket (counted as such until it ends).
    websocket: bool,
    /// The server's connection counts and address cloaks; `None` for the console.
    peers: Option<Arc<Peers>>,
    /// Where this connection stands in those counts.
    counted: Counted,
}

/// Where a session stands with its [`CommandBudget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    /// Within its budget.
    Free,
    /// Was told it is over its budget, and has not been within it since (told once a streak).
    Warned,
    /// Over its budget: its next line waits until [`CommandBudget::due`].
    Waiting,
}

/// Where a session stands in the server's connection counts ([`Peers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    /// Not counted (UDP members, the console).
    No,
    /// Counted, not logged in yet: its place in the newcomers' line ([`Peers::is_evicted`]).
    Newcomer(u32),
    /// Counted and logged in.
    LoggedIn,
    /// Given back ([`SessionCtx::release_counts`]): the connection is ending.
    Released,
}

impl SessionCtx {
    /// A session the connection caps do not count (UDP members, the console); `peers` shows
    /// its address (cloaked or not).
    pub fn new(
        hub: HubHandle,
        peer: impl Into<PeerAddr>,
        settings: Arc<SessionSettings>,
        kind: SessionKind,
        peers: Option<Arc<Peers>>,
    ) -> Self {
        hub.metrics().connection_opened(kind);
        let rate = RateLimiter::new(settings.msg_burst);
        Self {
            hub,
            outbox: Outbox::bounded(settings.outbox as usize, u64::from(settings.outbox_kib) * 1024),
            session: None,
            peer: peer.into(),
            settings,
            kind,
            rate,
            strikes: Strikes::default(),
            dropped: 0,
            budget: CommandBudget::default(),
            pace: Pace::Free,
            secure: false,
            websocket: false,
            peers,
            counted: Counted::No,
        }
    }

    /// The session of a TCP connection counted when it was accepted: the session now holds the
    /// count, and gives it back when it logs in (newcomers) and when it ends (its address).
    pub fn admitted(
        hub: HubHandle,
        settings: Arc<SessionSettings>,
        kind: SessionKind,
        admitted: Admitted,
    ) -> Self {
        let (peer, ticket) = (admitted.peer(), admitted.ticket());
        let peers = admitted.hand_over();
        let counted = if peers.is_some() { Counted::Newcomer(ticket) } else { Counted::No };
        let mut ctx = Self::new(hub, peer, settings, kind, peers);
        ctx.counted = counted;
        ctx
    }

    /// `user@host` as others see this peer, and the real address when the host is a cloak.
    pub fn ident(&self, user: &str) -> (String, Option<String>) {
        let (host, real) = match &self.peers {
            Some(peers) => peers.shown_host(self.peer.ip()),
            None => (self.peer.ip().to_canonical().to_string(), None),
        };
        (format!("{user}@{host}"), real)
    }

    /// Where this connection parks when idle ([`crate::park`]); `None` when it never does.
    pub fn park(&self) -> Option<&crate::park::Park> {
        self.peers.as_deref().and_then(Peers::park)
    }

    /// The connection is a WebSocket: counted as one too, until it ends.
    pub fn over_websocket(&mut self) {
        if !self.websocket {
            self.websocket = true;
            self.hub.metrics().websocket_changed(true);
        }
    }

    /// The session logged in: it no longer counts as a newcomer.
    fn logged_in(&mut self, session: SessionId) {
        self.session = Some(session);
        if let Counted::Newcomer(ticket) = self.counted {
            if let Some(peers) = &self.peers {
                peers.logged_in(ticket);
            }
            self.counted = Counted::LoggedIn;
        }
    }

    /// True when `require_tls` turns this session's login away: a plain-text connection from
    /// another machine. The Unix socket is trusted, and so is loopback while this machine is
    /// (`exempt_loopback`, on by default).
    pub fn plain_text_refused(&self) -> bool {
        self.settings.tls.is_some_and(|policy| policy.require_tls)
            && !self.secure
            && !self.peers.as_ref().is_some_and(|peers| peers.is_exempt(self.peer.ip()))
    }

    /// The room every session starts in (the hub's setting).
    pub fn lobby(&self) -> String {
        self.hub.lobby().to_string()
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
            Err(_) => self.close(Disconnect::SlowReader, "too slow: your connection fell too far behind"),
        }
    }

    /// Queues a door's own output (see [`DoorNote`]) for this session only.
    pub fn note(&mut self, note: DoorNote) -> Flow {
        self.local(Event::Local(note))
    }

    /// Answers a bad request with a refusal; repeated bad requests end the session.
    pub fn reject(&mut self, req: Req, refusal: Refusal) -> Flow {
        if self.strikes.hit() {
            tracing::info!(peer = %self.peer, "disconnected: too many invalid requests");
            return self.close(Disconnect::BadInput, format!("too many invalid requests (last: {refusal})"));
        }
        self.local(Event::Error { req, refusal })
    }

    /// Answers a bad request with the door's own output (`what` names the problem in the
    /// goodbye, should this strike end the session).
    pub fn reject_note(&mut self, what: &str, note: DoorNote) -> Flow {
        if self.strikes.hit() {
            tracing::info!(peer = %self.peer, "disconnected: too many invalid requests");
            return self.close(Disconnect::BadInput, format!("too many invalid requests (last: {what})"));
        }
        self.note(note)
    }

    /// Takes one message token; false when the session is over its rate.
    pub fn allow_message(&mut self) -> bool {
        self.rate.allow(self.settings.msg_rate, self.settings.msg_burst)
    }

    /// Answers a message refused by the rate limit: a warning first, a disconnect when the
    /// flood goes on. One refusal per refused message: programs (IRC, native) match them to
    /// their requests.
    pub fn rate_limited(&mut self, req: Req) -> Flow {
        if let Some(flow) = self.flooding() {
            return flow;
        }
        self.local(Event::Error { req, refusal: Refusal::RateLimited { per_second: self.settings.msg_rate } })
    }

    /// Like [`SessionCtx::rate_limited`] for people (text mode, UDP): a pasted screenful must
    /// not answer with a screenful of warnings. The warning comes once, when dropping starts;
    /// the rest are counted, and [`SessionCtx::settle_dropped`] says how many were lost. The
    /// disconnect for a flood that goes on is the same.
    pub fn rate_limited_counted(&mut self) -> Flow {
        if let Some(flow) = self.flooding() {
            return flow;
        }
        self.dropped = self.dropped.saturating_add(1);
        if self.dropped > 1 {
            return Flow::Continue;
        }
        self.local(Event::Error {
            req: None,
            refusal: Refusal::RateLimited { per_second: self.settings.msg_rate },
        })
    }

    /// Call before each line of a door that uses [`SessionCtx::rate_limited_counted`]: once the
    /// session may send again, one line tells how many messages were dropped.
    pub fn settle_dropped(&mut self) -> Flow {
        if self.dropped == 0 || !self.rate.ready(self.settings.msg_rate, self.settings.msg_burst) {
            return Flow::Continue;
        }
        let n = std::mem::take(&mut self.dropped);
        let text = if n == 1 {
            "1 message was not sent (too fast)".to_string()
        } else {
            format!("{n} messages were not sent (too fast)")
        };
        self.local(Event::Notice { req: None, room: None, text: text.into() })
    }

    /// The disconnect for a flood that goes on, once the refusals in a row pass the burst.
    fn flooding(&mut self) -> Option<Flow> {
        if self.rate.excess() > self.settings.msg_burst.max(10) {
            tracing::info!(peer = %self.peer, "disconnected: flooding");
            return Some(self.close(Disconnect::Flood, "flooding: too many messages too fast"));
        }
        None
    }

    /// Logs in with `nick`; on refusal the error goes to the peer, who may try again.
    pub async fn register(&mut self, nick: String, req: Req) -> Flow {
        self.register_as(nick, Credentials::default(), req).await.0
    }

    /// Logs in with what the client gave besides its nick (IRC `USER` and `PASS`, the native
    /// `hello`'s password and client secret). Also returns the refusal when the hub refused
    /// the password (IRC hangs up then).
    pub async fn register_as(
        &mut self,
        nick: String,
        given: Credentials<'_>,
        req: Req,
    ) -> (Flow, Option<Refusal>) {
        self.register_resuming(nick, given, None, req).await
    }

    /// [`SessionCtx::register_as`], logging in to an account with a resume token right after
    /// the welcome (native `hello` with `resume`).
    pub async fn register_resuming(
        &mut self,
        nick: String,
        given: Credentials<'_>,
        resume: Option<natter_core::resume::ResumeToken>,
        req: Req,
    ) -> (Flow, Option<Refusal>) {
        if self.plain_text_refused() {
            tracing::info!(peer = %self.peer, "login refused: plain text, and TLS is required");
            return (self.close(Disconnect::LoginRefused, TLS_REQUIRED), None);
        }
        let (ident, real_host) = self.ident(given.user.unwrap_or(self.kind.name()));
        let registration = Registration {
            nick,
            ident,
            real_host,
            kind: self.kind,
            outbox: self.outbox.clone(),
            realname: given.realname,
            lobby: self.kind != SessionKind::Irc || self.settings.irc_lobby,
            password: given.password,
            addr: Some(self.peer.ip()),
            client_secret: given.client_secret,
            resume,
            account: given.account,
            req: req.clone(),
        };
        match self.hub.register(registration).await {
            Ok(Ok(registered)) => {
                self.logged_in(registered.session);
                (Flow::Continue, None)
            }
            Ok(Err(refused)) => {
                let password = matches!(refused.0, Refusal::BadPassword | Refusal::TooManyAttempts { .. })
                    .then(|| refused.0.clone());
                (self.reject(req, refused.0), password)
            }
            Err(_) => (self.close(Disconnect::Shutdown, "the server is shutting down"), None),
        }
    }

    /// Logs in as `nick` outside the lobby without telling the peer anything: a help-desk
    /// guest's name is the server's choice, so a name that is taken is the server's to retry.
    /// `Ok(Err(refusal))` when the hub refused it; `Err` when the server is shutting down.
    pub async fn register_unseen(&mut self, nick: String) -> Result<Result<(), Refusal>, ()> {
        let (ident, real_host) = self.ident(self.kind.name());
        let registration = Registration {
            nick,
            ident,
            real_host,
            kind: self.kind,
            outbox: self.outbox.clone(),
            realname: String::new(),
            lobby: false,
            password: None,
            addr: Some(self.peer.ip()),
            client_secret: None,
            resume: None,
            account: None,
            req: None,
        };
        match self.hub.register(registration).await {
            Ok(Ok(registered)) => {
                self.logged_in(registered.session);
                Ok(Ok(()))
            }
            Ok(Err(refused)) => Ok(Err(refused.0)),
            Err(_) => Err(()),
        }
    }

    /// Ends the session for `why`, which is counted here, once, where it is decided; `reason`
    /// is what the peer (and the rooms) are told.
    pub fn close(&self, why: Disconnect, reason: impl Into<String>) -> Flow {
        self.hub.metrics().disconnected(why);
        Flow::Close(reason.into())
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

    /// Hands a command to the hub and charges the session's budget: once it is spent, the
    /// session's next lines wait until it is paid for ([`Pace::Waiting`]), the first time
    /// with a notice that says so.
    pub async fn command(&mut self, command: Command) -> Flow {
        let Some(session) = self.session else {
            return self.reject(None, Refusal::NotRegistered);
        };
        if let Flow::Close(reason) = self.charge(command.cost()) {
            return Flow::Close(reason);
        }
        match self.hub.command(session, command).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close("the server is shutting down".into()),
        }
    }

    /// Charges the session's budget for work done on its behalf outside a hub command (a
    /// logged-in session's SASL login: a password hash), as [`SessionCtx::command`] does.
    pub fn charge(&mut self, cost: u32) -> Flow {
        match self.budget.charge(cost, self.settings.command_rate) {
            Some(_) => {
                // This command goes; the session's next lines wait until it is paid for (the
                // connection keeps writing meanwhile, and stops reading).
                if self.pace == Pace::Free {
                    let text = "slow down: too many commands; each now waits its turn (listing who is \
                                online or the rooms, and nick and topic changes, cost most)";
                    if let Flow::Close(reason) =
                        self.local(Event::Notice { req: None, room: None, text: text.into() })
                    {
                        return Flow::Close(reason);
                    }
                }
                tracing::debug!(peer = %self.peer, "commands slowed down");
                self.pace = Pace::Waiting;
            }
            None if cost > 0 => self.pace = Pace::Free,
            None => {}
        }
        Flow::Continue
    }
}

impl SessionCtx {
    /// True when this connection, not logged in yet, was told to make room for a newer one
    /// (the server's newcomers are at their cap and it has waited longest).
    pub fn evicted(&self) -> bool {
        match (self.counted, &self.peers) {
            (Counted::Newcomer(ticket), Some(peers)) => peers.is_evicted(ticket),
            _ => false,
        }
    }

    /// Gives the connection's counts back (its address's share, and its newcomer slot if it
    /// never logged in), once. The connection loop calls it before the socket closes, so that
    /// a peer that sees the end finds its place free; dropping the context calls it too.
    pub fn release_counts(&mut self) {
        let counted = std::mem::replace(&mut self.counted, Counted::Released);
        if counted == Counted::Released {
            return;
        }
        self.hub.metrics().connection_closed(self.kind);
        if self.websocket {
            self.hub.metrics().websocket_changed(false);
        }
        if let Some(peers) = &self.peers {
            match counted {
                Counted::No | Counted::Released => {}
                Counted::Newcomer(ticket) => peers.release(self.peer.ip(), Some(ticket)),
                Counted::LoggedIn => peers.release(self.peer.ip(), None),
            }
        }
    }
}

impl Drop for SessionCtx {
    fn drop(&mut self) {
        self.release_counts();
    }
}

/// What a client gives at login besides its nick; each door fills what its protocol has.
#[derive(Debug, Default)]
pub(crate) struct Credentials<'a> {
    /// The user name shown in `user@host` (IRC `USER`); `None`: the door's name.
    pub user: Option<&'a str>,
    /// The real name (IRC `USER`); empty when none.
    pub realname: String,
    /// The server password (IRC `PASS`, native `hello`).
    pub password: Option<String>,
    /// The client's lifetime secret that scopes its message ids (native `hello`).
    pub client_secret: Option<String>,
    /// The account the client logged in to before registering (IRC SASL).
    pub account: Option<natter_core::authenticate::Authenticated>,
}

/// What a `Certificates` answer says, before the list of fingerprints (NickServ `CERT`, text
/// mode).
pub(crate) fn certificates_said(
    account: &str,
    change: &natter_core::vocab::CertificateChange,
    done: bool,
) -> String {
    use natter_core::vocab::CertificateChange;
    match (change, done) {
        (CertificateChange::Add(fp), true) => {
            format!("{fp} now logs in to {account} (SASL EXTERNAL); its certificates:")
        }
        (CertificateChange::Add(fp), false) => {
            format!("{fp} is already registered (to {account} or another account); {account}'s certificates:")
        }
        (CertificateChange::Remove(fp), true) => {
            format!("{fp} no longer logs in to {account}; its certificates:")
        }
        (CertificateChange::Remove(fp), false) => {
            format!("{fp} is not one of {account}'s certificates, which are:")
        }
        (CertificateChange::List, _) => format!("{account}'s certificates:"),
    }
}

#[cfg(test)]
mod tests {
    /// The context lives in every connection's task and parked entry: a few bytes more per
    /// connection cross an allocator size class and cost idle connections a tenth more memory
    /// (`conn.rs` tests the parked entry).
    #[test]
    fn the_session_context_stays_small() {
        assert!(
            std::mem::size_of::<super::SessionCtx>() <= 120,
            "{}",
            std::mem::size_of::<super::SessionCtx>()
        );
    }
}
