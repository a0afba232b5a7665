//! The TUI's state and everything that changes it: connection events and keys in, actions for
//! the connection out. No terminal here, so the behaviour is unit-tested directly.

use super::input::InputLine;
use super::view;
use crate::conn::{Event, Status, Target};
use crate::format::{conversation, frame_text, sanitize, status_text};
use crate::plan::{Plan, plan};
use natter_proto::names::fold;
use natter_proto::native::{ClientFrame, MessageFrame, ServerFrame};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};
use std::time::Duration;

/// Most lines kept per conversation; older ones can be fetched again from the server.
const MAX_LINES: usize = 10_000;
/// Messages asked for when scrolling past the oldest loaded one.
const HISTORY_PAGE: u32 = 50;
/// Rows the mouse wheel scrolls.
const WHEEL_ROWS: usize = 3;

/// What the TUI asks the connection to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a chat message; the caller reports the client id with [`App::queued`].
    Send {
        /// Room or nick.
        target: Target,
        /// Text.
        text: String,
        /// `/me`.
        action: bool,
    },
    /// Send a frame; its answer arrives as an event.
    Submit(ClientFrame),
    /// Quit with an optional reason.
    Quit(Option<String>),
}

/// What one line of a conversation shows.
#[derive(Debug, Clone, PartialEq)]
pub enum LineKind {
    /// A chat message.
    Msg {
        /// Sender.
        from: String,
        /// Text (sanitized).
        text: String,
        /// `/me`.
        action: bool,
        /// Mentions our nick.
        mention: bool,
    },
    /// Our message, typed but not acknowledged yet.
    Pending {
        /// Text.
        text: String,
        /// `/me`.
        action: bool,
        /// Client id, to match the acknowledgement or refusal.
        cid: String,
    },
    /// Something that happened (joins, topics, connection state).
    Info(String),
    /// Something that went wrong.
    Error(String),
}

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Timestamp, ms since the epoch.
    pub ts: u64,
    /// Server message id, for history paging and order.
    pub mid: Option<u64>,
    /// What it shows.
    pub kind: LineKind,
}

/// A room or a private conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffer {
    /// `#room` or the other person's nick.
    pub name: String,
    /// True for a room.
    pub is_room: bool,
    /// The lines, oldest first.
    pub lines: Vec<Line>,
    /// Messages arrived while another conversation was shown.
    pub unread: usize,
    /// A private message or a mention arrived while another conversation was shown.
    pub highlight: bool,
    /// Room members, sorted.
    pub members: Vec<String>,
    /// Room topic.
    pub topic: String,
    /// Rows scrolled up from the bottom.
    pub scroll: usize,
    /// The server may hold older messages than the oldest loaded.
    pub more_history: bool,
    /// An older page was asked for and has not arrived yet.
    pub loading: bool,
}

impl Buffer {
    fn new(name: &str, is_room: bool) -> Self {
        Buffer {
            name: name.to_string(),
            is_room,
            lines: Vec::new(),
            unread: 0,
            highlight: false,
            members: Vec::new(),
            topic: String::new(),
            scroll: 0,
            more_history: is_room,
            loading: false,
        }
    }

    fn push(&mut self, line: Line) {
        self.lines.push(line);
        if self.lines.len() > MAX_LINES {
            self.lines.drain(..self.lines.len() - MAX_LINES);
            self.more_history = self.is_room;
        }
    }

    fn oldest_mid(&self) -> Option<u64> {
        self.lines.iter().filter_map(|l| l.mid).min()
    }

    fn remove_member(&mut self, nick: &str) -> bool {
        let before = self.members.len();
        self.members.retain(|m| fold(m) != fold(nick));
        before != self.members.len()
    }

    fn add_member(&mut self, nick: &str) {
        if !self.members.iter().any(|m| fold(m) == fold(nick)) {
            self.members.push(nick.to_string());
            self.members.sort_by_key(|m| fold(m));
        }
    }
}

