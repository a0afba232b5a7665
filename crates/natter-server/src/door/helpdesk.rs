//! Help-desk mode (`natter serve --helpdesk`): the door for the tutorials' customer-service and
//! half-duplex clients, which connect and type questions but never send a nickname.
//!
//! A visitor is logged in at once as `guest-N`, outside every room, and is sent nothing but the
//! operators' answers, each as the bare text on one line and `\n`: no greeting, no time, no
//! `***` notices, so that a client which sends one line and reads one reply reads the answer.
//! The answer is shown as text mode shows what people type (`natter_proto::display`): its
//! line breaks as ` ⏎ `, control characters as pictures, so it is always one reply and cannot
//! act on the visitor's terminal. Every line it types goes privately to the server operators
//! (the console first of all); `quit` or `exit` ends its conversation.

use super::text::strip_telnet;
use super::{Door, Flow, SessionCtx};
use crate::config::Helpdesk;
use natter_core::metrics::Disconnect;
use natter_core::{Command, Event, Refusal, RenderSlot, SessionKind};
use natter_proto::decode::{PeerEncoding, decode_text_detect};
use natter_proto::display::SafeLine;
use std::sync::atomic::Ordering;

/// How many taken names a guest skips before giving up: far more than any server has guests
/// logged in under names it did not choose itself.
const MAX_NAME_TRIES: usize = 10_000;

/// The name of guest number `n`.
fn guest_nick(n: u64) -> String {
    format!("guest-{n}")
}

/// Help-desk state of one visitor's connection.
#[derive(Debug)]
pub struct HelpdeskDoor {
    desk: &'static Helpdesk,
    /// What the visitor reads: GB18030 once it writes GBK (a Chinese Windows client), as in
    /// text mode.
    encoding: PeerEncoding,
}

impl HelpdeskDoor {
    /// A door for one visitor of `desk`.
    pub fn new(desk: &'static Helpdesk) -> Self {
        Self { desk, encoding: PeerEncoding::default() }
    }

    /// The next guest name to try: numbers only count up, so a name is never handed out twice
    /// while the server runs.
    fn next_name(&self) -> String {
        guest_nick(self.desk.next_guest.fetch_add(1, Ordering::Relaxed))
    }
}

impl Door for HelpdeskDoor {
    const KIND: SessionKind = SessionKind::Text;

    // What a guest is sent is its own: nothing is shared with other sessions' renderings.
    fn cache_slot(_event: &Event) -> Option<RenderSlot> {
        None
    }

    fn gb18030(&self) -> bool {
        self.encoding.is_gbk()
    }

    fn render(&mut self, event: &Event, out: &mut Vec<u8>) {
        let text = match event {
            // Only private messages reach a guest (it is in no room): the operators' answers.
            Event::Message(m) if m.room.is_none() && !m.text.is_empty() => {
                format!("{}\n", SafeLine(m.text.trim_end_matches(['\r', '\n'])))
            }
            // A refused question (too long, too fast) is answered, or a client that waits for
            // one reply would wait forever.
            Event::Error { refusal, .. } => format!("!!! {}\n", SafeLine(&refusal.to_string())),
            _ => return,
        };
        out.extend_from_slice(&self.encoding.encode(&text));
    }

    async fn on_connect(&mut self, ctx: &mut SessionCtx) -> Flow {
        if ctx.plain_text_refused() {
            return ctx.close(Disconnect::LoginRefused, crate::door::TLS_REQUIRED);
        }
        for _ in 0..MAX_NAME_TRIES {
            match ctx.register_unseen(self.next_name()).await {
                Ok(Ok(())) => return Flow::Continue,
                Ok(Err(Refusal::NickInUse { .. })) => continue,
                Ok(Err(refusal)) => return ctx.close(Disconnect::LoginRefused, refusal.to_string()),
                Err(()) => return ctx.close(Disconnect::Shutdown, "the server is shutting down"),
            }
        }
        ctx.close(Disconnect::LoginRefused, "no guest name is free")
    }

    async fn on_line(&mut self, line: &[u8], ctx: &mut SessionCtx) -> Flow {
        let line = strip_telnet(line);
        let (text, detected) = decode_text_detect(&line);
        self.encoding.observe(detected);
        let text = text.trim_end_matches(['\r', '\n']);
        let word = text.trim();
        if word.is_empty() {
            return Flow::Continue;
        }
        if matches!(word, "quit" | "exit" | "/quit") {
            return ctx.close(Disconnect::Quit, "left");
        }
        if !ctx.allow_message() {
            return ctx.rate_limited(None);
        }
        ctx.command(Command::AskOperators { text: text.to_string(), req: None }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::ChatMessage;
    use std::sync::Arc;

    #[test]
    fn guests_are_numbered_from_one_and_never_twice() {
        let desk = Helpdesk::new("operator");
        let (a, b) = (HelpdeskDoor::new(desk), HelpdeskDoor::new(desk));
        assert_eq!(a.next_name(), "guest-1");
        assert_eq!(b.next_name(), "guest-2");
        assert_eq!(a.next_name(), "guest-3");
        // Each server counts its own guests.
        assert_eq!(HelpdeskDoor::new(Helpdesk::new("operator")).next_name(), "guest-1");
        assert!(natter_proto::names::validate_nick(&guest_nick(u64::MAX)).is_ok());
    }

    fn private(text: &str, room: Option<&str>) -> Event {
        Event::Message(Arc::new(ChatMessage {
            room: room.map(Into::into),
            from: "operator".into(),
            ident: "console@127.0.0.1".into(),
            account: None,
            to: room.is_none().then(|| "guest-1".into()),
            text: text.into(),
            action: false,
            bot: false,
            notice: false,
            meta: None,
            uid: 0,
            mid: None,
            ts: 0,
        }))
    }

    #[test]
    fn a_guest_sees_the_bare_answer_and_nothing_else() {
        let mut door = HelpdeskDoor::new(Helpdesk::new("operator"));
        let mut out = Vec::new();
        door.render(&private("yes, how can I help?", None), &mut out);
        assert_eq!(out, b"yes, how can I help?\n");
        out.clear();
        // One answer is one line, inert on the visitor's terminal.
        door.render(&private("a\nb\u{1b}[2J\u{7}\n", None), &mut out);
        assert_eq!(String::from_utf8(out.clone()).unwrap(), "a ⏎ b␛[2J␇\n");
        out.clear();
        for event in [
            Event::Welcome { req: None, nick: "guest-1".into() },
            private("room chatter", Some("#lobby")),
            Event::Bye { reason: "bye".into() },
            Event::Notice { req: None, room: None, text: "notice".into() },
        ] {
            door.render(&event, &mut out);
        }
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
        door.render(&Event::Error { req: None, refusal: Refusal::LineTooLong { max: 64 } }, &mut out);
        assert!(out.starts_with(b"!!! ") && out.ends_with(b"\n"));
    }
}
