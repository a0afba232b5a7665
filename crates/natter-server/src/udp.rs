//! The UDP front door: the tutorial's UDP group chat, done right.
//!
//! The first datagram from an address makes it a member (nick `udp-<port>`, or the name in a
//! first `/nick NAME`, or a native JSON `hello`); every datagram is a message or a command;
//! room traffic from every front door comes back as datagrams, long text split at character
//! boundaries (never cut); `quit` leaves; silent members expire. Each member is a small task
//! fed by the one receive loop, so a member behaves exactly like a TCP session.
//!
//! With `--udp-format tutorial`, text members get what the tutorial's own client can read
//! instead of text-mode lines: only `WHO____TEXT` datagrams of at most 1024 bytes
//! ([`crate::door::udp_tutorial`]).

use crate::config::{SessionSettings, UdpFormat};
use crate::door::native::NativeDoor;
use crate::door::text::TextDoor;
use crate::door::udp_tutorial::UdpTutorialDoor;
use crate::door::{Door, Flow, SessionCtx};
use crate::peers::Peers;
use natter_core::{Event, HubHandle, NextBatch, Piece, SessionKind};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

/// Largest datagram natter sends: fits an IPv6 minimum-MTU path with room for headers.
pub const MAX_DATAGRAM: usize = 1200;
/// A render buffer grown beyond this (one long history page) is not kept between batches.
const MAX_KEPT_BUFFER: usize = 16 * 1024;
/// Datagrams queued for one member before new ones are dropped.
const MEMBER_QUEUE: usize = 256;

/// Serves UDP members until `stop` changes; `peers` shows their addresses (cloaked or not).
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    socket: UdpSocket,
    hub: HubHandle,
    settings: SessionSettings,
    idle: Duration,
    format: UdpFormat,
    mut stop: watch::Receiver<bool>,
    alive: crate::Alive,
    peers: Arc<Peers>,
) {
    let socket = Arc::new(socket);
    let mut members: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP port-unreachable from a vanished member surfaces here on some systems.
                Err(_) => continue,
            },
            _ = stop.changed() => break,
        };
        let datagram = buf[..n].to_vec();
        if let Some(tx) = members.get(&peer)
            && !tx.is_closed()
        {
            // A member that cannot keep up with its own input loses datagrams, as UDP would.
            let _ = tx.try_send(datagram);
            continue;
        }
        let (tx, rx) = mpsc::channel(MEMBER_QUEUE);
        let _ = tx.try_send(datagram);
        members.insert(peer, tx);
        members.retain(|_, tx| !tx.is_closed());
        let (socket, hub, alive, peers) = (socket.clone(), hub.clone(), alive.clone(), peers.clone());
        tokio::spawn(async move {
            member(socket, peer, rx, hub, settings, idle, format, peers).await;
            drop(alive);
        });
    }
}

#[allow(clippy::too_many_arguments)]
async fn member(
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    mut rx: mpsc::Receiver<Vec<u8>>,
    hub: HubHandle,
    settings: SessionSettings,
    idle: Duration,
    format: UdpFormat,
    peers: Arc<Peers>,
) {
    let Some(first) = rx.recv().await else { return };
    let json = first.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let ctx = SessionCtx::new(hub, peer, settings, SessionKind::Udp, Some(peers));
    if json {
        let door = NativeDoor::new(ctx.settings.max_line);
        run(socket, peer, rx, first, door, ctx, idle, false, Framing::Split).await;
    } else if format == UdpFormat::Tutorial {
        run(socket, peer, rx, first, UdpTutorialDoor::default(), ctx, idle, true, Framing::Lines).await;
    } else {
        run(socket, peer, rx, first, TextDoor::default(), ctx, idle, true, Framing::Split).await;
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

/// Lines of a datagram: a datagram is a message; embedded newlines separate several.
fn lines(datagram: &[u8]) -> impl Iterator<Item = &[u8]> {
    datagram.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(|l| !l.is_empty())
}

#[allow(clippy::too_many_arguments)]
async fn run<D: Door>(
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    mut rx: mpsc::Receiver<Vec<u8>>,
    first: Vec<u8>,
    mut door: D,
    mut ctx: SessionCtx,
    idle: Duration,
    text: bool,
    framing: Framing,
) {
    let mut closing = false;
    let mut pending = Some(first);
    if text {
        // Text members are logged in at once, as `udp-<port>` unless the first datagram names them.
        let first = pending.as_deref().unwrap_or_default();
        let named = std::str::from_utf8(first)
            .ok()
            .and_then(|s| s.trim().strip_prefix("/nick "))
            .map(|n| n.trim().to_string());
        let wanted = named.clone().unwrap_or_else(|| format!("udp-{}", peer.port()));
        for attempt in 0..5 {
            let nick = if attempt == 0 { wanted.clone() } else { format!("{wanted}-{}", attempt + 1) };
            if let Flow::Close(_) = ctx.register(nick, None).await {
                return;
            }
            if ctx.session.is_some() {
                door.on_registered(&format!("udp-{}", peer.port()), &ctx.lobby());
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
        if let Some(datagram) = pending.take() {
            last_seen = Instant::now();
            let max_line = ctx.settings.max_line;
            if datagram.len() > max_line {
                let flow = door.on_too_long(&mut ctx, max_line);
                if let Flow::Close(reason) = flow {
                    closing = true;
                    ctx.end(reason).await;
                }
            } else {
                for line in lines(&datagram) {
                    if let Flow::Close(reason) = door.on_line(line, &mut ctx).await {
                        closing = true;
                        ctx.end(reason).await;
                        break;
                    }
                }
            }
        }
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
                        send(&socket, peer, &out, framing, door.gb18030()).await;
                    }
                }
                if out.capacity() > MAX_KEPT_BUFFER {
                    out = Vec::new();
                }
                if let Some(reason) = closed {
                    let mut out = Vec::new();
                    door.render(&Event::Bye { reason: reason.0 }, &mut out);
                    send(&socket, peer, &out, framing, door.gb18030()).await;
                    break;
                }
            }
            datagram = rx.recv(), if !closing => match datagram {
                Some(d) => pending = Some(d),
                None => break,
            },
            _ = sleep_until(last_seen + idle), if !closing => {
                closing = true;
                ctx.end(format!("timed out: no datagram for {} seconds", idle.as_secs())).await;
            }
        }
    }
}