/// The connection as the status line shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnState {
    /// Logged in.
    Connected,
    /// Waiting to reconnect.
    Reconnecting {
        /// Attempt number.
        attempt: u32,
        /// Why the connection ended.
        reason: String,
    },
    /// Session over.
    Closed,
}

/// Everything the TUI shows.
#[derive(Debug, Clone)]
pub struct App {
    /// Server address.
    pub server: String,
    /// Our nickname.
    pub nick: String,
    /// Connection state.
    pub conn: ConnState,
    /// Last ping round trip.
    pub lag: Option<Duration>,
    /// Conversations: rooms first in joining order, then private ones.
    pub buffers: Vec<Buffer>,
    /// Index of the one shown.
    pub current: usize,
    /// The input line.
    pub input: InputLine,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    /// Room to switch to when its `joined` arrives (after `/join`).
    switch_to: Option<String>,
    /// Set once the user asked to quit.
    pub quitting: bool,
}

fn mentions(text: &str, nick: &str) -> bool {
    let (text, nick) = (text.to_lowercase(), nick.to_lowercase());
    if nick.is_empty() {
        return false;
    }
    text.match_indices(&nick).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + nick.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'));
        boundary(before) && boundary(after)
    })
}

impl App {
    /// A fresh state for `server`, logged in as `nick`, showing `room`.
    pub fn new(server: &str, nick: &str, room: &str) -> Self {
        let mut app = App {
            server: server.to_string(),
            nick: nick.to_string(),
            conn: ConnState::Connected,
            lag: None,
            buffers: vec![Buffer::new(crate::conn::LOBBY, true)],
            current: 0,
            input: InputLine::default(),
            size: (80, 24),
            switch_to: None,
            quitting: false,
        };
        if fold(room) != fold(crate::conn::LOBBY) {
            app.switch_to = Some(fold(room));
        }
        app
    }

    /// The conversation shown.
    pub fn current(&self) -> &Buffer {
        &self.buffers[self.current]
    }

    fn current_target(&self) -> Target {
        let b = self.current();
        if b.is_room { Target::Room(b.name.clone()) } else { Target::Nick(b.name.clone()) }
    }

    fn find(&self, name: &str) -> Option<usize> {
        let key = fold(name);
        self.buffers.iter().position(|b| fold(&b.name) == key)
    }

    /// The buffer named `name`, created when missing (rooms before private conversations).
    fn buffer(&mut self, name: &str) -> usize {
        if let Some(i) = self.find(name) {
            return i;
        }
        let is_room = name.starts_with('#');
        let b = Buffer::new(name, is_room);
        let at =
            if is_room { self.buffers.iter().take_while(|b| b.is_room).count() } else { self.buffers.len() };
        self.buffers.insert(at, b);
        if at <= self.current && self.buffers.len() > 1 {
            self.current += 1;
        }
        at
    }

    /// Shows conversation `i`, clearing its unread marks.
    pub fn select(&mut self, i: usize) {
        if i < self.buffers.len() {
            self.current = i;
            let b = &mut self.buffers[i];
            b.unread = 0;
            b.highlight = false;
        }
    }

    fn info_in(&mut self, i: usize, ts: u64, text: String) {
        self.buffers[i].push(Line { ts, mid: None, kind: LineKind::Info(text) });
    }

    fn info_current(&mut self, text: String) {
        let i = self.current;
        self.info_in(i, now_ms(), text);
    }

    fn error_current(&mut self, text: String) {
        let i = self.current;
        self.buffers[i].push(Line { ts: now_ms(), mid: None, kind: LineKind::Error(text) });
    }

    fn info_rooms(&mut self, text: &str) {
        let ts = now_ms();
        for i in 0..self.buffers.len() {
            if self.buffers[i].is_room {
                self.info_in(i, ts, text.to_string());
            }
        }
    }

    /// Records a message just handed to the connection, shown as pending until acknowledged.
    pub fn queued(&mut self, target: &Target, text: &str, action: bool, cid: String) {
        let name = match target {
            Target::Room(r) => r.clone(),
            Target::Nick(n) => n.clone(),
        };
        let i = self.buffer(&name);
        self.buffers[i].push(Line {
            ts: now_ms(),
            mid: None,
            kind: LineKind::Pending { text: sanitize(text), action, cid },
        });
    }

