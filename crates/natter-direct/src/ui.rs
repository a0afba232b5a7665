//! The line interface: stdin lines become messages, messages are printed as
//! `HH:MM <peer> text`, status lines start with `*** `. Works with a terminal and with pipes
//! (end of input means: deliver what was typed, then leave cleanly).
//!
//! Reading and printing run on their own threads: blocking on stdin must never stall the
//! network, and output written before exit must not be lost.

use std::io::{IsTerminal, Read, Write};
use std::thread::JoinHandle;

use natter_proto::command::{Input, SlashCommand, parse_input};
use natter_proto::decode::decode_text;
use natter_proto::line::{LineBuffer, LineEvent};
use tokio::sync::{mpsc, watch};

use crate::chat::{Display, PEER_LEFT_TEXT, Ui, UserEvent, established_text};
use crate::frame::MAX_MESSAGE;

/// Prefix of status lines.
pub const STATUS_PREFIX: &str = "*** ";

/// A running line interface: the [`Ui`] seam plus the printer thread to wait for.
pub struct LineUi {
    /// The seam handed to the chat engine.
    pub ui: Ui,
    /// A sender into the input stream, so Ctrl+C can become a [`UserEvent::Quit`].
    pub input_tx: mpsc::Sender<UserEvent>,
    /// Turns true when a person at a terminal typed `/quit` or Ctrl+D: before the channel is
    /// up that ends the wait at once. (Piped input is different: what a script sends before
    /// its end is delivered once the channel is up.)
    pub quit_typed: watch::Receiver<bool>,
    printer: JoinHandle<()>,
}

impl LineUi {
    /// Starts reading stdin and printing to stdout.
    pub fn start() -> Self {
        let (in_tx, in_rx) = mpsc::channel(256);
        let (out_tx, mut out_rx) = mpsc::channel::<Display>(256);
        let interactive = std::io::stdin().is_terminal();
        let reader_tx = in_tx.clone();
        // Weak, so that the printer ends when the engine drops its sender, even though the
        // stdin thread may still be blocked in a read.
        let status_tx = out_tx.downgrade();
        let (quit_tx, quit_typed) = watch::channel(false);
        let quit_tx = interactive.then_some(quit_tx);
        // Not joined: a thread blocked on stdin ends with the process.
        std::thread::spawn(move || read_stdin(reader_tx, status_tx, quit_tx));
        let printer = std::thread::spawn(move || {
            while let Some(d) = out_rx.blocking_recv() {
                if let Some(line) = render(&d, &local_hhmm()) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
        });
        Self { ui: Ui { input: in_rx, output: out_tx, interactive }, input_tx: in_tx, quit_typed, printer }
    }

    /// Closes the interface and waits until everything was printed.
    pub fn finish(self) {
        drop(self.ui);
        drop(self.input_tx);
        let _ = self.printer.join();
    }
}

/// What one typed line means in a direct chat.
#[derive(Debug, PartialEq, Eq)]
pub enum Typed {
    /// Nothing (blank line).
    Nothing,
    /// Text to send, exactly as typed.
    Send(String),
    /// Leave.
    Quit,
    /// Tell the user something locally (help, unsupported command).
    Local(String),
}

/// Interprets one typed line with natter's shared command parser.
pub fn interpret(line: &str) -> Typed {
    match parse_input(line) {
        Ok(Input::Empty) => Typed::Nothing,
        Ok(Input::SlashCommand(SlashCommand::Quit(_))) => Typed::Quit,
        Ok(Input::SlashCommand(SlashCommand::Help(_))) => Typed::Local(
            "direct chat: type text to send it; /quit (or Ctrl+C, or end of input) leaves".into(),
        ),
        Ok(Input::SlashCommand(_)) => {
            Typed::Local("that command is for chat servers; here only /quit and /help exist".into())
        }
        Ok(_) => Typed::Send(line.trim_end_matches(['\r', '\n']).to_string()),
        Err(e) => Typed::Local(e.to_string()),
    }
}

fn read_stdin(
    tx: mpsc::Sender<UserEvent>,
    status: mpsc::WeakSender<Display>,
    typed: Option<watch::Sender<bool>>,
) {
    let quit = || {
        if let Some(typed) = &typed {
            typed.send_replace(true);
        }
        let _ = tx.blocking_send(UserEvent::Quit);
    };
    let mut stdin = std::io::stdin().lock();
    let mut lines = LineBuffer::new(MAX_MESSAGE);
    let mut buf = vec![0u8; 16 * 1024];
    let handle = |line: &[u8]| -> bool {
        match interpret(&decode_text(line)) {
            Typed::Nothing => true,
            Typed::Send(text) => tx.blocking_send(UserEvent::Line(text)).is_ok(),
            Typed::Quit => {
                quit();
                false
            }
            Typed::Local(text) => local_status(&status, text),
        }
    };
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        lines.extend(&buf[..n]);
        while let Some(ev) = lines.next_line() {
            let go_on = match ev {
                LineEvent::Line(line) => handle(line),
                LineEvent::TooLong(max) => local_status(&status, too_long_text(max)),
            };
            if !go_on {
                return;
            }
        }
    }
    if let Some(last) = lines.take_partial()
        && !handle(last)
    {
        return;
    }
    quit();
}

