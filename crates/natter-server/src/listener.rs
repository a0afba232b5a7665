//! The TCP port: accepts connections and picks the front door from the first bytes a client
//! sends (`{` means native JSON, anything else text mode), so that one port serves every kind
//! of client.

use crate::config::Limits;
use crate::conn::{self, read_available};
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

/// Held by every connection task; shutdown waits until all are dropped.
pub type Alive = tokio::sync::mpsc::Sender<()>;

/// Accepts connections until `stop` changes.
pub async fn accept_loop(
    listener: TcpListener,
    hub: HubHandle,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    alive: Alive,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let alive = alive.clone();
                    let hub = hub.clone();
                    tokio::spawn(async move {
                        handle(stream, peer, hub, limits).await;
                        drop(alive);
                    });
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

async fn handle(mut stream: TcpStream, peer: SocketAddr, hub: HubHandle, limits: Limits) {
    let _ = stream.set_nodelay(true);
    let mut lines = LineBuffer::new(limits.max_line);
    let deadline = Instant::now() + limits.register_timeout;
    let mut greeted = false;
    loop {
        let wait = if greeted { deadline } else { (Instant::now() + GREET_AFTER).min(deadline) };
        match timeout_at(wait, stream.readable()).await {
            Ok(Ok(())) => match read_available(&stream, &mut lines) {
                Ok(0) => return,
                Ok(_) if first_byte(&lines).is_some() => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            },
            Ok(Err(_)) => return,
            Err(_) if !greeted && Instant::now() < deadline => {
                greeted = true;
                if stream.write_all(GREETING.as_bytes()).await.is_err() {
                    return;
                }
            }
            Err(_) => {
                let _ = stream
                    .write_all(b"*** bye: registration timeout: log in within the time allowed\r\n")
                    .await;
                return;
            }
        }
    }
    match first_byte(&lines) {
        Some(b'{') => serve(stream, lines, NativeDoor, hub, peer, limits).await,
        _ => serve(stream, lines, TextDoor::default(), hub, peer, limits).await,
    }
}

fn first_byte(lines: &LineBuffer) -> Option<u8> {
    lines.peek().iter().copied().find(|b| !b.is_ascii_whitespace())
}

async fn serve<D: Door>(
    stream: TcpStream,
    lines: LineBuffer,
    door: D,
    hub: HubHandle,
    peer: SocketAddr,
    limits: Limits,
) {
    let ctx = SessionCtx::new(hub, peer, limits, D::KIND);
    conn::run(stream, lines, door, ctx).await;
}