    fn add_message(&mut self, msg: MessageFrame<'static>, own: bool, history: bool) {
        let name = conversation(&msg, &self.nick);
        let i = self.buffer(&name);
        let text = sanitize(&msg.text);
        if own {
            let b = &mut self.buffers[i];
            if let Some(p) = b
                .lines
                .iter()
                .position(|l| matches!(&l.kind, LineKind::Pending { text: t, action, .. } if *t == text && *action == msg.action))
            {
                b.lines.remove(p);
            }
        }
        let mention = !own && msg.room.is_some() && mentions(&text, &self.nick);
        let line = Line {
            ts: msg.ts,
            mid: msg.mid,
            kind: LineKind::Msg { from: sanitize(&msg.from), text, action: msg.action, mention },
        };
        let rows = view::line_rows(self, &line);
        let is_current = i == self.current;
        let b = &mut self.buffers[i];
        b.push(line);
        if b.scroll > 0 {
            b.scroll += rows;
        }
        if !is_current && !own && !history {
            b.unread += 1;
            if !b.is_room || mention {
                b.highlight = true;
            }
        }
    }

    /// Applies one connection event.
    pub fn on_event(&mut self, event: Event) {
        match event {
            Event::Status(s) => match &s {
                Status::Connected { nick, reconnected, .. } => {
                    self.nick = nick.clone();
                    self.conn = ConnState::Connected;
                    if *reconnected {
                        self.info_rooms(&status_text(&s));
                    }
                }
                Status::Reconnecting { attempt, reason, .. } => {
                    if *attempt == 1 {
                        self.info_rooms(&status_text(&s));
                    }
                    self.conn = ConnState::Reconnecting { attempt: *attempt, reason: reason.clone() };
                    self.lag = None;
                }
                Status::CaughtUp { room, count } => {
                    if *count > 0
                        && let Some(i) = self.find(room)
                    {
                        self.info_in(i, now_ms(), status_text(&s));
                    }
                }
                Status::Closed { .. } => {
                    self.conn = ConnState::Closed;
                    self.info_rooms(&status_text(&s));
                }
            },
            Event::Message { msg, own, history } => self.add_message(msg, own, history),
            Event::Acked { .. } => {}
            Event::SendFailed { cid, code, message } => {
                for b in &mut self.buffers {
                    for l in &mut b.lines {
                        if let LineKind::Pending { text, cid: c, .. } = &l.kind
                            && *c == cid
                        {
                            l.kind = LineKind::Error(format!(
                                "not sent: {text} ({}: {})",
                                code.as_str(),
                                sanitize(&message)
                            ));
                        }
                    }
                }
            }
            Event::Lag(d) => self.lag = Some(d),
            Event::Warning(w) => self.info_current(format!("warning: {}", sanitize(&w))),
            Event::Frame(frame) => self.on_frame(frame),
        }
    }