/// The refusal of a line over the message limit; the full-screen interface says the same.
pub fn too_long_text(max: usize) -> String {
    format!("line too long (more than {max} bytes); not sent")
}

fn local_status(status: &mpsc::WeakSender<Display>, text: String) -> bool {
    status.upgrade().is_some_and(|tx| tx.blocking_send(Display::Status(text)).is_ok())
}

/// Replaces control characters so a peer cannot move the cursor, clear the screen or
/// retitle the terminal with escape sequences.
pub fn sanitize(text: &str) -> String {
    text.chars().map(|c| if c.is_control() && c != '\t' { '\u{FFFD}' } else { c }).collect()
}

/// Formats one display item as a line (without the newline); `None` for items that add
/// nothing to a transcript (a plain channel being up is already told by a status line).
pub fn render(d: &Display, hhmm: &str) -> Option<String> {
    let status = |s: &str| Some(format!("{STATUS_PREFIX}{}", sanitize(s)));
    match d {
        Display::Message { from, text } => Some(format!("{hhmm} <{from}> {}", sanitize(text))),
        Display::Status(s) => status(s),
        Display::Connected { sas: Some(sas) } => status(&established_text(sas)),
        Display::Connected { sas: None } => None,
        Display::PeerLeft => status(PEER_LEFT_TEXT),
        Display::Error(e) => status(&format!("error: {e}")),
    }
}

/// The system time zone, read once rather than for every line shown.
static LOCAL_ZONE: std::sync::LazyLock<jiff::tz::TimeZone> =
    std::sync::LazyLock::new(jiff::tz::TimeZone::system);

/// The local wall-clock time as `HH:MM`, so a transcript reads in the user's own zone (UTC when
/// the local zone cannot be read).
pub fn local_hhmm() -> String {
    let now = LOCAL_ZONE.to_datetime(jiff::Timestamp::now());
    format!("{:02}:{:02}", now.hour(), now.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines_are_interpreted() {
        assert_eq!(interpret(""), Typed::Nothing);
        assert_eq!(interpret("   "), Typed::Nothing);
        assert_eq!(interpret("hello there"), Typed::Send("hello there".into()));
        assert_eq!(interpret("/quit"), Typed::Quit);
        assert_eq!(interpret("exit"), Typed::Quit);
        assert!(matches!(interpret("/help"), Typed::Local(_)));
        assert!(matches!(interpret("/join #x"), Typed::Local(_)));
    }

    #[test]
    fn rendering_neutralises_terminal_escapes() {
        let d = Display::Message { from: "peer".into(), text: "hi \x1b[2J\x07there\tx".into() };
        assert_eq!(render(&d, "12:34").unwrap(), "12:34 <peer> hi \u{FFFD}[2J\u{FFFD}there\tx");
        assert_eq!(render(&Display::Status("up".into()), "00:00").unwrap(), "*** up");
        assert_eq!(
            render(&Display::Connected { sas: Some("a b c d".into()) }, "00:00").unwrap(),
            "*** secure channel established, verify: a b c d"
        );
        assert_eq!(render(&Display::Connected { sas: None }, "00:00"), None);
        assert_eq!(render(&Display::PeerLeft, "00:00").unwrap(), "*** the other side left the chat");
    }

    #[test]
    fn clock_has_hh_mm_shape() {
        let t = local_hhmm();
        assert_eq!(t.len(), 5);
        assert_eq!(&t[2..3], ":");
    }
}
