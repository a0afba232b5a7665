//! The ledger of requests in flight: every frame the actor sends with a request id is
//! recorded here with what its answer is for (a message's acknowledgement, a caller waiting
//! for a reply, a catch-up page, a ping...), so that an answering frame can be routed by its
//! id, and [`super::Client::wait_idle`] knows when nothing is outstanding.

use super::ClientError;
use natter_proto::native::{ClientFrame, RequestId, ServerFrame};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What a request id in flight stands for: where its answer goes.
pub(super) enum Pending {
    /// A chat message from the outbox, by client id.
    Send(String),
    /// A frame from [`super::Client::submit`]; `answered` when the server always answers it
    /// (with the id), so that waiting for idle waits for the answer too.
    Submitted { answered: bool },
    /// A frame from [`super::Client::request`]; the caller waits for the answer.
    Reply(oneshot::Sender<Result<ServerFrame<'static>, ClientError>>),
    /// One page of a room's missed messages after a reconnect.
    CatchUp(String),
    /// A join the client sends by itself after login (the rooms asked for, or those it was in).
    AutoJoin,
    /// A ping, sent at this instant.
    Ping(Instant),
    /// A resume token the client asked for by itself, to save.
    Token,
    /// A `nick` the client sends by itself after logging in to the account its nickname is
    /// (taking it back from a session left behind); answered only when refused, silently.
    Reclaim,
}

/// The requests in flight on the current connection, and who waits for them all to end.
pub(super) struct Requests {
    pending: HashMap<i64, Pending>,
    next_id: i64,
    idle_waiters: Vec<oneshot::Sender<()>>,
}

impl Requests {
    /// An empty ledger; ids start at 1 (0 is the login's).
    pub(super) fn new() -> Self {
        Requests { pending: HashMap::new(), next_id: 1, idle_waiters: Vec::new() }
    }

