//! Text mode as a newcomer meets it (netcat, telnet): what typing a command shows, against the
//! real binary.

mod common;
use common::*;

/// True when no line is a refusal (`!!! ...`).
fn no_refusal(lines: &[String]) -> bool {
    !lines.iter().any(|l| l.starts_with("!!!"))
}

#[test]
fn a_nick_with_spaces_is_refused_and_the_same_nick_is_answered() {
    let server = Server::start(&[]);
    let mut zoe = text(server.tcp, "zoe");
    zoe.line("/nick zed smith");
    zoe.expect("!!! usage: /nick newname (one word: nicknames have no spaces)");
    let seen = zoe.text_barrier();
    assert!(!seen.iter().any(|l| l.contains("known as")), "{seen:#?}");
    zoe.line("/who *");
    zoe.expect("*** online (1): zoe");
    zoe.line("/nick zoe");
    let seen = zoe.text_barrier();
    assert_eq!(seen, ["*** you are already zoe"]);
    // A change of case is a change.
    zoe.line("/nick Zoe");
    zoe.expect("zoe is now known as Zoe");
}

#[test]
fn help_explains_one_command() {
    let server = Server::start(&[]);
    let mut ann = text(server.tcp, "ann");
    for asked in ["/help join", "/help /join", "/help j"] {
        ann.line(asked);
        let seen = ann.text_barrier();
        assert_eq!(seen.len(), 1, "{asked}: {seen:#?}");
        assert!(
            seen[0].starts_with("*** /join #room") && seen[0].contains("join or create a room"),
            "{seen:#?}"
        );
    }
    ann.line("/help nosuch");
    let seen = ann.text_barrier();
    assert_eq!(seen, ["!!! there is no command /nosuch; /help lists them all"]);
    // Without a word, the whole list as before.
    ann.line("/help");
    let seen = ann.text_barrier();
    assert!(seen.len() > 20 && seen.iter().any(|l| l.contains("/quit")), "{seen:#?}");
}

#[test]
fn the_inviter_and_the_invitee_read_different_lines() {
    let server = Server::start(&[]);
    let mut bob = text(server.tcp, "bob");
    let mut ann = text(server.tcp, "ann");
    bob.expect("ann joined");
    bob.line("/join #room");
    bob.expect("you are in #room");
    bob.line("/invite ann #room");
    let seen = bob.text_barrier();
    assert_eq!(seen, ["*** you invited ann to #room"]);
    let seen = ann.text_barrier();
    assert!(seen.contains(&"*** bob invites you to #room (/join #room)".to_string()), "{seen:#?}");
    assert!(!seen.iter().any(|l| l.contains("you invited")), "{seen:#?}");
}

#[test]
fn a_kick_leaves_the_room_like_a_part() {
    let server = Server::start(&[]);
    let mut ann = text(server.tcp, "ann");
    let mut bob = text(server.tcp, "bob");
    ann.line("/join #k");
    ann.expect("you are in #k");
    bob.line("/join #k");
    bob.expect("you are in #k");
    ann.expect("#k --> bob joined");
    ann.line("/kick bob enough");
    bob.expect("#k <-- bob was kicked by ann (enough)");
    // Bob's plain lines go to the room he was in before, as after /part.
    bob.line("back in the lobby");
    let seen = bob.text_barrier();
    assert!(no_refusal(&seen), "{seen:#?}");
    ann.expect("#lobby <bob> back in the lobby");
}

