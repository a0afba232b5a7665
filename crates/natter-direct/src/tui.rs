//! The full-screen interface of `natter direct`, used when stdin and stdout are a terminal.
//!
//! One conversation, the other side, in the look of `natter connect`: its message pane,
//! input line, editing keys and terminal handling all come from `natter_client::tui`, so the
//! two screens behave the same. What is particular to a direct chat: the title bar always
//! shows how the channel is protected (encrypted TCP, encrypted UDP, or PLAIN, not private)
//! and, once the channel is up, the verification words; and when the chat ends (the other
//! side left, or the connection failed) the screen stays until the person closes it, so the
//! last messages and the reason can still be read.
//!
//! [`Screen`] is the state and reacts to keys and to the engine's [`Display`] items without a
//! terminal, so it is unit-tested directly; [`run`] owns the terminal and the event loop.
//! Nothing is written to disk: the conversation lives in memory and on the alternate screen,
//! which the terminal discards on exit.

use natter_client::format::sanitize;
use natter_client::tui::input::InputLine;
use natter_client::tui::state::{Line as ChatLine, LineKind, now_ms};
use natter_client::tui::term::{self, Term};
use natter_client::tui::view;
use ratatui::Frame;
use ratatui::crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::Mode;
use crate::chat::{Display, PEER_LEFT_TEXT, PEER_NAME, UserEvent, established_text};
use crate::frame::MAX_MESSAGE;
use crate::ui::{Typed, interpret, too_long_text};

/// The name our own messages are shown under (the peer's are under [`PEER_NAME`]).
pub const OWN_NAME: &str = "you";
/// What Tab completes after `/`: the only commands a direct chat has.
pub const COMMANDS: &[&str] = &["/help", "/quit"];
/// Most lines kept in memory; older ones are dropped (there is nowhere to fetch them from).
pub const MAX_LINES: usize = 10_000;
/// Shown in place of the input line when the chat is over and the screen waits to be closed.
pub const OVER_TEXT: &str = "the chat is over: Enter, Esc or Ctrl+C closes this screen";

/// Where the chat stands, for the title and status bars and for what keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Listening, connecting or in the handshake: typed lines wait (shown dimmed).
    Waiting,
    /// The channel is up.
    Connected,
    /// The engine finished (goodbyes exchanged, the other side left, or an error).
    Over,
}

/// What the screen asks of the loop in [`run`] after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Send this text to the other side.
    Send(String),
    /// Leave cleanly: goodbye to the other side, or stop waiting for one.
    Quit,
    /// Leave at once, without waiting for the goodbye (a second Ctrl+C).
    LeaveNow,
    /// Close the screen (the chat is already over).
    Close,
}

/// How the screen ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Closed after the chat ended.
    Closed,
    /// Left at once while leaving cleanly was under way.
    LeftNow,
}

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// Protection of the channel and the verification words.
    pub title: Rect,
    /// The conversation.
    pub messages: Rect,
    /// Connection state and scroll position.
    pub status: Rect,
    /// What is being typed.
    pub input: Rect,
}

/// Splits a `w`×`h` screen: title on top, input at the bottom with the status bar above it,
/// as in `natter connect`.
pub fn layout(w: u16, h: u16) -> Areas {
    let row = |y: u16| Rect::new(0, y.min(h.saturating_sub(1)), w, u16::from(y < h));
    Areas {
        title: row(0),
        messages: Rect::new(0, 1.min(h), w, h.saturating_sub(3)),
        status: row(h.saturating_sub(2)),
        input: row(h.saturating_sub(1)),
    }
}

/// Everything the direct chat screen shows.
#[derive(Debug, Clone)]
pub struct Screen {
    /// Transport and protection, for the title bar.
    pub mode: Mode,
    /// Where the chat stands.
    pub phase: Phase,
    /// The verification words, once an encrypted channel is up.
    pub sas: Option<String>,
    /// The other side said goodbye.
    pub peer_left: bool,
    /// The session ended with an error.
    pub failed: bool,
    /// The person asked to leave.
    pub quitting: bool,
    /// The conversation, oldest first.
    pub lines: Vec<ChatLine>,
    /// Rows scrolled up from the newest.
    pub scroll: usize,
    /// The input line.
    pub input: InputLine,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
}

impl Screen {
    /// A fresh screen for a chat over `mode`, before anything happened.
    pub fn new(mode: Mode) -> Self {
        Screen {
            mode,
            phase: Phase::Waiting,
            sas: None,
            peer_left: false,
            failed: false,
            quitting: false,
            lines: Vec::new(),
            scroll: 0,
            input: InputLine::default(),
            size: (80, 24),
        }
    }

