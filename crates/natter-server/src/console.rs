//! `natter serve --console`: the server's own terminal joins as a participant (nick
//! `operator` by default, operator of every room), typing text-mode commands, so whoever runs
//! the server can answer each visitor privately, as in the tutorials' customer-service server.

use crate::config::SessionSettings;
use crate::door::text::TextDoor;
use crate::door::{Door, Flow, SessionCtx};
use natter_core::{Event, HubHandle, NextBatch, Piece, SessionKind};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Runs the console participant until `/quit` or the end of standard input.
pub async fn run(hub: HubHandle, nick: String) {
    let settings = std::sync::Arc::new(SessionSettings {
        msg_rate: 0,
        register_timeout: std::time::Duration::MAX / 4,
        ..SessionSettings::default()
    });
    let mut ctx = SessionCtx::new(
        hub,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        settings,
        SessionKind::Console,
        None,
    );
    let mut door = TextDoor::default();
    let mut stdout = tokio::io::stdout();
    if ctx.register(nick.clone(), None).await != Flow::Continue || ctx.session.is_none() {
        let _ = stdout.write_all(format!("!!! the console cannot log in as {nick}\n").as_bytes()).await;
        return;
    }
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut batch: Vec<Piece> = Vec::new();
    let mut closing = false;
    loop {
        tokio::select! {
            items = ctx.outbox.next_batch(&mut batch) => {
                let mut out = Vec::new();
                for piece in batch.drain(..) {
                    for d in piece.deliveries() {
                        door.observe(&d.event);
                        door.render(&d.event, &mut out);
                    }
                }
                if let NextBatch::Closed(reason) = items {
                    door.render(&Event::Bye { reason: reason.0 }, &mut out);
                    let _ = stdout.write_all(&out).await;
                    let _ = stdout.flush().await;
                    return;
                }
                let _ = stdout.write_all(&out).await;
                let _ = stdout.flush().await;
            }
            line = stdin.next_line(), if !closing => {
                let flow = match line {
                    Ok(Some(line)) => door.on_line(line.as_bytes(), &mut ctx).await,
                    _ => Flow::Close("console closed".into()),
                };
                if let Flow::Close(reason) = flow {
                    closing = true;
                    if let Some(session) = ctx.session {
                        let _ = ctx.hub.command(session, natter_core::Command::Quit { reason: Some(reason) }).await;
                    }
                }
            }
        }
    }
}
