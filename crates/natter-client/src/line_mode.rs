//! Line mode, for scripts and pipes: each stdin line is sent (commands work), each event is
//! printed as one line (or one JSON object with `--json`). At end of input the client waits
//! until every message is acknowledged, so `printf 'hi\n' | natter connect --nick bot`
//! reliably delivers.
//!
//! Like the tutorials' clients, reading and printing are independent: a thread reads stdin and
//! the async side prints events, so a silent script never holds back arriving messages.

use crate::config::Settings;
use crate::conn::{Client, ClientError, Event, LOBBY, Status, Target, frame_id};
use crate::format::{event_json, event_line};
use crate::plan::{Plan, plan};
use natter_proto::names::fold;
use natter_proto::native::{ClientFrame, ErrorCode, ServerFrame};
use std::collections::{HashMap, HashSet};
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

/// Which events line mode prints. The server puts every session in the lobby; when another
/// room was asked for (`--room #dev`), the lobby is not what the script is about, so its
/// events (its `joined`, joins, parts, messages, topic) are left out, and so are quits and nick
/// changes of people met only there. Everything else is printed: the rooms asked for or
/// joined with `/join`, private messages, answers to commands, errors and the connection's
/// state.
struct Scope {
    /// The lobby (folded) while it is left out; `None` once it is wanted.
    hidden: Option<String>,
    /// Members (folded) of each room shown (folded name), to tell whether a quit or a nick
    /// change concerns a room shown.
    members: HashMap<String, HashSet<String>>,
    /// Our nick (folded): our own nick changes are always shown.
    me: String,
}

impl Scope {
    fn new(room: &str, nick: &str) -> Self {
        let hidden = (fold(room) != fold(LOBBY)).then(|| fold(LOBBY));
        Scope { hidden, members: HashMap::new(), me: fold(nick) }
    }

    /// The user joined `room` explicitly: it is shown from now on, the lobby included.
    fn want(&mut self, room: &str) {
        if self.hidden.as_deref() == Some(fold(room).as_str()) {
            self.hidden = None;
        }
    }

    fn is_hidden(&self, room: &str) -> bool {
        self.hidden.as_deref() == Some(fold(room).as_str())
    }

    /// True when someone shares a shown room with us.
    fn met(&self, nick: &str) -> bool {
        let key = fold(nick);
        self.members.values().any(|m| m.contains(&key))
    }

