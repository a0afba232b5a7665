//! What the hub's tests share.

// Each test file uses a part of what is here.
#![allow(dead_code)]

use natter_core::event::AccountChange;
use natter_core::hub::SessionId;
use natter_core::{
    Command, DoorNote, Event, HubHandle, NextBatch, Outbox, Refusal, Registration, SessionKind,
};
use std::time::Duration;

/// A native session `nick` logging in with nothing else to give, its deliveries going to
/// `outbox`; tests change the fields they need.
pub fn registration(nick: &str, outbox: &Outbox) -> Registration {
    Registration {
        nick: nick.into(),
        ident: format!("{nick}@test"),
        real_host: None,
        kind: SessionKind::Native,
        outbox: outbox.clone(),
        realname: String::new(),
        lobby: true,
        password: None,
        addr: None,
        client_secret: None,
        resume: None,
        account: None,
        req: None,
    }
}

/// A session of a test, with its outbox.
pub struct Peer {
    pub id: SessionId,
    pub outbox: Outbox,
}

impl Peer {
    /// The next events, up to and including the first that `last` picks (waiting up to 10 s
    /// of real time for a password check).
    pub async fn until(&self, last: impl Fn(&Event) -> bool) -> Vec<Event> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.outbox.next_batch(&mut buf)).await {
                Ok(NextBatch::Ready) => {
                    for piece in buf.drain(..) {
                        out.extend(piece.deliveries().iter().map(|d| d.event.clone()));
                    }
                    if out.iter().any(&last) {
                        return out;
                    }
                }
                Ok(NextBatch::Closed(_)) => return out,
                Err(_) => panic!("no answer; got {out:?}"),
            }
        }
    }

    /// The answer to an account command: the account event, or the refusal.
    pub async fn answer(&self) -> Result<(AccountChange, String), Refusal> {
        let events = self.until(|e| matches!(e, Event::Account { .. } | Event::Error { .. })).await;
        for e in events {
            match e {
                Event::Account { change, account, .. } => return Ok((change, account.to_string())),
                Event::Error { refusal, .. } => return Err(refusal),
                _ => {}
            }
        }
        unreachable!()
    }

    /// Everything sent so far, after a barrier through the hub.
    pub async fn drain(&self, hub: &HubHandle) -> Vec<Event> {
        hub.command(self.id, Command::local(DoorNote::new("barrier"))).await.unwrap();
        self.until(|e| matches!(e, Event::Local(_))).await
    }
}

/// A session that logged in as `nick`.
pub async fn join(hub: &HubHandle, nick: &str) -> Peer {
    try_join(hub, nick).await.unwrap()
}

/// A session logging in as `nick`, or the refusal.
pub async fn try_join(hub: &HubHandle, nick: &str) -> Result<Peer, Refusal> {
    let outbox = Outbox::new(4096);
    let registration = registration(nick, &outbox);
    match hub.register(registration).await.unwrap() {
        Ok(r) => Ok(Peer { id: r.session, outbox }),
        Err(e) => Err(e.0),
    }
}
