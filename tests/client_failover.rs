//! `natter connect` given several servers (`A,B`): when its server dies it moves to the next,
//! says so, logs in there, catches up with what it missed and sends what was typed meanwhile,
//! nothing lost or doubled. Against real servers: two single natter servers do not share state,
//! but servers started one after the other on the same SQLite file do (accounts, history,
//! message ids), as the nodes of a cluster share their store. So: node A runs on file F; B's
//! address is reserved (a bound socket that refuses connections); A is killed (SIGKILL); a
//! third server C, which the client does not know, runs on F for a moment and takes messages
//! the client misses; then B starts on F at its reserved address, and the client must get there.

mod client_util;
mod tmux_util;

use client_util::{NATTER, Server, TempDir, refusing_addr};
use natter_client::conn::{Client, ConnectOptions, Endpoint, Event, Events, Status};
use natter_client::saved_login::SavedLogins;
use natter_proto::native::{AccountChangeFrame, ClientFrame, RequestId, ServerFrame};
use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// How long the client may take to reach the next node: its backoff grows while every node is
/// down (the test keeps them all down for a few seconds), up to 8 s by then.
const MOVE_WAIT: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

/// `nick` says each of `texts` in `room` (joined first) on the server at `addr`, and waits
/// for the acks.
fn say_on(rt: &tokio::runtime::Runtime, addr: &str, nick: &str, room: &str, texts: &[&str]) {
    rt.block_on(async {
        let mut opts = ConnectOptions::new(addr, nick);
        opts.reconnect = false;
        opts.rooms = vec![room.to_string()];
        let (c, mut ev) = Client::connect(opts).await.unwrap();
        until(
            &mut ev,
            "the room joined",
            |e| matches!(e, Event::Frame(ServerFrame::Joined { room: r, .. }) if r == room),
        )
        .await;
        for t in texts {
            c.say(room, *t);
        }
        tokio::time::timeout(MOVE_WAIT, c.wait_idle()).await.expect("the messages acknowledged");
        c.quit(None).await;
    })
}

/// `room`'s stored messages as `from:text`, oldest first, asked of the server at `addr`.
fn stored(rt: &tokio::runtime::Runtime, addr: &str, room: &str) -> Vec<String> {
    rt.block_on(async {
        let (c, _ev) = Client::connect(ConnectOptions::new(addr, "checker")).await.unwrap();
        let (msgs, _) = c.history(room, None, None, 500).await.unwrap();
        c.quit(None).await;
        msgs.iter().map(|m| format!("{}:{}", m.from, m.text)).collect()
    })
}

/// The node C that the client does not know: it runs on `db` just long enough for `texts` to
/// be stored, as other nodes of a cluster go on while a client is between nodes.
fn meanwhile_on_another_node(rt: &tokio::runtime::Runtime, db: &Path, room: &str, texts: &[&str]) {
    let c = Server::start_on("127.0.0.1:0", db, &["--msg-rate", "0"]);
    say_on(rt, &c.addr, "ann", room, texts);
    drop(c);
}

/// `natter connect SERVERS --nick NICK` in line mode, its stdin kept open to type into.
struct LineClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl LineClient {
    fn start(servers: &str, nick: &str, room: &str) -> Self {
        let mut child = Command::new(NATTER)
            .args(["connect", servers, "--nick", nick, "--room", room, "--line"])
            .env("XDG_CONFIG_HOME", "/nonexistent-natter-test")
            .env("XDG_DATA_HOME", "/nonexistent-natter-test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn natter connect");
        let stdin = child.stdin.take();
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineClient { child, stdin, lines, seen: Vec::new() }
    }

