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

/// The longest stdin line kept: far above any server's line limit, so that a longer line is
/// refused with a clear message instead of growing memory without bound.
const MAX_INPUT_LINE: usize = 1024 * 1024;

/// One line of standard input.
#[derive(Debug, PartialEq, Eq)]
enum Input {
    Line(String),
    /// A line longer than [`MAX_INPUT_LINE`], skipped up to its newline.
    TooLong,
}

/// Reads the next line of `input`, keeping at most `max` bytes of it; `None` at end of input or
/// on a read error. Bytes that are not UTF-8 are replaced rather than failing the whole script.
fn read_input(input: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> Option<Input> {
    buf.clear();
    let mut over = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        if chunk.is_empty() {
            if buf.is_empty() && !over {
                return None;
            }
            break;
        }
        let (keep, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if !over {
            if buf.len() + keep > max {
                over = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..keep]);
            }
        }
        input.consume(keep + usize::from(done));
        if done {
            break;
        }
    }
    if over {
        return Some(Input::TooLong);
    }
    Some(Input::Line(String::from_utf8_lossy(buf).trim_end_matches('\r').to_string()))
}

/// Reads stdin lines on a thread of its own (blocking reads must not stall the runtime, and the
/// thread must not keep the process alive after `/quit`).
fn stdin_lines() -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel(256);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        let mut buf = Vec::new();
        while let Some(input) = read_input(&mut lock, &mut buf, MAX_INPUT_LINE) {
            if tx.blocking_send(input).is_err() {
                break;
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
                Some(Input::TooLong) => printer.local(
                    "usage",
                    &format!("error: line not sent: longer than {} KiB; split it", MAX_INPUT_LINE / 1024),
                ),
                Some(Input::Line(line)) => match plan(&line, &current) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Input> {
        // A tiny buffer, so that lines cross many reads.
        let mut reader = std::io::BufReader::with_capacity(3, input);
        let mut buf = Vec::new();
        std::iter::from_fn(|| read_input(&mut reader, &mut buf, max)).collect()
    }

    #[test]
    fn lines_end_at_newlines_and_at_end_of_input() {
        let got = lines(b"one\r\ntwo\n\nlast", 10);
        let want = ["one", "two", "", "last"].map(|l| Input::Line(l.into()));
        assert_eq!(got, want);
    }

    #[test]
    fn an_overlong_line_is_skipped_whole_and_the_next_one_kept() {
        let got = lines(b"0123456789\n0123456789a\nnext\n0123456789a", 10);
        let want =
            [Input::Line("0123456789".into()), Input::TooLong, Input::Line("next".into()), Input::TooLong];
        assert_eq!(got, want);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced() {
        assert_eq!(lines(b"a\xffb\n", 10), [Input::Line("a\u{fffd}b".into())]);
    }
}
