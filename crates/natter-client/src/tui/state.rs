//! The TUI's model: the conversations, their lines and scroll positions, the connection as
//! the status line shows it, and the input line, with the small operations the other parts
//! share (find or open a conversation, select it, add a line). What changes it lives beside
//! it: connection events in `events`, keys in `keys`, typed commands in
//! `commands`. No terminal here, so the behaviour is unit-tested directly.

use super::input::InputLine;
use super::layout::{chat_rows, message_area, render_chat_line};
use crate::conn::Target;
use crate::format::sanitize;
use natter_proto::names::fold;
use natter_proto::native::ClientFrame;
use ratatui::layout::Rect;
use std::collections::HashSet;
use std::time::Duration;

/// The chat line types, at the path `natter direct` imports them from.
pub use super::layout::{ChatLine, ChatLine as Line, LineKind};

/// Most lines kept per conversation; older ones can be fetched again from the server.
const MAX_LINES: usize = 10_000;

/// What the TUI asks of the connection. The state never touches the network itself, so it is
/// tested without one.
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

/// Messages asked for when scrolling past the oldest loaded one, or when a private
/// conversation is first shown.
pub(super) const HISTORY_PAGE: u32 = 50;

/// A room or a private conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffer {
    /// `#room` or the other person's nick.
    pub name: String,
    /// True for a room.
    pub is_room: bool,
    /// The lines, oldest first.
    pub lines: Vec<ChatLine>,
    /// Messages arrived while another conversation was shown.
    pub unread: usize,
    /// A private message or a mention arrived while another conversation was shown.
    pub highlight: bool,
    /// Room members, sorted.
    pub members: Vec<String>,
    /// Room operators (folded nicks), shown as `@nick` in the member list.
    pub operators: HashSet<String>,
    /// Voiced members (folded nicks), shown as `+nick` in the member list.
    pub voiced: HashSet<String>,
    /// Room topic.
    pub topic: String,
    /// Rows scrolled up from the bottom.
    pub scroll: usize,
    /// The server may hold older messages than the oldest loaded.
    pub more_history: bool,
    /// An older page was asked for and has not arrived yet.
    pub loading: bool,
    /// A private conversation's latest page was asked for (once, when it is first shown:
    /// the server keeps the private history of accounts).
    pub history_asked: bool,
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
            operators: HashSet::new(),
            voiced: HashSet::new(),
            topic: String::new(),
            scroll: 0,
            // Private conversations too: the server keeps them for accounts (and answers a
            // guest with an empty page, which says it is the beginning).
            more_history: true,
            loading: false,
            history_asked: is_room,
        }
    }

    pub(super) fn push(&mut self, line: ChatLine) {
        self.lines.push(line);
        if self.lines.len() > MAX_LINES {
            self.lines.drain(..self.lines.len() - MAX_LINES);
            self.more_history = true;
        }
    }

    pub(super) fn oldest_mid(&self) -> Option<u64> {
        self.lines.iter().filter_map(|l| l.mid).min()
    }

    /// `@` for an operator, `+` for a voiced member, nothing otherwise: the mark shown before a
    /// nick in the member list, as IRC clients do.
    pub fn mark(&self, nick: &str) -> &'static str {
        let key = fold(nick);
        if self.operators.contains(&key) {
            "@"
        } else if self.voiced.contains(&key) {
            "+"
        } else {
            ""
        }
    }

    pub(super) fn remove_member(&mut self, nick: &str) -> bool {
        let key = fold(nick);
        self.operators.remove(&key);
        self.voiced.remove(&key);
        let before = self.members.len();
        self.members.retain(|m| fold(m) != fold(nick));
        before != self.members.len()
    }

    /// Forgets every member, when we are no longer in the room but its conversation stays.
    pub(super) fn clear_members(&mut self) {
        self.members.clear();
        self.operators.clear();
        self.voiced.clear();
    }

    pub(super) fn add_member(&mut self, nick: &str) {
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

/// Everything the TUI shows, in one value: the view draws it, the tests inspect it.
#[derive(Debug, Clone)]
pub struct App {
    /// The address of the server connected to (or last connected to).
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
    pub(super) switch_to: Option<String>,
    /// Set once the user asked to quit.
    pub quitting: bool,
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

    pub(super) fn current_target(&self) -> Target {
        let b = self.current();
        if b.is_room { Target::Room(b.name.clone()) } else { Target::Nick(b.name.clone()) }
    }

    pub(super) fn find(&self, name: &str) -> Option<usize> {
        let key = fold(name);
        self.buffers.iter().position(|b| fold(&b.name) == key)
    }

    /// The index of the conversation named `name`, opened when missing (rooms before private
    /// conversations).
    pub(super) fn open(&mut self, name: &str) -> usize {
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

    /// The first page of the shown private conversation, when it was never asked for: a
    /// conversation opened (by a message, `/msg` or `/query`) shows what was said before too.
    pub fn load_shown_history(&mut self) -> Option<Action> {
        let b = self.buffers.get_mut(self.current)?;
        if b.history_asked {
            return None;
        }
        b.history_asked = true;
        b.loading = true;
        Some(Action::Submit(ClientFrame::History {
            room: b.name.clone(),
            before: b.oldest_mid(),
            after: None,
            limit: Some(HISTORY_PAGE),
            id: None,
        }))
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

    pub(super) fn info_in(&mut self, i: usize, ts: u64, text: String) {
        self.buffers[i].push(ChatLine { ts, mid: None, kind: LineKind::Info(text) });
    }

    pub(super) fn info_current(&mut self, text: String) {
        let i = self.current;
        self.info_in(i, now_ms(), text);
    }

    pub(super) fn error_current(&mut self, text: String) {
        let i = self.current;
        self.buffers[i].push(ChatLine { ts: now_ms(), mid: None, kind: LineKind::Error(text) });
    }

    pub(super) fn info_rooms(&mut self, text: &str) {
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
        let i = self.open(&name);
        self.buffers[i].push(ChatLine {
            ts: now_ms(),
            mid: None,
            kind: LineKind::Pending { text: sanitize(text), action, cid },
        });
    }

    /// Closes conversation `i` (after leaving a room, or `/close` on a private one).
    pub(super) fn close(&mut self, i: usize) {
        if self.buffers.len() <= 1 {
            return;
        }
        self.buffers.remove(i);
        if self.current >= i && self.current > 0 {
            self.current -= 1;
        }
        self.select(self.current);
    }

    /// The message pane of the current screen, so paging and scrolling go by the rows the view
    /// draws.
    pub fn message_area(&self) -> Rect {
        message_area(self.size, self.current().is_room)
    }

    /// Message pane rows available, for paging.
    pub(super) fn page_rows(&self) -> usize {
        self.message_area().height.max(1) as usize
    }

    /// How many rows `line` takes in the current message pane.
    pub(super) fn line_rows(&self, line: &ChatLine) -> usize {
        let width = self.message_area().width.max(1) as usize;
        render_chat_line(line, &self.nick, width).len()
    }

    /// How many rows conversation `i` takes in the current message pane: the bound for
    /// scrolling.
    pub fn buffer_rows(&self, i: usize) -> usize {
        let width = self.message_area().width.max(1) as usize;
        chat_rows(&self.buffers[i].lines, &self.nick, width)
    }

    /// Takes the new terminal size, keeping the scroll position within the new bounds (a
    /// wider screen has fewer rows to scroll).
    pub fn resize(&mut self, w: u16, h: u16) {
        self.size = (w, h);
        let b = self.current;
        let max = self.buffer_rows(b).saturating_sub(self.message_area().height as usize);
        self.buffers[b].scroll = self.buffers[b].scroll.min(max);
    }
}

/// Now, in ms since the epoch: the timestamp of lines made locally (info, errors, pending),
/// on the same clock as the server's.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
