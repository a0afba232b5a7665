//! `--plain`: unencrypted text, compatible with netcat and the tutorials' raw socket peers.
//!
//! We send UTF-8 lines. We accept anything: complete lines, or bytes without any newline
//! (a pause of [`PAUSE`] ends a message); bytes that are not UTF-8 are decoded as GB18030
//! when that is clean (Windows peers sending GBK), else lossily.

use std::net::SocketAddr;
use std::time::Duration;

use natter_proto::decode::decode_text;
use natter_proto::line::{LineBuffer, LineEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::chat::{Link, NetEvent};
use crate::error::DirectError;
use crate::frame::{AppMsg, MAX_MESSAGE};

/// A pause this long after bytes without a newline ends the message.
pub const PAUSE: Duration = Duration::from_millis(100);
/// Plain peers never say goodbye; wait only briefly for them after ours.
const PLAIN_LINGER: Duration = Duration::from_millis(500);

/// Turns received bytes into messages; shared by TCP (across reads) and UDP (per datagram).
#[derive(Debug)]
pub struct PlainDecoder {
    lines: LineBuffer,
}

impl Default for PlainDecoder {
    fn default() -> Self {
        Self { lines: LineBuffer::new(MAX_MESSAGE) }
    }
}

impl PlainDecoder {
    /// Feeds bytes and returns the complete lines (or notices about oversized ones).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<NetEvent> {
        self.lines.extend(bytes);
        let mut out = Vec::new();
        while let Some(ev) = self.lines.next_line() {
            out.push(match ev {
                LineEvent::Line(l) => NetEvent::Text(decode_text(l).into_owned()),
                LineEvent::TooLong(max) => {
                    NetEvent::Status(format!("the other side sent a line longer than {max} bytes; dropped"))
                }
            });
        }
        self.lines.shrink_when_idle();
        out
    }

    /// True when bytes without a newline are waiting.
    pub fn has_partial(&self) -> bool {
        !self.lines.is_empty()
    }

    /// Ends the waiting partial message (after a pause, at the end of a datagram or stream).
    pub fn flush(&mut self) -> Option<NetEvent> {
        self.lines.take_partial().map(|l| NetEvent::Text(decode_text(l).into_owned()))
    }
}

/// The bytes we send for one message.
fn outgoing(text: &str) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    b.push(b'\n');
    b
}

/// Plain chat over an established TCP connection.
pub fn tcp_link(stream: TcpStream) -> Link {
    let _ = stream.set_nodelay(true);
    let (mut read, write) = stream.into_split();
    let (app_tx, app_rx) = mpsc::channel(256);
    let (net_tx, net_rx) = mpsc::channel(256);
    let writer = tokio::spawn(tcp_writer(app_rx, write));
    tokio::spawn(async move {
        let mut dec = PlainDecoder::default();
        let mut buf = vec![0u8; 16 * 1024];
        let mut pause_end: Option<Instant> = None;
        let result = loop {
            let pause = async {
                match pause_end {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = read.read(&mut buf) => match r {
                    Ok(0) => {
                        if let Some(ev) = dec.flush() { let _ = net_tx.send(ev).await; }
                        let _ = net_tx.send(NetEvent::PeerLeft).await;
                        break Ok(());
                    }
                    Ok(n) => {
                        for ev in dec.feed(&buf[..n]) { let _ = net_tx.send(ev).await; }
                        pause_end = dec.has_partial().then(|| Instant::now() + PAUSE);
                    }
                    Err(e) => break Err(DirectError::Lost(e.to_string())),
                },
                () = pause => {
                    pause_end = None;
                    if let Some(ev) = dec.flush() { let _ = net_tx.send(ev).await; }
                }
            }
        };
        // Our side may still be typing: the engine decides when to stop; keep the writer.
        let _ = net_tx.send(NetEvent::Closed(result)).await;
        drop(writer);
    });
    Link { tx: app_tx, rx: net_rx, linger: PLAIN_LINGER }
}

async fn tcp_writer(
    mut app_rx: mpsc::Receiver<AppMsg>,
    mut write: OwnedWriteHalf,
) -> Result<(), DirectError> {
    while let Some(msg) = app_rx.recv().await {
        match msg {
            AppMsg::Text(t) => write.write_all(&outgoing(&t)).await?,
            AppMsg::Bye => break,
        }
    }
    write.shutdown().await?;
    Ok(())
}

/// Plain chat over UDP: one datagram is one message (or several lines).
///
/// `peer` is `None` for a listener, which learns its peer from the first datagram.
pub fn udp_link(socket: UdpSocket, peer: Option<SocketAddr>) -> Link {
    let (mut app_rx, app_tx) = {
        let (tx, rx) = mpsc::channel(256);
        (rx, tx)
    };
    let (net_tx, net_rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut peer = peer;
        let mut buf = vec![0u8; 65_536];
        let result: Result<(), DirectError> = loop {
            tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        match peer {
                            None => {
                                peer = Some(from);
                                let _ = net_tx.send(NetEvent::Status(format!("talking with {from}"))).await;
                            }
                            Some(p) if p != from => continue,
                            Some(_) => {}
                        }
                        let mut dec = PlainDecoder::default();
                        for ev in dec.feed(&buf[..n]) { let _ = net_tx.send(ev).await; }
                        if let Some(ev) = dec.flush() { let _ = net_tx.send(ev).await; }
                    }
                    // ICMP "port unreachable" from an earlier datagram: the peer is not there yet.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        let _ = net_tx.send(NetEvent::Status("the other side is not listening (port unreachable)".into())).await;
                    }
                    Err(e) => break Err(DirectError::Io(e)),
                },
                msg = app_rx.recv() => match msg {
                    Some(AppMsg::Text(t)) => match peer {
                        Some(p) => { let _ = socket.send_to(&outgoing(&t), p).await; }
                        None => {
                            let _ = net_tx.send(NetEvent::Status("not sent: no datagram from the other side yet, so its address is unknown".into())).await;
                        }
                    },
                    // UDP has no goodbye: leaving is just stopping.
                    Some(AppMsg::Bye) | None => break Ok(()),
                },
            }
        };
        let _ = net_tx.send(NetEvent::Closed(result)).await;
    });
    Link { tx: app_tx, rx: net_rx, linger: PLAIN_LINGER }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(evs: Vec<NetEvent>) -> Vec<String> {
        evs.into_iter()
            .map(|e| match e {
                NetEvent::Text(t) => t,
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn lines_and_gbk_without_newline() {
        let mut d = PlainDecoder::default();
        assert_eq!(texts(d.feed(b"hello\r\nwor")), vec!["hello"]);
        assert!(d.has_partial());
        assert!(matches!(d.flush(), Some(NetEvent::Text(t)) if t == "wor"));
        // "你好" in GBK, no newline: decoded after the pause.
        assert!(d.feed(&[0xC4, 0xE3, 0xBA, 0xC3]).is_empty());
        assert!(matches!(d.flush(), Some(NetEvent::Text(t)) if t == "你好"));
        assert!(d.flush().is_none());
    }

    #[test]
    fn outgoing_is_utf8_line() {
        assert_eq!(outgoing("héllo"), "héllo\n".as_bytes());
    }
}
