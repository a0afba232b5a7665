//! The IRC front door against the real server: raw IRC clients over TCP, alone and together
//! with native and text clients in the same rooms.

mod common;

use common::{Client, Server, irc_with_caps, json, native, text};
use std::net::SocketAddr;

fn irc(addr: SocketAddr, nick: &str) -> Client {
    irc_with_caps(addr, nick, "")
}

#[test]
fn registration_burst_on_the_irc_port() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.irc.expect("irc port"));
    c.line("NICK ann");
    c.line("USER ann 0 * :Ann Example");
    let mut codes = Vec::new();
    let mut isupport = String::new();
    loop {
        let line = c.next().expect("burst");
        let code = line.split(' ').nth(1).unwrap_or("").to_string();
        if code == "005" {
            // At most 13 tokens per 005 line.
            assert!(line.split(' ').count() <= 3 + 13 + 5, "{line}");
            isupport.push_str(&line);
        }
        if code == "JOIN" {
            assert!(line.starts_with(":ann!ann@127.0.0.1 JOIN #lobby"), "{line}");
        }
        codes.push(code.clone());
        if code == "366" {
            break;
        }
    }
    for token in ["CHANTYPES=#", "NICKLEN=30", "CHATHISTORY=500", "MSGREFTYPES=msgid,timestamp"] {
        assert!(isupport.contains(token), "{token} in {isupport}");
    }
    let pos = |c: &str| codes.iter().position(|x| x == c).unwrap_or_else(|| panic!("{c} in {codes:?}"));
    assert!(pos("001") < pos("002") && pos("004") < pos("005") && pos("005") < pos("251"));
    assert!(pos("251") < pos("375") && pos("376") < pos("JOIN") && pos("JOIN") < pos("353"));
    c.line("PING :abc");
    c.expect(":natter PONG natter abc");
    c.line("QUIT :see you");
    c.expect("ERROR :Closing Link");
    assert!(c.closed());
}

#[test]
fn irc_clients_are_recognised_on_the_main_port() {
    let server = Server::start(&["--irc", "off"]);
    assert!(server.irc.is_none());
    let mut c = irc(server.tcp, "ann");
    c.line("PRIVMSG #lobby :hello from the main port");
    let mut t = text(server.tcp, "bob");
    c.line("PRIVMSG #lobby :again");
    t.expect("<ann> again");
    // A text user whose nickname is `nick` stays a text user.
    let mut n = Client::connect(server.tcp);
    n.line("nick");
    n.expect("Hello nick");
}

#[test]
fn cap_negotiation() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.irc.unwrap());
    c.line("CAP LS 302");
    let ls = c.expect("CAP * LS");
    for cap in ["message-tags", "server-time", "echo-message", "multi-prefix"] {
        assert!(ls.contains(cap), "{ls}");
    }
    c.line("CAP REQ :server-time bogus-cap");
    c.expect("CAP * NAK :server-time bogus-cap");
    c.line("CAP REQ :server-time echo-message");
    c.expect("CAP * ACK :server-time echo-message");
    c.line("NICK ann");
    c.line("USER ann 0 * :Ann");
    // Registration waits for CAP END: nothing before the answer to the next command.
    c.line("CAP LIST");
    let before = c.until("CAP * LIST :echo-message server-time");
    assert!(before.iter().all(|l| !l.contains(" 001 ")), "{before:?}");
    c.line("CAP END");
    c.expect(" 001 ann ");
    c.line("CAP FROB");
    c.expect(" 410 ann FROB ");
}

