//! Golden transcripts: one scripted conversation among a native client, a text-mode client and
//! two IRC clients (one plain, one with IRCv3 capabilities), and every line each of them
//! receives, compared with `tests/golden/*.txt`. Any change to what a door writes shows up as
//! a diff here; a deliberate change is recorded with `NATTER_BLESS=1 cargo test --test golden`.
//!
//! Times, clock-based ids and idle seconds are normalised; everything else is byte for byte.
//! `NATTER_TEST_BIN=path/to/natter` runs the same script against another build, which is how
//! a refactoring proves it changed nothing on the wire.
//!
//! Each step is followed by a barrier on every client (native `ping`/`pong`, IRC
//! `PING`/`PONG`, text mode's `/ignore` list), so the order of each transcript is the order
//! the hub handled the steps in. Messages go to an ephemeral room, whose acknowledgements do
//! not wait for a commit.

mod common;

use common::{Client, Server};
use std::path::PathBuf;

/// One scripted client and what it has received.
struct Peer {
    client: Client,
    kind: Kind,
    lines: Vec<String>,
    barriers: u32,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Native,
    Text,
    Irc,
}

impl Peer {
    fn new(client: Client, kind: Kind) -> Peer {
        Peer { client, kind, lines: Vec::new(), barriers: 0 }
    }

    fn send(&mut self, line: &str) {
        let end = if self.kind == Kind::Irc { "\r\n" } else { "\n" };
        self.client.send(format!("{line}{end}").as_bytes());
    }

