//! The encrypted TCP listener's waiting room: new connections wait for their first packet
//! side by side, so that idle or junk connections cannot keep the real peer out.
//!
//! A natter direct connector sends its PAKE message the moment it is connected, so a short
//! deadline separates it from strangers. Each new connection gets its own task that reads
//! exactly one small first frame before [`WaitingRoomLimits::first_packet`]; at most
//! [`WaitingRoomLimits::max_waiting`] wait at once, and a newcomer beyond that closes the
//! oldest one (the real peer is always the newest arrival when it connects, and is out of the
//! room one round trip later). The first connection whose first packet is a PAKE message of
//! our version comes out as a [`Candidate`]; nothing has been answered to it yet, so no guess
//! of the code has been made. Everything turned away is told to the user in one line each,
//! through a [`NoticeLimiter`].

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use crate::chat::Ui;
use crate::error::DirectError;
use crate::frame::{AbortReason, MAX_FIRST_PACKET, PROTOCOL_VERSION, Packet};
use crate::notices::NoticeLimiter;

/// How long a new connection may take to send its whole first packet. A connector sends it
/// at once; a few seconds leave room for a lost segment (TCP's first retransmission is
/// after 1 s).
pub const FIRST_PACKET_TIMEOUT: Duration = Duration::from_secs(3);
/// How many new connections may wait for their first packet at once.
pub const MAX_WAITING: usize = 32;

/// The waiting room's bounds; [`Default`] is what `natter direct listen` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitingRoomLimits {
    /// Deadline for a new connection's first packet, counted from its accept.
    pub first_packet: Duration,
    /// Connections waiting at once; one more closes the oldest (at least 1).
    pub max_waiting: usize,
}

impl Default for WaitingRoomLimits {
    fn default() -> Self {
        Self { first_packet: FIRST_PACKET_TIMEOUT, max_waiting: MAX_WAITING }
    }
}

/// A connection whose first packet was a PAKE message of our version. Nothing has been sent
/// to it yet.
#[derive(Debug)]
pub struct Candidate {
    /// The connection, with nothing read past the first packet.
    pub stream: TcpStream,
    /// Where it comes from, for the user.
    pub addr: SocketAddr,
    /// The SPAKE2 message it sent.
    pub pake: Vec<u8>,
}

/// Why a waiting connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Nothing arrived before the deadline.
    Silent,
    /// Part of a first packet arrived, then nothing until the deadline.
    Stalled,
    /// Bytes that are not a natter direct first packet, or the connection ended early.
    NotNatter,
    /// A PAKE message from another protocol version (answered with a protocol abort).
    OtherVersion(u8),
}

impl Refusal {
    fn notice(self, addr: SocketAddr, limits: &WaitingRoomLimits) -> String {
        let secs = limits.first_packet.as_secs_f64();
        match self {
            Refusal::Silent => {
                format!("closed a connection from {addr}: it sent nothing for {secs} s; still waiting")
            }
            Refusal::Stalled => format!(
                "closed a connection from {addr}: it sent part of a first message, then nothing, for {secs} s; still waiting"
            ),
            Refusal::NotNatter => {
                format!("ignored a connection from {addr} that is not natter direct; still waiting")
            }
            Refusal::OtherVersion(version) => format!(
                "ignored {addr}: it speaks natter direct version {version}, we speak {PROTOCOL_VERSION}; still waiting"
            ),
        }
    }
}

/// What a waiting connection's task hands back.
struct Arrival {
    stream: TcpStream,
    addr: SocketAddr,
    first: Result<Vec<u8>, Refusal>,
}

/// New connections waiting for their first packet, and the listener they come from.
pub struct WaitingRoom<'ui> {
    listener: TcpListener,
    limits: WaitingRoomLimits,
    waiting: JoinSet<Arrival>,
    /// Arrival order of the connections still waiting, oldest first, to close the oldest.
    order: VecDeque<(tokio::task::Id, SocketAddr, AbortHandle)>,
    notices: NoticeLimiter,
    ui: &'ui Ui,
}

impl<'ui> WaitingRoom<'ui> {
    /// Opens the room on `listener`; notices go to `ui`.
    pub fn new(listener: TcpListener, limits: WaitingRoomLimits, ui: &'ui Ui) -> Self {
        let limits = WaitingRoomLimits { max_waiting: limits.max_waiting.max(1), ..limits };
        Self {
            listener,
            limits,
            waiting: JoinSet::new(),
            order: VecDeque::with_capacity(limits.max_waiting),
            notices: NoticeLimiter::new(Instant::now().into_std()),
            ui,
        }
    }

