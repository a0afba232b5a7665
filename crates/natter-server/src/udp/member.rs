//! One UDP member: a small task fed by the receive loop, which behaves exactly like a TCP
//! session (the same doors, the same hub), except that its output goes out as datagrams,
//! within the server's send budget, and that it expires when silent.

use super::datagrams::{MAX_DATAGRAM, lines, split_datagrams, split_datagrams_gb18030};
use super::replies::typed_token;
use super::send_budget::SendBudget;
use super::tokens::SessionToken;
use crate::door::native::UdpNativeDoor;
use crate::door::text::TextDoor;
use crate::door::udp_tutorial::UdpTutorialDoor;
use crate::door::{DatagramDoor, Flow, Pace, SessionCtx};
use natter_core::{Event, NextBatch, Piece};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};

/// A render buffer grown beyond this (one long history page) is not kept between batches.
const MAX_KEPT_BUFFER: usize = 16 * 1024;

/// Which door a member gets, chosen by its first datagram and `--udp-format`.
#[derive(Debug)]
pub(crate) enum MemberDoor {
    /// Native JSON frames, guarded by this session token once logged in.
    Native(SessionToken),
    /// Text-mode lines (`nc -u`).
    Text,
    /// The tutorial client's `WHO____TEXT` datagrams.
    Tutorial,
}

/// Where a member's datagrams go, and the budget they are sent within.
#[derive(Clone)]
pub(crate) struct Link {
    /// The UDP door's socket.
    pub socket: Arc<UdpSocket>,
    /// The member's address.
    pub peer: SocketAddr,
    /// The server's UDP send rate.
    pub budget: Arc<SendBudget>,
}

impl Link {
    /// Sends one datagram when the budget allows (waiting for it if need be).
    async fn send(&self, datagram: &[u8]) {
        let wait = self.budget.book(datagram.len());
        if !wait.is_zero() {
            sleep(wait).await;
        }
        let _ = self.socket.send_to(datagram, self.peer).await;
    }
}

/// Runs one member until it leaves, expires or is cut. `first` is the datagram it joined
/// with, if it was more than the proof of its address; `ctx` is its session's context.
pub(crate) async fn member(
    link: Link,
    inbox: mpsc::Receiver<Vec<u8>>,
    first: Option<Vec<u8>>,
    door: MemberDoor,
    ctx: SessionCtx,
    idle: Duration,
) {
    let member = Member { link, inbox, idle };
    match door {
        MemberDoor::Native(token) => {
            let door = UdpNativeDoor::new(ctx.settings.max_line as usize, token.as_str());
            member.run(first, door, ctx, false, Framing::Split).await
        }
        MemberDoor::Tutorial => {
            member.run(first, UdpTutorialDoor::default(), ctx, true, Framing::Lines).await
        }
        MemberDoor::Text => member.run(first, TextDoor::default(), ctx, true, Framing::Split).await,
    }
}

/// How a rendering becomes datagrams.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// As few datagrams of at most [`MAX_DATAGRAM`] as fit ([`split_datagrams`]).
    Split,
    /// Each line (newline-terminated) is one datagram, sent without its newline: the door has
    /// already cut its output to datagram size ([`UdpTutorialDoor`]).
    Lines,
}

struct Member {
    link: Link,
    inbox: mpsc::Receiver<Vec<u8>>,
    idle: Duration,
}