    /// Waits until everything the server sent before the barrier's answer has arrived, and
    /// records it.
    fn barrier(&mut self) {
        self.barriers += 1;
        let n = self.barriers;
        let (ask, answer) = match self.kind {
            Kind::Native => (format!(r#"{{"type":"ping","id":"b{n}"}}"#), format!(r#""id":"b{n}""#)),
            Kind::Irc => (format!("PING b{n}"), format!("PONG natter b{n}")),
            Kind::Text => ("/ignore".to_string(), "*** you ignore".to_string()),
        };
        self.send(&ask);
        loop {
            let line = self.client.next().unwrap_or_else(|| panic!("no {answer:?}; got {:#?}", self.lines));
            let done = line.contains(&answer);
            self.lines.push(normalise(&line));
            if done {
                return;
            }
        }
    }
}

/// Masks what changes from run to run: wall-clock times, ids drawn from the clock, idle
/// seconds.
fn normalise(line: &str) -> String {
    let mut line = line.to_string();
    for key in ["\"ts\":", "\"created_ts\":"] {
        line = mask_numbers_after(&line, key);
    }
    let words: Vec<String> = line.split(' ').map(mask_word).collect();
    // IRC numerics that carry times: 317 (idle, signon), 329 (created), 333 (topic set).
    let timed = words.len() > 2 && matches!(words[1].as_str(), "317" | "329" | "333");
    words
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let number = !w.is_empty() && w.chars().all(|c| c.is_ascii_digit());
            if timed && i > 2 && number { "N".into() } else { w }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `key` followed by digits becomes `key` followed by `T`, everywhere in `line`.
fn mask_numbers_after(line: &str, key: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(key) {
        let start = at + key.len();
        let digits = rest[start..].find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len() - start);
        out.push_str(&rest[..start]);
        out.push_str(if digits > 0 { "T" } else { "" });
        rest = &rest[start + digits..];
    }
    out.push_str(rest);
    out
}

/// Text mode's `[HH:MM]` and IRC's `time=` and clock-based `msgid=u...` tags.
fn mask_word(word: &str) -> String {
    let b = word.as_bytes();
    if b.len() == 7 && b[0] == b'[' && b[3] == b':' && b[6] == b']' {
        return "[hh:mm]".into();
    }
    let Some(tags) = word.strip_prefix('@') else { return word.to_string() };
    let tags: Vec<String> = tags
        .split(';')
        .map(|t| match t.strip_prefix("msgid=u") {
            _ if t.starts_with("time=") => "time=T".to_string(),
            Some(id) if id.chars().all(|c| c.is_ascii_hexdigit()) => "msgid=uX".to_string(),
            _ => t.to_string(),
        })
        .collect();
    format!("@{}", tags.join(";"))
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.txt"))
}

fn check(name: &str, lines: &[String]) -> Option<String> {
    let got = lines.join("\n") + "\n";
    let path = golden_path(name);
    if std::env::var_os("NATTER_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return None;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if got == want {
        return None;
    }
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let first = w.iter().zip(&g).position(|(a, b)| a != b).unwrap_or(w.len().min(g.len()));
    Some(format!(
        "{name}: differs from {} at line {} (NATTER_BLESS=1 records a deliberate change)\n  want: {:?}\n  got:  {:?}",
        path.display(),
        first + 1,
        w.get(first),
        g.get(first)
    ))
}

#[test]
fn every_door_writes_what_it_always_wrote() {
    let server = Server::start(&["--ephemeral", "#g", "--msg-rate", "0", "--command-rate", "0"]);
    let irc_addr = server.irc.unwrap();

    // Logging in, one after the other, so that each sees the others arrive in one order.
    let mut ann = Peer::new(Client::connect(server.tcp), Kind::Native);
    ann.send(r#"{"type":"hello","nick":"ann","id":1}"#);
    ann.barrier();
    let mut bob = Peer::new(Client::connect(server.tcp), Kind::Text);
    bob.send("bob");
    for p in [&mut bob, &mut ann] {
        p.barrier();
    }
    let mut cat = Peer::new(Client::connect(irc_addr), Kind::Irc);
    cat.send("NICK cat");
    cat.send("USER cat 0 * :Cat Plain");
    for p in [&mut cat, &mut ann, &mut bob] {
        p.barrier();
    }
    let mut dan = Peer::new(Client::connect(irc_addr), Kind::Irc);
    dan.send("CAP LS 302");
    dan.send(
        "CAP REQ :server-time message-tags echo-message multi-prefix userhost-in-names away-notify labeled-response batch",
    );
    dan.send("NICK dan");
    dan.send("USER dan 0 * :Dan Tagged");
    dan.send("CAP END");
    let mut all = [ann, bob, cat, dan];
    // The one who acts passes its barrier first: then the hub has handled its lines, and the
    // others' barriers come after everything those lines caused.
    let step = |all: &mut [Peer; 4], who: usize, lines: &[&str]| {
        for line in lines {
            all[who].send(line);
        }
        all[who].barrier();
        for (i, p) in all.iter_mut().enumerate() {
            if i != who {
                p.barrier();
            }
        }
    };
    const ANN: usize = 0;
    const BOB: usize = 1;
    const CAT: usize = 2;
    const DAN: usize = 3;
    step(&mut all, DAN, &[]);

    // Joining, in turn; ann creates #g and is its operator.
    step(&mut all, ANN, &[r##"{"type":"join","room":"#g","id":2}"##]);
    step(&mut all, BOB, &["/join #g"]);
    step(&mut all, CAT, &["JOIN #g"]);
    step(&mut all, DAN, &["JOIN #g"]);

    // Messages of every shape.
    step(&mut all, ANN, &[r##"{"type":"send","room":"#g","text":"hello all","cid":"c1","id":3}"##]);
    step(&mut all, BOB, &["plain line from bob", "/me waves"]);
    step(&mut all, CAT, &["PRIVMSG #g :hi there", "PRIVMSG #g :one", "PRIVMSG #g :\u{1}ACTION nods\u{1}"]);
    step(
        &mut all,
        DAN,
        &["@+typing=active TAGMSG #g", "NOTICE #g :a notice", "@label=L1 PRIVMSG #g :labeled"],
    );

    // Private messages around the circle.
    step(&mut all, ANN, &[r#"{"type":"send","to":"bob","text":"psst bob","id":4}"#]);
    step(&mut all, BOB, &["@cat hello cat"]);
    step(&mut all, CAT, &["PRIVMSG dan :hello dan"]);
    step(&mut all, DAN, &["PRIVMSG ann :hello ann"]);

    // Topic and modes.
    step(&mut all, ANN, &[r##"{"type":"topic","room":"#g","topic":"golden hour","id":5}"##]);
    step(&mut all, CAT, &["TOPIC #g"]);
    step(
        &mut all,
        ANN,
        &[r##"{"type":"mode","room":"#g","changes":[{"mode":"moderated","on":true}],"id":6}"##],
    );
    step(&mut all, BOB, &["muted?"]);
    step(&mut all, CAT, &["PRIVMSG #g :muted too?"]);
    step(
        &mut all,
        ANN,
        &[
            r##"{"type":"mode","room":"#g","changes":[{"mode":"voice","nick":"cat","on":true},{"mode":"moderated","on":false}],"id":7}"##,
        ],
    );
    step(&mut all, DAN, &["MODE #g +b zed", "MODE #g", "MODE #g b", "MODE #g +X"]);

    // Refusals, one of each kind a client meets.
    step(
        &mut all,
        ANN,
        &[
            r##"{"type":"join","room":"bad room","id":8}"##,
            r#"{"type":"whois","nick":"nobody","id":9}"#,
            r#"{"type":"send","to":"nobody","text":"hi","id":10}"#,
            r##"{"type":"part","room":"#nowhere","id":11}"##,
            r#"{"type":"nick","nick":"bob","id":12}"#,
            r#"{"type":"bogus"}"#,
            "not json",
        ],
    );
    step(&mut all, BOB, &["/nick cat", "/part #nowhere", "@nobody hi", "/mode #g +Q", "/kick cat"]);
    step(
        &mut all,
        CAT,
        &[
            "WHOIS nobody",
            "KICK #g nobody",
            "PRIVMSG nobody :x",
            "JOIN bad",
            "TOPIC #g :not allowed",
            "NICK dan",
            "FROB",
        ],
    );
    step(&mut all, DAN, &["NOTICE nobody :x", "PART #nowhere", "@label=L2 WHOIS nobody"]);

    // Queries.
    step(
        &mut all,
        CAT,
        &[
            "WHO #g",
            "WHO d*",
            "WHO",
            "ISON ann nobody bob",
            "USERHOST ann bob",
            "LUSERS",
            "NAMES #g",
            "NAMES #g,#lobby",
            "LIST",
            "WHOIS ann",
            "WHOWAS nobody",
        ],
    );
    step(
        &mut all,
        ANN,
        &[
            r##"{"type":"who","room":"#g","detail":true,"id":13}"##,
            r#"{"type":"rooms","id":14}"#,
            r##"{"type":"history","room":"#g","id":15}"##,
            r#"{"type":"ls"}"#,
        ],
    );
    step(&mut all, BOB, &["/who", "/ls", "/rooms", "/topic", "/whois ann", "/history #g"]);
    step(&mut all, DAN, &["@label=L3 NAMES #g", "MODE dan +i", "MODE dan"]);

    // Away, kick, nick, part, invite, quit.
    step(&mut all, BOB, &["/away brb"]);
    step(&mut all, ANN, &[r#"{"type":"send","to":"bob","text":"are you there","id":16}"#]);
    step(&mut all, CAT, &["PRIVMSG bob :you there?"]);
    step(&mut all, BOB, &["/away"]);
    step(&mut all, ANN, &[r##"{"type":"kick","room":"#g","nick":"cat","reason":"golden","id":17}"##]);
    step(&mut all, BOB, &["/nick bobby"]);
    step(&mut all, DAN, &["PART #g :bye now"]);
    step(&mut all, ANN, &[r##"{"type":"invite","room":"#g","nick":"dan","id":18}"##]);
    step(&mut all, DAN, &["INVITE", "JOIN #g"]);
    step(&mut all, BOB, &["/i", "/i"]);
    // cat leaves: the others see it go; cat's own goodbye is the end of its transcript.
    all[CAT].send("QUIT :later");
    let goodbye = all[CAT].client.expect("ERROR");
    all[CAT].lines.push(normalise(&goodbye));
    for who in [ANN, BOB, DAN] {
        all[who].barrier();
    }
    // (cat's own quit is handled before the others' barriers: the hub ends the session first.)

    let [ann, bob, cat, dan] = all;
    let failures: Vec<String> = [
        check("native", &ann.lines),
        check("text", &bob.lines),
        check("irc_plain", &cat.lines),
        check("irc_caps", &dan.lines),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
