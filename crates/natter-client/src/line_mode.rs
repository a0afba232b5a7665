//! Line mode, for scripts and pipes: each stdin line is sent (commands work), each event is
//! printed as one line (or one JSON object with `--json`). At end of input the client waits
//! until every message is acknowledged, so `printf 'hi\n' | natter connect --nick bot`
//! reliably delivers.
//!
//! Like the tutorials' clients, reading and printing are independent: a thread reads stdin and
//! the async side prints events, so a silent script never holds back arriving messages.

use crate::config::Settings;
use crate::conn::{Client, ConnectOptions, Event, LOBBY, Status, Target};
use crate::format::{event_json, event_line};
use crate::plan::{Plan, plan};
use natter_proto::names::fold;
use natter_proto::native::ClientFrame;
use std::io::{BufRead, Write};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long to wait at end of input for the server to acknowledge what was sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Prints events one per line, as text or JSON.
struct Printer {
    json: bool,
}

impl Printer {
    fn event(&self, event: &Event) {
        let text = if self.json { event_json(event).map(|v| v.to_string()) } else { event_line(event) };
        if let Some(text) = text {
            self.raw(&text);
        }
    }

    fn local(&self, kind: &str, text: &str) {
        if self.json {
            self.raw(&serde_json::json!({"type": kind, "text": text}).to_string());
        } else {
            self.raw(&format!("-- {text}"));
        }
    }

    fn raw(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (e.g. `| head`) is not worth a panic; we exit at end of input anyway.
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// Reads stdin lines on a thread of its own (blocking reads must not stall the runtime, and the
/// thread must not keep the process alive after `/quit`). Bytes that are not UTF-8 are
/// replaced rather than failing the whole script.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(256);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match lock.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Runs line mode until end of input, `/quit`, or the end of the session.
pub async fn run(settings: Settings, json: bool) -> anyhow::Result<()> {
    let mut opts = ConnectOptions::new(&settings.addr, &settings.nick);
    opts.reconnect = settings.reconnect;
    if fold(&settings.room) != fold(LOBBY) {
        opts.rooms.push(settings.room.clone());
    }
    let (client, mut events) = Client::connect(opts).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let printer = Printer { json };
    let mut current = Target::Room(settings.room.clone());
    let mut lines = stdin_lines();
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => match plan(&line, &current) {
                    Plan::Nothing => {}
                    Plan::Send { target, text, action } => {
                        client.send(target, text, action);
                    }
                    Plan::Submit(frame) => {
                        // Switch at once: the server handles frames in order, so the lines
                        // after `/join` go to the new room, as a script expects.
                        if let ClientFrame::Join { room, .. } = &frame {
                            current = Target::Room(room.clone());
                        }
                        client.submit(frame);
                    }
                    Plan::Show(lines) => lines.iter().for_each(|l| printer.local("notice", l)),
                    Plan::Error(e) => printer.local("usage", &format!("error: {e}")),
                    Plan::Quit(reason) => {
                        client.wait_idle().await;
                        client.quit(reason).await;
                        return Ok(());
                    }
                },
                None => break,
            },
            event = events.recv() => {
                let Some(event) = event else { return Ok(()) };
                printer.event(&event);
                if let Event::Status(Status::Closed { reason }) = &event {
                    anyhow::bail!("the session ended: {reason}");
                }
            }
        }
    }
    // End of input: wait for every acknowledgement and answer, still printing events.
    let drained = {
        let idle = client.wait_idle();
        tokio::pin!(idle);
        let timeout = tokio::time::sleep(DRAIN_TIMEOUT);
        tokio::pin!(timeout);
        loop {
            tokio::select! {
                _ = &mut idle => break true,
                _ = &mut timeout => break false,
                event = events.recv() => match event {
                    Some(event) => printer.event(&event),
                    None => break true,
                },
            }
        }
    };
    // Events that arrived together with the last acknowledgement.
    while let Ok(event) = events.try_recv() {
        printer.event(&event);
    }
    let unacked = client.pending();
    client.quit(None).await;
    if !drained && unacked > 0 {
        anyhow::bail!(
            "{unacked} message(s) were not acknowledged by the server within {} s; they may not have been delivered",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    Ok(())
}