    /// Waits for the next connection that starts with a PAKE message of our version,
    /// accepting and turning away others meanwhile.
    pub async fn next_candidate(&mut self) -> Result<Candidate, DirectError> {
        loop {
            tokio::select! {
                // Finished connections first: a candidate ready now must not wait behind a flood.
                biased;
                Some(joined) = self.waiting.join_next_with_id(), if !self.waiting.is_empty() => {
                    let (id, arrival) = match joined {
                        Ok(done) => done,
                        // A connection closed to make room (reported then); its entry is gone.
                        Err(e) => {
                            self.order.retain(|(waiting, ..)| *waiting != e.id());
                            continue;
                        }
                    };
                    self.order.retain(|(waiting, ..)| *waiting != id);
                    match arrival.first {
                        Ok(pake) => {
                            return Ok(Candidate { stream: arrival.stream, addr: arrival.addr, pake });
                        }
                        Err(refusal) => self.notice(&refusal.notice(arrival.addr, &self.limits)).await,
                    }
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, addr)) => self.admit(stream, addr).await,
                    // The connection was gone before it was accepted: nothing to serve.
                    Err(e) if is_per_connection(&e) => {}
                    Err(e) => return Err(e.into()),
                },
            }
        }
    }

    /// Tells the user about a turned-away connection, within the notice rate limit.
    pub async fn notice(&mut self, text: &str) {
        if let Some(line) = self.notices.admit(Instant::now().into_std(), text) {
            self.ui.status(line).await;
        }
    }

    /// Closes the room: the listener and every waiting connection. The count of notices held
    /// back, if any, is shown last.
    pub async fn close(mut self) {
        self.waiting.abort_all();
        drop(self.listener);
        if let Some(line) = self.notices.summary() {
            self.ui.status(line).await;
        }
    }

    async fn admit(&mut self, stream: TcpStream, addr: SocketAddr) {
        if self.order.len() >= self.limits.max_waiting
            && let Some((_, oldest, handle)) = self.order.pop_front()
        {
            // Aborting drops the task and so its stream: the connection is closed.
            handle.abort();
            let max = self.limits.max_waiting;
            self.notice(&format!(
                "closed a connection from {oldest}: {max} connections were already waiting for their first \
                 message, so the oldest made room; still waiting"
            ))
            .await;
        }
        let deadline = Instant::now() + self.limits.first_packet;
        let handle = self.waiting.spawn(first_packet(stream, addr, deadline));
        self.order.push_back((handle.id(), addr, handle));
    }
}

/// Accept errors that concern only the connection being accepted, not the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

/// One waiting connection: its first packet before `deadline`, or why not.
async fn first_packet(mut stream: TcpStream, addr: SocketAddr, deadline: Instant) -> Arrival {
    let mut buf = [0u8; 2 + MAX_FIRST_PACKET];
    let mut got = 0;
    let first =
        match tokio::time::timeout_at(deadline, read_first_frame(&mut stream, &mut buf, &mut got)).await {
            Ok(first) => first,
            Err(_) if got == 0 => Err(Refusal::Silent),
            Err(_) => Err(Refusal::Stalled),
        };
    if let Err(Refusal::OtherVersion(_)) = first
        && let Ok(abort) = Packet::Abort(AbortReason::Protocol).encode_stream()
    {
        // Best effort and never blocking: a fresh connection's send buffer is empty.
        let _ = stream.try_write(&abort);
    }
    Arrival { stream, addr, first }
}

/// Reads exactly one length-prefixed frame of at most [`MAX_FIRST_PACKET`] bytes (never
/// more, so the winner's stream continues at its second packet) and returns its PAKE
/// message. `got` counts the bytes read, so a timeout can tell silence from a stall.
async fn read_first_frame(
    stream: &mut TcpStream,
    buf: &mut [u8; 2 + MAX_FIRST_PACKET],
    got: &mut usize,
) -> Result<Vec<u8>, Refusal> {
    let mut want = 2;
    while *got < want {
        match stream.read(&mut buf[*got..want]).await {
            Ok(0) | Err(_) => return Err(Refusal::NotNatter),
            Ok(n) => *got += n,
        }
        if want == 2 && *got == 2 {
            let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
            if len == 0 || len > MAX_FIRST_PACKET {
                return Err(Refusal::NotNatter);
            }
            want = 2 + len;
        }
    }
    match Packet::decode(&buf[2..want]) {
        Ok(Packet::Pake { version: PROTOCOL_VERSION, msg }) => Ok(msg),
        Ok(Packet::Pake { version, .. }) => Err(Refusal::OtherVersion(version)),
        _ => Err(Refusal::NotNatter),
    }
}
