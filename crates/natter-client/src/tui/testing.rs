//! Helpers for the TUI's tests: building connection events and typing keys, so each test
//! reads as what a user sees happen.

use super::state::{Action, App};
use crate::conn::Event;
use natter_proto::native::{MessageFrame, ServerFrame};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::borrow::Cow;

pub(super) fn msg(
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
pub(super) fn heard(msg: MessageFrame<'static>) -> Event {
    Event::Message { msg, own: false, history: false }
}

/// Someone else's message replayed from history.
pub(super) fn replayed(msg: MessageFrame<'static>) -> Event {
    Event::Message { msg, own: false, history: true }
}

pub(super) fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub(super) fn type_line(app: &mut App, s: &str) -> Vec<Action> {
    for c in s.chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    app.on_key(key(KeyCode::Enter))
}

pub(super) fn joined(room: &str, members: &[&str]) -> Event {
    Event::Frame(ServerFrame::Joined {
        id: None,
        room: Cow::Owned(room.into()),
        topic: Cow::Borrowed("t"),
        members: members.iter().map(|m| Cow::Owned(m.to_string())).collect(),
        count: None,
        ephemeral: false,
        operators: vec![],
        voiced: vec![],
        history: vec![],
    })
}
