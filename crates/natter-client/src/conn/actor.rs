//! The actor: the background task that owns the session. It logs in, runs the session loop
//! (frames from the server, commands from the [`Client`](super::Client) handles, pings, retries) and
//! reconnects when the connection drops; the frames it reads are routed here to the other
//! parts (requests, catch-up, resend).

use super::catch_up::CatchUp;
use super::login::{self, backoff_delay, random_u64};
use super::requests::{Pending, Requests, expects_answer, set_frame_id};
use super::resend::Outgoing;
use super::wire::{Conn, ReadError, owned_msg};
use super::{Actor, ClientError, ConnectOptions, Event, LOBBY, Status};
use natter_proto::names::fold;
use natter_proto::native::{ClientFrame, ErrorCode, MessageFrame, ServerFrame};
use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// What a [`Client`](super::Client) handle asks of the actor.
pub(super) enum Cmd {
    /// Queue a chat message.
    Send(Outgoing),
    /// Send a frame; its answer becomes an event.
    Submit(ClientFrame),
    /// Send a frame and hand its answer back.
    Request(ClientFrame, oneshot::Sender<Result<ServerFrame<'static>, ClientError>>),
    /// Answer once nothing is outstanding.
    WaitIdle(oneshot::Sender<()>),
    /// Say goodbye and end the session; answer once the connection is closed.
    Quit(Option<String>, oneshot::Sender<()>),
}

/// What the handles read without asking the actor: a copy it refreshes after each change.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) nick: String,
    pub(super) connected: bool,
    /// Messages in the outbox, not acknowledged yet.
    pub(super) unacked: usize,
    pub(super) rooms: Vec<String>,
}

/// How a session ended.
enum End {
    /// Asked to quit (or every handle dropped): no reconnect.
    Quit,
    /// The connection was lost, for this reason.
    Lost(String),
}

impl Actor {
    pub(super) fn new(
        opts: ConnectOptions,
        cmds: mpsc::UnboundedReceiver<Cmd>,
        events: mpsc::UnboundedSender<Event>,
        shared: Arc<Mutex<Shared>>,
    ) -> Self {
        let saved_login = opts.saved_logins.as_ref().and_then(|l| l.load(&opts.servers[0].addr, &opts.nick));
        Actor {
            saved_login,
            nick: opts.nick.clone(),
            opts,
            cmds,
            events,
            shared,
            rooms: vec![LOBBY.to_string()],
            joined_here: HashSet::new(),
            catch_up: CatchUp::default(),
            outbox: VecDeque::new(),
            requests: Requests::new(),
            generation: 0,
            connected_once: false,
            nick_taken_streak: 0,
            current: 0,
            last_server: None,
            client_secret: login::client_secret(),
        }
    }

    pub(super) fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn sync_shared(&self, connected: bool) {
        if let Ok(mut s) = self.shared.lock() {
            s.nick = self.nick.clone();
            s.connected = connected;
            s.unacked = self.outbox.len();
            s.rooms = self.rooms.clone();
        }
    }

    /// True when nothing is outstanding: no message unacknowledged, no catch-up running, no
    /// answer awaited.
    fn is_idle(&self) -> bool {
        self.outbox.is_empty() && !self.catch_up.in_progress() && !self.requests.awaiting_answers()
    }

    fn wake_idle(&mut self) {
        if self.is_idle() {
            self.requests.wake_idle_waiters();
        }
    }

    /// The server connected to, or tried next.
    pub(super) fn server_addr(&self) -> &str {
        &self.opts.servers[self.current].addr
    }

    /// Turns to the next server, round robin.
    fn next_server(&mut self) {
        self.current = (self.current + 1) % self.opts.servers.len();
    }