    fn areas(&self) -> Areas {
        layout(self.size.0, self.size.1)
    }

    fn width(&self) -> usize {
        self.areas().messages.width.max(1) as usize
    }

    fn page(&self) -> usize {
        self.areas().messages.height.max(1) as usize
    }

    fn max_scroll(&self) -> usize {
        view::chat_rows(&self.lines, OWN_NAME, self.width()).saturating_sub(self.page())
    }

    fn push(&mut self, kind: LineKind) {
        let line = ChatLine { ts: now_ms(), mid: None, kind };
        if self.scroll > 0 {
            // Keep the rows being read in place while new ones arrive below.
            self.scroll += view::render_chat_line(&line, OWN_NAME, self.width()).len();
        }
        self.lines.push(line);
        if self.lines.len() > MAX_LINES {
            self.lines.drain(..self.lines.len() - MAX_LINES);
            self.scroll = self.scroll.min(self.max_scroll());
        }
    }

    fn info(&mut self, text: impl Into<String>) {
        self.push(LineKind::Info(text.into()));
    }

    fn error(&mut self, text: impl Into<String>) {
        self.push(LineKind::Error(text.into()));
    }

    /// Applies one item from the chat engine.
    pub fn on_display(&mut self, d: Display) {
        match d {
            Display::Message { from, text } => self.push(LineKind::Msg {
                from: sanitize(&from),
                text: sanitize(&text),
                action: false,
                mention: false,
            }),
            Display::Status(s) => self.info(sanitize(&s)),
            Display::Connected { sas } => {
                self.phase = Phase::Connected;
                // Lines typed while waiting were queued; they go out now.
                for l in &mut self.lines {
                    if let LineKind::Pending { text, .. } = &l.kind {
                        l.kind = LineKind::Msg {
                            from: OWN_NAME.into(),
                            text: text.clone(),
                            action: false,
                            mention: false,
                        };
                    }
                }
                let sas = sas.map(|s| sanitize(&s));
                if let Some(words) = &sas {
                    self.info(established_text(words));
                }
                self.sas = sas;
            }
            Display::PeerLeft => {
                self.peer_left = true;
                self.info(PEER_LEFT_TEXT);
            }
            Display::Error(e) => {
                self.failed = true;
                self.error(sanitize(&e));
            }
        }
    }

    /// The engine finished. Returns true when the screen should close now (the person had
    /// asked to leave); otherwise it stays, its input line saying how to close it.
    pub fn engine_done(&mut self) -> bool {
        self.phase = Phase::Over;
        self.quitting
    }

    /// Ctrl+C, Ctrl+D on an empty line, `/quit`, a signal, or the end of terminal input.
    pub fn leave(&mut self) -> Option<Act> {
        if self.phase == Phase::Over {
            return Some(Act::Close);
        }
        if self.quitting {
            return Some(Act::LeaveNow);
        }
        self.quitting = true;
        self.info("leaving… (Ctrl+C again leaves at once)");
        Some(Act::Quit)
    }

    /// Scrolls towards older lines.
    pub fn scroll_up(&mut self, rows: usize) {
        self.scroll = (self.scroll + rows).min(self.max_scroll());
    }

    /// Scrolls towards the newest line.
    pub fn scroll_down(&mut self, rows: usize) {
        self.scroll = self.scroll.saturating_sub(rows);
    }

