//! The order of what an IRC client receives: the registration burst before anything else,
//! the door's own answers (PONG, numerics) behind the hub's answers to earlier messages, and
//! labeled-response batches around the answers of a labeled command.

use super::lines::{add_tag, push_line};
use super::requests::{Op, request_of};
use super::{IrcDoor, IrcNote};
use natter_core::Event;
use natter_proto::irc;

/// The request of events that may answer a command carrying its label.
fn labeled_req(event: &Event) -> Option<&natter_core::Req> {
    match event {
        Event::Ack { req, .. }
        | Event::Error { req, .. }
        | Event::History { req, .. }
        | Event::ActiveRooms { req, .. } => Some(req),
        _ => None,
    }
}

impl IrcDoor {
    /// Renders `event` in its place: held behind unanswered messages when it is the door's
    /// own output, collected when a labeled response is open, deferred during the burst.
    pub(super) fn render_in_order(&mut self, event: &Event, out: &mut Vec<u8>) {
        let door_local = matches!(event, Event::Local(_));
        if door_local && self.unanswered > 0 && !self.deferring {
            let mut held = std::mem::take(&mut self.held);
            self.render_now(event, &mut held);
            self.held = held;
            return;
        }
        self.render_now(event, out);
        let answers_message = match event {
            Event::Ack { req, .. } | Event::Error { req, .. } => {
                matches!(request_of(req).map(|r| &r.op), Some(Op::Message { .. } | Op::Notice { .. }))
            }
            _ => false,
        };
        if answers_message {
            self.unanswered = self.unanswered.saturating_sub(1);
            if self.unanswered == 0 {
                // Taken, not appended from: an idle connection keeps no room it once needed.
                out.append(&mut std::mem::take(&mut self.held));
            }
        }
    }

    /// Renders now, into a labeled response or the burst when one is open.
    fn render_now(&mut self, event: &Event, out: &mut Vec<u8>) {
        if let Event::Local(note) = event
            && let Some(IrcNote::LabelEnd) = note.get::<IrcNote>()
        {
            if let Some(open) = self.labeling.take() {
                self.wrap_label(&open.label, &open.lines, out);
            }
            return;
        }
        if let Some(mut open) = self.labeling.take() {
            self.render_event(event, &mut open.lines);
            self.labeling = Some(open);
            return;
        }
        if let Some(label) = labeled_req(event).and_then(request_of).and_then(|r| r.label.clone()) {
            let mut lines = Vec::new();
            self.render_event(event, &mut lines);
            return self.wrap_label(&label, &lines, out);
        }
        if self.deferring {
            let is_burst_end = matches!(event, Event::ServerStats { req, .. }
                if matches!(request_of(req).map(|r| &r.op), Some(Op::Lusers { welcome: true })));
            if !is_burst_end && !matches!(event, Event::Bye { .. }) {
                let mut held = std::mem::take(&mut self.deferred);
                self.render_event(event, &mut held);
                self.deferred = held;
                return;
            }
        }
        self.render_event(event, out);
    }

    /// Sends the answer to a labeled command: `ACK` for none, the line labeled for one, a
    /// `labeled-response` batch for more (a lone batch carries the label itself).
    fn wrap_label(&mut self, label: &str, lines: &[u8], out: &mut Vec<u8>) {
        let mut label_tag = String::from("label=");
        irc::escape_tag_value(label, &mut label_tag);
        let mut split: Vec<&[u8]> = lines.split_inclusive(|&b| b == b'\n').collect();
        split.retain(|l| !l.is_empty());
        let lone_batch = split.first().is_some_and(|l| {
            let text = String::from_utf8_lossy(l);
            text.split(' ').take(3).any(|w| w == "BATCH")
        }) && split.last().is_some_and(|l| String::from_utf8_lossy(l).contains(" BATCH -"));
        match split.len() {
            0 => push_line(out, &format!("@{label_tag} "), Some(self.server), "ACK", &[]),
            1 => add_tag(split[0], &label_tag, out),
            _ if lone_batch => {
                add_tag(split[0], &label_tag, out);
                for l in &split[1..] {
                    out.extend_from_slice(l);
                }
            }
            _ => {
                let id = self.next_batch();
                let start = format!("@{label_tag} ");
                push_line(out, &start, Some(self.server), "BATCH", &[&format!("+{id}"), "labeled-response"]);
                let batch_tag = format!("batch={id}");
                for l in split {
                    add_tag(l, &batch_tag, out);
                }
                push_line(out, "", Some(self.server), "BATCH", &[&format!("-{id}")]);
            }
        }
    }
}
