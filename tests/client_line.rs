//! `natter connect` line mode end to end: the real binary, stdin piped, against a real server.

mod client_util;

use client_util::{NATTER, Server, refusing_addr};
use natter_client::conn::{Client, ConnectOptions, Event};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `natter connect ADDR args...` with `input` on stdin; kills it after 60 s.
fn connect(addr: &str, args: &[&str], input: &str) -> Output {
    connect_within(addr, args, input, Duration::from_secs(60))
}

/// Runs `natter connect ADDR args...` with `input` on stdin; fails when it runs past `limit`.
fn connect_within(addr: &str, args: &[&str], input: &str, limit: Duration) -> Output {
    let mut child = Command::new(NATTER)
        .arg("connect")
        .arg(addr)
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent-natter-test")
        .env("XDG_DATA_HOME", "/nonexistent-natter-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn natter connect");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("natter connect did not exit within {limit:?}");
        }
        // Polling interval of the wait for the observable exit.
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stored_texts(server: &Server, room: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (c, _ev) = Client::connect(ConnectOptions::new(server.addr.clone(), "checker")).await.unwrap();
        let (msgs, _) = c.history(room, None, None, 200).await.unwrap();
        c.quit(None).await;
        msgs.iter().map(|m| format!("{}:{}", m.from, m.text)).collect()
    })
}

