//! One batch of deliveries on its way to one peer, written with vectored system calls and
//! without copying: renderings shared by every recipient are written straight from the event's
//! render cache, and only what is rendered for this session alone goes into a buffer of its own.
//!
//! Fanout is the hot path: a room message reaches every member, so a copy per recipient (or a
//! buffer that grows and reallocates per batch) costs as much as everything else together.

use crate::door::Door;
use bytes::Bytes;
use natter_core::Delivery;
use std::io::{self, IoSlice};
use tokio::net::TcpStream;

/// Most slices one `writev` takes (Linux `IOV_MAX`).
const MAX_SLICES: usize = 1024;

/// The bytes of one batch, in order, as borrowed pieces.
pub(crate) struct Gather<'b> {
    parts: Vec<Part<'b>>,
    own: Vec<u8>,
}

enum Part<'b> {
    /// Shared rendering, borrowed from a delivery's cache.
    Shared(&'b [u8]),
    /// A range of [`Gather::own`].
    Own(usize, usize),
}

impl<'b> Gather<'b> {
    /// An empty batch with room for `deliveries` pieces.
    pub fn with_capacity(deliveries: usize) -> Self {
        Self { parts: Vec::with_capacity(deliveries), own: Vec::new() }
    }

    /// Adds one delivery: from the render cache when the door shares its rendering, else
    /// rendered now for this session.
    pub fn push<D: Door>(&mut self, door: &mut D, delivery: &'b Delivery) {
        door.observe(&delivery.event);
        match door.slot(&delivery.event) {
            Some(slot) => {
                let bytes = delivery.cache.get_or_render(slot, || {
                    let mut rendered = Vec::new();
                    door.render(&delivery.event, &mut rendered);
                    Bytes::from(rendered)
                });
                if !bytes.is_empty() {
                    self.parts.push(Part::Shared(bytes));
                }
            }
            None => self.push_own(|out| door.render(&delivery.event, out)),
        }
    }

    /// Adds bytes rendered by `render` for this session alone.
    pub fn push_own(&mut self, render: impl FnOnce(&mut Vec<u8>)) {
        let start = self.own.len();
        render(&mut self.own);
        let end = self.own.len();
        if end == start {
            return;
        }
        match self.parts.last_mut() {
            // Consecutive private renderings are one piece.
            Some(Part::Own(_, last_end)) if *last_end == start => *last_end = end,
            _ => self.parts.push(Part::Own(start, end)),
        }
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Writes as much as the socket takes without waiting. `Ok(None)`: all written;
    /// `Ok(Some(rest))`: the socket is full, `rest` (a copy) must be written later;
    /// `Err(())`: the peer is gone.
    pub fn write_now(&self, stream: &TcpStream) -> Result<Option<Vec<u8>>, ()> {
        let mut slices: Vec<IoSlice<'_>> = self
            .parts
            .iter()
            .map(|part| match *part {
                Part::Shared(bytes) => IoSlice::new(bytes),
                Part::Own(start, end) => IoSlice::new(&self.own[start..end]),
            })
            .collect();
        let mut rest: &mut [IoSlice<'_>] = &mut slices;
        while !rest.is_empty() {
            let chunk = rest.len().min(MAX_SLICES);
            match stream.try_write_vectored(&rest[..chunk]) {
                Ok(0) => return Err(()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(()),
            }
        }
        if rest.is_empty() {
            return Ok(None);
        }
        let mut left = Vec::with_capacity(rest.iter().map(|s| s.len()).sum());
        for slice in rest.iter() {
            left.extend_from_slice(slice);
        }
        Ok(Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    #[tokio::test]
    async fn a_full_socket_leaves_exactly_the_unwritten_rest() {
        let (server, mut client) = pair().await;
        let piece: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let mut gather = Gather::with_capacity(0);
        // Far more than a loopback socket buffers, in many pieces (more than one writev).
        for _ in 0..3000 {
            gather.push_own(|out| out.extend_from_slice(&piece[..7]));
            gather.parts.push(Part::Shared(&piece));
        }
        let total: usize = 3000 * (7 + piece.len());
        let rest = gather.write_now(&server).unwrap().expect("the socket cannot take 30 MB at once");
        assert!(!rest.is_empty() && rest.len() < total);
        let written = total - rest.len();
        let mut received = vec![0u8; written];
        client.read_exact(&mut received).await.unwrap();
        let mut expected = Vec::with_capacity(total);
        for _ in 0..3000 {
            expected.extend_from_slice(&piece[..7]);
            expected.extend_from_slice(&piece);
        }
        assert_eq!(received, expected[..written]);
        assert_eq!(rest, expected[written..]);
    }

    #[tokio::test]
    async fn consecutive_private_pieces_are_merged_and_empty_ones_skipped() {
        let mut gather = Gather::with_capacity(4);
        gather.push_own(|out| out.extend_from_slice(b"a"));
        gather.push_own(|out| out.extend_from_slice(b"b"));
        gather.push_own(|_| {});
        assert_eq!(gather.parts.len(), 1);
        assert!(!gather.is_empty());
        let (server, mut client) = pair().await;
        assert_eq!(gather.write_now(&server), Ok(None));
        let mut got = [0u8; 2];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ab");
    }
}
