//! Tutorial output for UDP members (`--udp-format tutorial`): what the socket-chat tutorials'
//! UDP group-chat client can read. That client does `recvfrom(1024)`, decodes UTF-8 and splits
//! on `____`: two parts are `WHO____TEXT` (it prints "WHO sent TEXT"), three or more mean WHO
//! went offline, and a datagram without `____` crashes it.
//!
//! So every datagram this door produces has that shape and at most [`TUTORIAL_DATAGRAM`] bytes:
//!
//! - a room or private message from X is `X____TEXT` (an action `X____* X waves`; a notice the
//!   same as a message), long text split into several datagrams at character boundaries, each
//!   with the prefix;
//! - X leaving (part, quit, kick) is `X____went offline____`;
//! - everything else (answers to commands, refusals, joins, topics, modes, the goodbye) is the
//!   text-mode line, one datagram per line, sent by [`SERVER_WHO`]: `natter____online (2): ann, bob`.
//!
//! Input is text mode's, unchanged: the door wraps [`TextDoor`]. So is the encoding: a member
//! that sends GBK (the Windows version of the client decodes every datagram as GBK), or asks
//! with `/encoding gbk`, gets GB18030 datagrams, still at most [`TUTORIAL_DATAGRAM`] bytes.
//!
//! Rendering is per session (no render-cache slot): the tutorial client is a teaching tool,
//! its members are few, and a slot would cost every event in every room one more cache entry.

use super::text::{TextDoor, render_text_for};
use super::{Door, Flow, SessionCtx};
use natter_core::{Event, RenderSlot, SessionKind};
use natter_proto::decode::{encode_gb18030, gb18030_cut};
use natter_proto::display::safe_line;
use natter_proto::names::fold;

/// Largest datagram the tutorial client reads whole (`recvfrom(1024)`): a longer one would be
/// cut, possibly inside a character, which its UTF-8 decoding does not survive.
pub const TUTORIAL_DATAGRAM: usize = 1024;

/// What the tutorial client splits on.
pub const SEPARATOR: &str = "____";

/// The sender of everything that is not a person talking or leaving, so that those datagrams
/// too have the `WHO____TEXT` shape the client needs.
pub const SERVER_WHO: &str = "natter";

/// Lookalike (U+FF3F FULLWIDTH LOW LINE) written instead of `_` where a plain one would make a
/// separator the client would split on.
const LOOKALIKE: char = '\u{FF3F}';

/// Text-mode input, tutorial-shaped output (see the module documentation).
#[derive(Debug, Default)]
pub struct UdpTutorialDoor {
    inner: TextDoor,
}

/// Makes `text` safe between separators and on the member's terminal: shown as text mode
/// shows it ([`safe_line`]: line breaks as ` ⏎ `, control characters as pictures, bidi runs
/// closed), tabs as spaces (the tutorial client prints the text after its own words), and
/// underscores in runs of four or more as lookalikes, so that `text` never contains
/// [`SEPARATOR`] nor a newline (the UDP door frames datagrams by newline).
fn clean(text: &str) -> String {
    let text = safe_line(text);
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '_' {
            let run = chars[i..].iter().take_while(|&&c| c == '_').count();
            let shown = if run >= SEPARATOR.len() { LOOKALIKE } else { '_' };
            out.extend(std::iter::repeat_n(shown, run));
            i += run;
            continue;
        }
        out.push(if c.is_control() { ' ' } else { c });
        i += 1;
    }
    out
}

/// A sender name safe before the separator: [`clean`], and trailing underscores become
/// lookalikes too (`ann_` + `____` would otherwise split as `ann`).
fn clean_who(who: &str) -> String {
    let cleaned = clean(who);
    let kept = cleaned.trim_end_matches('_');
    let trailing = cleaned.len() - kept.len();
    let mut out = kept.to_string();
    out.extend(std::iter::repeat_n(LOOKALIKE, trailing));
    out
}

/// Splits `text` from `who` into datagrams `WHO____PIECE` of at most `max` bytes each, cut only
/// at character boundaries; the pieces, in order, are `text`. An empty text is one datagram.
/// `who` and `text` are used as given (callers [`clean`] them first). Returns nothing when
/// `max` leaves no room for one character after the prefix.
pub fn tutorial_datagrams(who: &str, text: &str, max: usize) -> Vec<String> {
    let prefix_len = who.len() + SEPARATOR.len();
    let budget = max.saturating_sub(prefix_len);
    if budget < 4 {
        return Vec::new();
    }
    let datagram = |piece: &str| {
        let mut d = String::with_capacity(prefix_len + piece.len());
        d.push_str(who);
        d.push_str(SEPARATOR);
        d.push_str(piece);
        d
    };
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        if rest.len() <= budget {
            out.push(datagram(rest));
            return out;
        }
        let mut cut = budget;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(datagram(&rest[..cut]));
        rest = &rest[cut..];
    }
}