    /// Records a request and returns the id to send it with.
    pub(super) fn register(&mut self, what: Pending) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, what);
        RequestId::Num(id)
    }

    /// Changes what the request `id` stands for.
    pub(super) fn replace(&mut self, id: &RequestId, what: Pending) {
        if let RequestId::Num(n) = id {
            self.pending.insert(*n, what);
        }
    }

    /// Forgets a request that was not sent after all.
    pub(super) fn forget(&mut self, id: &RequestId) {
        if let RequestId::Num(n) = id {
            self.pending.remove(n);
        }
    }

    /// What `frame` answers, removed from the ledger; `None` for frames that answer nothing
    /// of ours.
    pub(super) fn take(&mut self, frame: &ServerFrame<'_>) -> Option<Pending> {
        match frame_id(frame) {
            Some(RequestId::Num(n)) => self.pending.remove(n),
            _ => None,
        }
    }

    /// True while a request whose answer someone waits for is in flight (pings, automatic
    /// joins and submitted frames that are answered only on error do not count; a resume
    /// token being fetched does, so that a script's last wait keeps its login saved).
    pub(super) fn awaiting_answers(&self) -> bool {
        self.pending.values().any(|p| {
            !matches!(
                p,
                Pending::Ping(_)
                    | Pending::AutoJoin
                    | Pending::Reclaim
                    | Pending::Submitted { answered: false }
            )
        })
    }

    /// True when a ping has waited longer than `limit` for its pong.
    pub(super) fn ping_overdue(&self, limit: Duration) -> bool {
        self.pending.values().any(|p| matches!(p, Pending::Ping(t) if t.elapsed() > limit))
    }

    /// Empties the ledger when the connection ends: callers waiting for a reply get `error()`.
    pub(super) fn fail_all(&mut self, error: impl Fn() -> ClientError) {
        for (_, p) in self.pending.drain() {
            if let Pending::Reply(tx) = p {
                let _ = tx.send(Err(error()));
            }
        }
    }

    /// Answers `waiter` now when `idle`, else once [`Requests::wake_idle_waiters`] is called.
    pub(super) fn wait_idle(&mut self, waiter: oneshot::Sender<()>, idle: bool) {
        if idle {
            let _ = waiter.send(());
        } else {
            self.idle_waiters.push(waiter);
        }
    }

    /// Answers everyone waiting for idle.
    pub(super) fn wake_idle_waiters(&mut self) {
        for w in self.idle_waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// The request id of a server frame, when it answers one. Public so that tools that speak the
/// protocol themselves (`natter bench`, tests) match answers the same way the client does.
pub fn frame_id<'f>(frame: &'f ServerFrame<'_>) -> Option<&'f RequestId> {
    use ServerFrame as S;
    match frame {
        S::Welcome { id, .. }
        | S::Ack { id, .. }
        | S::Topic { id, .. }
        | S::Joined { id, .. }
        | S::Members { id, .. }
        | S::Rooms { id, .. }
        | S::History { id, .. }
        | S::IgnoreMode { id, .. }
        | S::Ignoring { id, .. }
        | S::Notice { id, .. }
        | S::Error { id, .. }
        | S::RoomModes { id, .. }
        | S::Bans { id, .. }
        | S::Invite { id, .. }
        | S::Away { id, .. }
        | S::UserInfo { id, .. }
        | S::Whowas { id, .. }
        | S::Account { id, .. }
        | S::ResumeToken { id, .. }
        | S::Pong { id } => id.as_ref(),
        S::Message(_)
        | S::Verify { .. }
        | S::Join { .. }
        | S::Part { .. }
        | S::Quit { .. }
        | S::Nick { .. }
        | S::Mode { .. }
        | S::Kick { .. }
        | S::NickProtected { .. }
        | S::Bye { .. } => None,
    }
}

/// Sets the request id of a client frame that can carry one; false for those that cannot.
pub(super) fn set_frame_id(frame: &mut ClientFrame, new: RequestId) -> bool {
    use ClientFrame as C;
    match frame {
        C::Hello { id, .. }
        | C::Send { id, .. }
        | C::Join { id, .. }
        | C::Part { id, .. }
        | C::Nick { id, .. }
        | C::Topic { id, .. }
        | C::Who { id, .. }
        | C::Rooms { id }
        | C::IgnoreAll { id, .. }
        | C::Ignore { id, .. }
        | C::Unignore { id, .. }
        | C::History { id, .. }
        | C::Ephemeral { id, .. }
        | C::Mode { id, .. }
        | C::Bans { id, .. }
        | C::Kick { id, .. }
        | C::Invite { id, .. }
        | C::Away { id, .. }
        | C::Whois { id, .. }
        | C::Whowas { id, .. }
        | C::Register { id, .. }
        | C::Logout { id }
        | C::ResumeToken { id }
        | C::Passwd { id, .. }
        | C::Login { msg: None, id, .. }
        | C::Ping { id } => {
            *id = Some(new);
            true
        }
        C::Quit { .. } | C::Login { .. } | C::Broadcast { .. } | C::Sendto { .. } | C::Help {} | C::Ls {} => {
            false
        }
    }
}

/// True for frames the server always answers with a frame carrying the request id (part, nick,
/// ephemeral, kick and mode changes are answered only on error; `mode` without changes is
/// answered with the settings).
pub(super) fn expects_answer(frame: &ClientFrame) -> bool {
    use ClientFrame as C;
    match frame {
        C::Mode { changes, .. } => changes.is_empty(),
        frame => matches!(
            frame,
            C::Join { .. }
                | C::Topic { .. }
                | C::Who { .. }
                | C::Rooms { .. }
                | C::IgnoreAll { .. }
                | C::Ignore { .. }
                | C::Unignore { .. }
                | C::History { .. }
                | C::Bans { .. }
                | C::Invite { .. }
                | C::Register { .. }
                | C::Login { msg: None, .. }
                | C::Logout { .. }
                | C::ResumeToken { .. }
                | C::Passwd { .. }
                | C::Away { .. }
                | C::Whois { .. }
                | C::Whowas { .. }
                | C::Ping { .. }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_set_on_frames_that_carry_them() {
        let mut f = ClientFrame::Who { room: None, detail: false, after: None, limit: None, id: None };
        assert!(set_frame_id(&mut f, RequestId::Num(3)));
        assert_eq!(
            f,
            ClientFrame::Who {
                room: None,
                detail: false,
                after: None,
                limit: None,
                id: Some(RequestId::Num(3))
            }
        );
        assert!(!set_frame_id(&mut ClientFrame::Quit { reason: None }, RequestId::Num(1)));
    }

    #[test]
    fn wait_idle_waits_for_the_frames_the_server_always_answers() {
        let room = || "#r".to_string();
        assert!(expects_answer(&ClientFrame::Whois { nick: "bob".into(), id: None }));
        assert!(expects_answer(&ClientFrame::Bans { room: room(), id: None }));
        assert!(expects_answer(&ClientFrame::Away { text: None, id: None }));
        assert!(expects_answer(&ClientFrame::Topic { room: room(), topic: None, id: None }));
        assert!(expects_answer(&ClientFrame::Mode { room: room(), changes: Vec::new(), id: None }));
        let op = vec![natter_proto::native::RoomChangeFrame::Op { nick: "bob".into(), on: true }];
        assert!(!expects_answer(&ClientFrame::Mode { room: room(), changes: op, id: None }));
        let kick = ClientFrame::Kick { room: room(), nick: "bob".into(), reason: None, id: None };
        assert!(!expects_answer(&kick));
        assert!(!expects_answer(&ClientFrame::Part { room: room(), reason: None, id: None }));
    }
}
