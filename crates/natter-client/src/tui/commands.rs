//! Command dispatch: what a typed line does. [`crate::plan`] interprets it (shared with line
//! mode); this applies the plan to the TUI: actions for the connection, lines shown locally,
//! switching to a joined room, `/close` of a private conversation.

use super::state::{Action, App};
use crate::plan::{Plan, plan};
use natter_proto::names::fold;
use natter_proto::native::ClientFrame;

impl App {
    /// Acts on the line typed when Enter is pressed: a message, a command, or an error.
    pub(super) fn submit_line(&mut self) -> Vec<Action> {
        let line = self.input.take();
        let trimmed = line.trim();
        if !self.current().is_room && (trimmed == "/close" || trimmed == "/part") {
            self.close(self.current);
            return Vec::new();
        }
        self.buffers[self.current].scroll = 0;
        // What was typed is shown only with its password starred out.
        if let Some(shown) = super::input::masked(&line) {
            self.info_current(shown);
        }
        match plan(&line, &self.current_target()) {
            Plan::Nothing => Vec::new(),
            Plan::Send { target, text, action } => vec![Action::Send { target, text, action }],
            Plan::Submit(ClientFrame::History { room, limit, .. }) => {
                // `/history` loads older messages into the scrollback.
                let i = self.open(&room);
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
