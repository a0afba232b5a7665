//! The wire: one TCP connection to the server as frames. Reading splits lines (bounded by
//! [`MAX_FRAME`]) and parses them, turning unreadable ones into warnings; writing encodes
//! frames as lines and refuses those over the limit the server announced, so a request the
//! server would drop never waits for an answer.

use super::{Event, MAX_FRAME};
use natter_proto::line::{LineBuffer, LineEvent};
use natter_proto::native::{ClientFrame, MessageFrame, ServerFrame, client_frame_line, parse_server_frame};
use std::borrow::Cow;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How a server's refusal of a new connection starts (`docs/protocol.md`, connection limits).
const REFUSAL: &[u8] = b"*** bye: ";

/// One connection to the server, owned by the actor for as long as it lasts.
pub(super) struct Conn {
    rd: Box<dyn AsyncRead + Send + Unpin>,
    wr: Box<dyn AsyncWrite + Send + Unpin>,
    lines: LineBuffer,
    buf: Vec<u8>,
    /// The reason of the server's `bye`, told when it then closes the connection.
    pub(super) bye: Option<String>,
    /// The server's line limit from `welcome`, when it told it.
    pub(super) max_line: Option<usize>,
}

/// Why reading from the server stopped.
pub(super) enum ReadError {
    /// The connection is gone; the text says why, for the status line.
    Closed(String),
}

/// Why a frame is not sent: the server drops a line over its limit with an error that cannot
/// name the request, so the request would wait for an answer forever.
fn too_long_message(len: usize, max: usize) -> String {
    format!(
        "too long: it takes {len} bytes on the wire and the server accepts at most {max} per line; \
         split it into shorter messages"
    )
}

impl Conn {
    /// Wraps a fresh TCP connection; nothing is sent yet.
    pub(super) fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        Self::over(Box::new(rd), Box::new(wr))
    }

    /// Wraps a TLS connection whose handshake is done.
    pub(super) fn tls(stream: tokio_rustls::client::TlsStream<TcpStream>) -> Self {
        let _ = stream.get_ref().0.set_nodelay(true);
        let (rd, wr) = tokio::io::split(stream);
        Self::over(Box::new(rd), Box::new(wr))
    }

    fn over(rd: Box<dyn AsyncRead + Send + Unpin>, wr: Box<dyn AsyncWrite + Send + Unpin>) -> Self {
        Conn { rd, wr, lines: LineBuffer::new(MAX_FRAME), buf: vec![0; 64 * 1024], bye: None, max_line: None }
    }

    /// Sends one frame.
    pub(super) async fn write(&mut self, frame: &ClientFrame) -> Result<(), String> {
        self.write_line(&client_frame_line(frame)).await
    }

    /// Sends one line made by [`Conn::encode`].
    pub(super) async fn write_line(&mut self, line: &[u8]) -> Result<(), String> {
        // Flushed: TLS keeps written bytes in its records until then.
        let sent = async {
            self.wr.write_all(line).await?;
            self.wr.flush().await
        };
        sent.await.map_err(|e| format!("connection lost: {e}"))
    }

    /// Closes our side after a quit.
    pub(super) async fn shutdown(&mut self) {
        let _ = self.wr.shutdown().await;
    }

    /// The frame as one line, or why the server would refuse it for its size.
    pub(super) fn encode(&self, frame: &ClientFrame) -> Result<Vec<u8>, String> {
        let line = client_frame_line(frame);
        let len = line.len() - 1;
        match self.max_line {
            Some(max) if len > max => Err(too_long_message(len, max)),
            _ => Ok(line),
        }
    }

    /// Next readable frame; unreadable ones become warnings. Cancel-safe: bytes are moved into
    /// the line buffer right after each read, with no await in between.
    pub(super) async fn next_frame(
        &mut self,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Result<ServerFrame<'static>, ReadError> {
        loop {
            while let Some(ev) = self.lines.next_line() {
                match ev {
                    LineEvent::Line(line) => {
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        match parse_server_frame(line) {
                            Ok(frame) => return Ok(frame),
                            // A server turning the connection away before any frame (too many
                            // connections from this address) says why in one text-mode line.
                            Err(_) if line.starts_with(REFUSAL) => {
                                let reason = String::from_utf8_lossy(&line[REFUSAL.len()..]);
                                self.bye = Some(reason.trim_end().to_string());
                            }
                            Err(e) => {
                                let _ =
                                    events.send(Event::Warning(format!("ignored a frame: {}", e.message)));
                            }
                        }
                    }
                    LineEvent::TooLong(max) => {
                        let _ = events.send(Event::Warning(format!(
                            "ignored a frame from the server larger than {max} bytes"
                        )));
                    }
                }
            }
            match self.rd.read(&mut self.buf).await {
                Ok(0) => {
                    let why = match &self.bye {
                        Some(r) => format!("the server closed the connection: {r}"),
                        None => "the server closed the connection".to_string(),
                    };
                    return Err(ReadError::Closed(why));
                }
                Ok(n) => self.lines.extend(&self.buf[..n]),
                Err(e) => return Err(ReadError::Closed(format!("connection lost: {e}"))),
            }
        }
    }
}

/// A message that no longer borrows from the line it was parsed from, so it can be kept
/// (held back, queued as an event) after the line buffer moves on.
pub(super) fn owned_msg(m: MessageFrame<'_>) -> MessageFrame<'static> {
    MessageFrame {
        room: m.room.map(|r| Cow::Owned(r.into_owned())),
        from: Cow::Owned(m.from.into_owned()),
        to: m.to.map(|r| Cow::Owned(r.into_owned())),
        text: Cow::Owned(m.text.into_owned()),
        action: m.action,
        notice: m.notice,
        mid: m.mid,
        ts: m.ts,
    }
}