    fn on_frame(&mut self, frame: ServerFrame<'static>) {
        use ServerFrame as S;
        let text = frame_text(&frame);
        match frame {
            S::Joined { room, topic, members, .. } => {
                let fresh = self.find(&room).is_none_or(|i| self.buffers[i].members.is_empty());
                let i = self.buffer(&room);
                let b = &mut self.buffers[i];
                b.topic = sanitize(&topic);
                b.members = members.iter().map(|m| m.to_string()).collect();
                b.members.sort_by_key(|m| fold(m));
                if fresh && let Some(t) = text {
                    self.info_in(i, now_ms(), t);
                }
                if self.switch_to.as_deref() == Some(&fold(&room)) {
                    self.switch_to = None;
                    self.select(i);
                }
            }
            S::History { room, messages, more, .. } => {
                let Some(i) = self.find(&room) else { return };
                let b = &mut self.buffers[i];
                b.loading = false;
                let oldest = b.oldest_mid();
                let older: Vec<Line> = messages
                    .into_iter()
                    .filter(|m| match (m.mid, oldest) {
                        (Some(mid), Some(o)) => mid < o,
                        (Some(_), None) => true,
                        (None, _) => false,
                    })
                    .map(|m| {
                        let text = sanitize(&m.text);
                        Line {
                            ts: m.ts,
                            mid: m.mid,
                            kind: LineKind::Msg {
                                from: sanitize(&m.from),
                                text,
                                action: m.action,
                                mention: false,
                            },
                        }
                    })
                    .collect();
                if older.is_empty() {
                    b.more_history = false;
                    let ts = b.lines.first().map_or_else(now_ms, |l| l.ts);
                    b.lines.insert(
                        0,
                        Line { ts, mid: None, kind: LineKind::Info(format!("beginning of {room}")) },
                    );
                    return;
                }
                b.more_history = more;
                b.lines.splice(0..0, older);
            }
            S::Join { room, nick, .. } => {
                if let Some(i) = self.find(&room) {
                    self.buffers[i].add_member(&nick);
                    if let Some(t) = text {
                        self.info_in(i, now_ms(), t);
                    }
                }
            }
            S::Part { room, nick, .. } => {
                let Some(i) = self.find(&room) else { return };
                if fold(&nick) == fold(&self.nick) {
                    self.close(i);
                } else {
                    self.buffers[i].remove_member(&nick);
                    if let Some(t) = text {
                        self.info_in(i, now_ms(), t);
                    }
                }
            }
            S::Quit { nick, .. } => {
                for i in 0..self.buffers.len() {
                    let b = &mut self.buffers[i];
                    let here = if b.is_room { b.remove_member(&nick) } else { fold(&b.name) == fold(&nick) };
                    if here && let Some(t) = &text {
                        self.info_in(i, now_ms(), t.clone());
                    }
                }
            }
            S::Nick { old, new, .. } => {
                if fold(&old) == fold(&self.nick) {
                    self.nick = new.to_string();
                }
                for i in 0..self.buffers.len() {
                    let b = &mut self.buffers[i];
                    let here = if b.is_room {
                        let had = b.remove_member(&old);
                        if had {
                            b.add_member(&new);
                        }
                        had
                    } else if fold(&b.name) == fold(&old) {
                        b.name = new.to_string();
                        true
                    } else {
                        false
                    };
                    if here && let Some(t) = &text {
                        self.info_in(i, now_ms(), t.clone());
                    }
                }
            }
            S::Topic { room, topic, .. } => {
                let i = self.find(&room).unwrap_or(self.current);
                if self.buffers[i].is_room && fold(&self.buffers[i].name) == fold(&room) {
                    self.buffers[i].topic = sanitize(&topic);
                }
                if let Some(t) = text {
                    self.info_in(i, now_ms(), t);
                }
            }
            S::Members { room, nicks, .. } => {
                if let Some(room) = &room
                    && let Some(i) = self.find(room)
                {
                    let mut members: Vec<String> = nicks.iter().map(|n| n.to_string()).collect();
                    members.sort_by_key(|m| fold(m));
                    self.buffers[i].members = members;
                }
                if let Some(t) = text {
                    self.info_current(t);
                }
            }
            S::Notice { room, .. } => {
                let i = room.as_deref().and_then(|r| self.find(r)).unwrap_or(self.current);
                if let Some(t) = text {
                    for (n, l) in t.lines().enumerate() {
                        let _ = n;
                        self.info_in(i, now_ms(), l.to_string());
                    }
                }
            }
            S::Error { .. } => {
                if let Some(t) = text {
                    self.error_current(t);
                }
            }
            S::Bye { .. } => {
                if let Some(t) = text {
                    self.info_rooms(&t);
                }
            }
            _ => {
                if let Some(t) = text {
                    self.info_current(t);
                }
            }
        }
    }