#[test]
fn bad_input_gets_the_right_numerics() {
    let server = Server::start(&[]);
    let addr = server.irc.unwrap();
    let mut c = Client::connect(addr);
    c.line("PRIVMSG #lobby :too early");
    c.expect(":natter 451 * :You have not registered");
    c.line("NICK 1bad");
    c.expect(" 432 * 1bad ");
    c.line("NICK");
    c.expect(" 431 * ");
    c.line("USER ann");
    c.expect(" 461 * USER ");
    let _taken = native(server.tcp, "taken");
    c.line("NICK taken");
    c.line("USER x 0 * :X");
    c.expect(" 433 * taken ");
    c.line("NICK ann");
    c.expect(" 001 ann ");
    c.expect(" 366 ");
    for (input, expected) in [
        ("FROBNICATE x", " 421 ann FROBNICATE "),
        ("JOIN", " 461 ann JOIN "),
        ("JOIN nohash", " 403 ann nohash "),
        ("PART #nowhere", " 403 ann #nowhere "),
        ("PRIVMSG", " 411 ann "),
        ("PRIVMSG #lobby", " 412 ann "),
        ("PRIVMSG zed :hi", " 401 ann zed "),
        ("PRIVMSG #nowhere :hi", " 403 ann #nowhere "),
        ("NICK taken", " 433 ann taken "),
        ("NICK 9x", " 432 ann 9x "),
        ("USER a 0 * :b", " 462 ann "),
        ("PING", " 409 ann "),
        ("MODE", " 461 ann MODE "),
        ("MODE taken +i", " 502 ann "),
        ("MODE ann +z", " 501 ann "),
        ("MODE #lobby +q", " 472 ann q "),
        ("WHOIS", " 431 ann "),
        ("WHOIS zed", " 401 ann zed "),
        ("TOPIC", " 461 ann TOPIC "),
        ("ISON", " 461 ann ISON "),
    ] {
        c.line(input);
        c.expect(expected);
    }
    let mut other = native(server.tcp, "other");
    other.line(r##"{"type":"join","room":"#side"}"##);
    other.expect(r#""type":"joined""#);
    c.line("PRIVMSG #side :not a member");
    c.expect(" 404 ann #side ");
    c.line("PART #side");
    c.expect(" 442 ann #side ");
    c.line(&format!("PRIVMSG #lobby :{}", "x".repeat(600)));
    c.expect(" 417 ann ");
    // A NOTICE never draws an automatic error: the PONG is the very next line (`expect`
    // would have skipped a 401 on its way to it).
    c.line("NOTICE zed :hi");
    c.line("PING :after-notice");
    let seen = c.next().expect("PONG");
    assert!(seen.contains(" PONG ") && seen.contains("after-notice"), "{seen}");
}

#[test]
fn mixed_session_irc_and_native() {
    let server = Server::start(&[]);
    let mut nat = native(server.tcp, "nat");
    let mut i = irc(server.irc.unwrap(), "irky");
    nat.expect(r#""type":"join""#);

    // Native to IRC, plain and action.
    nat.line(r##"{"type":"send","room":"#lobby","text":"hello irc"}"##);
    i.expect(":nat!native@127.0.0.1 PRIVMSG #lobby :hello irc");
    nat.line(r##"{"type":"send","room":"#lobby","text":"waves","action":true}"##);
    i.expect("PRIVMSG #lobby :\u{1}ACTION waves\u{1}");

    // IRC to native, plain and CTCP ACTION.
    i.line("PRIVMSG #lobby :hello native");
    let m = json(&nat.expect(r#""type":"message""#));
    assert_eq!((m["from"].as_str(), m["text"].as_str()), (Some("irky"), Some("hello native")));
    i.line("PRIVMSG #lobby :\u{1}ACTION dances\u{1}");
    let m = json(&nat.expect(r#""type":"message""#));
    assert_eq!((m["text"].as_str(), m["action"].as_bool()), (Some("dances"), Some(true)));

    // Private messages both ways.
    i.line("PRIVMSG nat :psst");
    let m = json(&nat.expect(r#""type":"message""#));
    assert_eq!((m["to"].as_str(), m["text"].as_str()), (Some("nat"), Some("psst")));
    nat.line(r#"{"type":"send","to":"irky","text":"back at you"}"#);
    i.expect(":nat!native@127.0.0.1 PRIVMSG irky :back at you");

    // Joins and parts of a new room, both ways.
    i.line("JOIN #rust,#go");
    i.expect(":irky!irky@127.0.0.1 JOIN #rust");
    i.expect(" 366 irky #rust ");
    i.expect(":irky!irky@127.0.0.1 JOIN #go");
    nat.line(r##"{"type":"join","room":"#rust"}"##);
    i.expect(":nat!native@127.0.0.1 JOIN #rust");
    i.line("NAMES #rust");
    i.expect(":natter 353 irky = #rust :@irky nat");
    i.line("PART #rust :bye now");
    let p = json(&nat.expect(r#""type":"part""#));
    assert_eq!((p["nick"].as_str(), p["reason"].as_str()), (Some("irky"), Some("bye now")));
    nat.line(r##"{"type":"part","room":"#lobby"}"##);
    i.expect(":nat!native@127.0.0.1 PART #lobby");

    // Nick changes, both ways.
    nat.line(r##"{"type":"join","room":"#lobby"}"##);
    i.expect(":nat!native@127.0.0.1 JOIN #lobby");
    i.line("NICK irc2");
    i.expect(":irky!irky@127.0.0.1 NICK irc2");
    let n = json(&nat.expect(r#""type":"nick""#));
    assert_eq!((n["old"].as_str(), n["new"].as_str()), (Some("irky"), Some("irc2")));
    nat.line(r#"{"type":"nick","nick":"nat2"}"#);
    i.expect(":nat!native@127.0.0.1 NICK nat2");

    // Topic set by native, seen and queried by IRC.
    nat.line(r##"{"type":"topic","room":"#lobby","topic":"all welcome"}"##);
    i.expect("TOPIC #lobby :all welcome");
    i.line("TOPIC #lobby");
    i.expect(" 332 irc2 #lobby :all welcome");

    // Queries.
    i.line("ISON nat2 nobody irc2");
    i.expect(" 303 irc2 :nat2 irc2");
    i.line("WHOIS nat2");
    i.expect(" 311 irc2 nat2 native 127.0.0.1 * ");
    i.expect(" 318 irc2 nat2 ");
    i.line("WHO #lobby");
    i.expect(" 352 irc2 #lobby ");
    i.expect(" 315 irc2 #lobby ");
    i.line("LIST");
    i.expect(" 322 irc2 #lobby 2 :all welcome");
    i.expect(" 323 irc2 ");
    i.line("MODE #lobby");
    i.expect(" 324 irc2 #lobby +n");
    i.line("USERHOST irc2");
    i.expect(" 302 irc2 irc2=+irky@127.0.0.1");
    i.line("AWAY :lunch");
    i.expect(" 306 irc2 ");
    i.line("AWAY");
    i.expect(" 305 irc2 ");

    // Quit reaches the native side.
    i.line("QUIT :done");
    let q = json(&nat.expect(r#""type":"quit""#));
    assert_eq!(q["nick"].as_str(), Some("irc2"));
}

#[test]
fn two_irc_clients_with_echo_and_server_time() {
    let server = Server::start(&[]);
    let addr = server.irc.unwrap();
    let mut a = irc_with_caps(addr, "ann", "echo-message server-time message-tags");
    let mut b = irc(addr, "bob");
    a.expect(":bob!bob@127.0.0.1 JOIN #lobby");
    a.line("PRIVMSG #lobby :hi bob");
    let echo = a.expect("PRIVMSG #lobby :hi bob");
    assert!(echo.starts_with("@time=") && echo.contains(" :ann!ann@127.0.0.1 PRIVMSG"), "{echo}");
    let seen = b.expect("PRIVMSG #lobby :hi bob");
    assert!(seen.starts_with(":ann!ann@127.0.0.1 "), "no tags without the cap: {seen}");
    b.line("PRIVMSG #lobby :hi ann");
    let tagged = a.expect("PRIVMSG #lobby :hi ann");
    assert!(tagged.starts_with("@time=20"), "{tagged}");
    // Without echo-message, bob sees nothing of his own message.
    let lines = b.irc_ping();
    assert!(lines.iter().all(|l| !l.contains("hi ann")), "{lines:?}");
    // History replay on join for server-time clients.
    b.line("JOIN #hist");
    b.expect(" 366 bob #hist ");
    b.line("PRIVMSG #hist :remember me");
    // The PONG is held until the message is answered (stored).
    b.irc_ping();
    a.line("JOIN #hist");
    a.expect(" 366 ann #hist ");
    let replay = a.expect("PRIVMSG #hist :remember me");
    assert!(replay.starts_with("@time="), "{replay}");
}

#[test]
fn notices_msgids_client_tags_and_chathistory() {
    let server = Server::start(&[]);
    let addr = server.irc.expect("irc port");
    let caps = "message-tags server-time echo-message batch labeled-response draft/chathistory";
    let mut ann = irc_with_caps(addr, "ann", caps);
    let mut bob = irc(addr, "bob");
    let mut txt = text(server.tcp, "tex");
    // A NOTICE stays a notice for IRC and text mode.
    ann.line("NOTICE #lobby :heads up");
    let echo = ann.expect("NOTICE #lobby :heads up");
    bob.expect(":ann!ann@127.0.0.1 NOTICE #lobby :heads up");
    txt.expect("-ann- heads up");
    // Echo and history carry the same msgid.
    let msgid = |line: &str| {
        line.split([';', ' ', '@']).find_map(|t| t.strip_prefix("msgid=")).expect("msgid").to_string()
    };
    let first = msgid(&echo);
    for i in 0..3 {
        ann.line(&format!("@+typing=done PRIVMSG #lobby :message {i}"));
        let line = bob.expect(&format!("PRIVMSG #lobby :message {i}"));
        assert!(line.starts_with(':'), "no tags for a client without message-tags: {line}");
        ann.expect(&format!("PRIVMSG #lobby :message {i}"));
    }
    ann.line(&format!("@label=L1 CHATHISTORY AFTER #lobby msgid={first} 2"));
    let start = ann.expect("BATCH +");
    assert!(start.contains("label=L1") && start.ends_with("chathistory #lobby"), "{start}");
    ann.expect("PRIVMSG #lobby :message 0");
    ann.expect("PRIVMSG #lobby :message 1");
    ann.expect("BATCH -");
    ann.line("CHATHISTORY LATEST #lobby * 1");
    ann.expect("BATCH +");
    ann.expect("PRIVMSG #lobby :message 2");
    ann.expect("BATCH -");
    ann.line("CHATHISTORY LATEST #nowhere * 1");
    ann.expect("FAIL CHATHISTORY INVALID_TARGET LATEST #nowhere");
    // A labeled command with one answer gets it labeled; with none, ACK.
    ann.line("@label=L2 PING x");
    ann.expect("@label=L2 :natter PONG natter x");
    ann.line("@label=L3 PONG x");
    ann.expect("@label=L3 :natter ACK");
}

#[test]
fn multi_target_kick_multi_channel_names_and_the_invite_list() {
    let server = Server::start(&[]);
    let addr = server.irc.unwrap();
    let mut c = Client::connect(addr);
    c.line("NICK ann");
    c.line("USER ann 0 * :Real ann");
    let isupport = c.expect("TARGMAX=");
    assert!(isupport.contains("KICK:4") && isupport.contains("NAMES:4"), "{isupport}");
    c.expect(" 366 ");
    let mut ann = c;
    let mut bob = irc(addr, "bob");
    let mut cat = irc(addr, "cat");
    for (client, nick, rooms) in
        [(&mut ann, "ann", "#a,#b"), (&mut bob, "bob", "#a,#b"), (&mut cat, "cat", "#a")]
    {
        client.line(&format!("JOIN {rooms}"));
        client.expect(&format!(" 366 {nick} #a "));
    }
    bob.expect(" 366 bob #b ");
    // NAMES of two channels: each channel's 353, then one 366 naming the list.
    ann.line("PING :sync");
    ann.expect("PONG");
    ann.line("NAMES #a,#b");
    let a = ann.next().unwrap();
    assert!(a.contains(" 353 ann = #a :") && a.contains("@ann") && a.contains("cat"), "{a}");
    let b = ann.next().unwrap();
    assert!(b.contains(" 353 ann = #b :") && !b.contains("cat"), "{b}");
    let end = ann.next().unwrap();
    assert!(end.contains(" 366 ann #a,#b :End of /NAMES list"), "{end}");
    // One channel, two nicks: two KICK lines.
    ann.line("KICK #a bob,cat :bye");
    cat.expect(":ann!ann@127.0.0.1 KICK #a bob bye");
    cat.expect(":ann!ann@127.0.0.1 KICK #a cat bye");
    // Pairs, with a per-target error: nobody called dan; bob leaves #b.
    ann.line("KICK #a,#b dan,bob :out");
    ann.expect(" 401 ann dan :No such nick/channel");
    bob.expect(":ann!ann@127.0.0.1 KICK #b bob out");
    // INVITE alone lists the channels one is invited to.
    ann.line("INVITE bob #a");
    bob.expect(":ann!ann@127.0.0.1 INVITE bob #a");
    bob.line("INVITE");
    let listed = bob.next().unwrap();
    assert!(listed.ends_with(" 336 bob #a"), "{listed}");
    let end = bob.next().unwrap();
    assert!(end.contains(" 337 bob :End of /INVITE list"), "{end}");
    // Joining uses the invitation up.
    bob.line("JOIN #a");
    bob.expect(" 366 bob #a ");
    bob.line("INVITE");
    let end = bob.next().unwrap();
    assert!(end.contains(" 337 bob :"), "{end}");
}

#[test]
fn wallops_reach_those_who_asked_for_them() {
    let server = Server::start(&["--oper", "boss:secret"]);
    let addr = server.irc.expect("irc port");
    let mut op = irc(addr, "op");
    let mut listener = irc(addr, "lis");
    let mut deaf = irc(addr, "deaf");
    // Not an operator yet: refused.
    op.line("WALLOPS :too early");
    op.expect(" 481 op ");
    op.line("WALLOPS");
    op.expect(" 461 op WALLOPS ");
    listener.line("MODE lis +w");
    listener.expect(":lis MODE lis +w");
    listener.line("MODE lis");
    listener.expect(" 221 lis +w");
    op.line("OPER boss secret");
    op.expect(" 381 op ");
    op.line("WALLOPS :maintenance at noon");
    op.expect("WALLOPS :maintenance at noon");
    let got = listener.expect("WALLOPS");
    assert!(got.starts_with(":op!") && got.ends_with("WALLOPS :maintenance at noon"), "{got}");
    // Without +w: nothing (a PING round trip proves the WALLOPS would have arrived by now).
    let lines = deaf.irc_ping();
    assert!(lines.iter().all(|l| !l.contains("WALLOPS")), "{lines:?}");
    // -w stops them.
    listener.line("MODE lis -w");
    listener.expect(":lis MODE lis -w");
    op.line("WALLOPS second");
    // A one-word last parameter needs no colon.
    op.expect("WALLOPS second");
    let lines = listener.irc_ping();
    assert!(lines.iter().all(|l| !l.contains("WALLOPS")), "{lines:?}");
}

#[test]
fn topics_and_kick_reasons_are_cut_to_topiclen_and_kicklen() {
    let server = Server::start(&[]);
    let addr = server.irc.unwrap();
    let mut ann = irc(addr, "ann");
    let mut bob = irc(addr, "bob");
    ann.line("JOIN #t");
    ann.expect(" 366 ann #t ");
    bob.line("JOIN #t");
    bob.expect(" 366 bob #t ");
    // The last parameter (a one-word one needs no colon).
    let last = |line: &str, after: &str| {
        let rest = line.split_once(after).map_or("", |(_, r)| r);
        rest.strip_prefix(':').unwrap_or(rest).to_string()
    };
    // 480 bytes of two-byte characters: cut to 390 bytes, on a character boundary.
    ann.line(&format!("TOPIC #t :{}", "é".repeat(240)));
    let topic = bob.expect(" TOPIC #t ");
    assert_eq!(last(&topic, " TOPIC #t "), "é".repeat(195), "{topic}");
    ann.line(&format!("KICK #t bob :{}", "x".repeat(450)));
    let kick = bob.expect(" KICK #t bob ");
    assert_eq!(last(&kick, " KICK #t bob "), "x".repeat(390), "{kick}");
}

#[test]
fn a_wrong_server_password_is_refused_and_the_link_closed() {
    let server = Server::start(&["--password", "sesame"]);
    let addr = server.irc.expect("irc port");
    let mut wrong = Client::connect(addr);
    wrong.line("PASS guess");
    wrong.line("NICK ann");
    wrong.line("USER ann 0 * :Ann");
    wrong.expect(" 464 * :Password incorrect");
    let bye = wrong.expect("ERROR ");
    assert!(bye.contains("Bad password"), "{bye}");
    assert!(wrong.closed());
    // The right one logs in.
    let mut right = Client::connect(addr);
    right.line("PASS sesame");
    right.line("NICK ann");
    right.line("USER ann 0 * :Ann");
    right.expect(" 001 ann :Welcome");
}

/// MONITOR: a watch list told of nicks as they come and go, on any door; adding answers with
/// each target's status; the list is capped at the advertised 100.
#[test]
fn monitor_tells_when_watched_nicks_come_and_go() {
    let server = Server::start(&[]);
    let addr = server.irc.expect("irc port");
    let mut w = irc(addr, "watcher");
    w.line("MONITOR + ann,Bob");
    w.expect(":natter 731 watcher ann,Bob");
    w.line("MONITOR + Watcher");
    w.expect(":natter 730 watcher watcher!watcher@127.0.0.1");

    // ann logs in natively: online; she renames: offline, and her new nick is nobody's.
    let mut ann = native(server.tcp, "ann");
    w.expect(":natter 730 watcher ann!native@127.0.0.1");
    ann.line(r#"{"type":"nick","nick":"bob"}"#);
    w.expect(":natter 731 watcher ann");
    w.expect(":natter 730 watcher bob!native@127.0.0.1");
    // A change of case is the same nick: nothing to tell.
    ann.line(r#"{"type":"nick","nick":"BOB"}"#);
    ann.line(r#"{"type":"nick","nick":"bob"}"#);
    let seen = w.until(":BOB!native@127.0.0.1 NICK bob");
    assert!(seen.iter().all(|l| !l.contains(" 730 ") && !l.contains(" 731 ")), "{seen:#?}");
    ann.line(r#"{"type":"quit"}"#);
    w.expect(":natter 731 watcher bob");

    w.line("MONITOR L");
    w.expect(":natter 732 watcher ann,Bob,Watcher");
    w.expect(":natter 733 watcher :End of MONITOR list");
    w.line("MONITOR - bob");
    w.line("MONITOR S");
    w.expect(":natter 730 watcher watcher!watcher@127.0.0.1");
    w.expect(":natter 731 watcher ann");
    let _bob = text(server.tcp, "bob");
    w.line("MONITOR C");
    w.line("MONITOR L");
    let quiet = w.until(" 733 ");
    assert!(quiet.iter().all(|l| !l.contains(" 730 ") && !l.contains(" 732 ")), "{quiet:#?}");

    // 100 at most: the ones beyond are named in 734; bad input is told.
    let many: Vec<String> = (0..120).map(|i| format!("n{i}")).collect();
    w.line(&format!("MONITOR + {}", many.join(",")));
    let full = w.expect(" 734 ");
    assert!(full.starts_with(":natter 734 watcher 100 n100,n101,"), "{full}");
    assert!(full.ends_with("n119 :Monitor list is full"), "{full}");
    w.line("MONITOR L");
    let listed: Vec<String> = w.until(" 733 ").iter().filter(|l| l.contains(" 732 ")).cloned().collect();
    let count: usize = listed.iter().map(|l| l.rsplit(':').next().unwrap().split(',').count()).sum();
    assert_eq!(count, 100, "{listed:#?}");
    assert!(listed.iter().all(|l| l.len() <= 510), "{listed:#?}");
    w.line("MONITOR");
    w.expect(" 461 watcher MONITOR ");
    w.line("MONITOR +");
    w.expect(" 461 watcher MONITOR ");
    w.line("MONITOR X ann");
    w.expect(" 400 watcher MONITOR :unknown MONITOR subcommand X");
    // Names that cannot be nicks are left out.
    w.line("MONITOR C");
    w.line("MONITOR + #room,bad!nick,ok");
    w.expect(":natter 731 watcher ok");
    w.line("MONITOR L");
    w.expect(":natter 732 watcher ok");
}

/// account-notify: those who share a room with someone and asked for the capability are told
/// `ACCOUNT name` when they log in to an account and `ACCOUNT *` when they log out; the others
/// are told nothing.
#[test]
fn account_notify_tells_who_logs_in_and_out() {
    let server = Server::start(&["--nick-protection", "off"]);
    let addr = server.irc.expect("irc port");
    let mut told = irc_with_caps(addr, "told", "account-notify");
    let mut plain = irc(addr, "plain");
    let mut ann = irc(addr, "ann");
    ann.line("PRIVMSG NickServ :REGISTER correct-horse");
    ann.expect(" 900 ann ");
    told.expect(":ann!ann@127.0.0.1 ACCOUNT ann");
    ann.line("PRIVMSG NickServ :LOGOUT");
    ann.expect(" 901 ann ");
    told.expect(":ann!ann@127.0.0.1 ACCOUNT *");
    ann.line("PRIVMSG #lobby :done");
    let seen = plain.until("PRIVMSG #lobby :done");
    assert!(seen.iter().all(|l| !l.contains(" ACCOUNT ")), "{seen:#?}");
}

/// extended-join: a JOIN carries the joiner's account (`*` for none) and real name, for
/// clients that asked, their own JOIN included; the others get the plain JOIN.
#[test]
fn extended_join_tells_the_account_and_real_name() {
    let server = Server::start(&["--nick-protection", "off"]);
    let addr = server.irc.expect("irc port");
    let mut ext = irc_with_caps(addr, "ext", "extended-join");
    let mut plain = irc(addr, "plain");
    ext.line("JOIN #room");
    ext.expect(":ext!ext@127.0.0.1 JOIN #room * :Real ext");
    plain.line("JOIN #room");
    plain.expect(":plain!plain@127.0.0.1 JOIN #room");
    ext.expect(":plain!plain@127.0.0.1 JOIN #room * :Real plain");
    let mut ann = irc(addr, "ann");
    ann.line("PRIVMSG NickServ :REGISTER correct-horse");
    ann.expect(" 900 ann ");
    ann.line("JOIN #room");
    ext.expect(":ann!ann@127.0.0.1 JOIN #room ann :Real ann");
    let seen = plain.expect(":ann!ann@127.0.0.1 JOIN #room");
    assert_eq!(seen, ":ann!ann@127.0.0.1 JOIN #room", "no extras for a client that did not ask");
}

#[test]
fn help_answers_with_the_modern_numerics() {
    let server = Server::start(&[]);
    let mut c = irc(server.irc.unwrap(), "ann");
    c.line("HELP");
    c.expect(" 704 ann * :natter speaks IRC");
    c.expect(" 706 ann * :End of /HELP");
    c.line("HELPOP privmsg");
    c.expect(" 704 ann PRIVMSG :PRIVMSG <#room|nick>");
    c.expect(" 706 ann PRIVMSG ");
    c.line("HELP NOSUCHTHING");
    c.expect(" 524 ann NOSUCHTHING :No help available on this topic");
}

#[test]
fn whox_answers_the_fields_asked_in_their_order_with_the_token() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut ann = irc(server.irc.unwrap(), "ann");
    ann.line("PRIVMSG NickServ :REGISTER correct-horse");
    ann.expect(" 900 ann ");
    let mut bob = irc(server.irc.unwrap(), "bob");
    bob.line("VERSION");
    let isupport = bob.expect("UTF8ONLY");
    assert!(isupport.contains(" WHOX"), "{isupport}");
    // Fields in any order come back in the fixed order; the token first.
    bob.line("WHO ann %rnat,42");
    bob.expect(" 354 bob 42 ann ann :Real ann");
    bob.expect(" 315 bob ann :End of /WHO list");
    bob.line("WHO #lobby %cnfa");
    let lines = bob.until(" 315 ");
    assert!(lines.iter().any(|l| l.ends_with(" 354 bob #lobby ann H ann")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.ends_with(" 354 bob #lobby bob H 0")), "no account is 0: {lines:#?}");
    // A token that is not 1-3 digits is not echoed; unknown letters are ignored; plain WHO stays 352.
    bob.line("WHO ann %tnx,abcd");
    bob.expect(" 354 bob 0 ann");
    bob.line("WHO ann");
    bob.expect(" 352 bob * ");
}

#[test]
fn a_line_that_is_not_utf8_is_refused_and_gbk_is_read_with_one_warning() {
    let server = Server::start(&[]);
    let mut ann = irc(server.irc.unwrap(), "ann");
    let mut bob = irc(server.irc.unwrap(), "bob");
    ann.send(b"PRIVMSG bob :caf\xe9\r\n");
    ann.expect(" FAIL PRIVMSG INVALID_UTF8 :");
    // GBK, as the tutorials' Windows peers send it, is read as such, with one warning.
    ann.send(b"PRIVMSG bob :\xc4\xe3\xba\xc3\r\n");
    ann.expect(" WARN PRIVMSG INVALID_UTF8 :");
    let got = bob.expect("PRIVMSG bob :");
    assert!(got.ends_with(":你好"), "the refused line was not relayed: {got}");
    ann.send(b"PRIVMSG bob :\xc4\xe3\r\n");
    bob.expect("PRIVMSG bob :你");
    let later = ann.irc_ping();
    assert!(later.iter().all(|l| !l.contains("WARN")), "warned once: {later:#?}");
}

#[test]
fn a_bot_says_so_on_its_messages_and_in_who_and_whois() {
    let server = Server::start(&[]);
    let mut bot = irc(server.irc.unwrap(), "beepy");
    let mut user = irc_with_caps(server.irc.unwrap(), "ann", "message-tags");
    let mut plain = irc(server.irc.unwrap(), "bob");
    bot.line("MODE beepy +B");
    bot.expect(":beepy MODE beepy +B");
    bot.line("MODE beepy");
    bot.expect(" 221 beepy +B");
    bot.line("PRIVMSG #lobby :beep boop");
    let tagged = user.expect("PRIVMSG #lobby :beep boop");
    assert!(
        tagged.starts_with('@')
            && tagged.split(' ').next().unwrap().split(';').any(|t| t == "@bot" || t == "bot"),
        "{tagged}"
    );
    let untagged = plain.expect("PRIVMSG #lobby :beep boop");
    assert!(untagged.starts_with(':'), "{untagged}");
    user.line("WHOIS beepy");
    let whois = user.until(" 318 ");
    assert!(whois.iter().any(|l| l.contains(" 335 ann beepy :is a bot")), "{whois:#?}");
    user.line("WHO #lobby");
    let who = user.until(" 315 ");
    assert!(who.iter().any(|l| l.contains(" beepy HB ")), "{who:#?}");
    bot.line("MODE beepy -B\r\nPRIVMSG #lobby :human now");
    let human = user.expect("PRIVMSG #lobby :human now");
    assert!(!human.contains("bot"), "{human}");
}

#[test]
fn setname_reaches_neighbours_with_the_cap_and_whois_shows_it() {
    let server = Server::start(&[]);
    let mut ann = irc_with_caps(server.irc.unwrap(), "ann", "setname");
    let mut bob = irc_with_caps(server.irc.unwrap(), "bob", "setname");
    let mut cid = irc(server.irc.unwrap(), "cid");
    ann.line("SETNAME :Ann Other");
    ann.expect(":ann!ann@127.0.0.1 SETNAME :Ann Other");
    bob.expect(":ann!ann@127.0.0.1 SETNAME :Ann Other");
    let seen = cid.irc_ping();
    assert!(seen.iter().all(|l| !l.contains("SETNAME")), "{seen:#?}");
    cid.line("WHOIS ann");
    cid.expect(" 311 cid ann ann 127.0.0.1 * :Ann Other");
    // Empty or too long: a standard reply, nothing changes.
    ann.line(&format!("SETNAME :{}", "x".repeat(201)));
    ann.expect("FAIL SETNAME INVALID_REALNAME :");
    ann.line("SETNAME : ");
    ann.expect("FAIL SETNAME INVALID_REALNAME :");
}

#[test]
fn extended_monitor_tells_watchers_of_away_and_real_name_like_neighbours() {
    let server = Server::start(&["--irc-lobby", "false"]);
    let mut watcher =
        irc_with_caps_no_lobby(server.irc.unwrap(), "foo", "extended-monitor away-notify setname");
    let mut other = irc_with_caps_no_lobby(server.irc.unwrap(), "old", "away-notify setname");
    let mut bar = irc_with_caps_no_lobby(server.irc.unwrap(), "bar", "");
    watcher.line("MONITOR + bar");
    watcher.expect(" 730 foo bar!");
    other.line("MONITOR + bar");
    other.expect(" 730 old bar!");
    bar.line("AWAY :afk");
    bar.expect(" 306 ");
    watcher.expect(":bar!bar@127.0.0.1 AWAY afk");
    bar.line("SETNAME :Bar Baz\r\nAWAY");
    watcher.expect(":bar!bar@127.0.0.1 SETNAME :Bar Baz");
    watcher.expect(":bar!bar@127.0.0.1 AWAY");
    // Without extended-monitor a watcher who shares no channel hears nothing of it.
    let seen = other.irc_ping();
    assert!(seen.iter().all(|l| !l.contains("AWAY") && !l.contains("SETNAME")), "{seen:#?}");
}

fn irc_with_caps_no_lobby(addr: SocketAddr, nick: &str, caps: &str) -> Client {
    let mut c = Client::connect(addr);
    if !caps.is_empty() {
        c.line(&format!("CAP REQ :{caps}"));
        c.expect("CAP * ACK");
    }
    c.line(&format!("NICK {nick}\r\nUSER {nick} 0 * :Real {nick}\r\nCAP END"));
    c.expect(" 376 ");
    c
}