    /// Follows membership, then says whether `event` is printed.
    fn shows(&mut self, event: &Event) -> bool {
        use ServerFrame as S;
        let frame = match event {
            Event::Message { msg, .. } => return msg.room.as_deref().is_none_or(|r| !self.is_hidden(r)),
            Event::Frame(frame) => frame,
            _ => return true,
        };
        // An answer to something the user asked is always shown.
        let asked = frame_id(frame).is_some();
        match frame {
            S::Joined { room, members, .. } => {
                if self.is_hidden(room) {
                    return asked;
                }
                self.members.insert(fold(room), members.iter().map(|m| fold(m)).collect());
                true
            }
            S::Join { room, nick, .. } => {
                if let Some(m) = self.members.get_mut(&fold(room)) {
                    m.insert(fold(nick));
                }
                !self.is_hidden(room)
            }
            S::Part { room, nick, .. } | S::Kick { room, nick, .. } => {
                if fold(nick) == self.me {
                    self.members.remove(&fold(room));
                } else if let Some(m) = self.members.get_mut(&fold(room)) {
                    m.remove(&fold(nick));
                }
                !self.is_hidden(room)
            }
            S::Quit { nick, .. } => {
                let shown = self.hidden.is_none() || self.met(nick);
                let key = fold(nick);
                self.members.values_mut().for_each(|m| {
                    m.remove(&key);
                });
                shown
            }
            S::Nick { old, new, .. } => {
                let (old, new) = (fold(old), fold(new));
                let shown = self.hidden.is_none() || old == self.me || self.met(&old);
                if old == self.me {
                    self.me = new.clone();
                }
                for m in self.members.values_mut() {
                    if m.remove(&old) {
                        m.insert(new.clone());
                    }
                }
                shown
            }
            S::Topic { room, .. } | S::Mode { room, .. } => asked || !self.is_hidden(room),
            S::Notice { room: Some(room), .. } => asked || !self.is_hidden(room),
            _ => true,
        }
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
    let mut opts = settings.connect_options()?;
    if fold(&settings.room) != fold(LOBBY) {
        opts.rooms.push(settings.room.clone());
    }
    // A script prints what happens from now on; `/history` asks for older messages.
    opts.join_history = false;
    // A script posts under the nick it was given or not at all: posting as `bot_` would look
    // like someone else (and a taken nick usually means another copy of the script runs).
    opts.nick_retries = 0;
    let (client, mut events) = Client::connect(opts).await.map_err(|e| match e {
        ClientError::Login { addr, code: ErrorCode::NickInUse, .. } => anyhow::anyhow!(
            "the nickname {} is taken on {addr}; nothing was sent; pick another with --nick",
            settings.nick
        ),
        e => anyhow::anyhow!("{e}"),
    })?;
    let printer = Printer { json };
    let mut scope = Scope::new(&settings.room, &settings.nick);
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
                            scope.want(room);
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
                if scope.shows(&event) {
                    printer.event(&event);
                }
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
                    Some(event) if scope.shows(&event) => printer.event(&event),
                    Some(_) => {}
                    None => break true,
                },
            }
        }
    };
    // Events that arrived together with the last acknowledgement.
    while let Ok(event) = events.try_recv() {
        if scope.shows(&event) {
            printer.event(&event);
        }
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

    fn frame(f: ServerFrame<'static>) -> Event {
        Event::Frame(f)
    }

    fn joined(room: &str, members: &[&str]) -> Event {
        frame(ServerFrame::Joined {
            id: None,
            room: room.to_string().into(),
            topic: "".into(),
            members: members.iter().map(|m| m.to_string().into()).collect(),
            count: None,
            ephemeral: false,
            operators: vec![],
            voiced: vec![],
            history: vec![],
        })
    }

    fn quit(nick: &str) -> Event {
        frame(ServerFrame::Quit { nick: nick.to_string().into(), reason: None, ts: 1 })
    }

    #[test]
    fn with_another_room_the_lobby_and_people_met_only_there_are_left_out() {
        let mut scope = Scope::new("#dev", "bot");
        assert!(!scope.shows(&joined("#lobby", &["ann", "bot", "cy"])));
        assert!(scope.shows(&joined("#dev", &["ann", "bot"])));
        let join = |room: &str| {
            frame(ServerFrame::Join { room: room.to_string().into(), nick: "dee".into(), ts: 1 })
        };
        assert!(!scope.shows(&join("#lobby")));
        assert!(scope.shows(&join("#DEV")));
        assert!(!scope.shows(&quit("cy")), "cy was met in the lobby only");
        assert!(scope.shows(&quit("ann")));
        assert!(!scope.shows(&quit("ann")), "gone already");
        let nick = |old: &str, new: &str| {
            frame(ServerFrame::Nick { old: old.to_string().into(), new: new.to_string().into(), ts: 1 })
        };
        assert!(scope.shows(&nick("bot", "bot2")), "our own nick change");
        assert!(scope.shows(&nick("dee", "dea")));
        assert!(!scope.shows(&nick("eve", "evi")));
        assert!(scope.shows(&Event::Warning("w".into())));

        scope.want("#Lobby");
        assert!(scope.shows(&joined("#lobby", &["bot", "cy"])));
        assert!(scope.shows(&quit("cy")));
    }

    #[test]
    fn in_the_lobby_everything_is_shown() {
        let mut scope = Scope::new("#lobby", "bot");
        assert!(scope.shows(&joined("#lobby", &["ann", "bot"])));
        assert!(scope.shows(&quit("ann")));
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
