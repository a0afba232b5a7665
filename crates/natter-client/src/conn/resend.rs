//! Resending: the outbox of chat messages not acknowledged yet. A message is sent once per
//! connection, with its client id (`cid`), and sent again on the next connection until the
//! server acknowledges or refuses it; the server drops a resend it already stored, so nothing
//! is doubled. Messages to a room being rejoined wait for its `joined`; rate-limited ones are
//! retried a second later.

use super::Actor;
use super::requests::Pending;
use super::wire::Conn;
use super::{Event, Target};
use natter_proto::names::fold;
use natter_proto::native::{ClientFrame, ErrorCode, MessageFrame, ServerFrame};
use std::borrow::Cow;
use std::time::{Duration, Instant};

/// A chat message in the outbox, from [`super::Client::send`] until acknowledged or refused.
#[derive(Debug, Clone)]
pub(super) struct Outgoing {
    pub(super) cid: String,
    pub(super) target: Target,
    pub(super) text: String,
    pub(super) action: bool,
    /// Connection generation this was last sent on; resent when it differs from the current.
    pub(super) sent_on: Option<u64>,
    /// Retry after this instant (rate limited or store failure).
    pub(super) retry_at: Option<Instant>,
}

impl Outgoing {
    /// A message not sent yet.
    pub(super) fn new(cid: String, target: Target, text: String, action: bool) -> Self {
        Outgoing { cid, target, text, action, sent_on: None, retry_at: None }
    }
}

impl Actor {
    /// True when a message to `target` can go out on this connection now.
    fn target_ready(&self, target: &Target) -> bool {
        match target {
            Target::Nick(_) => true,
            Target::Room(room) => {
                let key = fold(room);
                // A room we are rejoining must wait for its `joined`; others go (the server
                // answers `not_in_room` if we are not in it).
                self.joined_here.contains(&key) || !self.rooms.iter().any(|r| fold(r) == key)
            }
        }
    }

    /// True when some message waits for its retry time.
    pub(super) fn retry_due_later(&self) -> bool {
        self.outbox.iter().any(|o| o.retry_at.is_some())
    }

    /// Sends every message of the outbox that is due and not sent on this connection yet;
    /// those too long for the server are refused here ([`Event::SendFailed`]).
    pub(super) async fn flush_outbox(&mut self, conn: &mut Conn) -> Result<(), String> {
        let now = Instant::now();
        let mut lines = Vec::new();
        let mut refused = Vec::new();
        for i in 0..self.outbox.len() {
            let o = &self.outbox[i];
            if o.sent_on == Some(self.generation) || o.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            if !self.target_ready(&o.target) {
                continue;
            }
            let (room, to) = match &o.target {
                Target::Room(r) => (Some(r.clone()), None),
                Target::Nick(n) => (None, Some(n.clone())),
            };
            let (cid, text, action) = (o.cid.clone(), o.text.clone(), o.action);
            let id = self.requests.register(Pending::Send(cid.clone()));
            let frame = ClientFrame::Send {
                room,
                to,
                text,
                action,
                notice: false,
                cid: Some(cid.clone()),
                id: Some(id.clone()),
            };
            match conn.encode(&frame) {
                Ok(line) => {
                    let o = &mut self.outbox[i];
                    o.sent_on = Some(self.generation);
                    o.retry_at = None;
                    lines.push(line);
                }
                Err(why) => {
                    self.requests.forget(&id);
                    refused.push((cid, why));
                }
            }
        }
        for (cid, why) in refused {
            self.outbox.retain(|o| o.cid != cid);
            let message = format!("message {why}");
            self.emit(Event::SendFailed { cid, code: ErrorCode::TooLong, message });
        }
        for line in lines {
            conn.write_line(&line).await?;
        }
        Ok(())
    }

    /// The server stored (or already had) message `cid`: it leaves the outbox and is delivered
    /// as our own message, built from what we sent.
    pub(super) fn on_acked(
        &mut self,
        cid: String,
        mid: Option<u64>,
        room: Option<String>,
        ts: u64,
        duplicate: bool,
        offline: bool,
    ) {
        let Some(pos) = self.outbox.iter().position(|o| o.cid == cid) else { return };
        let Some(out) = self.outbox.remove(pos) else { return };
        let to = match &out.target {
            Target::Nick(n) => Some(Cow::Owned(n.clone())),
            Target::Room(_) => None,
        };
        let room = room.or(match &out.target {
            Target::Room(r) => Some(r.clone()),
            Target::Nick(_) => None,
        });
        let msg = MessageFrame {
            room: room.map(Cow::Owned),
            from: Cow::Owned(self.nick.clone()),
            to,
            text: Cow::Owned(out.text),
            action: out.action,
            notice: false,
            mid,
            ts,
        };
        // A duplicate private message (which no room's ids place) was shown when first acked.
        let private = msg.to.is_some();
        let offline_note = (offline && !duplicate)
            .then(|| {
                msg.to
                    .as_deref()
                    .map(|to| format!("{to} is offline: your message is kept and delivered when they log in"))
            })
            .flatten();
        if (mid.is_some() && !private) || !duplicate {
            self.deliver(msg, true, false);
        }
        self.emit(Event::Acked { cid, mid, duplicate });
        if let Some(text) = offline_note {
            self.emit(Event::Frame(ServerFrame::Notice { id: None, room: None, text: Cow::Owned(text) }));
        }
    }

    /// The server refused message `cid`: retried later when the refusal is temporary, else
    /// dropped and reported.
    pub(super) fn on_refused(&mut self, cid: String, code: ErrorCode, message: String) {
        if matches!(code, ErrorCode::RateLimited | ErrorCode::StoreFailed) {
            if let Some(o) = self.outbox.iter_mut().find(|o| o.cid == cid) {
                o.sent_on = None;
                o.retry_at = Some(Instant::now() + Duration::from_secs(1));
            }
        } else {
            self.outbox.retain(|o| o.cid != cid);
            self.emit(Event::SendFailed { cid, code, message });
        }
    }
}
