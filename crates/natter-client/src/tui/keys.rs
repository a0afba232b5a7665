//! Keys, mouse and paste: switching conversations, scrolling (and asking for older history
//! past the top), Tab completion, and the editing keys of the input line. Enter hands the
//! line to the command dispatch.

use super::state::{Action, App, HISTORY_PAGE};
use natter_proto::names::fold;
use natter_proto::native::ClientFrame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};

/// Rows the mouse wheel scrolls.
const WHEEL_ROWS: usize = 3;

impl App {
    /// Scrolls the shown conversation up; past the oldest loaded line, asks the server for
    /// the previous page.
    pub fn scroll_up(&mut self, rows: usize) -> Vec<Action> {
        let total = self.buffer_rows(self.current);
        let page = self.page_rows();
        let max = total.saturating_sub(page);
        let b = &mut self.buffers[self.current];
        let wanted = b.scroll + rows;
        b.scroll = wanted.min(max);
        if wanted > max && b.more_history && !b.loading {
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::conn::Event;
    use natter_proto::native::ServerFrame;
    use std::borrow::Cow;

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
    fn a_private_conversation_loads_its_history_when_shown_and_scrolled_back() {
        let mut app = App::new("h:1", "ann", "#lobby");
        app.size = (80, 10);
        assert_eq!(app.load_shown_history(), None, "a room's replay comes with its join");
        // bob writes: the conversation opens, and is asked for once it is shown.
        app.on_event(heard(msg(None, "bob", Some("ann"), "hi again", Some(40))));
        assert_eq!(app.load_shown_history(), None, "not shown yet");
        let bob = app.find("bob").unwrap();
        app.select(bob);
        let first = ClientFrame::History {
            room: "bob".into(),
            before: Some(40),
            after: None,
            limit: Some(HISTORY_PAGE),
            id: None,
        };
        assert_eq!(app.load_shown_history(), Some(Action::Submit(first)));
        assert_eq!(app.load_shown_history(), None, "once");
        let page = |mids: &[u64], more: bool| {
            Event::Frame(ServerFrame::History {
                id: None,
                room: Cow::Borrowed("Bob"),
                messages: mids
                    .iter()
                    .map(|&m| msg(None, "bob", Some("ann"), "said before", Some(m)))
                    .collect(),
                more,
            })
        };
        app.on_event(page(&(20..40).collect::<Vec<_>>(), true));
        assert_eq!(app.buffers[bob].lines.len(), 21);
        // Scrolling back past the top asks for the page before.
        let acts: Vec<Action> = (0..10).flat_map(|_| app.on_key(key(KeyCode::PageUp))).collect();
        let older = ClientFrame::History {
            room: "bob".into(),
            before: Some(20),
            after: None,
            limit: Some(HISTORY_PAGE),
            id: None,
        };
        assert_eq!(acts, vec![Action::Submit(older)]);
        // An empty page (the beginning, or a guest: nothing stored) ends it.
        app.on_event(page(&[], false));
        assert!(!app.buffers[bob].more_history);
        assert!(app.on_key(key(KeyCode::PageUp)).is_empty());
    }
}