#[test]
fn piped_lines_are_delivered_before_exit() {
    let server = Server::start();
    let out = connect(&server.addr, &["--nick", "bot"], "hi\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("connected to"), "{stdout}");
    assert!(stdout.contains("#lobby <bot> hi"), "{stdout}");
    assert_eq!(stored_texts(&server, "#lobby"), ["bot:hi"]);
}

/// A line longer than the server accepts is refused by the client itself, with a message that
/// says what to do; the script goes on and ends at once (it used to wait for an answer that
/// the server cannot give to a line it did not read).
#[test]
fn a_line_over_the_server_limit_is_refused_at_once_and_the_rest_delivered() {
    let server = Server::start_with(&["--max-line", "1000"]);
    let input = format!("before\n{}\nafter\n", "x".repeat(3000));
    let out = connect_within(&server.addr, &["--nick", "bot"], &input, Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("message not sent: message too long"), "{stdout}");
    assert!(stdout.contains("at most 1000 per line; split it"), "{stdout}");
    assert_eq!(stored_texts(&server, "#lobby"), ["bot:before", "bot:after"]);
}

/// The default rate limit (10/s, burst 30) makes the server refuse part of a fast burst; the
/// client retries, so every line is delivered once, in order.
#[test]
fn a_burst_above_the_rate_limit_is_fully_delivered() {
    let server = Server::start_with(&["--msg-rate", "10", "--msg-burst", "5"]);
    let input: String = (0..20).map(|i| format!("line {i}\n")).collect();
    let out = connect(&server.addr, &["--nick", "bot"], &input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected: Vec<String> = (0..20).map(|i| format!("bot:line {i}")).collect();
    let mut got = stored_texts(&server, "#lobby");
    got.sort_by_key(|t| t.trim_start_matches("bot:line ").parse::<u32>().unwrap_or(0));
    assert_eq!(got, expected);
}

#[test]
fn commands_work_and_join_switches_the_room() {
    let server = Server::start();
    let out = connect(
        &server.addr,
        &["--nick", "bot"],
        "/join #rust\nin rust\n/me waves\n/who\n/rooms\n/topic #rust crabs\n/bogus\n/help join\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "you joined #rust",
        "#rust <bot> in rust",
        "#rust * bot waves",
        "1 in #rust: bot",
        "rooms: #lobby (1), #rust (1)",
        "topic of #rust: crabs",
        "error: unknown command /bogus",
        "/join #room",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    assert_eq!(stored_texts(&server, "#rust"), ["bot:in rust", "bot:waves"]);
}

#[test]
fn json_mode_prints_one_object_per_line_including_others_messages() {
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    // Ann talks when the bot joins.
    let (ann, mut ann_ev) =
        rt.block_on(Client::connect(ConnectOptions::new(server.addr.clone(), "ann"))).unwrap();
    let talker = rt.spawn(async move {
        while let Some(e) = ann_ev.recv().await {
            if let Event::Frame(natter_proto::native::ServerFrame::Join { nick, .. }) = e
                && nick == "bot"
            {
                ann.say("#lobby", "welcome bot");
                ann.wait_idle().await;
                break;
            }
        }
        ann
    });
    // The bot stays until ann's message arrived: `/who` after a pause keeps it connected.
    let mut child = Command::new(NATTER)
        .args(["connect", &server.addr, "--nick", "bot", "--json"])
        .env("XDG_CONFIG_HOME", "/nonexistent-natter-test")
        .env("XDG_DATA_HOME", "/nonexistent-natter-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let ann =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), talker).await }).unwrap().unwrap();
    stdin.write_all(b"hello ann\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let values: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    assert!(values.iter().any(|v| v["type"] == "status" && v["state"] == "connected"));
    assert!(
        values.iter().any(|v| v["type"] == "message" && v["from"] == "ann" && v["text"] == "welcome bot")
    );
    assert!(values.iter().any(|v| v["type"] == "message" && v["own"] == true && v["text"] == "hello ann"));
    assert!(values.iter().any(|v| v["type"] == "ack" && v["duplicate"] == false));
    drop(ann);
}

#[test]
fn unreachable_server_and_bad_nick_fail_with_clear_messages() {
    let (_held, addr) = refusing_addr();
    let out = connect(&addr, &["--nick", "bot"], "hi\n");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("could not connect") && stderr.contains("natter serve"), "{stderr}");

    let out = connect("127.0.0.1:1", &["--nick", "9lives"], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid nickname") && stderr.contains("--nick"), "{stderr}");
}

/// Connects `nick` with the library, joins `rooms` and says `text` in each: stored history
/// for a bot that comes later. Returns the client, still connected.
fn talker(rt: &tokio::runtime::Runtime, server: &Server, nick: &str, rooms: &[&str], text: &str) -> Client {
    rt.block_on(async {
        let (c, _ev) = Client::connect(ConnectOptions::new(server.addr.clone(), nick)).await.unwrap();
        for room in rooms {
            if *room != "#lobby" {
                let frame =
                    natter_proto::native::ClientFrame::Join { room: room.to_string(), key: None, id: None };
                c.request(frame).await.unwrap();
            }
            c.say(room, format!("{text} in {room}"));
        }
        c.wait_idle().await;
        c
    })
}

/// `--room '#dev'`: the script is about #dev. The lobby the server puts every session in is
/// not printed (its join, its members, its messages), and neither is the history a join
/// replays; `/history` still prints it when asked. Without `--room`, the lobby is the room
/// and its join is printed, still without the replay.
#[test]
fn with_room_line_mode_prints_that_room_only_and_no_history_replay() {
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let ann = talker(&rt, &server, "ann", &["#lobby", "#dev"], "earlier");

    let out = connect(&server.addr, &["--nick", "bot", "--room", "#dev"], "deploy done\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("you joined #dev (2 member(s): ann bot)"), "{stdout}");
    assert!(stdout.contains("#dev <bot> deploy done"), "{stdout}");
    assert!(!stdout.contains("#lobby"), "lobby noise printed:\n{stdout}");
    assert!(!stdout.contains("earlier"), "history replayed:\n{stdout}");
    assert_eq!(stored_texts(&server, "#dev"), ["ann:earlier in #dev", "bot:deploy done"]);

    let out = connect(&server.addr, &["--nick", "bot", "--room", "#dev"], "/history\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("#dev <ann> earlier in #dev"), "asked-for history missing:\n{stdout}");
    assert!(!stdout.contains("#lobby"), "lobby noise printed:\n{stdout}");

    let out = connect(&server.addr, &["--nick", "bot"], "hi\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("you joined #lobby"), "{stdout}");
    assert!(stdout.contains("#lobby <bot> hi"), "{stdout}");
    assert!(!stdout.contains("earlier"), "history replayed:\n{stdout}");
    rt.block_on(ann.quit(None));
}

/// A script asked to post as `ann` while someone else is `ann`: it does not post as `ann_`
/// (that would look like ann); it says so on stderr, sends nothing and exits with status 1.
#[test]
fn a_taken_nick_is_an_error_and_nothing_is_posted() {
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let ann = talker(&rt, &server, "ann", &["#lobby"], "hello");

    let out = connect(&server.addr, &["--nick", "ann"], "posted by the script\n");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the nickname ann is taken"), "{stderr}");
    assert!(stderr.contains("nothing was sent; pick another with --nick"), "{stderr}");
    assert_eq!(stored_texts(&server, "#lobby"), ["ann:hello in #lobby"]);
    rt.block_on(ann.quit(None));
}
