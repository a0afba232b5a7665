//! `--plain`: unencrypted text, compatible with netcat and the tutorials' raw socket peers.
//!
//! We accept anything: complete lines, or bytes without any newline (a pause of [`PAUSE`] ends
//! a message); bytes that are not UTF-8 are decoded as GB18030 when that is clean (Windows
//! peers sending GBK), else lossily. We send UTF-8 lines, or GB18030 to a peer that sends GBK
//! (`--encoding auto`, the default) or when told to (`--encoding gbk`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natter_proto::decode::{Detected, EncodingChoice, PeerEncoding, decode_text_detect};
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

/// The encoding the other side reads, shared by the task that reads (which sees what it sends)
/// and the one that writes.
#[derive(Debug, Clone, Default)]
pub struct SharedEncoding(Arc<Mutex<PeerEncoding>>);

impl SharedEncoding {
    /// Starts with the `--encoding` choice.
    pub fn new(choice: EncodingChoice) -> Self {
        Self(Arc::new(Mutex::new(PeerEncoding::new(choice))))
    }

    fn get(&self) -> PeerEncoding {
        // A poisoned lock still holds a valid setting (it is plain data).
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows what the other side sent; a note for the person when the encoding changed.
    fn observe(&self, detected: Detected) -> Option<NetEvent> {
        let mut encoding = self.0.lock().unwrap_or_else(|e| e.into_inner());
        encoding.observe(detected).then(|| {
            let now = if encoding.is_gbk() { "GBK (GB18030)" } else { "UTF-8" };
            NetEvent::Status(format!("the other side writes {now}; sending {now} from now on"))
        })
    }
}

/// Turns received bytes into messages; shared by TCP (across reads) and UDP (per datagram).
#[derive(Debug)]
pub struct PlainDecoder {
    lines: LineBuffer,
    encoding: SharedEncoding,
}

impl Default for PlainDecoder {
    fn default() -> Self {
        Self::new(SharedEncoding::default())
    }
}

impl PlainDecoder {
    /// A decoder that tells `encoding` what the other side sends.
    pub fn new(encoding: SharedEncoding) -> Self {
        Self { lines: LineBuffer::new(MAX_MESSAGE), encoding }
    }

    /// Feeds bytes and returns the complete lines (or notices about oversized ones).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<NetEvent> {
        self.lines.extend(bytes);
        let mut out = Vec::new();
        while let Some(ev) = self.lines.next_line() {
            match ev {
                LineEvent::Line(l) => received(&self.encoding, l, &mut out),
                LineEvent::TooLong(max) => out.push(NetEvent::Status(format!(
                    "the other side sent a line longer than {max} bytes; dropped"
                ))),
            }
        }
        self.lines.shrink_when_idle();
        out
    }

    /// True when bytes without a newline are waiting.
    pub fn has_partial(&self) -> bool {
        !self.lines.is_empty()
    }

    /// Ends the waiting partial message (after a pause, at the end of a datagram or stream):
    /// the message, after a note if it changed the encoding we send.
    pub fn flush(&mut self) -> Vec<NetEvent> {
        let mut out = Vec::new();
        if let Some(l) = self.lines.take_partial() {
            received(&self.encoding, l, &mut out);
        }
        out
    }
}

/// One received message onto `out`, after a note if it changed the encoding we send.
fn received(encoding: &SharedEncoding, bytes: &[u8], out: &mut Vec<NetEvent>) {
    let (text, detected) = decode_text_detect(bytes);
    out.extend(encoding.observe(detected));
    out.push(NetEvent::Text(text.into_owned()));
}

/// The bytes we send for one message, in the encoding the other side reads.
fn outgoing(text: &str, encoding: PeerEncoding) -> Vec<u8> {
    let mut b = encoding.encode(text).into_owned();
    b.push(b'\n');
    b
}

/// Plain chat over an established TCP connection; `choice` is `--encoding`.
pub fn tcp_link(stream: TcpStream, choice: EncodingChoice) -> Link {
    let _ = stream.set_nodelay(true);
    let (mut read, write) = stream.into_split();
    let (app_tx, app_rx) = mpsc::channel(256);
    let (net_tx, net_rx) = mpsc::channel(256);
    let encoding = SharedEncoding::new(choice);
    let writer = tokio::spawn(tcp_writer(app_rx, write, encoding.clone()));
    tokio::spawn(async move {
        let mut dec = PlainDecoder::new(encoding);
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
                        for ev in dec.flush() { let _ = net_tx.send(ev).await; }
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
                    for ev in dec.flush() { let _ = net_tx.send(ev).await; }
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
    encoding: SharedEncoding,
) -> Result<(), DirectError> {
    while let Some(msg) = app_rx.recv().await {
        match msg {
            AppMsg::Text(t) => write.write_all(&outgoing(&t, encoding.get())).await?,
            AppMsg::Bye => break,
        }
    }
    write.shutdown().await?;
    Ok(())
}

/// Plain chat over UDP: one datagram is one message (or several lines).
///
/// `peer` is `None` for a listener, which learns its peer from the first datagram; `choice` is
/// `--encoding`.
pub fn udp_link(socket: UdpSocket, peer: Option<SocketAddr>, choice: EncodingChoice) -> Link {
    let encoding = SharedEncoding::new(choice);
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
                        let mut dec = PlainDecoder::new(encoding.clone());
                        for ev in dec.feed(&buf[..n]) { let _ = net_tx.send(ev).await; }
                        for ev in dec.flush() { let _ = net_tx.send(ev).await; }
                    }
                    // ICMP "port unreachable" from an earlier datagram: the peer is not there yet.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        let _ = net_tx.send(NetEvent::Status("the other side is not listening (port unreachable)".into())).await;
                    }
                    Err(e) => break Err(DirectError::Io(e)),
                },
                msg = app_rx.recv() => match msg {
                    Some(AppMsg::Text(t)) => match peer {
                        Some(p) => { let _ = socket.send_to(&outgoing(&t, encoding.get()), p).await; }
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
        assert_eq!(texts(d.flush()), vec!["wor"]);
        // "你好" in GBK, no newline: decoded after the pause, and we now answer in GBK.
        assert!(d.feed(&[0xC4, 0xE3, 0xBA, 0xC3]).is_empty());
        let got = texts(d.flush());
        assert_eq!(got.len(), 2);
        assert!(got[0].contains("sending GBK"), "{got:?}");
        assert_eq!(got[1], "你好");
        assert!(d.encoding.get().is_gbk());
        assert!(d.flush().is_empty());
        // Garbage and ASCII change nothing; UTF-8 switches back.
        assert_eq!(texts(d.feed(b"\xff\x80x\nok\n")).len(), 2);
        assert!(d.encoding.get().is_gbk());
        assert_eq!(texts(d.feed("é\n".as_bytes())).len(), 2);
        assert!(!d.encoding.get().is_gbk());
    }

    #[test]
    fn outgoing_is_a_line_in_the_peer_encoding() {
        assert_eq!(outgoing("héllo", PeerEncoding::default()), "héllo\n".as_bytes());
        let gbk = PeerEncoding::new(EncodingChoice::Gbk);
        assert_eq!(outgoing("你好", gbk), [0xC4, 0xE3, 0xBA, 0xC3, b'\n']);
    }
}