    /// The first login: each server in turn until one answers. A server that answers and
    /// refuses (a nickname taken, a certificate not the one expected) ends it: another node of
    /// the same cluster would answer the same.
    async fn first_login(&mut self) -> Result<(Conn, String), ClientError> {
        let mut failures = Vec::new();
        loop {
            let e = match self.login().await {
                Ok(done) => return Ok(done),
                Err(e) => e,
            };
            let moves_on =
                matches!(e, ClientError::Connect { .. } | ClientError::Tls(_) | ClientError::Protocol(_));
            if self.opts.servers.len() == 1 || !moves_on {
                return Err(e);
            }
            let why = match &e {
                ClientError::Connect { source, .. } => source.to_string(),
                e => e.to_string(),
            };
            failures.push((self.server_addr().to_string(), why));
            self.next_server();
            if failures.len() == self.opts.servers.len() {
                return Err(ClientError::NoServer(failures));
            }
            self.emit(Event::Warning(format!("{e}; trying {} instead", self.server_addr())));
        }
    }

    /// The task: log in, run the session, reconnect after a drop, until quit. `first` learns
    /// how the first login went.
    ///
    /// After a drop or a failed attempt the next server is tried: at once while some server of
    /// the round is untried, after the backoff (with jitter) once a full round failed, and
    /// after the first backoff step when a connection is lost (so that the clients of a node
    /// that died do not all land on the next one in the same instant). With one server, this
    /// is the plain exponential backoff.
    pub(super) async fn run(mut self, first: oneshot::Sender<Result<(), ClientError>>) {
        let mut connection = match self.first_login().await {
            Ok(done) => Some(done),
            Err(e) => {
                let _ = first.send(Err(e));
                return;
            }
        };
        self.sync_shared(true);
        let _ = first.send(Ok(()));
        let mut attempt = 0u32;
        let mut untried_in_round = 0usize;
        let reason = loop {
            let reason = match connection.take() {
                Some((conn, server)) => match self.session(conn, server).await {
                    End::Quit => break "quit".to_string(),
                    End::Lost(reason) => {
                        // A new round of attempts, from the next server.
                        untried_in_round = 0;
                        reason
                    }
                },
                None => match self.login().await {
                    Ok(done) => {
                        attempt = 0;
                        self.sync_shared(true);
                        connection = Some(done);
                        continue;
                    }
                    // A certificate that changed under a running session: stop, say why.
                    Err(e @ ClientError::CertificateRefused(_)) => break e.to_string(),
                    Err(e) => e.to_string(),
                },
            };
            self.sync_shared(false);
            if !self.opts.reconnect {
                break reason;
            }
            self.next_server();
            let delay = if untried_in_round > 0 {
                untried_in_round -= 1;
                Duration::ZERO
            } else {
                attempt += 1;
                untried_in_round = self.opts.servers.len() - 1;
                backoff_delay(attempt, self.opts.backoff_min, self.opts.backoff_max, random_u64())
            };
            let next = self.server_addr().to_string();
            self.emit(Event::Status(Status::Reconnecting { next, attempt, delay, reason }));
            if !self.wait_offline(delay).await {
                break "quit".to_string();
            }
        };
        self.closed(reason).await
    }

    /// The session is over for `reason`: say so, then answer the handles until they are gone.
    async fn closed(mut self, reason: String) {
        self.sync_shared(false);
        self.requests.fail_all(|| ClientError::Closed);
        self.requests.wake_idle_waiters();
        self.emit(Event::Status(Status::Closed { reason }));
        // Answer whatever is still asked of us until every handle is gone.
        while let Some(cmd) = self.cmds.recv().await {
            match cmd {
                Cmd::WaitIdle(tx) => {
                    let _ = tx.send(());
                }
                Cmd::Quit(_, tx) => {
                    let _ = tx.send(());
                }
                Cmd::Request(_, tx) => {
                    let _ = tx.send(Err(ClientError::Closed));
                }
                Cmd::Send(_) | Cmd::Submit(_) => {}
            }
        }
    }

