//! One batch of deliveries on its way to one peer: rendered (or copied from the render cache)
//! into one contiguous buffer and written with one system call per [`CHUNK`].
//!
//! Fanout is the hot path: a room message reaches every member. Contiguous bytes cost the
//! kernel far less to take in than a `writev` of one small piece per delivery (measured: less
//! server CPU per delivery, and a quarter of the system calls), and the buffer is per worker
//! thread, so an idle connection holds none.

use crate::door::Door;
use crate::transport::Transport;
use bytes::Bytes;
use natter_core::{Delivery, Event, Piece};
use std::cell::RefCell;
use std::io;

/// Bytes gathered before they are written: big enough that a system call moves a lot, small
/// enough to stay in cache.
const CHUNK: usize = 256 * 1024;

/// A buffer grown beyond this (one huge rendering, e.g. a long history page) is not kept.
const MAX_KEPT: usize = CHUNK + CHUNK / 4;

thread_local! {
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What became of a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// The socket took every byte of every piece (and of `last`).
    All,
    /// The socket is full: these bytes must be written once it drains, then the pieces left
    /// in the batch (and `last`), which were not rendered.
    Rest(Vec<u8>),
    /// The peer is gone.
    PeerGone,
}

/// Renders `batch` (and then `last`, e.g. a goodbye) for `door` and writes as much as the
/// socket takes without waiting. Rendering stops at the first [`CHUNK`] the socket does not
/// take whole: a slow reader's backlog stays in its pieces (counted by its outbox, shared
/// with other recipients) instead of being rendered into memory of its own. Removes the
/// pieces rendered from `batch`, keeping its allocation; `last` is rendered only once
/// `batch` is empty.
pub(crate) fn write_batch<D: Door, S: Transport>(
    stream: &mut S,
    door: &mut D,
    batch: &mut Vec<Piece>,
    last: Option<&Event>,
) -> Written {
    OUT.with_borrow_mut(|out| {
        out.clear();
        let mut full = false;
        let mut rendered = 0;
        for piece in batch.iter() {
            for delivery in piece.deliveries() {
                render_encoded(&*stream, door, delivery, out);
            }
            rendered += 1;
            if out.len() >= CHUNK {
                match flush(stream, out) {
                    Ok(true) => {}
                    Ok(false) => {
                        full = true;
                        break;
                    }
                    Err(()) => return Written::PeerGone,
                }
            }
        }
        batch.drain(..rendered);
        if batch.is_empty()
            && let Some(event) = last
        {
            if S::MESSAGES {
                let mut lines = Vec::new();
                door.render(event, &mut lines);
                stream.encode(&lines, out);
            } else {
                door.render(event, out);
            }
        }
        if !full {
            match flush(stream, out) {
                Ok(true) => {}
                Ok(false) => full = true,
                Err(()) => return Written::PeerGone,
            }
        }
        // Rare (a slow reader): the caller keeps an exact copy while it waits; the buffer
        // stays here for the next batch, unless one huge rendering grew it.
        let written = if full { Written::Rest(out.to_vec()) } else { Written::All };
        out.clear();
        if out.capacity() > MAX_KEPT {
            *out = Vec::new();
        }
        written
    })
}

/// [`render`] in the transport's encoding. For WebSocket the framed bytes are cached too, in
/// a slot of their own: each event is framed once, and every WebSocket recipient gets a copy,
/// as TCP recipients do. Byte streams take the plain path (decided at compile time).
fn render_encoded<D: Door, S: Transport>(stream: &S, door: &mut D, delivery: &Delivery, out: &mut Vec<u8>) {
    if !S::MESSAGES {
        return render(door, delivery, out);
    }
    door.observe(&delivery.event);
    let Some(slot) = door.slot(&delivery.event) else {
        let mut lines = Vec::new();
        door.render(&delivery.event, &mut lines);
        return stream.encode(&lines, out);
    };
    let Some(encoded) = stream.encoded_slot(slot) else {
        return stream.encode(&plain(door, delivery, slot), out);
    };
    match delivery.cache.get(encoded) {
        Some(bytes) => out.extend_from_slice(bytes),
        None => {
            let start = out.len();
            stream.encode(&plain(door, delivery, slot), out);
            delivery.cache.get_or_render(encoded, || Bytes::copy_from_slice(&out[start..]));
        }
    }
}

/// The door's shared rendering of a delivery, from the cache or rendered into it.
fn plain<D: Door>(door: &mut D, delivery: &Delivery, slot: natter_core::RenderSlot) -> Bytes {
    delivery
        .cache
        .get_or_render(slot, || {
            let mut lines = Vec::new();
            door.render(&delivery.event, &mut lines);
            Bytes::from(lines)
        })
        .clone()
}

/// Appends one delivery's bytes: from the render cache when the door shares its rendering
/// (rendering it there first if this is the first recipient), else rendered for this session.
pub(crate) fn render<D: Door>(door: &mut D, delivery: &Delivery, out: &mut Vec<u8>) {
    door.observe(&delivery.event);
    let Some(slot) = door.slot(&delivery.event) else {
        return door.render(&delivery.event, out);
    };
    match delivery.cache.get(slot) {
        Some(bytes) => out.extend_from_slice(bytes),
        None => {
            let start = out.len();
            door.render(&delivery.event, out);
            // Another thread may have cached it meanwhile: same event, same bytes.
            delivery.cache.get_or_render(slot, || Bytes::copy_from_slice(&out[start..]));
        }
    }
}