    fn say(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for an output line that satisfies `pred` (within `limit`) and returns it.
    fn wait(&mut self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    panic!("timed out waiting for {what}; the client printed:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    /// Ends the input, waits for the client to exit (it first waits for its acks) and returns
    /// everything it printed, with its standard error.
    fn finish(mut self) -> (Vec<String>, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + MOVE_WAIT;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "natter connect did not exit at end of input");
            // Polling interval of the wait for the observable exit.
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(status.success(), "natter connect failed: {stderr}");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (std::mem::take(&mut self.seen), stderr)
    }
}

impl Drop for LineClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

/// In a room of its own (`--room #ops`), so that the move must rejoin it; with a message sent
/// to node A while A was frozen (SIGSTOP) and then killed, never acknowledged: it is resent on
/// B with its id, and arrives once, whether A read it before dying or not.
#[test]
fn line_mode_moves_to_the_next_node_rejoins_catches_up_and_sends_what_was_typed_once() {
    let rt = runtime();
    let (held_b, addr_b) = refusing_addr();
    let mut a = Server::start();
    let db = a.dir.0.join("natter.db");
    let mut bot = LineClient::start(&format!("{},{addr_b}", a.addr), "bot", "#ops");
    bot.wait("the first connection", MOVE_WAIT, |l| l.starts_with(&format!("-- connected to {} (", a.addr)));
    bot.wait("#ops joined", MOVE_WAIT, |l| l.starts_with("-- you joined #ops"));

    say_on(&rt, &a.addr, "ann", "#ops", &["before 1", "before 2"]);
    bot.wait("ann's messages", MOVE_WAIT, |l| l.ends_with(" #ops <ann> before 2"));
    bot.say("bot before");
    bot.wait("bot's own message", MOVE_WAIT, |l| l.ends_with(" #ops <bot> bot before"));

    // Node A freezes: a message goes to it and is never answered; then A dies.
    a.signal("STOP");
    bot.say("sent to a frozen node");
    a.kill();
    bot.wait("the client looking for B", MOVE_WAIT, |l| {
        l.starts_with("-- disconnected (") && l.contains(&format!("reconnecting to {addr_b} in"))
    });
    bot.say("typed with no node up");
    let missed: Vec<String> = (1..=5).map(|i| format!("missed {i}")).collect();
    let missed_refs: Vec<&str> = missed.iter().map(String::as_str).collect();
    meanwhile_on_another_node(&rt, &db, "#ops", &missed_refs);

    // Node B comes up at its address, on the same store.
    drop(held_b);
    let b = Server::start_on(&addr_b, &db, &["--msg-rate", "0"]);
    assert_eq!(b.addr, addr_b);
    bot.wait("the move to B", MOVE_WAIT, |l| {
        l == format!("-- connected to {addr_b} as bot (moved from {})", a.addr)
    });
    bot.wait("the last missed message", MOVE_WAIT, |l| l.ends_with(" #ops <ann> missed 5"));
    let (lines, stderr) = bot.finish();
    assert!(stderr.is_empty(), "{stderr}");

    // Everything once, in order, on screen and in the store.
    let all = lines.join("\n");
    for text in [
        "<ann> before 1",
        "<ann> before 2",
        "<bot> bot before",
        "<bot> sent to a frozen node",
        "<bot> typed with no node up",
    ] {
        assert_eq!(count(&lines, text), 1, "{text} shown {} times:\n{all}", count(&lines, text));
    }
    // Message lines start with their time: `HH:MM:SS #ops <ann> missed 1`.
    let shown_missed: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains("<ann> missed"))
        .filter_map(|l| l.split_once(' '))
        .map(|(_, m)| m)
        .collect();
    let want: Vec<String> = missed.iter().map(|m| format!("#ops <ann> {m}")).collect();
    assert_eq!(shown_missed, want, "{all}");
    assert_eq!(count(&lines, "caught up on #ops: 5 missed message(s)"), 1, "{all}");
    let mut want_stored: Vec<String> =
        ["ann:before 1", "ann:before 2", "bot:bot before"].map(String::from).to_vec();
    want_stored.extend(missed.iter().map(|m| format!("ann:{m}")));
    want_stored.extend(["bot:sent to a frozen node", "bot:typed with no node up"].map(String::from));
    assert_eq!(stored(&rt, &b.addr, "#ops"), want_stored);
}

/// An account's login follows the client to the next node: the resume token saved after the
/// registration on A is given to B (filed under the first server of the list), which knows it
/// from the shared store, so the client is logged in there without the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_login_follows_the_client_to_the_next_node() {
    let (held_b, addr_b) = refusing_addr();
    let mut a = Server::start();
    let db = a.dir.0.join("natter.db");
    let data = TempDir::new("data");
    let logins = SavedLogins::in_dir(data.0.join("resume"));
    let mut opts = ConnectOptions::new(a.addr.clone(), "ann");
    opts.servers.push(Endpoint::plain(addr_b.clone()));
    opts.backoff_min = Duration::from_millis(100);
    opts.backoff_max = Duration::from_millis(400);
    opts.connect_timeout = Duration::from_secs(5);
    opts.saved_logins = Some(logins.clone());
    let (ann, mut ev) = Client::connect(opts).await.unwrap();
    ann.submit(ClientFrame::Register { password: "correct horse battery".into(), id: None });
    until(&mut ev, "registered", |e| {
        matches!(e, Event::Frame(ServerFrame::Account { change: AccountChangeFrame::Registered, .. }))
    })
    .await;
    tokio::time::timeout(MOVE_WAIT, ann.wait_idle()).await.unwrap();
    assert!(logins.load(&a.addr, "ann").is_some(), "the token is filed under the first server");