    /// Applies a key press: the editing keys of `natter connect`'s input line, PageUp and
    /// PageDown, Tab, Enter, and the ways out.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Act> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let page = self.page().saturating_sub(1).max(1);
        match key.code {
            KeyCode::Char('c') if ctrl => return self.leave(),
            KeyCode::Char('d') if ctrl => {
                if self.input.text().is_empty() || self.phase == Phase::Over {
                    return self.leave();
                }
                self.input.delete();
            }
            KeyCode::PageUp => self.scroll_up(page),
            KeyCode::PageDown => self.scroll_down(page),
            // Once over, only closing and scrolling do anything.
            KeyCode::Enter | KeyCode::Esc if self.phase == Phase::Over => return Some(Act::Close),
            _ if self.phase == Phase::Over => {}
            KeyCode::Tab => self.input.complete_from(COMMANDS, &[], &[]),
            KeyCode::Enter => return self.submit(),
            _ => {
                self.input.edit_key(key);
            }
        }
        None
    }

    /// Pasted text goes into the input line (newlines become spaces: one paste, one message).
    pub fn on_paste(&mut self, text: &str) {
        if self.phase != Phase::Over {
            self.input.insert_str(text);
        }
    }

    /// Applies a terminal event (key, paste, resize).
    pub fn on_terminal_event(&mut self, ev: TermEvent) -> Option<Act> {
        match ev {
            TermEvent::Key(k) => return self.on_key(k),
            TermEvent::Paste(text) => self.on_paste(&text),
            TermEvent::Resize(w, h) => {
                self.size = (w, h);
                self.scroll = self.scroll.min(self.max_scroll());
            }
            _ => {}
        }
        None
    }

    /// Enter: the typed line means what it means in line mode ([`interpret`]), and a line over
    /// the message limit is refused with line mode's words (it stays in the history: Up).
    fn submit(&mut self) -> Option<Act> {
        let line = self.input.take();
        self.scroll = 0;
        if line.len() > MAX_MESSAGE {
            self.error(too_long_text(MAX_MESSAGE));
            return None;
        }
        match interpret(&line) {
            Typed::Nothing => None,
            Typed::Quit if self.quitting => None,
            Typed::Quit => self.leave(),
            Typed::Local(text) => {
                self.info(text);
                None
            }
            Typed::Send(_) if self.quitting => {
                self.error("leaving: not sent");
                None
            }
            Typed::Send(text) => {
                let shown = sanitize(&text);
                self.push(if self.phase == Phase::Connected {
                    LineKind::Msg { from: OWN_NAME.into(), text: shown, action: false, mention: false }
                } else {
                    LineKind::Pending { text: shown, action: false, cid: String::new() }
                });
                Some(Act::Send(text))
            }
        }
    }
}

/// The title bar: how the channel is protected, and the verification words.
fn title(s: &Screen) -> (Line<'static>, Style) {
    let transport = if s.mode.udp { "UDP" } else { "TCP" };
    let strong = Style::default().add_modifier(Modifier::BOLD);
    if s.mode.plain {
        let line = Line::from(vec![
            Span::raw(" natter direct │ "),
            Span::styled(format!("PLAIN {transport}: NOT private"), strong),
            Span::raw(" │ anyone on the path can read and change it"),
        ]);
        return (line, Style::default().bg(Color::Red).fg(Color::White));
    }
    let words = match &s.sas {
        Some(sas) => Span::styled(format!("verify: {sas}"), strong.fg(Color::Yellow)),
        None => Span::raw("verification words after the handshake"),
    };
    let line = Line::from(vec![Span::raw(format!(" natter direct │ encrypted {transport} │ ")), words]);
    (line, view::bar_style())
}

/// The status bar: where the chat stands and the scroll position.
fn status(s: &Screen) -> Line<'static> {
    let (text, color) = match s.phase {
        Phase::Over if s.failed => ("failed", Color::Red),
        Phase::Over if s.peer_left => ("the other side left", Color::Red),
        Phase::Over => ("closed", Color::Red),
        _ if s.quitting => ("leaving…", Color::Yellow),
        Phase::Waiting => ("waiting for the other side", Color::Yellow),
        Phase::Connected => ("connected", Color::Green),
    };
    let scroll = if s.scroll > 0 { format!(" │ scrolled up {}", s.scroll) } else { String::new() };
    let hint = if s.phase == Phase::Over { "" } else { " │ /quit or Ctrl+C leaves" };
    Line::from(vec![
        Span::raw(format!(" {PEER_NAME} │ ")),
        Span::styled(text, Style::default().fg(color)),
        Span::raw(format!("{scroll}{hint}")),
    ])
}

/// Draws the whole screen and places the cursor in the input line.
pub fn draw(frame: &mut Frame<'_>, s: &Screen) {
    let size = frame.area();
    let a = layout(size.width, size.height);
    let (title, title_style) = title(s);
    frame.render_widget(Paragraph::new(title).style(title_style), a.title);
    view::draw_chat(frame, a.messages, &s.lines, s.scroll, OWN_NAME);
    frame.render_widget(Paragraph::new(status(s)).style(view::bar_style()), a.status);
    if s.phase == Phase::Over {
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("[closed] ", Style::default().fg(Color::Cyan)),
                Span::styled(OVER_TEXT, Style::default().fg(Color::DarkGray)),
            ])),
            a.input,
        );
    } else {
        view::draw_input(frame, a.input, &format!("[{PEER_NAME}] "), &s.input);
    }
}