/// Sends one rendering as datagrams, framed as the door needs; `gb18030` says the bytes are
/// GB18030, not UTF-8, for where to cut.
async fn send(socket: &UdpSocket, peer: SocketAddr, bytes: &[u8], framing: Framing, gb18030: bool) {
    match framing {
        Framing::Split => {
            let chunks = if gb18030 {
                split_datagrams_gb18030(bytes, MAX_DATAGRAM)
            } else {
                split_datagrams(bytes, MAX_DATAGRAM)
            };
            for chunk in chunks {
                let _ = socket.send_to(chunk, peer).await;
            }
        }
        Framing::Lines => {
            for datagram in bytes.split(|&b| b == b'\n').filter(|d| !d.is_empty()) {
                let _ = socket.send_to(datagram, peer).await;
            }
        }
    }
}

/// Splits text into pieces of at most `max` bytes, preferring newline boundaries and never
/// cutting a UTF-8 character.
pub fn split_datagrams(bytes: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() > max {
        let window = &rest[..max];
        let cut = match window.iter().rposition(|&b| b == b'\n') {
            Some(i) if i > 0 => i + 1,
            _ => {
                // Back up to the start of a UTF-8 character.
                let mut i = max;
                while i > 0 && (rest[i] & 0xC0) == 0x80 {
                    i -= 1;
                }
                if i == 0 { max } else { i }
            }
        };
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// [`split_datagrams`] for GB18030 bytes (a member that reads GBK): newline boundaries first,
/// else the last GB18030 character boundary, so that every datagram decodes on its own.
pub fn split_datagrams_gb18030(bytes: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() > max {
        // A newline byte is always a newline in GB18030: trail bytes are 0x30 and up.
        let cut = match rest[..max].iter().rposition(|&b| b == b'\n') {
            Some(i) if i > 0 => i + 1,
            _ => match natter_proto::decode::gb18030_cut(rest, max) {
                0 => max,
                cut => cut,
            },
        };
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb18030_splitting_keeps_every_character_whole() {
        let text = "a你好世界😀".repeat(200);
        let bytes = natter_proto::decode::encode_gb18030(&text);
        let parts = split_datagrams_gb18030(&bytes, 101);
        for p in &parts {
            assert!(p.len() <= 101);
            assert!(!encoding_rs::GB18030.decode_without_bom_handling(p).1, "a character was cut");
        }
        assert_eq!(parts.concat(), &bytes[..]);
        assert_eq!(
            split_datagrams_gb18030(b"aaaa\nbbbb\ncccc\n", 10),
            vec![&b"aaaa\nbbbb\n"[..], &b"cccc\n"[..]]
        );
    }

    #[test]
    fn splitting_keeps_every_byte_and_every_character_whole() {
        let text = "你好世界".repeat(200);
        let parts = split_datagrams(text.as_bytes(), 100);
        assert!(parts.iter().all(|p| p.len() <= 100 && std::str::from_utf8(p).is_ok()));
        assert_eq!(parts.concat(), text.as_bytes());
        let lines = b"aaaa\nbbbb\ncccc\n";
        assert_eq!(split_datagrams(lines, 10), vec![&b"aaaa\nbbbb\n"[..], &b"cccc\n"[..]]);
    }

    #[test]
    fn datagram_lines() {
        let got: Vec<&[u8]> = lines(b"hi\r\nthere\n\n").collect();
        assert_eq!(got, vec![&b"hi"[..], &b"there"[..]]);
    }
}