#[test]
fn repeated_history_pages_back_and_counts_are_checked() {
    let server = Server::start(&["--history", "2"]);
    // Native, for its acks: a message is acknowledged once it is stored.
    let mut ann = native(server.tcp, "ann");
    ann.line(r##"{"type":"join","room":"#h"}"##);
    ann.expect(r##""room":"#h""##);
    for i in 1..=8 {
        ann.line(&format!(r##"{{"type":"send","room":"#h","text":"m{i}"}}"##));
        ann.expect(r#""type":"ack""#);
    }

    let mut tom = text(server.tcp, "tom");
    tom.line("/join #h");
    // The past first (replayed history), then the present (who is here).
    let seen = tom.until("*** you are in #h (2 here: ann, tom)");
    let tail: Vec<&str> = seen.iter().map(String::as_str).skip_while(|l| !l.contains("last 2")).collect();
    assert_eq!(tail.len(), 4, "{seen:#?}");
    assert!(tail[1].ends_with("#h <ann> m7") && tail[2].ends_with("#h <ann> m8"), "{seen:#?}");
    assert_eq!(tail[3], "*** end of history");

    let page = |tom: &mut Client, line: &str| -> Vec<String> {
        tom.line(line);
        tom.text_barrier()
    };
    let texts = |lines: &[String]| -> Vec<String> {
        lines.iter().filter_map(|l| l.split("<ann> ").nth(1)).map(str::to_string).collect::<Vec<_>>()
    };
    let first = page(&mut tom, "/history #h 3");
    assert_eq!(texts(&first), ["m6", "m7", "m8"], "{first:#?}");
    assert_eq!(first.last().unwrap(), "*** end; /history #h 3 shows the 3 before these");
    let second = page(&mut tom, "/history #h 3");
    assert_eq!(texts(&second), ["m3", "m4", "m5"], "{second:#?}");
    let third = page(&mut tom, "/history 3");
    assert_eq!(texts(&third), ["m1", "m2"], "{third:#?}");
    assert_eq!(third.last().unwrap(), "*** end of the stored history");
    // Past the end it starts again from the newest.
    let again = page(&mut tom, "/history #H 2");
    assert_eq!(texts(&again), ["m7", "m8"], "{again:#?}");

    for bad in ["/history 0", "/history #h 0", "/history 501"] {
        let seen = page(&mut tom, bad);
        assert_eq!(seen, ["!!! usage: /history [#room] [count], count from 1 to 500"], "{bad}");
    }
}

#[test]
fn a_long_message_is_clipped_in_the_replay_and_whole_in_history() {
    let server = Server::start(&[]);
    // Native, for its acks: a message is acknowledged once it is stored.
    let mut ann = native(server.tcp, "ann");
    ann.line(r##"{"type":"join","room":"#big"}"##);
    ann.expect(r##""room":"#big""##);
    let long: String = (0..10_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    for text in [long.as_str(), "short one"] {
        ann.line(&format!(r##"{{"type":"send","room":"#big","text":"{text}"}}"##));
        ann.expect(r#""type":"ack""#);
    }

    let mut bob = text(server.tcp, "bob");
    bob.line("/join #big");
    let seen = bob.until("*** you are in #big");
    let clipped = seen.iter().find(|l| l.contains("<ann> abc")).expect("the long line is replayed");
    // The message's first 400 characters, then where to read the rest.
    let start: String = long.chars().take(400).collect();
    assert!(clipped.ends_with(&format!("<ann> {start} … (/history #big shows it whole)")), "{clipped}");
    assert!(seen.iter().any(|l| l.ends_with("<ann> short one")), "{seen:#?}");

    bob.line("/history #big");
    let seen = bob.text_barrier();
    assert!(seen.iter().any(|l| l.ends_with(&format!("<ann> {long}"))), "the whole message");
}

#[test]
fn a_paste_is_warned_once_and_the_loss_counted() {
    let server = Server::start(&["--msg-rate", "50", "--msg-burst", "30"]);
    let mut bob = native(server.tcp, "bob");
    let mut ann = text(server.tcp, "ann");
    bob.expect("ann");
    let paste: String = (0..60).map(|i| format!("pasted {i}\n")).collect();
    ann.send(paste.as_bytes());
    // Barriers (not messages, so never dropped) until the session may send again and says
    // how many were lost; the warning comes once.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    let summary = loop {
        let lines = ann.text_barrier();
        let found = lines.iter().find(|l| l.contains("were not sent")).cloned();
        seen.extend(lines);
        if let Some(line) = found {
            break line;
        }
        let shown: Vec<&String> = seen.iter().filter(|l| !l.contains("online (")).take(50).collect();
        assert!(std::time::Instant::now() < deadline, "no summary; saw {shown:#?}");
    };
    let warnings = seen.iter().filter(|l| l.contains("slow down")).count();
    assert_eq!(warnings, 1, "{:#?}", seen.iter().filter(|l| !l.contains("online")).collect::<Vec<_>>());
    let dropped: usize = summary
        .strip_prefix("*** ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(summary.ends_with("messages were not sent (too fast)"), "{summary}");
    // Still connected; and every pasted line either reached bob or was counted.
    ann.line("after the paste");
    let got = bob.until("after the paste").iter().filter(|l| l.contains("pasted")).count();
    assert_eq!(got + dropped, 60, "{got} delivered, {dropped} counted");
    assert!(dropped >= 20, "{dropped}");
}