    /// Closes conversation `i` (after leaving a room, or `/close` on a private one).
    fn close(&mut self, i: usize) {
        if self.buffers.len() <= 1 {
            return;
        }
        self.buffers.remove(i);
        if self.current >= i && self.current > 0 {
            self.current -= 1;
        }
        self.select(self.current);
    }

    /// Message pane rows available, for paging.
    fn page_rows(&self) -> usize {
        view::message_area(self).height.max(1) as usize
    }

    /// Scrolls the shown conversation up; past the oldest loaded line, asks the server for
    /// the previous page.
    pub fn scroll_up(&mut self, rows: usize) -> Vec<Action> {
        let total = view::buffer_rows(self, self.current);
        let page = self.page_rows();
        let max = total.saturating_sub(page);
        let b = &mut self.buffers[self.current];
        let wanted = b.scroll + rows;
        b.scroll = wanted.min(max);
        if wanted > max && b.is_room && b.more_history && !b.loading {
            b.loading = true;
            return vec![Action::Submit(ClientFrame::History {
                room: b.name.clone(),
                before: b.oldest_mid(),
                after: None,
                limit: Some(HISTORY_PAGE),
                id: None,
            })];
        }
        Vec::new()
    }

    /// Scrolls the shown conversation down towards the newest line.
    pub fn scroll_down(&mut self, rows: usize) {
        let b = &mut self.buffers[self.current];
        b.scroll = b.scroll.saturating_sub(rows);
    }

    /// Applies a mouse event (wheel scrolling).
    pub fn on_mouse(&mut self, m: MouseEvent) -> Vec<Action> {
        match m.kind {
            MouseEventKind::ScrollUp => self.scroll_up(WHEEL_ROWS),
            MouseEventKind::ScrollDown => {
                self.scroll_down(WHEEL_ROWS);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Nicks offered by Tab completion: the room's members, or the other person.
    fn completion_nicks(&self) -> Vec<String> {
        let b = self.current();
        let mut nicks: Vec<String> = if b.is_room { b.members.clone() } else { vec![b.name.clone()] };
        nicks.extend(self.buffers.iter().filter(|b| !b.is_room).map(|b| b.name.clone()));
        nicks.retain(|n| fold(n) != fold(&self.nick));
        nicks.dedup();
        nicks
    }

    /// Applies a key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Char('c') | KeyCode::Char('d') if ctrl => {
                if key.code == KeyCode::Char('d') && !self.input.text().is_empty() {
                    self.input.delete();
                    return Vec::new();
                }
                self.quitting = true;
                return vec![Action::Quit(None)];
            }
            KeyCode::Char('n') if ctrl => self.select((self.current + 1) % self.buffers.len()),
            KeyCode::Char('p') if ctrl => {
                self.select((self.current + self.buffers.len() - 1) % self.buffers.len());
            }
            KeyCode::Right if alt => self.select((self.current + 1) % self.buffers.len()),
            KeyCode::Left if alt => self.select((self.current + self.buffers.len() - 1) % self.buffers.len()),
            KeyCode::Char(c @ '1'..='9') if alt => self.select(c as usize - '1' as usize),
            KeyCode::PageUp => {
                let rows = self.page_rows().saturating_sub(1).max(1);
                return self.scroll_up(rows);
            }
            KeyCode::PageDown => {
                let rows = self.page_rows().saturating_sub(1).max(1);
                self.scroll_down(rows);
            }
            KeyCode::Tab => {
                let nicks = self.completion_nicks();
                let rooms: Vec<String> =
                    self.buffers.iter().filter(|b| b.is_room).map(|b| b.name.clone()).collect();
                self.input.complete(&nicks, &rooms);
            }
            KeyCode::Enter => return self.submit_line(),
            // Characters, deletion, cursor movement, history: the shared editor keys.
            _ => {
                self.input.edit_key(key);
            }
        }
        Vec::new()
    }

    /// Pasted text goes into the input line.
    pub fn on_paste(&mut self, text: &str) {
        self.input.insert_str(text);
    }