    a.kill();
    until(&mut ev, "reconnecting", |e| matches!(e, Event::Status(Status::Reconnecting { .. }))).await;
    drop(held_b);
    let _b = tokio::task::spawn_blocking({
        let (addr_b, db) = (addr_b.clone(), db.clone());
        move || Server::start_on(&addr_b, &db, &["--msg-rate", "0"])
    })
    .await
    .unwrap();
    let seen = until(
        &mut ev,
        "the move to B",
        |e| matches!(e, Event::Status(Status::Connected { addr, .. }) if *addr == addr_b),
    )
    .await;
    assert!(
        matches!(seen.last(), Some(Event::Status(Status::Connected { moved_from: Some(from), .. })) if *from == a.addr),
        "{seen:#?}"
    );
    until(&mut ev, "logged in on B with the token", |e| {
        matches!(
            e,
            Event::Frame(ServerFrame::Account {
                id: Some(RequestId::Num(0)),
                change: AccountChangeFrame::LoggedIn,
                ..
            })
        )
    })
    .await;
    let whois = ann.request(ClientFrame::Whois { nick: "ann".into(), id: None }).await.unwrap();
    assert!(
        matches!(&whois, ServerFrame::UserInfo { user, .. } if user.account.as_deref() == Some("ann")),
        "{whois:?}"
    );
}