/// Writes `out` without waiting. `Ok(true)`: all written and `out` is empty; `Ok(false)`: the
/// socket is full and `out` holds what it did not take (possibly nothing, when the transport
/// took every byte but still holds some of them: TLS records); `Err`: the peer is gone.
fn flush<S: Transport>(stream: &mut S, out: &mut Vec<u8>) -> Result<bool, ()> {
    let mut written = 0;
    let all = loop {
        if written == out.len() {
            break true;
        }
        match stream.try_write_encoded(&out[written..]) {
            Ok(0) => return Err(()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    };
    out.drain(..written);
    Ok(all && !stream.has_pending_output())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::native::NativeDoor;
    use natter_core::event::deliver;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use tokio::net::TcpStream;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    fn notice(i: usize) -> Event {
        Event::Notice { req: None, room: None, text: format!("{i} {}", "n".repeat(1000)).into() }
    }

    fn expected(events: &[Event]) -> Vec<u8> {
        let mut all = Vec::new();
        for e in events {
            NativeDoor::new(1024).render(e, &mut all);
        }
        all
    }

    #[tokio::test]
    async fn a_full_socket_stops_the_rendering_and_leaves_exactly_the_rest() {
        let (mut server, mut client) = pair().await;
        // Far more than a loopback socket buffers, in many chunks.
        let events: Vec<Event> = (0..30_000).map(notice).collect();
        let mut batch: Vec<Piece> = events.iter().cloned().map(|e| Piece::one(deliver(e))).collect();
        let bye = Event::Bye { reason: "bye".into() };
        let mut door = NativeDoor::new(1024);
        let Written::Rest(rest) = write_batch(&mut server, &mut door, &mut batch, Some(&bye)) else {
            panic!("the socket cannot take 30 MB at once");
        };
        // What was not rendered is still in the batch, and what was is bounded by a chunk
        // or two, not the 30 MB the batch would take.
        assert!(!batch.is_empty() && batch.len() < events.len(), "{} pieces left", batch.len());
        assert!(rest.len() <= 2 * CHUNK, "{} bytes rendered and kept", rest.len());
        let mut all = expected(&events);
        NativeDoor::new(1024).render(&bye, &mut all);
        // Keep writing as the connection loop does, reading alongside: every byte arrives
        // once, in order, the goodbye last.
        let total = all.len();
        let reader = tokio::spawn(async move {
            let mut received = vec![0u8; total];
            client.read_exact(&mut received).await.unwrap();
            received
        });
        let mut stream = server;
        let mut rest = rest;
        loop {
            tokio::io::AsyncWriteExt::write_all(&mut stream, &rest).await.unwrap();
            if batch.is_empty() {
                break;
            }
            rest = match write_batch(&mut stream, &mut door, &mut batch, Some(&bye)) {
                Written::All => Vec::new(),
                Written::Rest(r) => r,
                Written::PeerGone => panic!("the reader is there"),
            };
        }
        assert_eq!(reader.await.unwrap(), all);
    }

    /// TLS takes a write whole into its records and may send only part of them: the batch
    /// must then count as not written yet, or the rest would wait in rustls until the next
    /// delivery (forever, after the last one).
    #[tokio::test]
    async fn a_batch_is_never_reported_written_while_tls_still_holds_part_of_it() {
        let (mut server, _client) = crate::tls::test_pair().await;
        let mut door = NativeDoor::new(1 << 20);
        for i in 0..100_000 {
            let event =
                Event::Notice { req: None, room: None, text: format!("{i} {}", "n".repeat(8000)).into() };
            let mut batch = vec![Piece::one(deliver(event))];
            match write_batch(&mut server, &mut door, &mut batch, None) {
                Written::All => {
                    assert!(!server.has_pending_output(), "batch {i}: reported written while TLS held bytes")
                }
                // The client reads nothing: the socket fills, and the writer is told.
                Written::Rest(_) => return,
                Written::PeerGone => panic!("the client is there"),
            }
        }
        panic!("the socket never filled");
    }

    #[tokio::test]
    async fn shared_renderings_are_cached_and_reused() {
        let (mut server, mut client) = pair().await;
        let message = deliver(Event::Nick { old: "a".into(), new: "b".into(), ident: "a@h".into(), ts: 1 });
        let log: std::sync::Arc<[Delivery]> = [message.clone(), message.clone()].into();
        let mut batch = vec![Piece::new(log.clone(), 0..1), Piece::new(log, 1..2)];
        assert_eq!(write_batch(&mut server, &mut NativeDoor::new(1024), &mut batch, None), Written::All);
        assert!(batch.is_empty());
        let one = expected(std::slice::from_ref(&message.event));
        assert_eq!(message.cache.get(crate::door::slots::NATIVE).map(|b| b.to_vec()), Some(one.clone()));
        let mut got = vec![0u8; 2 * one.len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [one.clone(), one].concat());
    }

    #[tokio::test]
    async fn a_closed_peer_is_reported() {
        let (mut server, client) = pair().await;
        drop(client);
        // The first write may land in the socket before the reset is seen; one of the next fails.
        let mut result = Written::All;
        for _ in 0..20 {
            let mut batch: Vec<Piece> = (0..3000).map(|i| Piece::one(deliver(notice(i)))).collect();
            result = write_batch(&mut server, &mut NativeDoor::new(1024), &mut batch, None);
            if result == Written::PeerGone {
                break;
            }
            // Polling interval: the kernel reports the reset asynchronously, and only a
            // failing write shows it.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(result, Written::PeerGone);
    }
}
