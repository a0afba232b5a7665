//! Timer rules of the server, checked with paused time: the clock is frozen and moved by hand,
//! so each test shows that a rule fires at its time and not a moment before, without waiting
//! for it. Clients talk to the in-process server over real sockets.

mod harness;

use harness::{Client, TestServer, Udp, Watchdog, freeze_clock, json, settings};
use natter_server::UdpVerify;
use std::time::Duration;
use tokio::time::advance;

const REAL_LIMIT: Duration = Duration::from_secs(20);
const TICK: Duration = Duration::from_millis(1);

/// Text mode: a line left without a newline counts as sent after 100 ms of silence.
#[tokio::test(start_paused = true)]
async fn a_partial_text_line_is_sent_after_100ms_of_silence_and_not_before() {
    let _watchdog = Watchdog::arm("partial line", REAL_LIMIT);
    let _frozen = freeze_clock();
    let server = TestServer::start().await;
    let mut bob = Client::native(server.tcp, "bob").await;
    let mut ann = Client::connect(server.tcp).await;
    ann.line("ann").await;
    ann.expect("Hello ann").await;
    bob.expect(r#""nick":"ann""#).await;
    bob.ping().await;

    ann.send(b"hello").await;
    // The server has read "hello" (it was written before bob's ping) and holds it.
    let before = bob.ping().await;
    assert!(before.iter().all(|l| !l.contains("hello")), "{before:#?}");
    advance(Duration::from_millis(100) - TICK).await;
    let almost = bob.ping().await;
    assert!(almost.iter().all(|l| !l.contains("hello")), "sent before 100 ms: {almost:#?}");

    advance(TICK).await;
    let m = json(&bob.expect(r#""type":"message""#).await);
    assert_eq!((m["from"].as_str(), m["text"].as_str()), (Some("ann"), Some("hello")), "{m}");
    // One message, not the start of a longer line: the next bytes are a message of their own.
    ann.line("world").await;
    let m = json(&bob.expect(r#""type":"message""#).await);
    assert_eq!(m["text"], "world", "{m}");
    server.shutdown("done").await;
}

/// A native connection that pings but never says hello is closed, with the reason, when the
/// registration time is up.
#[tokio::test(start_paused = true)]
async fn a_connection_that_never_logs_in_is_closed_at_the_registration_deadline() {
    let _watchdog = Watchdog::arm("registration deadline", REAL_LIMIT);
    let _frozen = freeze_clock();
    let mut s = settings();
    s.session.register_timeout = Duration::from_secs(30);
    let server = TestServer::start_with(s).await;
    let mut c = Client::connect(server.tcp).await;
    c.ping().await;

    advance(Duration::from_secs(30) - TICK).await;
    let before = c.ping().await;
    assert!(before.is_empty(), "said something before the deadline: {before:#?}");

    advance(TICK).await;
    let bye = json(&c.expect(r#""type":"bye""#).await);
    assert_eq!(bye["reason"], "registration timeout: log in within 30 seconds of connecting");
    assert_eq!(c.rest().await, "", "nothing after the goodbye");
    server.shutdown("done").await;
}

/// A connection that sends nothing at all is greeted as a person after a moment, and closed
/// with the reason at the registration deadline.
#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_greeted_then_closed_at_the_registration_deadline() {
    let _watchdog = Watchdog::arm("silent registration deadline", REAL_LIMIT);
    let _frozen = freeze_clock();
    let mut s = settings();
    s.session.register_timeout = Duration::from_secs(10);
    let server = TestServer::start_with(s).await;
    let mut watcher = Client::native(server.tcp, "watcher").await;
    let mut silent = Client::connect(server.tcp).await;
    watcher.ping().await;
    assert_eq!(silent.pending(), "", "greeted before the client had a chance to speak");
    advance(Duration::from_millis(250)).await;
    silent.expect("Welcome to natter").await;

    advance(Duration::from_secs(10) - Duration::from_millis(250) - TICK).await;
    // The silent connection cannot ping; another connection's ping shows the server has
    // handled the timers due by now.
    watcher.ping().await;
    assert_eq!(silent.pending(), "", "closed before the deadline");

    advance(TICK).await;
    silent.expect("*** bye: registration timeout").await;
    assert_eq!(silent.rest().await, "", "nothing after the goodbye");
    server.shutdown("done").await;
}

/// A UDP address token is good for 5 to 10 minutes (the slot it was made in and the next):
/// typed back later it proves nothing, and the answer is a fresh token.
#[tokio::test(start_paused = true)]
async fn a_udp_address_token_is_good_for_ten_minutes_at_most() {
    let _watchdog = Watchdog::arm("udp address token expiry", REAL_LIMIT);
    let _frozen = freeze_clock();
    let mut s = settings();
    s.udp_limits.verify = UdpVerify::On;
    let server = TestServer::start_with(s).await;
    let udp = Udp::new(server.udp).await;
    let token = |challenge: &str| challenge.split("/ok ").nth(1).unwrap()[..6].to_string();
    udp.send(b"hello, anyone?\n").await;
    let first = token(&udp.expect("/ok ").await);

    advance(Duration::from_secs(600)).await;
    udp.send(format!("/ok {first}").as_bytes()).await;
    let second = token(&udp.expect("/ok ").await);
    assert_ne!(first, second, "a token ten minutes old was taken, or not replaced");

    // Made at the start of a slot, the new one still counts just before the end of the next.
    advance(Duration::from_secs(600) - TICK).await;
    udp.send(format!("/ok {second}").as_bytes()).await;
    udp.expect(&format!("Hello udp-{}", udp.port())).await;
    server.shutdown("done").await;
}

/// Datagrams without a native UDP member's session token do not keep it from expiring: they
/// may come from anyone.
#[tokio::test(start_paused = true)]
async fn datagrams_without_the_session_token_do_not_keep_a_udp_member_alive() {
    let _watchdog = Watchdog::arm("udp forged keepalive", REAL_LIMIT);
    let _frozen = freeze_clock();
    let server = TestServer::start().await;
    let mut bob = Client::native(server.tcp, "bob").await;
    let udp = Udp::new(server.udp).await;
    udp.send(br#"{"type":"hello","nick":"jay"}"#).await;
    udp.expect(r#""type":"welcome""#).await;
    bob.expect(r#""nick":"jay""#).await;

    advance(Duration::from_secs(200)).await;
    udp.send(br#"{"type":"ping","id":1}"#).await;
    udp.expect("bad_token").await;
    advance(Duration::from_secs(100) - TICK).await;
    let before = bob.ping().await;
    assert!(before.iter().all(|l| !l.contains(r#""type":"quit""#)), "expired early: {before:#?}");
    advance(TICK).await;
    let quit = json(&bob.expect(r#""type":"quit""#).await);
    assert_eq!(quit["reason"], "timed out: no datagram for 300 seconds", "{quit}");
    server.shutdown("done").await;
}

/// A UDP member that sends nothing for `udp_idle` is removed, and the room is told why.
#[tokio::test(start_paused = true)]
async fn a_silent_udp_member_expires_after_the_idle_time_and_not_before() {
    let _watchdog = Watchdog::arm("udp expiry", REAL_LIMIT);
    let _frozen = freeze_clock();
    let mut s = settings();
    s.udp_idle = Duration::from_secs(300);
    let server = TestServer::start_with(s).await;
    let mut bob = Client::native(server.tcp, "bob").await;
    let udp = Udp::new(server.udp).await;
    let nick = format!("udp-{}", udp.port());
    udp.send(b"hi from udp").await;
    udp.expect(&format!("Hello {nick}")).await;
    bob.expect("hi from udp").await;

    advance(Duration::from_secs(300) - TICK).await;
    let before = bob.ping().await;
    assert!(before.iter().all(|l| !l.contains(r#""type":"quit""#)), "expired early: {before:#?}");

    advance(TICK).await;
    let quit = json(&bob.expect(r#""type":"quit""#).await);
    assert_eq!(quit["nick"], nick.as_str(), "{quit}");
    assert_eq!(quit["reason"], "timed out: no datagram for 300 seconds", "{quit}");
    udp.expect("bye: timed out").await;
    server.shutdown("done").await;
}

/// A UDP member over its command budget waits as a TCP session does: what it sent beyond
/// the budget, even the later lines of the same datagram, is taken once it has paid, in order.
#[tokio::test(start_paused = true)]
async fn a_udp_members_command_flood_waits_for_its_budget() {
    let _watchdog = Watchdog::arm("udp command budget", REAL_LIMIT);
    let _frozen = freeze_clock();
    let server = TestServer::start().await;
    let mut watcher = Client::native(server.tcp, "watcher").await;
    let udp = Udp::new(server.udp).await;
    udp.send(b"/nick uma\n").await;
    udp.expect("Hello uma").await;
    // Who is online costs 20 of a burst of 100: five go at once, the sixth goes over (with
    // the notice), the seventh two seconds later, and the help after it two more.
    udp.send(b"/ls\n/ls\n/ls\n/ls\n/ls\n/ls\n/ls\n/help marker\n").await;
    udp.expect("slow down: too many commands").await;
    for (wait, what) in [(Duration::from_secs(2), "the seventh"), (Duration::from_secs(2), "the help")] {
        advance(wait - TICK).await;
        watcher.ping().await;
        assert!(!udp.pending().contains("marker"), "{what} let the help go early");
        advance(TICK).await;
    }
    udp.expect("marker").await;
    server.shutdown("done").await;
}

/// Commands that cost the whole server (here: who is online, over and over) go through at
/// once up to the session's burst; beyond it each waits until the session has earned it,
/// with one notice saying so, and none is lost.
#[tokio::test(start_paused = true)]
async fn a_command_flood_is_slowed_down_with_a_notice_and_nothing_is_lost() {
    let _watchdog = Watchdog::arm("command budget", REAL_LIMIT);
    let _frozen = freeze_clock();
    let server = TestServer::start().await;
    let mut watcher = Client::native(server.tcp, "watcher").await;
    let mut ann = Client::native(server.tcp, "ann").await;
    // Server-wide `who` costs 20 units of a burst of 100: five go at once; the sixth goes over
    // the budget (with a notice), and the lines after it wait two seconds each.
    for id in 1..=7 {
        ann.line(&format!(r#"{{"type":"who","id":{id}}}"#)).await;
    }
    for id in 1..=5 {
        ann.expect(&format!(r#""id":{id}"#)).await;
    }
    let notice = json(&ann.expect(r#""type":"notice""#).await);
    assert!(notice["text"].as_str().unwrap().starts_with("slow down: too many commands"), "{notice}");
    ann.expect(r#""id":6"#).await;

    advance(Duration::from_secs(2) - TICK).await;
    watcher.ping().await;
    assert!(!ann.pending().contains(r#""id":7"#), "the seventh went early");
    advance(TICK).await;
    ann.expect(r#""id":7"#).await;
    // Lines keep their order: a message behind a waiting command waits with it, then goes.
    ann.line(r##"{"type":"send","room":"#lobby","text":"still here","id":8}"##).await;
    advance(Duration::from_secs(2)).await;
    watcher.expect("still here").await;
    ann.expect(r#""id":8"#).await;
    // Once caught up, the session is not told again for a single command.
    ann.line(r##"{"type":"who","room":"#lobby","id":9}"##).await;
    let (before, _) = ann.until(r#""id":9"#).await;
    assert!(before.iter().all(|l| !l.contains("slow down")), "{before:#?}");
    server.shutdown("done").await;
}

/// Nick protection (`enforce`): a session holding a registered nickname without logging in is
/// renamed to a guest name when the grace time is up, and not a moment before.
#[tokio::test(start_paused = true)]
async fn a_registered_nick_held_without_logging_in_is_renamed_when_the_grace_time_is_up() {
    let _watchdog = Watchdog::arm("nick protection", REAL_LIMIT);
    let _frozen = freeze_clock();
    let mut s = settings();
    s.nick_grace = Duration::from_secs(30);
    let server = TestServer::start_with(s).await;
    let mut owner = Client::native(server.tcp, "bob").await;
    owner.line(r#"{"type":"register","password":"bob's password","id":"r"}"#).await;
    let registered = json(&owner.expect(r#""id":"r""#).await);
    assert_eq!(registered["change"], "registered", "{registered}");
    owner.line(r#"{"type":"quit"}"#).await;
    owner.rest().await;

    let mut squatter = Client::connect(server.tcp).await;
    squatter.line(r#"{"type":"hello","nick":"bob"}"#).await;
    let told = json(&squatter.expect(r#""type":"nick_protected""#).await);
    assert_eq!((told["nick"].as_str(), told["grace_secs"].as_u64()), (Some("bob"), Some(30)));
    squatter.ping().await;
    advance(Duration::from_secs(30) - TICK).await;
    let before = squatter.ping().await;
    assert!(before.iter().all(|l| !l.contains(r#""type":"nick""#)), "renamed early: {before:#?}");

    advance(TICK).await;
    let renamed = json(&squatter.expect(r#""type":"nick""#).await);
    assert_eq!(renamed["old"], "bob");
    assert!(renamed["new"].as_str().unwrap().starts_with("Guest"), "{renamed}");
    server.shutdown("done").await;
}

/// An account that `natter user` adds while the server runs protects its nickname once the
/// hub reads the accounts again (every 30 s): whoever holds it is told, then renamed.
#[tokio::test(start_paused = true)]
async fn an_account_added_beside_the_running_server_protects_its_nick_at_the_next_refresh() {
    let _watchdog = Watchdog::arm("account refresh", REAL_LIMIT);
    let _frozen = freeze_clock();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let mut s = settings();
    s.db = db.to_str().unwrap().into();
    let server = TestServer::start_with(s).await;
    let mut dave = Client::native(server.tcp, "dave").await;
    dave.ping().await;

    // `natter user add dave`, as another process would (beside the server's lock).
    let admin = natter_store::SqliteStore::open_beside_server(db.to_str().unwrap()).unwrap();
    let record = natter_core::store::AccountRecord {
        folded: "dave".into(),
        name: "dave".into(),
        hash: natter_core::password::hash_password("dave's password").unwrap(),
        created_ts: 1,
        last_login_ts: None,
        scram: None,
    };
    assert!(natter_core::Store::create_account(&admin, &record).unwrap());
    advance(Duration::from_secs(30)).await;
    let told = json(&dave.expect(r#""type":"nick_protected""#).await);
    assert_eq!(told["grace_secs"], 30, "{told}");
    advance(Duration::from_secs(30)).await;
    let renamed = json(&dave.expect(r#""type":"nick""#).await);
    assert!(renamed["new"].as_str().unwrap().starts_with("Guest"), "{renamed}");
    server.shutdown("done").await;
}