/// The events up to and including the first matching `pred`; panics after [`MOVE_WAIT`].
async fn until(events: &mut Events, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    tokio::time::timeout(MOVE_WAIT, async {
        loop {
            match events.recv().await {
                Some(e) => {
                    let hit = pred(&e);
                    seen.push(e);
                    if hit {
                        return;
                    }
                }
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {seen:#?}"));
    seen
}

/// The TUI, in tmux: the status line names the node it is on, the move is announced, the
/// missed messages and the message typed with no node up are shown once.
#[test]
fn the_tui_moves_to_the_next_node_and_its_status_line_says_which() {
    let Some(tmux) = tmux_util::Tmux::if_installed() else { return };
    let rt = runtime();
    let (held_b, addr_b) = refusing_addr();
    let mut a = Server::start();
    let db = a.dir.0.join("natter.db");
    let command = format!(
        "env XDG_CONFIG_HOME=/nonexistent-natter-test XDG_DATA_HOME=/nonexistent-natter-test TERM=xterm-256color {NATTER} connect {},{addr_b} --nick termie",
        a.addr
    );
    let tui = tmux.start("failover", &command, 150, 40);
    let status_on = |addr: &str| format!(" {addr} │ termie │ connected");
    tui.wait("the TUI on A", |s| s.contains(&status_on(&a.addr)));
    say_on(&rt, &a.addr, "ann", "#lobby", &["before the crash"]);
    tui.wait_for("<ann> before the crash");

    a.kill();
    tui.wait("the TUI looking for B", |s| s.contains(&format!("reconnecting to {addr_b}")));
    tui.say("typed with no node up");
    tui.wait("the typed message, pending", |s| s.contains("typed with no node up"));
    meanwhile_on_another_node(&rt, &db, "#lobby", &["missed while away"]);
    drop(held_b);
    let b = Server::start_on(&addr_b, &db, &["--msg-rate", "0"]);

    let moved = format!("connected to {addr_b} as termie (moved from {})", a.addr);
    let deadline = Instant::now() + MOVE_WAIT;
    let screen = loop {
        let s = tui.screen();
        if s.contains(&moved) && s.contains(&status_on(&addr_b)) && s.contains("<ann> missed while away") {
            break s;
        }
        assert!(Instant::now() < deadline, "the TUI did not move to B; screen:\n{s}");
        // Polling interval between screen reads: tmux cannot tell when the screen changes.
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(screen.matches("before the crash").count(), 1, "{screen}");
    assert_eq!(screen.matches("missed while away").count(), 1, "{screen}");
    // The typed message reaches B's store once (the TUI shows it once whether pending or not).
    let deadline = Instant::now() + MOVE_WAIT;
    loop {
        let got = stored(&rt, &b.addr, "#lobby");
        let n = got.iter().filter(|t| *t == "termie:typed with no node up").count();
        if n == 1 {
            assert_eq!(
                got,
                ["ann:before the crash", "ann:missed while away", "termie:typed with no node up"]
            );
            break;
        }
        assert!(n == 0 && Instant::now() < deadline, "stored {n} times: {got:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let screen = tui.wait("the typed message once", |s| s.matches("typed with no node up").count() == 1);
    assert!(screen.contains("<termie> typed with no node up"), "{screen}");
}

/// Runs `natter connect SERVERS` with empty input and returns its exit success and stderr.
fn connect_stderr(servers: &str) -> (bool, String) {
    let out = Command::new(NATTER)
        .args(["connect", servers, "--nick", "bot", "--line"])
        .env("XDG_CONFIG_HOME", "/nonexistent-natter-test")
        .env("XDG_DATA_HOME", "/nonexistent-natter-test")
        .stdin(Stdio::null())
        .output()
        .expect("run natter connect");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_server_lists_are_refused_with_clear_errors() {
    let (ok, e) = connect_stderr("127.0.0.1:1,,127.0.0.1:2");
    assert!(!ok && e.contains("has an empty address: separate HOST[:PORT] items with single commas"), "{e}");
    let (ok, e) = connect_stderr("127.0.0.1:1,");
    assert!(!ok && e.contains("has an empty address"), "{e}");
    let (ok, e) = connect_stderr("127.0.0.1:1,localhost:99999");
    assert!(!ok && e.contains("invalid server address \"localhost:99999\""), "{e}");
    let hundred: Vec<String> = (1..=100).map(|p| format!("127.0.0.1:{p}")).collect();
    let (ok, e) = connect_stderr(&hundred.join(","));
    assert!(!ok && e.contains("names 100 servers; give at most 16"), "{e}");

    // Every server down: one error naming each, with its reason, and what to check, once.
    let (_held_a, a) = refusing_addr();
    let (_held_b, b) = refusing_addr();
    let (ok, e) = connect_stderr(&format!("{a},{b}"));
    assert!(!ok, "{e}");
    assert!(e.contains("could not connect to any of the 2 servers; check the addresses"), "{e}");
    assert!(
        e.contains(&format!("\n  {a}: Connection refused"))
            && e.contains(&format!("\n  {b}: Connection refused")),
        "{e}"
    );
    assert_eq!(e.matches("natter serve").count(), 1, "{e}");

    // The same server twice is one server: tried once, and the error is the one-server error.
    let (ok, e) = connect_stderr(&format!("{a},{a}"));
    assert!(!ok && e.contains(&format!("could not connect to {a}: ")), "{e}");
}
