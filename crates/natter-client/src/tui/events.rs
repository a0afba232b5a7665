//! Applying connection events to the state: messages land in their conversation (replacing
//! our pending line, marking unread and mentions), presence updates member lists, answers and
//! errors become info lines, and the connection's state shows in the status line.

use super::layout::{ChatLine, LineKind};
use super::state::{App, ConnState, now_ms};
use crate::conn::{Event, Status};
use crate::format::{conversation, frame_text, sanitize, status_text};
use natter_proto::names::fold;
use natter_proto::native::{ErrorCode, MessageFrame, RoomChangeFrame, ServerFrame};

/// True when `text` names `nick` as a word of its own (so `annual` does not mention `ann`).
pub(super) fn mentions(text: &str, nick: &str) -> bool {
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

/// Replayed history lines longer than this (characters) are clipped: a 16 KB message would
/// otherwise fill the screen on every join.
const REPLAY_CLIP: usize = 400;

/// What ends a clipped replayed line; `/history` shows the message whole in its place.
const CLIPPED: &str = " … (/history shows it whole)";

impl App {
    fn add_message(&mut self, msg: MessageFrame<'static>, own: bool, history: bool) {
        let name = conversation(&msg, &self.nick);
        let i = self.open(&name);
        let mut text = sanitize(&msg.text);
        if history && let Some((cut, _)) = text.char_indices().nth(REPLAY_CLIP) {
            text.truncate(cut);
            text.push_str(CLIPPED);
        }
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
        let line = ChatLine {
            ts: msg.ts,
            mid: msg.mid,
            kind: LineKind::Msg { from: sanitize(&msg.from), text, action: msg.action, mention },
        };
        let rows = self.line_rows(&line);
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

    /// A message was refused: its pending line becomes an error. When that line is in
    /// another conversation than the one shown (`@nobody hi` typed in a room), the refusal is
    /// also said where the user looks, and a private conversation that holds nothing but
    /// refused messages (a nick that is not online) is closed again rather than left behind.
    fn send_failed(&mut self, cid: &str, code: ErrorCode, message: &str) {
        let message = sanitize(message);
        let mut failed = None;
        for (i, b) in self.buffers.iter_mut().enumerate() {
            for l in &mut b.lines {
                if let LineKind::Pending { text, cid: c, .. } = &l.kind
                    && c == cid
                {
                    let text = text.clone();
                    l.kind = LineKind::Error(format!("not sent: {text} ({}: {message})", code.as_str()));
                    failed = Some((i, text));
                }
            }
        }
        match failed {
            Some((i, _)) if i == self.current => {}
            Some((i, text)) => {
                let b = &self.buffers[i];
                let only_refused = b.lines.iter().all(|l| matches!(l.kind, LineKind::Error(_)));
                let close = !b.is_room && only_refused;
                self.error_current(format!("not sent to {}: {text} ({message})", sanitize(&b.name)));
                if close {
                    self.close(i);
                }
            }
            // Its conversation was closed meanwhile.
            None => self.error_current(format!("message not sent ({message})")),
        }
    }

    /// Applies one connection event.
    pub fn on_event(&mut self, event: Event) {
        match event {
            Event::Status(s) => match &s {
                Status::Connected { addr, nick, reconnected, .. } => {
                    // Another node of a cluster after a move: the status line says which.
                    self.server = addr.clone();
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
            Event::SendFailed { cid, code, message } => self.send_failed(&cid, code, &message),
            Event::Lag(d) => self.lag = Some(d),
            Event::Warning(w) => self.info_current(format!("warning: {}", sanitize(&w))),
            Event::Frame(frame) => self.on_frame(frame),
        }
    }

    fn on_frame(&mut self, frame: ServerFrame<'static>) {
        use ServerFrame as S;
        let text = frame_text(&frame);
        match frame {
            S::Joined { room, topic, members, operators, voiced, .. } => {
                let fresh = self.find(&room).is_none_or(|i| self.buffers[i].members.is_empty());
                let i = self.open(&room);
                let b = &mut self.buffers[i];
                b.topic = sanitize(&topic);
                b.members = members.iter().map(|m| m.to_string()).collect();
                b.members.sort_by_key(|m| fold(m));
                b.operators = operators.iter().map(|n| fold(n)).collect();
                b.voiced = voiced.iter().map(|n| fold(n)).collect();
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
                // A message the replay clipped is shown whole when a page brings it again.
                for m in &messages {
                    let Some(line) = b.lines.iter_mut().find(|l| l.mid.is_some() && l.mid == m.mid) else {
                        continue;
                    };
                    if let LineKind::Msg { text, .. } = &mut line.kind
                        && text.ends_with(CLIPPED)
                    {
                        *text = sanitize(&m.text);
                    }
                }
                let oldest = b.oldest_mid();
                let older: Vec<ChatLine> = messages
                    .into_iter()
                    .filter(|m| match (m.mid, oldest) {
                        (Some(mid), Some(o)) => mid < o,
                        (Some(_), None) => true,
                        (None, _) => false,
                    })
                    .map(|m| {
                        let text = sanitize(&m.text);
                        ChatLine {
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
                        ChatLine {
                            ts,
                            mid: None,
                            kind: LineKind::Info(format!("beginning of {}", sanitize(&room))),
                        },
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
            S::Kick { room, nick, by, reason, .. } => {
                let Some(i) = self.find(&room) else { return };
                if fold(&nick) == fold(&self.nick) {
                    // Out of the room as after a part: its conversation closes, and the
                    // conversation shown next says why.
                    let why = reason.map(|r| format!(" ({})", sanitize(&r))).unwrap_or_default();
                    let said = format!("you were kicked from {} by {}{why}", sanitize(&room), sanitize(&by));
                    if self.buffers.len() > 1 {
                        self.close(i);
                    } else {
                        self.buffers[i].clear_members();
                    }
                    self.info_current(said);
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
            S::Mode { room, changes, .. } => {
                if let Some(i) = self.find(&room) {
                    let b = &mut self.buffers[i];
                    for change in &changes {
                        let (set, nick, on) = match change {
                            RoomChangeFrame::Op { nick, on } => (&mut b.operators, nick, *on),
                            RoomChangeFrame::Voice { nick, on } => (&mut b.voiced, nick, *on),
                            _ => continue,
                        };
                        if on {
                            set.insert(fold(nick));
                        } else {
                            set.remove(&fold(nick));
                        }
                    }
                }
                if let Some(t) = text {
                    let i = self.find(&room).unwrap_or(self.current);
                    self.info_in(i, now_ms(), t);
                }
            }
            S::Nick { old, new, .. } => {
                if fold(&old) == fold(&self.nick) {
                    self.nick = new.to_string();
                }
                for i in 0..self.buffers.len() {
                    let b = &mut self.buffers[i];
                    let here = if b.is_room {
                        let (op, voiced) =
                            (b.operators.contains(&fold(&old)), b.voiced.contains(&fold(&old)));
                        let had = b.remove_member(&old);
                        if had {
                            b.add_member(&new);
                            if op {
                                b.operators.insert(fold(&new));
                            }
                            if voiced {
                                b.voiced.insert(fold(&new));
                            }
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
                    for l in t.lines() {
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
}

#[cfg(test)]
mod tests {
    use super::super::state::Action;
    use super::super::testing::*;
    use super::*;
    use crate::conn::Target;
    use natter_proto::native::ClientFrame;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

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

    fn kick(room: &str, nick: &str, by: &str, reason: Option<&str>) -> Event {
        Event::Frame(ServerFrame::Kick {
            room: room.to_string().into(),
            nick: nick.to_string().into(),
            by: by.to_string().into(),
            reason: reason.map(|r| r.to_string().into()),
            ts: 1,
        })
    }

    fn texts(b: &super::super::state::Buffer) -> Vec<String> {
        b.lines
            .iter()
            .map(|l| match &l.kind {
                LineKind::Info(t) | LineKind::Error(t) => t.clone(),
                LineKind::Msg { from, text, .. } => format!("<{from}> {text}"),
                LineKind::Pending { text, .. } => format!("… {text}"),
            })
            .collect()
    }

    #[test]
    fn a_kicked_member_leaves_the_member_list() {
        let mut app = App::new("h:1", "ann", "#lobby");
        app.on_event(joined("#lobby", &["ann"]));
        app.on_event(joined("#rust", &["ann", "bob", "cy"]));
        app.on_event(kick("#rust", "bob", "ann", Some("spam")));
        let rust = &app.buffers[app.find("#rust").unwrap()];
        assert_eq!(rust.members, ["ann", "cy"]);
        assert_eq!(texts(rust).last().unwrap(), "bob was kicked from #rust by ann (spam)");
    }

    #[test]
    fn being_kicked_closes_the_room_and_says_so_where_we_look() {
        let mut app = App::new("h:1", "ann", "#lobby");
        app.on_event(joined("#lobby", &["ann"]));
        type_line(&mut app, "/join #rust");
        app.on_event(joined("#rust", &["ann", "bob"]));
        assert_eq!(app.current().name, "#rust");
        app.on_event(kick("#rust", "ANN", "bob", Some("go away")));
        assert_eq!(app.find("#rust"), None, "the room's conversation is closed");
        assert_eq!(app.current().name, "#lobby");
        assert_eq!(texts(app.current()).last().unwrap(), "you were kicked from #rust by bob (go away)");
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

    #[test]
    fn a_long_replayed_message_is_clipped_until_history_brings_it_whole() {
        let mut app = App::new("h:1", "ann", "#lobby");
        app.on_event(joined("#lobby", &["ann", "bob"]));
        let long = "ab ".repeat(2000);
        app.on_event(replayed(msg(Some("#lobby"), "bob", None, &long, Some(7))));
        let shown = |app: &App| match &app.buffers[0].lines.last().unwrap().kind {
            LineKind::Msg { text, .. } => text.clone(),
            other => panic!("{other:?}"),
        };
        let clipped = shown(&app);
        assert!(
            clipped.ends_with(CLIPPED) && clipped.chars().count() == REPLAY_CLIP + CLIPPED.chars().count()
        );
        // A live message of the same length is shown whole.
        app.on_event(heard(msg(Some("#lobby"), "bob", None, &long, Some(8))));
        assert_eq!(shown(&app), long);
        app.on_event(Event::Frame(ServerFrame::History {
            id: None,
            room: "#lobby".into(),
            messages: vec![msg(Some("#lobby"), "bob", None, &long, Some(7))],
            more: false,
        }));
        let whole = app.buffers[0].lines.iter().find(|l| l.mid == Some(7)).unwrap();
        assert!(matches!(&whole.kind, LineKind::Msg { text, .. } if *text == long));
    }
}