/// [`tutorial_datagrams`] in GB18030: `WHO____PIECE` datagrams of at most `max` bytes once
/// encoded, cut only between characters. Empty when `max` leaves no room for a character.
pub fn tutorial_datagrams_gb18030(who: &str, text: &str, max: usize) -> Vec<Vec<u8>> {
    let mut prefix = encode_gb18030(who).into_owned();
    prefix.extend_from_slice(SEPARATOR.as_bytes());
    let budget = max.saturating_sub(prefix.len());
    if budget < 4 {
        return Vec::new();
    }
    let datagram = |piece: &[u8]| [&prefix[..], piece].concat();
    let encoded = encode_gb18030(text);
    let mut rest = &encoded[..];
    let mut out = Vec::new();
    loop {
        if rest.len() <= budget {
            out.push(datagram(rest));
            return out;
        }
        // A budget of 4 fits any character, so every cut moves forward.
        let cut = gb18030_cut(rest, budget).max(1);
        out.push(datagram(&rest[..cut]));
        rest = &rest[cut..];
    }
}

impl UdpTutorialDoor {
    /// Appends the datagrams of `text` from `who`, each followed by the newline the UDP door
    /// frames datagrams by, in the encoding the member reads.
    fn say(&self, who: &str, text: &str, out: &mut Vec<u8>) {
        let (who, text) = (clean_who(who), clean(text));
        if self.inner.encoding().is_gbk() {
            for d in tutorial_datagrams_gb18030(&who, &text, TUTORIAL_DATAGRAM) {
                out.extend_from_slice(&d);
                out.push(b'\n');
            }
            return;
        }
        for d in tutorial_datagrams(&who, &text, TUTORIAL_DATAGRAM) {
            out.extend_from_slice(d.as_bytes());
            out.push(b'\n');
        }
    }

    /// Appends the three-part datagram the client shows as "WHO went offline".
    fn offline(&self, who: &str, out: &mut Vec<u8>) {
        let d = format!("{}{SEPARATOR}went offline{SEPARATOR}\n", clean_who(who));
        let d = self.inner.encoding().encode(&d);
        if d.len() <= TUTORIAL_DATAGRAM {
            out.extend_from_slice(&d);
        }
    }

    /// Appends text mode's rendering, one [`SERVER_WHO`] datagram (or several) per line.
    fn notice_lines(&self, event: &Event, out: &mut Vec<u8>) {
        for line in render_text_for(event, self.inner.nick()).split("\r\n") {
            let line = line.strip_prefix("*** ").unwrap_or(line);
            if !line.trim().is_empty() {
                self.say(SERVER_WHO, line, out);
            }
        }
    }

    fn is_me(&self, nick: &str) -> bool {
        fold(nick) == fold(self.inner.nick())
    }
}

impl Door for UdpTutorialDoor {
    const KIND: SessionKind = SessionKind::Text;

    fn cache_slot(_event: &Event) -> Option<RenderSlot> {
        None
    }

    fn gb18030(&self) -> bool {
        self.inner.encoding().is_gbk()
    }

    /// Renders datagrams, each ending in a newline (never inside one): the UDP door sends
    /// every line as one datagram.
    fn render(&mut self, event: &Event, out: &mut Vec<u8>) {
        if super::is_meta_only(event) {
            return;
        }
        match event {
            Event::Message(m) if m.action => self.say(&m.from, &format!("* {} {}", m.from, m.text), out),
            Event::Message(m) => self.say(&m.from, &m.text, out),
            Event::Part { nick, .. } | Event::Quit { nick, .. } | Event::Kick { nick, .. }
                if !self.is_me(nick) =>
            {
                self.offline(nick, out)
            }
            _ => self.notice_lines(event, out),
        }
    }

    fn observe(&mut self, event: &Event) {
        self.inner.observe(event);
    }

    fn on_registered(&mut self, nick: &str, lobby: &str) {
        self.inner.on_registered(nick, lobby);
    }

    async fn on_line(&mut self, line: &[u8], ctx: &mut SessionCtx) -> Flow {
        self.inner.on_line(line, ctx).await
    }

