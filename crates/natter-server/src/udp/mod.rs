//! The UDP front door: the tutorial's UDP group chat, done right, and safe to expose.
//!
//! Every datagram is a message or a command; room traffic from every front door comes back
//! as datagrams, long text split at character boundaries (never cut); `quit` leaves; silent
//! members expire. Each member is a small task ([`member`]) fed by the one receive loop
//! here, so a member behaves exactly like a TCP session. A member's first datagram picks its
//! door: native JSON when it starts with `{` (a `hello`), else text mode (nick `udp-<port>`,
//! or the name in a first `/nick NAME`), or with `--udp-format tutorial` the `WHO____TEXT`
//! datagrams the tutorial's own client reads ([`crate::door::udp_tutorial`]).
//!
//! UDP source addresses can be forged, so the door is guarded (`docs/protocol.md` §13):
//!
//! - **Return routability** (`udp_verify`): a new address joins only once it has sent back
//!   the token of the server's first reply ([`tokens`]), which the server computes rather
//!   than stores; until then each reply is at most three times the datagram it answers
//!   ([`replies`]), and nothing else is sent: no greeting, no history, no room traffic.
//! - **Session tokens**: a native member's datagrams must carry the token of its `welcome`
//!   (`door::native::udp`). A text member is only as safe as its address.
//! - **Bounds**: datagrams per address per second ([`address_rate`]; an address is an IP, or
//!   an IPv6 /64, never a port), members in all and per address ([`members`]), and the
//!   server's send rate ([`send_budget`]). Floods are logged once per ten seconds
//!   ([`crate::throttled_log`]).

mod address_rate;
mod datagrams;
mod member;
mod members;
mod replies;
mod send_budget;
pub(crate) mod tokens;

use crate::config::{SessionSettings, UdpFormat, UdpLimits};
use crate::door::SessionCtx;
use crate::peers::Peers;
use crate::throttled_log::ThrottledLog;
use address_rate::{AddressKey, AddressRates};
use member::{Link, MemberDoor};
use members::{Full, Members};
use natter_core::{HubHandle, SessionKind};
use replies::Dialect;
use send_budget::SendBudget;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
pub(crate) use tokens::Tokens;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

/// Datagrams queued for one member before new ones are dropped (as UDP would): above the
/// message burst of a session, and at most 64 lines' worth of memory.
const MEMBER_QUEUE: usize = 64;

/// How the UDP door runs: what members get and what bounds them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Silence after which a member expires.
    pub idle: Duration,
    /// What text members receive.
    pub format: UdpFormat,
    /// The address check, the caps and the rates.
    pub limits: UdpLimits,
}

/// Log lines the receive loop writes, each at most once per ten seconds.
struct Logs {
    over_rate: ThrottledLog,
    server_full: ThrottledLog,
    address_full: ThrottledLog,
}

/// What a first datagram from an address shows about it.
enum Proof {
    /// `/ok TOKEN` typed back: the address receives; the datagram said nothing else.
    Typed,
    /// A native frame carrying the address token: the address receives, and the frame
    /// (a `hello`) is the member's first.
    Carried,
    /// Nothing: the address has yet to show that it receives.
    Missing,
}

fn proof(datagram: &[u8], dialect: Dialect, peer: SocketAddr, tokens: &Tokens) -> Proof {
    match dialect {
        Dialect::Json => {
            let line = datagrams::lines(datagram).next().unwrap_or_default();
            match natter_proto::native::frame_token(line) {
                Some(token) if tokens.proves(peer, token.as_bytes()) => Proof::Carried,
                _ => Proof::Missing,
            }
        }
        Dialect::Text | Dialect::Tutorial => match replies::typed_token(datagram) {
            Some(token) if tokens.proves(peer, token) => Proof::Typed,
            _ => Proof::Missing,
        },
    }
}