    fn submit_line(&mut self) -> Vec<Action> {
        let line = self.input.take();
        let trimmed = line.trim();
        if !self.current().is_room && (trimmed == "/close" || trimmed == "/part") {
            self.close(self.current);
            return Vec::new();
        }
        self.buffers[self.current].scroll = 0;
        match plan(&line, &self.current_target()) {
            Plan::Nothing => Vec::new(),
            Plan::Send { target, text, action } => vec![Action::Send { target, text, action }],
            Plan::Submit(ClientFrame::History { room, limit, .. }) => {
                // `/history` loads older messages into the scrollback.
                let i = self.buffer(&room);
                self.select(i);
                let b = &mut self.buffers[i];
                b.loading = true;
                vec![Action::Submit(ClientFrame::History {
                    room,
                    before: b.oldest_mid(),
                    after: None,
                    limit,
                    id: None,
                })]
            }
            Plan::Submit(frame) => {
                if let ClientFrame::Join { room, .. } = &frame {
                    match self.find(room) {
                        Some(i) if !self.buffers[i].members.is_empty() => self.select(i),
                        _ => self.switch_to = Some(fold(room)),
                    }
                }
                vec![Action::Submit(frame)]
            }
            Plan::Show(lines) => {
                for l in lines {
                    self.info_current(l);
                }
                Vec::new()
            }
            Plan::Error(e) => {
                self.error_current(e);
                Vec::new()
            }
            Plan::Quit(reason) => {
                self.quitting = true;
                vec![Action::Quit(reason)]
            }
        }
    }
}