/// Runs the screen: draws `screen`, turns keys into [`UserEvent`]s on `input` and shows what
/// arrives on `output`, until the chat is over and the person closes the screen. Before the
/// channel is up, leaving also sets `stop`, which ends the waiting. SIGTERM, SIGHUP and SIGINT
/// count as leaving. The caller holds the terminal guard.
pub async fn run(
    mut terminal: Term,
    mut screen: Screen,
    mut output: mpsc::Receiver<Display>,
    input: mpsc::Sender<UserEvent>,
    stop: watch::Sender<bool>,
) -> std::io::Result<Ending> {
    if let Ok(size) = terminal.size() {
        screen.size = (size.width, size.height);
    }
    let mut keys = term::events();
    let (mut keys_open, mut engine_running) = (true, true);
    let mut term_signal = signal(SignalKind::terminate())?;
    let mut hup_signal = signal(SignalKind::hangup())?;
    let mut int_signal = signal(SignalKind::interrupt())?;
    loop {
        terminal.draw(|f| draw(f, &screen))?;
        let mut acts = Vec::new();
        tokio::select! {
            d = output.recv(), if engine_running => match d {
                Some(d) => {
                    screen.on_display(d);
                    // Take whatever else is waiting before drawing again.
                    while let Ok(d) = output.try_recv() {
                        screen.on_display(d);
                    }
                }
                None => {
                    engine_running = false;
                    if screen.engine_done() {
                        acts.push(Act::Close);
                    }
                }
            },
            ev = keys.recv(), if keys_open => match ev {
                Some(ev) => {
                    acts.extend(screen.on_terminal_event(ev));
                    while let Ok(ev) = keys.try_recv() {
                        acts.extend(screen.on_terminal_event(ev));
                    }
                }
                // The terminal's input ended: like end of input in line mode.
                None => {
                    keys_open = false;
                    acts.extend(screen.leave());
                }
            },
            _ = term_signal.recv() => acts.extend(screen.leave()),
            _ = hup_signal.recv() => acts.extend(screen.leave()),
            _ = int_signal.recv() => acts.extend(screen.leave()),
        }
        for act in acts {
            match act {
                Act::Send(text) => {
                    if input.try_send(UserEvent::Line(text)).is_err() {
                        screen.error("too many lines waiting to be sent; that one was not sent");
                    }
                }
                Act::Quit => {
                    let _ = stop.send(true);
                    let tx = input.clone();
                    // Queued behind any lines still waiting, so they go out before the goodbye.
                    tokio::spawn(async move {
                        let _ = tx.send(UserEvent::Quit).await;
                    });
                }
                Act::LeaveNow => return Ok(Ending::LeftNow),
                Act::Close => return Ok(Ending::Closed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encrypted() -> Screen {
        Screen::new(Mode { udp: false, plain: false, encoding: Default::default() })
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn type_line(s: &mut Screen, text: &str) -> Option<Act> {
        for c in text.chars() {
            assert_eq!(s.on_key(key(KeyCode::Char(c))), None);
        }
        s.on_key(key(KeyCode::Enter))
    }

    fn kinds(s: &Screen) -> Vec<&LineKind> {
        s.lines.iter().map(|l| &l.kind).collect()
    }

    #[test]
    fn lines_typed_before_the_channel_wait_then_show_as_sent() {
        let mut s = encrypted();
        assert_eq!(type_line(&mut s, "early"), Some(Act::Send("early".into())));
        assert!(matches!(kinds(&s)[0], LineKind::Pending { text, .. } if text == "early"));
        s.on_display(Display::Connected { sas: Some("a b c d".into()) });
        assert_eq!(s.phase, Phase::Connected);
        assert_eq!(s.sas.as_deref(), Some("a b c d"));
        assert!(
            matches!(kinds(&s)[0], LineKind::Msg { from, text, .. } if from == OWN_NAME && text == "early")
        );
        assert!(
            matches!(kinds(&s)[1], LineKind::Info(t) if t == "secure channel established, verify: a b c d")
        );
        assert_eq!(type_line(&mut s, "now"), Some(Act::Send("now".into())));
        assert!(matches!(kinds(&s)[2], LineKind::Msg { text, .. } if text == "now"));
    }

    #[test]
    fn peer_text_is_sanitised() {
        let mut s = encrypted();
        s.on_display(Display::Message { from: PEER_NAME.into(), text: "hi \x1b[2J\tx".into() });
        assert!(matches!(kinds(&s)[0], LineKind::Msg { text, .. } if text == "hi ␛[2J x"));
    }

    #[test]
    fn commands_mean_what_they_mean_in_line_mode() {
        let mut s = encrypted();
        assert_eq!(type_line(&mut s, "   "), None);
        assert_eq!(type_line(&mut s, "/help"), None);
        assert!(matches!(kinds(&s)[0], LineKind::Info(t) if t.contains("/quit")));
        assert_eq!(type_line(&mut s, "/join #x"), None);
        assert!(matches!(kinds(&s)[1], LineKind::Info(t) if t.contains("chat servers")));
        for c in "/q".chars() {
            s.on_key(key(KeyCode::Char(c)));
        }
        s.on_key(key(KeyCode::Tab));
        assert_eq!(s.input.text(), "/quit ");
        assert_eq!(s.on_key(key(KeyCode::Enter)), Some(Act::Quit));
        assert!(s.quitting);
        assert_eq!(type_line(&mut s, "late"), None, "nothing is sent while leaving");
        assert_eq!(s.on_key(ctrl('c')), Some(Act::LeaveNow), "a second Ctrl+C leaves at once");
    }

    #[test]
    fn too_long_lines_are_refused_like_line_mode_and_kept_in_history() {
        let mut s = encrypted();
        s.on_display(Display::Connected { sas: Some("w".into()) });
        let big = "x".repeat(MAX_MESSAGE + 1);
        s.on_paste(&big);
        assert_eq!(s.on_key(key(KeyCode::Enter)), None);
        assert!(matches!(kinds(&s).last().unwrap(), LineKind::Error(t) if *t == too_long_text(MAX_MESSAGE)));
        assert_eq!(s.input.text(), "");
        s.on_key(key(KeyCode::Up));
        assert_eq!(s.input.text().len(), MAX_MESSAGE + 1);
        // Exactly at the limit is fine.
        s.input.set(&"y".repeat(MAX_MESSAGE));
        assert_eq!(s.on_key(key(KeyCode::Enter)), Some(Act::Send("y".repeat(MAX_MESSAGE))));
    }

    #[test]
    fn ctrl_d_deletes_then_leaves_and_the_end_waits_for_closing() {
        let mut s = encrypted();
        s.on_key(key(KeyCode::Char('a')));
        s.on_key(key(KeyCode::Home));
        assert_eq!(s.on_key(ctrl('d')), None);
        assert_eq!(s.input.text(), "");
        s.on_display(Display::PeerLeft);
        assert!(!s.engine_done(), "the screen stays so the end can be read");
        assert!(matches!(kinds(&s).last().unwrap(), LineKind::Info(t) if t == PEER_LEFT_TEXT));
        assert_eq!(status(&s).spans[1].content, "the other side left");
        assert_eq!(s.on_key(key(KeyCode::Char('z'))), None);
        assert_eq!(s.input.text(), "", "typing does nothing once over");
        assert_eq!(s.on_key(key(KeyCode::Enter)), Some(Act::Close));
        assert_eq!(s.on_key(ctrl('d')), Some(Act::Close));
        assert_eq!(s.on_key(key(KeyCode::Esc)), Some(Act::Close));
    }

    #[test]
    fn quitting_closes_as_soon_as_the_engine_is_done() {
        let mut s = encrypted();
        assert_eq!(s.on_key(ctrl('c')), Some(Act::Quit));
        assert!(s.engine_done());
    }

    #[test]
    fn scrolling_is_bounded_and_holds_still_while_lines_arrive() {
        let mut s = encrypted();
        s.size = (40, 10);
        for i in 0..30 {
            s.on_display(Display::Message { from: PEER_NAME.into(), text: format!("m{i}") });
        }
        s.on_key(key(KeyCode::PageUp));
        let up = s.scroll;
        assert!(up > 0);
        s.on_display(Display::Message { from: PEER_NAME.into(), text: "new".into() });
        assert_eq!(s.scroll, up + 1);
        for _ in 0..20 {
            s.on_key(key(KeyCode::PageUp));
        }
        assert_eq!(s.scroll, s.max_scroll());
        for _ in 0..20 {
            s.on_key(key(KeyCode::PageDown));
        }
        assert_eq!(s.scroll, 0);
    }

    #[test]
    fn layout_fits_any_size() {
        for (w, h) in [(80, 24), (20, 5), (1, 1), (0, 0)] {
            let a = layout(w, h);
            assert!(a.messages.bottom() <= h && a.input.y < h.max(1));
            assert_eq!(a.messages.height, h.saturating_sub(3));
        }
    }

    #[test]
    fn title_shows_protection_and_words() {
        let text = |s: &Screen| title(s).0.spans.iter().map(|s| s.content.to_string()).collect::<String>();
        let mut s = encrypted();
        assert!(text(&s).contains("encrypted TCP"));
        s.on_display(Display::Connected { sas: Some("kayak ladder basket granite".into()) });
        assert!(text(&s).contains("verify: kayak ladder basket granite"));
        let p = Screen::new(Mode { udp: true, plain: true, encoding: Default::default() });
        assert!(text(&p).contains("PLAIN UDP: NOT private"));
    }
}