/// Serves UDP members until `stop` changes.
pub(crate) async fn serve(
    socket: UdpSocket,
    hub: HubHandle,
    settings: Arc<SessionSettings>,
    options: Options,
    tokens: Tokens,
    mut stop: watch::Receiver<bool>,
    peers: Arc<Peers>,
) {
    let local = socket.local_addr().map(|a| a.ip()).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let verify = options.limits.verify.applies_to(local);
    if !verify && !local.to_canonical().is_loopback() {
        tracing::warn!(
            %local,
            "UDP address check is off (udp_verify = off): forged datagrams can join and draw room traffic; \
             use this only on a trusted network"
        );
    }
    let socket = Arc::new(socket);
    let budget = Arc::new(SendBudget::new(options.limits.send_rate));
    let mut rates = AddressRates::new(options.limits.address_rate);
    let mut members = Members::new(options.limits.max_members, options.limits.members_per_address);
    let logs = Logs {
        over_rate: ThrottledLog::new(),
        server_full: ThrottledLog::new(),
        address_full: ThrottledLog::new(),
    };
    // Member tasks say here when they end; at most one message per member.
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<(SocketAddr, u64)>();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP port-unreachable from a vanished member surfaces here on some systems.
                Err(_) => continue,
            },
            Some((peer, id)) = ended_rx.recv() => {
                members.ended(peer, id);
                continue;
            }
            _ = stop.changed() => break,
        };
        if !rates.allow(AddressKey::of(peer.ip())) {
            if let Some(held_back) = logs.over_rate.ready() {
                tracing::warn!(peer = %peer.ip(), held_back, "UDP datagrams over the per-address rate dropped");
            }
            continue;
        }
        let datagram = &buf[..n];
        // A datagram longer than any line keeps only enough for the door to refuse it.
        let kept = &datagram[..n.min(settings.max_line as usize + 1)];
        if let Some(inbox) = members.inbox(peer) {
            // A member that cannot keep up with its own input loses datagrams, as UDP would.
            let _ = inbox.try_send(kept.to_vec());
            continue;
        }
        let dialect = Dialect::of(datagram, options.format);
        let first = match verify.then(|| proof(datagram, dialect, peer, &tokens)) {
            None | Some(Proof::Carried) => Some(kept.to_vec()),
            Some(Proof::Typed) => None,
            Some(Proof::Missing) => {
                let token = tokens.address_token(peer);
                if let Some(reply) = replies::challenge(dialect, &token, n) {
                    reply_to_stranger(&socket, &budget, peer, &reply);
                }
                continue;
            }
        };
        if let Err(full) = members.room_for(peer) {
            let (log, what) = match full {
                Full::Server(_) => {
                    (&logs.server_full, "UDP member refused: the server has its most UDP members")
                }
                Full::Address(_) => {
                    (&logs.address_full, "UDP member refused: its address has its most UDP members")
                }
            };
            if let Some(held_back) = log.ready() {
                tracing::warn!(peer = %peer.ip(), held_back, members = members.len(), "{what}");
            }
            if let Some(reply) = replies::refusal(dialect, full, n) {
                reply_to_stranger(&socket, &budget, peer, &reply);
            }
            continue;
        }
        let door = match dialect {
            Dialect::Json => MemberDoor::Native(tokens.session_token()),
            Dialect::Text => MemberDoor::Text,
            Dialect::Tutorial => MemberDoor::Tutorial,
        };
        let (inbox, inbox_rx) = mpsc::channel(MEMBER_QUEUE);
        let id = members.admit(peer, inbox);
        let link = Link { socket: socket.clone(), peer, budget: budget.clone() };
        // The context shows the member's address as every session's is shown (cloaked).
        let ctx = SessionCtx::new(hub.clone(), peer, settings.clone(), SessionKind::Udp, Some(peers.clone()));
        // The context holds the server's `Peers`, which keeps its shutdown waiting for the
        // member to end.
        let ended = ended_tx.clone();
        tokio::spawn(async move {
            member::member(link, inbox_rx, first, door, ctx, options.idle).await;
            let _ = ended.send((peer, id));
        });
    }
}

/// Sends a reply to an address that is not a member, if the send budget has room now and the
/// socket takes it without waiting: such replies are dropped rather than queued, so that no
/// flood of them can hold the receive loop or the members up.
fn reply_to_stranger(socket: &UdpSocket, budget: &SendBudget, peer: SocketAddr, reply: &[u8]) {
    if budget.try_spend(reply.len()) {
        let _ = socket.try_send_to(reply, peer);
    }
}