    /// Sleeps `delay` while keeping the handles served; false when asked to quit.
    async fn wait_offline(&mut self, delay: Duration) -> bool {
        let deadline = tokio::time::sleep(delay);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return true,
                cmd = self.cmds.recv() => match cmd {
                    None => return false,
                    Some(Cmd::Quit(_, tx)) => {
                        let _ = tx.send(());
                        return false;
                    }
                    Some(Cmd::Send(out)) => {
                        self.outbox.push_back(out);
                        self.sync_shared(false);
                    }
                    Some(Cmd::Submit(_)) => self.emit(Event::Warning(
                        "not connected (reconnecting); that command was not sent, try again in a moment".into(),
                    )),
                    Some(Cmd::Request(_, tx)) => {
                        let _ = tx.send(Err(ClientError::Disconnected));
                    }
                    Some(Cmd::WaitIdle(tx)) => {
                        let idle = self.is_idle();
                        self.requests.wait_idle(tx, idle);
                    }
                },
            }
        }
    }

    /// One connection, from login to its end.
    async fn session(&mut self, mut conn: Conn, server: String) -> End {
        self.generation += 1;
        self.joined_here.clear();
        self.catch_up.abandon();
        let reconnected = self.connected_once;
        self.connected_once = true;
        self.sync_shared(true);
        let addr = self.server_addr().to_string();
        let moved_from = self.last_server.replace(addr.clone()).filter(|previous| *previous != addr);
        self.emit(Event::Status(Status::Connected {
            addr,
            server,
            nick: self.nick.clone(),
            reconnected,
            moved_from,
        }));
        let end = self.session_loop(&mut conn).await;
        // Requests of the dead connection will never be answered.
        self.requests.fail_all(|| ClientError::Disconnected);
        // Held-back live messages are fetched again by the next catch-up.
        self.catch_up.abandon();
        end
    }

    async fn session_loop(&mut self, conn: &mut Conn) -> End {
        // First login: the rooms asked for; after a reconnect: the rooms we were in.
        let mut wanted: Vec<String> = if self.generation > 1 { Vec::new() } else { self.opts.rooms.clone() };
        for r in &self.rooms {
            if !wanted.iter().any(|w| fold(w) == fold(r)) {
                wanted.push(r.clone());
            }
        }
        for room in wanted {
            if fold(&room) == fold(LOBBY) {
                continue;
            }
            let id = self.requests.register(Pending::AutoJoin);
            if let Err(e) = conn.write(&ClientFrame::Join { room, key: None, id: Some(id) }).await {
                return End::Lost(e);
            }
        }
        if let Err(e) = self.flush_outbox(conn).await {
            return End::Lost(e);
        }
        let mut ping = tokio::time::interval(self.opts.ping_interval);
        // The first tick fires at once: the lag shows right after login.
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry = tokio::time::interval(Duration::from_millis(250));
        retry.tick().await;
        loop {
            let result = tokio::select! {
                frame = conn.next_frame(&self.events) => match frame {
                    Ok(frame) => self.on_frame(frame, conn).await,
                    Err(ReadError::Closed(why)) => return End::Lost(why),
                },
                cmd = self.cmds.recv() => match cmd {
                    None => {
                        let _ = conn.write(&ClientFrame::Quit { reason: None }).await;
                        return End::Quit;
                    }
                    Some(Cmd::Quit(reason, tx)) => {
                        self.quit(conn, reason).await;
                        let _ = tx.send(());
                        return End::Quit;
                    }
                    Some(cmd) => self.on_cmd(cmd, conn).await,
                },
                _ = ping.tick() => self.ping(conn).await,
                _ = retry.tick(), if self.retry_due_later() => {
                    self.flush_outbox(conn).await
                }
            };
            if let Err(e) = result {
                return End::Lost(e);
            }
            self.sync_shared(true);
            self.wake_idle();
        }
    }

    async fn quit(&mut self, conn: &mut Conn, reason: Option<String>) {
        if conn.write(&ClientFrame::Quit { reason }).await.is_ok() {
            // Wait briefly for the server to close, so that the quit is processed.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while conn.next_frame(&self.events).await.is_ok() {}
            })
            .await;
        }
        conn.shutdown().await;
    }

    async fn ping(&mut self, conn: &mut Conn) -> Result<(), String> {
        let limit = self.opts.ping_interval * 2;
        if self.requests.ping_overdue(limit) {
            return Err(format!("the server did not answer a ping for {} s", limit.as_secs()));
        }
        let id = self.requests.register(Pending::Ping(Instant::now()));
        conn.write(&ClientFrame::Ping { id: Some(id) }).await
    }

    async fn on_cmd(&mut self, cmd: Cmd, conn: &mut Conn) -> Result<(), String> {
        match cmd {
            Cmd::Send(out) => {
                self.outbox.push_back(out);
                self.flush_outbox(conn).await
            }
            Cmd::Submit(mut frame) => {
                let id = self.requests.register(Pending::Submitted { answered: expects_answer(&frame) });
                if !set_frame_id(&mut frame, id.clone()) {
                    self.requests.forget(&id);
                }
                match conn.encode(&frame) {
                    Ok(line) => conn.write_line(&line).await,
                    Err(why) => {
                        self.requests.forget(&id);
                        let message = Cow::Owned(format!("request {why}"));
                        self.emit(Event::Frame(ServerFrame::Error {
                            id: None,
                            code: ErrorCode::TooLong,
                            message,
                        }));
                        Ok(())
                    }
                }
            }
            Cmd::Request(mut frame, tx) => {
                let id = self.requests.register(Pending::Submitted { answered: false });
                if !set_frame_id(&mut frame, id.clone()) {
                    self.requests.forget(&id);
                    let _ = tx.send(Err(ClientError::Protocol("that frame gets no answer".into())));
                    return Ok(());
                }
                match conn.encode(&frame) {
                    Ok(line) => {
                        self.requests.replace(&id, Pending::Reply(tx));
                        conn.write_line(&line).await
                    }
                    Err(why) => {
                        self.requests.forget(&id);
                        let _ = tx.send(Err(ClientError::TooLong(format!("request {why}"))));
                        Ok(())
                    }
                }
            }
            Cmd::WaitIdle(tx) => {
                let idle = self.is_idle();
                self.requests.wait_idle(tx, idle);
                Ok(())
            }
            Cmd::Quit(..) => Ok(()),
        }
    }

    /// Forgets a room we are no longer in (parted or kicked), so that a reconnect does not join
    /// it again and its catch-up stops.
    fn left_room(&mut self, room: &str) {
        let key = fold(room);
        self.rooms.retain(|r| fold(r) != key);
        self.joined_here.remove(&key);
        self.catch_up.forget_room(&key);
    }

    /// Routes one frame from the server: to the request it answers, to the outbox, to the
    /// catch-up, or out as an event.
    async fn on_frame(&mut self, frame: ServerFrame<'static>, conn: &mut Conn) -> Result<(), String> {
        let pending = self.requests.take(&frame);
        match frame {
            ServerFrame::Ack { cid, mid, room, ts, duplicate, offline, .. } => {
                let cid = cid.map(Cow::into_owned).or(match pending {
                    Some(Pending::Send(c)) => Some(c),
                    _ => None,
                });
                if let Some(cid) = cid {
                    self.on_acked(cid, mid, room.map(Cow::into_owned), ts, duplicate, offline);
                }
            }
            ServerFrame::Error { id, code, message } => match pending {
                Some(Pending::Token) => self.emit(Event::Warning(format!(
                    "could not get a token to stay logged in after a reconnect: {message}"
                ))),
                Some(Pending::Send(cid)) => self.on_refused(cid, code, message.into_owned()),
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(Err(ClientError::Server { code, message: message.into_owned() }));
                }
                Some(Pending::CatchUp(room)) => {
                    self.emit(Event::Warning(format!(
                        "could not fetch missed messages of {room}: {message}"
                    )));
                    self.finish_catch_up(&room);
                }
                Some(Pending::AutoJoin) => {
                    self.emit(Event::Frame(ServerFrame::Error { id: None, code, message }));
                }
                Some(Pending::Ping(_) | Pending::Reclaim) => {}
                Some(Pending::Submitted { .. }) | None => {
                    if id == Some(natter_proto::native::RequestId::Num(super::account::HELLO_ID)) {
                        self.on_hello_error(code);
                    }
                    self.emit(Event::Frame(ServerFrame::Error { id, code, message }))
                }
            },
            ServerFrame::Joined {
                id,
                room,
                topic,
                members,
                count,
                ephemeral,
                operators,
                voiced,
                history,
            } => {
                let key = fold(&room);
                if !self.rooms.iter().any(|r| fold(r) == key) {
                    self.rooms.push(room.to_string());
                }
                self.joined_here.insert(key);
                let history: Vec<MessageFrame<'static>> = history.into_iter().map(owned_msg).collect();
                let frame = ServerFrame::Joined {
                    id,
                    room: room.clone(),
                    topic,
                    members,
                    count,
                    ephemeral,
                    operators,
                    voiced,
                    history: if matches!(pending, Some(Pending::Reply(_))) {
                        history.clone()
                    } else {
                        Vec::new()
                    },
                };
                match pending {
                    Some(Pending::Reply(tx)) => {
                        let _ = tx.send(Ok(frame));
                    }
                    _ => self.emit(Event::Frame(frame)),
                }
                self.deliver_join_history(&room, history, conn).await?;
                self.flush_outbox(conn).await?;
            }
            ServerFrame::History { id, room, messages, more } => match pending {
                Some(Pending::CatchUp(name)) => {
                    self.on_missed_page(name, &room, messages, more, conn).await?
                }
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(Ok(ServerFrame::History { id, room, messages, more }));
                }
                _ => self.emit(Event::Frame(ServerFrame::History { id, room, messages, more })),
            },
            ServerFrame::Message(m) => {
                if let Some(m) = self.catch_up.hold(owned_msg(m)) {
                    self.deliver(m, false, false);
                }
            }
            ServerFrame::Pong { id } => match pending {
                Some(Pending::Ping(sent)) => self.emit(Event::Lag(sent.elapsed())),
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(Ok(ServerFrame::Pong { id }));
                }
                _ => {}
            },
            ServerFrame::Nick { old, new, ts } => {
                if fold(&old) == fold(&self.nick) {
                    self.nick = new.to_string();
                }
                self.emit(Event::Frame(ServerFrame::Nick { old, new, ts }));
            }
            ServerFrame::Part { room, nick, reason, ts } => {
                if fold(&nick) == fold(&self.nick) {
                    self.left_room(&room);
                }
                let frame = ServerFrame::Part { room, nick, reason, ts };
                match pending {
                    Some(Pending::Reply(tx)) => {
                        let _ = tx.send(Ok(frame));
                    }
                    _ => self.emit(Event::Frame(frame)),
                }
            }
            ServerFrame::Kick { room, nick, by, reason, ts } => {
                // Kicked out: like a part, so a reconnect does not join the room again.
                if fold(&nick) == fold(&self.nick) {
                    self.left_room(&room);
                }
                self.emit(Event::Frame(ServerFrame::Kick { room, nick, by, reason, ts }));
            }
            ServerFrame::Account { id, change, account } => {
                self.on_account_change(id.as_ref(), change, &account, conn).await?;
                let frame = ServerFrame::Account { id, change, account };
                match pending {
                    Some(Pending::Reply(tx)) => {
                        let _ = tx.send(Ok(frame));
                    }
                    _ => self.emit(Event::Frame(frame)),
                }
            }
            ServerFrame::ResumeToken { id, account, token } => match pending {
                Some(Pending::Token) => self.on_token(&account, &token),
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(Ok(ServerFrame::ResumeToken { id, account, token }));
                }
                // Asked for by someone else: kept from the event stream all the same.
                _ => {}
            },
            ServerFrame::Bye { reason } => {
                conn.bye = Some(reason.to_string());
                self.emit(Event::Frame(ServerFrame::Bye { reason }));
            }
            other => match pending {
                Some(Pending::Reply(tx)) => {
                    let _ = tx.send(Ok(other));
                }
                _ => self.emit(Event::Frame(other)),
            },
        }
        Ok(())
    }
}