impl Member {
    async fn run<D: DatagramDoor>(
        mut self,
        first: Option<Vec<u8>>,
        mut door: D,
        mut ctx: SessionCtx,
        text: bool,
        framing: Framing,
    ) {
        let mut closing = false;
        let mut pending = first;
        if text {
            // Text members are logged in at once, as `udp-<port>` unless the first datagram names them.
            let port = self.link.peer.port();
            let named = pending
                .as_deref()
                .and_then(|first| std::str::from_utf8(first).ok())
                .and_then(|s| s.trim().strip_prefix("/nick "))
                .map(|n| n.trim().to_string());
            let wanted = named.clone().unwrap_or_else(|| format!("udp-{port}"));
            for attempt in 0..5 {
                let nick = if attempt == 0 { wanted.clone() } else { format!("{wanted}-{}", attempt + 1) };
                if let Flow::Close(_) = ctx.register(nick, None).await {
                    return;
                }
                if ctx.session.is_some() {
                    door.on_registered(&format!("udp-{port}"), &ctx.lobby());
                    break;
                }
            }
            if ctx.session.is_none() {
                return;
            }
            if named.is_some() {
                pending = None;
            }
        }
        let mut last_seen = Instant::now();
        let mut batch: Vec<Piece> = Vec::new();
        let mut out = Vec::new();
        loop {
            if ctx.pace != Pace::Waiting
                && let Some(datagram) = pending.take()
            {
                let (heard, flow, rest) = self.take(&datagram, &mut door, &mut ctx, text).await;
                if heard {
                    last_seen = Instant::now();
                }
                if let Flow::Close(reason) = flow {
                    closing = true;
                    ctx.end(reason).await;
                } else if let Some(rest) = rest {
                    // Over the budget halfway through the datagram: its other lines wait.
                    pending = Some(datagram[rest..].to_vec());
                }
            }
            // A member over its command budget is not read until it has paid, as a TCP
            // session is not: its datagrams wait in its inbox, and beyond that are dropped.
            let waiting = ctx.pace == Pace::Waiting && !closing;
            tokio::select! {
                items = ctx.outbox.next_batch(&mut batch) => {
                    let closed = match items {
                        NextBatch::Ready => None,
                        NextBatch::Closed(reason) => Some(reason),
                    };
                    for piece in batch.drain(..) {
                        for delivery in piece.deliveries() {
                            // One datagram (or a few) per delivery, rendered once per event for
                            // every member that speaks this door's wire.
                            out.clear();
                            crate::write_batch::render(&mut door, delivery, &mut out);
                            self.send(&out, framing, door.gb18030()).await;
                        }
                    }
                    if out.capacity() > MAX_KEPT_BUFFER {
                        out = Vec::new();
                    }
                    if let Some(reason) = closed {
                        let mut out = Vec::new();
                        door.render(&Event::Bye { reason: reason.0 }, &mut out);
                        self.send(&out, framing, door.gb18030()).await;
                        break;
                    }
                }
                datagram = self.inbox.recv(), if !closing && !waiting && pending.is_none() => match datagram {
                    Some(d) => pending = Some(d),
                    None => break,
                },
                _ = sleep_until(ctx.budget.due()), if waiting => ctx.pace = Pace::Warned,
                _ = sleep_until(last_seen + self.idle), if !closing => {
                    closing = true;
                    ctx.hub.metrics().disconnected(natter_core::metrics::Disconnect::IdleTimeout);
                    ctx.end(format!("timed out: no datagram for {} seconds", self.idle.as_secs())).await;
                }
            }
        }
    }

    /// Hands one datagram's lines to the door. Says whether any of it spoke for the member
    /// (which keeps it from expiring), whether the session must end, and where the lines not
    /// taken begin when the member went over its command budget on the way.
    async fn take<D: DatagramDoor>(
        &self,
        datagram: &[u8],
        door: &mut D,
        ctx: &mut SessionCtx,
        text: bool,
    ) -> (bool, Flow, Option<usize>) {
        let max_line = ctx.settings.max_line as usize;
        if datagram.len() > max_line {
            return (text, door.on_too_long_datagram(ctx, max_line), None);
        }
        let mut heard = text;
        for line in lines(datagram) {
            if !door.screen(line, ctx) {
                continue;
            }
            heard = true;
            if text && typed_token(line).is_some() {
                // A second `/ok`: the address proved itself already.
                let text = "this address has already joined; /help lists the commands";
                if let Flow::Close(reason) =
                    ctx.local(Event::Notice { req: None, room: None, text: text.into() })
                {
                    return (heard, Flow::Close(reason), None);
                }
                continue;
            }
            if let Flow::Close(reason) = door.on_line(line, ctx).await {
                return (heard, Flow::Close(reason), None);
            }
            if ctx.pace == Pace::Waiting {
                // `line` lies within `datagram`: the rest starts where it ends.
                let end = line.as_ptr() as usize - datagram.as_ptr() as usize + line.len();
                return (heard, Flow::Continue, (end < datagram.len()).then_some(end));
            }
        }
        (heard, Flow::Continue, None)
    }

    /// Sends one rendering as datagrams, framed as the door needs; `gb18030` says the bytes
    /// are GB18030, not UTF-8, for where to cut.
    async fn send(&self, bytes: &[u8], framing: Framing, gb18030: bool) {
        match framing {
            Framing::Split => {
                let chunks = if gb18030 {
                    split_datagrams_gb18030(bytes, MAX_DATAGRAM)
                } else {
                    split_datagrams(bytes, MAX_DATAGRAM)
                };
                for chunk in chunks {
                    self.link.send(chunk).await;
                }
            }
            Framing::Lines => {
                for datagram in bytes.split(|&b| b == b'\n').filter(|d| !d.is_empty()) {
                    self.link.send(datagram).await;
                }
            }
        }
    }
}
