//! What one user sends cannot act on another user's terminal or pass for the server, at every
//! door (against the real binary): escape sequences (clear screen, OSC 52 clipboard writes),
//! bells, bidi overrides and line breaks in a native user's message and topic reach text-mode
//! and UDP members as visible, inert text on one line that starts like every user line; they
//! reach IRC members as PRIVMSG lines only. Names that hide characters or turn text around
//! are refused at every door.

mod common;
use common::*;

/// Clear the screen, write "rm -rf ~" to the clipboard (OSC 52, ended by BEL), reverse the
/// rest of the line, then a line that looks like the server's.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{202e}txet\n*** fake notice";

/// How text mode and plain UDP show [`HOSTILE`]: on one line, every control visible, the
/// override closed where the text ends.
const SHOWN: &str = "␛[2J␛]52;c;cm0gLXJmIH4=␇\u{202e}txet ⏎ *** fake notice\u{202c}";

/// Whether `line` holds a control character other than the line end the tests trimmed.
fn has_control(line: &str) -> bool {
    line.chars().any(|c| c.is_control() && c != '\t')
}

/// The text-mode lines `seen` that show `eve`'s words, checked to be inert.
fn checked_text_lines(who: &str, seen: &[String]) -> Vec<String> {
    for line in seen {
        assert!(!has_control(line), "{who} got a control character: {line:?}");
        assert!(!line.starts_with("*** fake"), "{who} got a line that passes for the server's: {seen:#?}");
    }
    seen.iter().filter(|l| l.contains("fake notice")).cloned().collect()
}