    fn on_too_long(&mut self, ctx: &mut SessionCtx, max: usize) -> Flow {
        self.inner.on_too_long(ctx, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Splits a datagram exactly as the tutorial client does (Python's `str.split("____")`).
    fn tutorial_split(d: &str) -> Vec<&str> {
        d.split(SEPARATOR).collect()
    }

    #[test]
    fn short_text_is_one_datagram() {
        assert_eq!(tutorial_datagrams("ann", "hello", 1024), vec!["ann____hello"]);
        assert_eq!(tutorial_datagrams("ann", "", 1024), vec!["ann____"]);
        assert!(tutorial_datagrams("ann", "x", 8).is_empty(), "no room for a character");
    }

    #[test]
    fn separators_in_names_and_text_cannot_fake_a_part() {
        let who = clean_who("a____b_");
        let text = clean("x________y___z");
        let d = &tutorial_datagrams(&who, &text, 1024)[0];
        assert_eq!(tutorial_split(d), vec![who.as_str(), text.as_str()]);
        assert_eq!(text, "x\u{FF3F}\u{FF3F}\u{FF3F}\u{FF3F}\u{FF3F}\u{FF3F}\u{FF3F}\u{FF3F}y___z");
        assert_eq!(clean("a\r\nb\0c\td"), "a ⏎ b␀c d");
        assert_eq!(clean("\u{1b}[2J\u{9b}\u{7}\u{202e}x"), "␛[2J�␇\u{202e}x\u{202c}");
        assert_eq!(clean_who("ann_"), "ann\u{FF3F}");
    }

    #[test]
    fn leaving_is_three_parts_and_the_rest_two() {
        let mut door = UdpTutorialDoor::default();
        door.on_registered("me", "#lobby");
        let mut out = Vec::new();
        door.render(&Event::Quit { nick: "bob_".into(), ident: "x@y".into(), reason: None, ts: 0 }, &mut out);
        door.render(&Event::Bye { reason: "quit".into() }, &mut out);
        door.render(&Event::Notice { req: None, room: None, text: "one\ntwo".into() }, &mut out);
        let text = String::from_utf8(out).unwrap();
        let datagrams: Vec<&str> = text.lines().collect();
        assert_eq!(
            datagrams,
            vec!["bob\u{FF3F}____went offline____", "natter____bye: quit", "natter____one", "natter____two"]
        );
        assert_eq!(tutorial_split(datagrams[0]).len(), 3);
        assert!(datagrams[1..].iter().all(|d| tutorial_split(d).len() == 2));
    }

    #[test]
    fn parts_and_kicks_of_others_are_offline_ours_are_notices() {
        let mut door = UdpTutorialDoor::default();
        door.on_registered("me", "#lobby");
        let part = |nick: &str| Event::Part {
            room: "#lobby".into(),
            nick: nick.into(),
            ident: "x@y".into(),
            reason: Some("bye".into()),
            ts: 0,
        };
        let kick = |nick: &str| Event::Kick {
            room: "#lobby".into(),
            nick: nick.into(),
            by: "op".into(),
            ident: "x@y".into(),
            reason: None,
            ts: 0,
        };
        let mut out = Vec::new();
        for event in [part("ann"), kick("bob"), part("me"), kick("ME")] {
            door.observe(&event);
            door.render(&event, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        let datagrams: Vec<&str> = text.lines().collect();
        assert_eq!(
            datagrams,
            vec![
                "ann____went offline____",
                "bob____went offline____",
                "natter____[00:00] #lobby <-- me left (bye)",
                "natter____[00:00] #lobby <-- ME was kicked by op",
            ]
        );
    }

    proptest! {
        #[test]
        fn every_piece_fits_and_the_pieces_are_the_text(
            who in "[a-zA-Z\\[\\]{}|^`\\\\_-]{1,30}|[é漢😀]{1,30}",
            text in "\\PC{0,3000}|[a€😀]{0,2000}",
        ) {
            let who = clean_who(&who);
            let text = clean(&text);
            let pieces = tutorial_datagrams(&who, &text, TUTORIAL_DATAGRAM);
            prop_assert!(!pieces.is_empty());
            let mut joined = String::new();
            for p in &pieces {
                prop_assert!(p.len() <= TUTORIAL_DATAGRAM);
                prop_assert!(std::str::from_utf8(p.as_bytes()).is_ok());
                prop_assert!(!p.contains('\n'));
                let parts = tutorial_split(p);
                prop_assert_eq!(parts.len(), 2, "{:?}", p);
                prop_assert_eq!(parts[0], who.as_str());
                joined.push_str(parts[1]);
            }
            prop_assert_eq!(joined, text);
        }

        #[test]
        fn gb18030_pieces_fit_and_decode_to_the_text(
            who in "[a-z]{1,30}|[é漢😀]{1,30}",
            text in "\\PC{0,3000}|[a€😀é漢]{0,2000}",
        ) {
            let (who, text) = (clean_who(&who), clean(&text));
            let pieces = tutorial_datagrams_gb18030(&who, &text, TUTORIAL_DATAGRAM);
            prop_assert!(!pieces.is_empty());
            let mut joined = String::new();
            for p in &pieces {
                prop_assert!(p.len() <= TUTORIAL_DATAGRAM);
                let (d, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(p);
                prop_assert!(!had_errors);
                let parts = tutorial_split(&d);
                prop_assert_eq!(parts.len(), 2, "{:?}", d);
                prop_assert_eq!(parts[0], who.as_str());
                joined.push_str(parts[1]);
            }
            prop_assert_eq!(joined, text);
        }

        #[test]
        fn raw_splitting_reassembles_any_text(text in any::<String>(), max in 16usize..2000) {
            let pieces = tutorial_datagrams("ann", &text, max);
            let mut joined = String::new();
            for p in &pieces {
                prop_assert!(p.len() <= max);
                let rest = p.strip_prefix("ann____");
                prop_assert!(rest.is_some());
                joined.push_str(rest.unwrap_or_default());
            }
            prop_assert_eq!(joined, text);
        }
    }
}
