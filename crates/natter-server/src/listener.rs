//! The TCP port: accepts connections and picks the front door from the first bytes a client
//! sends (`{` means native JSON, a first line starting with `CAP `, `NICK `, `PASS ` or `USER `
//! means IRC, anything else text mode), so that one port serves every kind of client. The
//! dedicated IRC port (`--irc`) skips the sniffing. In help-desk mode text-mode visitors go to
//! the help desk instead, and a silent one is never greeted (it would read the greeting as
//! the answer to its first question).

use crate::config::SessionSettings;
use crate::conn::{self, read_available};
use crate::door::helpdesk::HelpdeskDoor;
use crate::door::irc::{IrcDoor, MAX_IRC_LINE};
use crate::door::native::NativeDoor;
use crate::door::text::{GREETING, TextDoor};
use crate::door::{Door, SessionCtx};
use natter_core::HubHandle;
use natter_proto::line::LineBuffer;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, timeout_at};

/// How long a silent new connection waits before it is greeted as a person in text mode.
const GREET_AFTER: Duration = Duration::from_millis(250);

/// How long the sniffer waits for the end of a first line that has begun, to tell IRC from
/// text mode.
const FIRST_LINE_WAIT: Duration = Duration::from_millis(250);

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// Any client: the door is picked from the first bytes.
    Sniff,
    /// IRC only (the `--irc` port).
    Irc,
}

/// Held by every connection task; shutdown waits until all are dropped.
pub type Alive = tokio::sync::mpsc::Sender<()>;

/// Accepts connections until `stop` changes.
pub async fn accept_loop(
    listener: TcpListener,
    hub: HubHandle,
    settings: SessionSettings,
    front: Front,
    mut stop: watch::Receiver<bool>,
    alive: Alive,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::info!(%peer, "connected");
                    let alive = alive.clone();
                    let hub = hub.clone();
                    match front {
                        Front::Sniff => {
                            tokio::spawn(handle(stream, peer, hub, settings, alive));
                        }
                        Front::Irc => {
                            let _ = stream.set_nodelay(true);
                            let lines = LineBuffer::new(MAX_IRC_LINE);
                            let deadline = Instant::now() + settings.register_timeout;
                            let conn = Conn { stream, peer, hub, settings, deadline, alive };
                            tokio::spawn(serve(conn, lines, IrcDoor::default()));
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
}

/// Sniffs the first bytes, then hands the connection to a task of its own for the chosen door:
/// the long-lived task then holds only that door's state, not the sniffer's nor the other
/// doors' (the size of that task is most of what an idle connection costs).
async fn handle(
    mut stream: TcpStream,
    peer: SocketAddr,
    hub: HubHandle,
    settings: SessionSettings,
    alive: Alive,
) {
    let _ = stream.set_nodelay(true);
    let mut lines = LineBuffer::new(settings.max_line);
    let deadline = Instant::now() + settings.register_timeout;
    // Help-desk visitors are never greeted: as if they had been already.
    let mut greeted = settings.helpdesk.is_some();
    // Set once the first line has begun: how long to wait for its end.
    let mut line_wait: Option<Instant> = None;
    loop {
        let wait = match line_wait {
            Some(at) => at.min(deadline),
            // A silent connection looks now and then whether the server is stopping.
            None if greeted => (Instant::now() + conn::STOP_CHECK).min(deadline),
            None => (Instant::now() + GREET_AFTER).min(deadline),
        };
        match timeout_at(wait, stream.readable()).await {
            Ok(Ok(())) => match read_available(&stream, &mut lines) {
                Ok(0) => return,
                Ok(_) => match first_byte(&lines) {
                    Some(b'{') => break,
                    Some(_) if lines.peek().contains(&b'\n') || lines.pending() > 512 => break,
                    Some(_) => {
                        line_wait.get_or_insert(Instant::now() + FIRST_LINE_WAIT);
                        continue;
                    }
                    None => continue,
                },
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            },
            Ok(Err(_)) => return,
            Err(_) if hub.is_stopped() => {
                let _ = stream.write_all(b"*** bye: server shutting down\r\n").await;
                return;
            }
            Err(_) if line_wait.is_some() && Instant::now() < deadline => break,
            Err(_) if greeted && Instant::now() < deadline => {}
            Err(_) if !greeted && Instant::now() < deadline => {
                greeted = true;
                if stream.write_all(GREETING.as_bytes()).await.is_err() {
                    return;
                }
            }
            // A visitor still thinking about its first question becomes a guest all the same.
            Err(_) if settings.helpdesk.is_some() => break,
            Err(_) => {
                let _ = stream
                    .write_all(b"*** bye: registration timeout: log in within the time allowed\r\n")
                    .await;
                return;
            }
        }
    }
    let conn = Conn { stream, peer, hub, settings, deadline, alive };
    match first_byte(&lines) {
        Some(b'{') => tokio::spawn(serve(conn, lines, NativeDoor::new(settings.max_line))),
        _ if looks_like_irc(lines.peek()) => {
            let mut irc = LineBuffer::new(MAX_IRC_LINE);
            irc.extend(lines.peek());
            tokio::spawn(serve(conn, irc, IrcDoor::default()))
        }
        _ => match settings.helpdesk {
            Some(desk) => tokio::spawn(serve(conn, lines, HelpdeskDoor::new(desk))),
            None => tokio::spawn(serve(conn, lines, TextDoor::default())),
        },
    };
}

fn first_byte(lines: &LineBuffer) -> Option<u8> {
    lines.peek().iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// True when the first line is an IRC registration command (`CAP LS`, `NICK x`, ...). The
/// word must be followed by a space: a text-mode user who types the nickname `nick` stays in
/// text mode.
fn looks_like_irc(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let rest = &bytes[start..];
    ["CAP ", "NICK ", "PASS ", "USER "]
        .iter()
        .any(|w| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w.as_bytes()))
}

/// An accepted connection on its way to a door.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    hub: HubHandle,
    settings: SessionSettings,
    /// When the client must be logged in.
    deadline: Instant,
    alive: Alive,
}

async fn serve<D: Door>(conn: Conn, lines: LineBuffer, door: D) {
    let Conn { stream, peer, hub, settings, deadline, alive } = conn;
    let ctx = SessionCtx::new(hub, peer, settings, D::KIND);
    conn::run(stream, lines, door, ctx, deadline).await;
    drop(alive);
}

#[cfg(test)]
mod tests {
    use super::looks_like_irc;

    #[test]
    fn irc_is_recognised_by_its_first_line() {
        for yes in
            ["CAP LS 302\r\n", "NICK ann\r\n", "nick ann", "PASS secret\r\n", "USER a 0 * :A\r\n", "  CAP LS"]
        {
            assert!(looks_like_irc(yes.as_bytes()), "{yes}");
        }
        for no in ["nick\n", "ann\n", "{\"type\":\"hello\"}", "capybara\n", "", "CAP"] {
            assert!(!looks_like_irc(no.as_bytes()), "{no}");
        }
    }
}