#[test]
fn hostile_text_reaches_text_mode_and_udp_members_inert_and_irc_members_as_privmsg_only() {
    let server = Server::start(&[]);
    let mut eve = native(server.tcp, "eve");
    eve.line(r##"{"type":"join","room":"#den","id":"j"}"##);
    eve.expect(r#""type":"joined""#);
    let mut tom = text(server.tcp, "tom");
    tom.line("/join #den");
    tom.expect("you are in #den");
    let uma = Udp::new(server.udp.unwrap());
    uma.send(b"/nick uma");
    uma.expect("Hello uma");
    uma.send(b"/join #den");
    uma.expect("you are in #den");
    let mut ian = Client::connect(server.irc.unwrap());
    ian.line("NICK ian");
    ian.line("USER ian 0 * :Ian");
    ian.expect(" 001 ian ");
    ian.line("JOIN #den");
    ian.expect(" 366 ian #den ");

    let text = serde_json::to_string(HOSTILE).unwrap();
    eve.line(&format!(r##"{{"type":"send","room":"#den","text":{text},"id":"m"}}"##));
    eve.expect(r#""type":"ack""#);
    eve.line(&format!(r##"{{"type":"topic","room":"#den","topic":{text},"id":"t"}}"##));
    eve.expect(r#""type":"topic""#);

    // Text mode: the message and the topic, each one line that starts as the server writes it.
    let seen = tom.text_barrier();
    let lines = checked_text_lines("tom", &seen);
    assert_eq!(lines.len(), 2, "{seen:#?}");
    assert!(lines[0].starts_with('[') && lines[0].ends_with(&format!("] #den <eve> {SHOWN}")), "{seen:#?}");
    assert_eq!(lines[1], format!("*** eve set the topic of #den: {SHOWN}"));

    // Plain UDP: the same lines, one datagram each.
    uma.send(b"/who *");
    let mut datagrams = Vec::new();
    loop {
        let d = uma.recv().expect("a datagram before the /who answer");
        let d = d.trim_end_matches(['\r', '\n']).to_string();
        if d.contains("*** online (") {
            break;
        }
        datagrams.push(d);
    }
    let lines = checked_text_lines("uma", &datagrams);
    assert_eq!(lines.len(), 2, "{datagrams:#?}");
    assert!(lines[0].ends_with(&format!("] #den <eve> {SHOWN}")), "{datagrams:#?}");
    assert_eq!(lines[1], format!("*** eve set the topic of #den: {SHOWN}"));

    // IRC keeps the text as is (its clients show it their way), but each of its lines is a
    // PRIVMSG from eve: the line break can neither end the line nor start another command.
    let seen = ian.irc_ping();
    let said: Vec<&String> = seen.iter().filter(|l| l.contains(" PRIVMSG #den ")).collect();
    assert_eq!(said.len(), 2, "{seen:#?}");
    assert!(
        said[0].starts_with(":eve!")
            && said[0].ends_with(" PRIVMSG #den :\u{1b}[2J\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{202e}txet")
    );
    assert!(said[1].starts_with(":eve!") && said[1].ends_with(" PRIVMSG #den :*** fake notice"), "{seen:#?}");
    let topic = seen.iter().find(|l| l.contains(" TOPIC #den ")).expect("the topic");
    assert!(
        topic.starts_with(":eve")
            && topic.ends_with(" :\u{1b}[2J\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{202e}txet *** fake notice"),
        "{topic:?}"
    );
    assert!(seen.iter().all(|l| l.starts_with(':')), "{seen:#?}");

    // A NUL or a bare CR smuggled to IRC cannot end its line either.
    eve.line(r##"{"type":"send","room":"#den","text":"a\u0000b\rQUIT :gone","id":"n"}"##);
    eve.expect(r#""type":"ack""#);
    let seen = ian.irc_ping();
    let said: Vec<&String> = seen.iter().filter(|l| l.contains(" PRIVMSG #den ")).collect();
    assert_eq!(said.len(), 2, "{seen:#?}");
    assert!(
        said[0].ends_with(" PRIVMSG #den :a b") && said[1].ends_with(" PRIVMSG #den :QUIT :gone"),
        "{seen:#?}"
    );
    let seen = tom.text_barrier();
    assert!(seen.iter().any(|l| l.ends_with("<eve> a␀b ⏎ QUIT :gone")), "{seen:#?}");
}

#[test]
fn a_private_message_a_quit_reason_and_an_away_text_are_inert_too() {
    let server = Server::start(&[]);
    let mut eve = native(server.tcp, "eve");
    let mut tom = text(server.tcp, "tom");
    eve.expect(r#""nick":"tom""#);
    let text = serde_json::to_string(HOSTILE).unwrap();
    eve.line(&format!(r##"{{"type":"away","text":{text},"id":"a"}}"##));
    eve.expect(r#""type":"away""#);
    eve.line(&format!(r##"{{"type":"send","to":"tom","text":{text},"id":"p"}}"##));
    eve.expect(r#""type":"ack""#);
    tom.line("/whois eve");
    let seen = tom.text_barrier();
    let lines = checked_text_lines("tom", &seen);
    assert!(lines.iter().any(|l| l.ends_with(&format!("*eve* {SHOWN}"))), "{seen:#?}");
    assert!(lines.contains(&format!("*** away: {SHOWN}")), "{seen:#?}");
    eve.line(&format!(r##"{{"type":"quit","reason":{text}}}"##));
    let quit = tom.expect("<-- eve quit");
    assert!(quit.ends_with(&format!("<-- eve quit ({SHOWN})")) && !has_control(&quit), "{quit:?}");
}

#[test]
fn names_with_invisible_or_direction_characters_are_refused_at_every_door() {
    let server = Server::start(&[]);
    let mut ann = native(server.tcp, "ann");
    let mut tom = text(server.tcp, "tom");
    let mut ian = Client::connect(server.irc.unwrap());
    ian.line("NICK ian");
    ian.line("USER ian 0 * :Ian");
    ian.expect(" 001 ian ");

    // Native: the error code, and a message that names the code point the name hides.
    ann.line(r##"{"type":"join","room":"#ad\u200bmin","id":1}"##);
    let e = json(&ann.expect(r#""type":"error""#));
    assert_eq!(e["code"], "invalid_room", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("invisible, unassigned or text-direction characters (it has U+200B)"),
        "{e}"
    );
    ann.line(r#"{"type":"nick","nick":"ev\u202ee","id":2}"#);
    let e = json(&ann.expect(r#""type":"error""#));
    assert_eq!(e["code"], "invalid_nick", "{e}");
    assert!(e["message"].as_str().unwrap().contains("U+202E"), "{e}");

    // Text mode: a refusal line.
    tom.line("/join #ad\u{202e}nim");
    tom.expect(
        "!!! room names cannot contain invisible, unassigned or text-direction characters (it has U+202E)",
    );
    tom.line("/nick t\u{3164}m");
    tom.expect(
        "!!! a nickname cannot contain invisible, unassigned or text-direction characters (it has U+3164)",
    );

    // IRC: 479 for the room (ERR_BADCHANNAME), 432 for the nick, each saying why.
    ian.line("JOIN #ad\u{2066}min");
    let bad = ian.expect(" 479 ian ");
    assert!(bad.contains("(it has U+2066)"), "{bad:?}");
    ian.line("NICK i\u{200d}an");
    let bad = ian.expect(" 432 ian ");
    assert!(bad.contains("Erroneous nickname") && bad.contains("U+200D"), "{bad:?}");
    ian.line("TOPIC #a\u{feff}b :x");
    ian.expect(" 479 ian ");

    // No such room was made, nobody was renamed.
    ann.line(r#"{"type":"rooms","id":3}"#);
    let rooms = json(&ann.expect(r#""type":"rooms""#));
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 1, "{rooms}");
    ann.line(r#"{"type":"who","id":4}"#);
    let who = json(&ann.expect(r#""type":"members""#));
    assert_eq!(who["nicks"], serde_json::json!(["ann", "ian", "tom"]));
}