/// Now, in ms since the epoch, for local lines.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn msg(
        room: Option<&str>,
        from: &str,
        to: Option<&str>,
        text: &str,
        mid: Option<u64>,
    ) -> MessageFrame<'static> {
        MessageFrame {
            room: room.map(|r| Cow::Owned(r.into())),
            from: Cow::Owned(from.into()),
            to: to.map(|r| Cow::Owned(r.into())),
            text: Cow::Owned(text.into()),
            action: false,
            notice: false,
            mid,
            ts: 1,
        }
    }

    /// Someone else's live message.
    fn heard(msg: MessageFrame<'static>) -> Event {
        Event::Message { msg, own: false, history: false }
    }

    /// Someone else's message replayed from history.
    fn replayed(msg: MessageFrame<'static>) -> Event {
        Event::Message { msg, own: false, history: true }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn type_line(app: &mut App, s: &str) -> Vec<Action> {
        for c in s.chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        app.on_key(key(KeyCode::Enter))
    }

    fn joined(room: &str, members: &[&str]) -> Event {
        Event::Frame(ServerFrame::Joined {
            id: None,
            room: Cow::Owned(room.into()),
            topic: Cow::Borrowed("t"),
            members: members.iter().map(|m| Cow::Owned(m.to_string())).collect(),
            ephemeral: false,
            operators: vec![],
            voiced: vec![],
            history: vec![],
        })
    }

    #[test]
    fn private_message_opens_a_marked_conversation() {
        let mut app = App::new("h:1", "ann", "#lobby");
        app.on_event(joined("#lobby", &["ann", "bob"]));
        app.on_event(heard(msg(None, "bob", Some("ann"), "psst", None)));
        assert_eq!(app.buffers.len(), 2);
        assert_eq!(app.buffers[1].name, "bob");
        assert!(app.buffers[1].highlight);
        assert_eq!(app.buffers[1].unread, 1);
        app.on_key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::CONTROL));
        assert_eq!(app.current().name, "bob");
        assert!(!app.current().highlight);
        let acts = type_line(&mut app, "hi back");
        assert_eq!(
            acts,
            vec![Action::Send { target: Target::Nick("bob".into()), text: "hi back".into(), action: false }]
        );
    }

    #[test]
    fn own_messages_replace_their_pending_line_and_failures_show() {
        let mut app = App::new("h:1", "ann", "#lobby");
        app.queued(&Target::Room("#lobby".into()), "hello", false, "c1".into());
        app.queued(&Target::Room("#lobby".into()), "lost", false, "c2".into());
        assert!(matches!(app.buffers[0].lines[0].kind, LineKind::Pending { .. }));
        app.on_event(Event::Message {
            msg: msg(Some("#lobby"), "ann", None, "hello", Some(3)),
            own: true,
            history: false,
        });
        app.on_event(Event::SendFailed {
            cid: "c2".into(),
            code: natter_proto::native::ErrorCode::Other,
            message: "no".into(),
        });
        let kinds: Vec<&LineKind> = app.buffers[0].lines.iter().map(|l| &l.kind).collect();
        assert!(matches!(kinds[0], LineKind::Error(t) if t.contains("lost")));
        assert!(matches!(kinds[1], LineKind::Msg { text, .. } if text == "hello"));
        assert_eq!(app.buffers[0].unread, 0);
    }

    #[test]
    fn join_switches_and_mentions_are_marked() {
        let mut app = App::new("h:1", "ann", "#lobby");
        app.on_event(joined("#lobby", &["ann"]));
        let acts = type_line(&mut app, "/join #rust");
        assert_eq!(
            acts,
            vec![Action::Submit(ClientFrame::Join { room: "#rust".into(), key: None, id: None })]
        );
        app.on_event(joined("#rust", &["ann", "bob"]));
        assert_eq!(app.current().name, "#rust");
        assert_eq!(app.current().members, ["ann", "bob"]);
        app.on_event(heard(msg(Some("#lobby"), "bob", None, "hey Ann!", Some(1))));
        assert!(app.buffers[0].highlight);
        app.on_event(heard(msg(Some("#lobby"), "bob", None, "annual", Some(2))));
        assert_eq!(app.buffers[0].unread, 2);
        assert!(!mentions("annual", "ann"));
        assert!(mentions("@ann: hi", "ann"));
    }

    #[test]
    fn scrolling_past_the_top_loads_older_history_once() {
        let mut app = App::new("h:1", "ann", "#lobby");
        app.size = (80, 10);
        for mid in 100..130 {
            app.on_event(replayed(msg(Some("#lobby"), "bob", None, "x", Some(mid))));
        }
        assert!(app.scroll_up(5).is_empty());
        let acts: Vec<Action> = (0..10).flat_map(|_| app.on_key(key(KeyCode::PageUp))).collect();
        assert_eq!(
            acts,
            vec![Action::Submit(ClientFrame::History {
                room: "#lobby".into(),
                before: Some(100),
                after: None,
                limit: Some(HISTORY_PAGE),
                id: None
            })]
        );
        app.on_event(Event::Frame(ServerFrame::History {
            id: None,
            room: Cow::Borrowed("#lobby"),
            messages: vec![msg(Some("#lobby"), "bob", None, "old", Some(99))],
            more: false,
        }));
        assert_eq!(app.buffers[0].lines[0].mid, Some(99));
        assert!(!app.buffers[0].more_history);
        assert!(app.on_key(key(KeyCode::PageUp)).is_empty());
    }

    #[test]
    fn presence_updates_members_and_nick_changes_rename() {
        let mut app = App::new("h:1", "ann", "#lobby");
        app.on_event(joined("#lobby", &["ann", "bob"]));
        app.on_event(heard(msg(None, "bob", Some("ann"), "psst", None)));
        app.on_event(Event::Frame(ServerFrame::Nick { old: "bob".into(), new: "rob".into(), ts: 1 }));
        assert_eq!(app.buffers[0].members, ["ann", "rob"]);
        assert_eq!(app.buffers[1].name, "rob");
        app.on_event(Event::Frame(ServerFrame::Quit { nick: "rob".into(), reason: None, ts: 1 }));
        assert_eq!(app.buffers[0].members, ["ann"]);
        app.on_event(Event::Frame(ServerFrame::Part {
            room: "#lobby".into(),
            nick: "ann".into(),
            reason: None,
            ts: 1,
        }));
        assert_eq!(app.buffers.len(), 1, "the last conversation stays open");
    }
}
