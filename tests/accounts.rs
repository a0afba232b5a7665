//! Accounts end to end, on the real server over real sockets: the native frames, text mode,
//! IRC's NickServ, `natter user` beside a running server, nick protection, and bad input
//! (wrong, empty, oversized and non-UTF-8 passwords; the same answer for an unknown account as
//! for a wrong password; registering twice; logging in twice).

mod common;

use common::{Client, LoggedServer, Server, json, native, text, user};

/// Registers `nick`'s current nickname over the native protocol with `password`.
fn register_native(c: &mut Client, password: &str) -> serde_json::Value {
    c.line(&format!(r#"{{"type":"register","password":"{password}","id":"r"}}"#));
    answer(c, "r")
}

/// The frame answering request `id` (an `account` or an `error`).
fn answer(c: &mut Client, id: &str) -> serde_json::Value {
    loop {
        let line = c.next().expect("an answer");
        let v = json(&line);
        if v["id"] == id && (v["type"] == "account" || v["type"] == "error") {
            return v;
        }
    }
}

fn login_native(c: &mut Client, name: &str, password: &str, id: &str) -> serde_json::Value {
    c.line(&format!(r#"{{"type":"login","name":"{name}","password":"{password}","id":"{id}"}}"#));
    answer(c, id)
}

#[test]
fn native_clients_register_log_in_log_out_and_change_passwords() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut ann = native(server.tcp, "ann");
    let v = register_native(&mut ann, "correct horse");
    assert_eq!(
        (v["type"].as_str(), v["change"].as_str(), v["account"].as_str()),
        (Some("account"), Some("registered"), Some("ann"))
    );
    // Twice: refused.
    let v = register_native(&mut ann, "correct horse");
    assert_eq!(v["code"], "already_logged_in", "{v}");
    let v = login_native(&mut ann, "ann", "correct horse", "l1");
    assert_eq!(v["code"], "already_logged_in", "{v}");

    ann.line(r#"{"type":"passwd","old":"wrong password","new":"second password","id":"p1"}"#);
    assert_eq!(answer(&mut ann, "p1")["code"], "bad_credentials");
    ann.line(r#"{"type":"passwd","old":"correct horse","new":"short","id":"p2"}"#);
    let v = answer(&mut ann, "p2");
    assert_eq!(v["code"], "weak_password");
    assert!(v["message"].as_str().unwrap().contains("at least 8 characters"), "{v}");
    ann.line(r#"{"type":"passwd","old":"correct horse","new":"second password","id":"p3"}"#);
    assert_eq!(answer(&mut ann, "p3")["change"], "password_changed");
    ann.line(r#"{"type":"logout","id":"o1"}"#);
    assert_eq!(answer(&mut ann, "o1")["change"], "logged_out");
    ann.line(r#"{"type":"logout","id":"o2"}"#);
    assert_eq!(answer(&mut ann, "o2")["code"], "not_logged_in");

    // Someone else on the same nick cannot register it again.
    let mut bob = native(server.tcp, "bob");
    let v = login_native(&mut bob, "ANN", "second password", "l2");
    assert_eq!((v["change"].as_str(), v["account"].as_str()), (Some("logged_in"), Some("ann")), "{v}");
    ann.line(r#"{"type":"quit"}"#);
    assert!(ann.closed());
    let mut squatter = native(server.tcp, "Ann");
    let v = register_native(&mut squatter, "yet another one");
    assert_eq!(v["code"], "account_exists", "{v}");
}

#[test]
fn an_unknown_account_and_a_wrong_password_get_the_same_answer_and_bad_passwords_no_panic() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut ann = native(server.tcp, "ann");
    assert_eq!(register_native(&mut ann, "correct horse")["change"], "registered");
    let mut guesser = native(server.tcp, "guesser");
    let wrong = login_native(&mut guesser, "ann", "wrong password", "1");
    let unknown = login_native(&mut guesser, "nobody", "wrong password", "2");
    assert_eq!(wrong["code"], "bad_credentials");
    assert_eq!(
        (wrong["code"].clone(), wrong["message"].clone()),
        (unknown["code"].clone(), unknown["message"].clone())
    );
    // The third free mistake; the fourth makes the address wait: a guesser is held back.
    let empty = login_native(&mut guesser, "ann", "", "3");
    assert_eq!(empty["code"], "bad_credentials");
    let huge = "x".repeat(10_000);
    assert_eq!(login_native(&mut guesser, "ann", &huge, "4")["code"], "bad_credentials");
    let held = login_native(&mut guesser, "ann", "correct horse", "5");
    assert_eq!(held["code"], "too_many_attempts", "{held}");
    assert!(!held.to_string().contains("correct horse"), "never echoed: {held}");
    // A frame missing the password, and bytes that are not UTF-8, are bad frames.
    guesser.line(r#"{"type":"login","name":"ann","id":"6"}"#);
    let v = json(&guesser.expect(r#""id":"6""#));
    assert_eq!(v["code"], "bad_frame");
    guesser.send(b"{\"type\":\"login\",\"name\":\"ann\",\"password\":\"\xff\xfe\"}\n");
    let v = json(&guesser.expect(r#""type":"error""#));
    assert_eq!(v["code"], "invalid_utf8", "{v}");
    // The server is still there.
    guesser.ping();
}

#[test]
fn hello_logs_in_to_an_account_right_after_the_welcome() {
    let server = Server::start(&[]);
    let mut ann = native(server.tcp, "ann");
    assert_eq!(register_native(&mut ann, "correct horse")["change"], "registered");
    ann.line(r#"{"type":"quit"}"#);
    assert!(ann.closed());
    let mut again = Client::connect(server.tcp);
    again
        .line(r#"{"type":"hello","nick":"ann","account":"ann","account_password":"correct horse","id":"h"}"#);
    let seen = again.until(r#""type":"account""#);
    assert!(seen.iter().any(|l| l.contains(r#""type":"welcome""#)), "{seen:?}");
    let mut half = Client::connect(server.tcp);
    half.line(r#"{"type":"hello","nick":"zed","account":"ann","id":"h"}"#);
    let v = json(&half.expect(r#""type":"error""#));
    assert_eq!(v["code"], "bad_frame");
    assert!(v["message"].as_str().unwrap().contains("account_password"));
}

#[test]
fn text_mode_has_the_account_commands_and_lists_them_in_help() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut ann = text(server.tcp, "ann");
    ann.line("/help");
    let help = ann.until("/quit");
    for cmd in ["/register", "/login", "/logout", "/passwd"] {
        assert!(help.iter().any(|l| l.contains(cmd)), "{cmd} in {help:#?}");
    }
    ann.line("/register short");
    ann.expect("the password is too short: use at least 8 characters");
    ann.line("/register correct horse");
    ann.expect("registered the account ann");
    ann.line("/logout");
    ann.expect("you logged out of ann");
    ann.line("/login ann wrong password");
    ann.expect("wrong account name or password");
    // The rest of the line is the password, spaces included.
    ann.line("/login ann correct horse");
    ann.expect("you are logged in as ann");
    ann.line("/logout");
    ann.expect("you logged out of ann");
    ann.line("/register again");
    ann.expect("ann is already registered; /login ann PASSWORD if it is yours");
    ann.line("/login ann correct horse");
    ann.expect("you are logged in as ann");
    // The first word is the current password, the rest the new one.
    ann.line("/passwd correct horse battery");
    ann.expect("wrong account name or password");
    ann.line("/login");
    ann.expect("usage: /login nick password");
    let seen = ann.text_barrier();
    assert!(!seen.iter().any(|l| l.contains("correct")), "{seen:?}");
}

#[test]
fn text_mode_changes_a_password_and_the_new_one_is_needed() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut ann = text(server.tcp, "ann");
    ann.line("/register first-password");
    ann.expect("registered the account ann");
    ann.line("/passwd first-password second password");
    ann.expect("changed the password of ann");
    ann.line("/logout");
    ann.expect("you logged out of ann");
    ann.line("/login ann first-password");
    ann.expect("wrong account name or password");
    ann.line("/login ann second password");
    ann.expect("you are logged in as ann");
}

#[test]
fn irc_clients_talk_to_nickserv() {
    let server = Server::start(&["--nick-protection", "off"]);
    let irc = server.irc.unwrap();
    let mut c = Client::connect(irc);
    c.line("NICK ann\r\nUSER ann 0 * :Ann");
    c.expect(" 001 ann ");
    c.line("PRIVMSG NickServ :HELP");
    c.expect(":NickServ!NickServ@services.natter NOTICE ann :IDENTIFY [nick] <password>");
    c.line("PRIVMSG NickServ :REGISTER correct-horse ann@example.org");
    c.expect(":NickServ!NickServ@services.natter NOTICE ann :Account created: ann");
    c.expect(" 900 ann ann!");
    c.line("PRIVMSG nickserv :LOGOUT");
    c.expect(" 901 ann ");
    c.line("PRIVMSG NickServ :IDENTIFY wrong-password");
    c.expect("NOTICE ann :wrong account name or password");
    c.line("PRIVMSG NickServ :IDENTIFY ann correct-horse");
    c.expect(" 900 ann ann!");
    // WHOIS says who is logged in as what (330), and nothing for who is not.
    c.line("WHOIS ann");
    let whois = c.until(" 318 ");
    assert!(whois.iter().any(|l| l.contains(" 330 ann ann ann :is logged in as")), "{whois:#?}");
    let mut guest = native(server.tcp, "guest");
    guest.line(r#"{"type":"whois","nick":"ann","id":"w1"}"#);
    let info = json(&guest.expect(r#""type":"user_info""#));
    assert_eq!(info["user"]["account"], "ann", "{info}");
    c.line("WHOIS guest");
    let whois = c.until(" 318 ");
    assert!(whois.iter().all(|l| !l.contains(" 330 ")), "{whois:#?}");
    c.line("PRIVMSG NickServ :REGISTER x");
    c.expect("NOTICE ann :You are already logged in as ann");
    c.line("PRIVMSG NickServ :FROBNICATE secret");
    let l = c.expect("unknown command FROBNICATE");
    assert!(!l.contains("secret"));
    c.line("PRIVMSG NickServ :IDENTIFY a b c");
    c.expect("wrong number of words for IDENTIFY");
    c.irc_ping();
}

#[test]
fn natter_user_changes_accounts_that_a_running_server_uses_at_once() {
    let server = Server::start(&["--nick-protection", "off"]);
    assert!(user(&server.db, &["add", "carol"], "first password\n"));
    let mut c = native(server.tcp, "someone");
    assert_eq!(login_native(&mut c, "carol", "first password", "1")["change"], "logged_in");
    c.line(r#"{"type":"logout"}"#);
    assert!(user(&server.db, &["passwd", "carol"], "second password\n"));
    assert_eq!(login_native(&mut c, "carol", "first password", "2")["code"], "bad_credentials");
    assert_eq!(login_native(&mut c, "carol", "second password", "3")["change"], "logged_in");
    c.line(r#"{"type":"logout"}"#);
    assert!(user(&server.db, &["del", "carol"], ""));
    assert_eq!(login_native(&mut c, "carol", "second password", "4")["code"], "bad_credentials");
}

#[test]
fn a_registered_nick_is_taken_back_from_whoever_does_not_log_in() {
    let server = Server::start(&["--nick-grace", "1"]);
    let mut owner = text(server.tcp, "bob");
    owner.line("/register bob's password");
    owner.expect("registered the account bob");
    owner.line("/quit");
    assert!(owner.closed());
    let mut squatter = Client::connect(server.tcp);
    squatter.line("bob");
    squatter.expect("Hello bob");
    squatter.expect("the nickname bob is registered: /login bob PASSWORD within 1 s");
    squatter.expect("you are now Guest");
    // A look-alike (Cyrillic о) is refused outright.
    let mut fake = Client::connect(server.tcp);
    fake.line(r#"{"type":"hello","nick":"b\u043eb"}"#);
    let v = json(&fake.expect(r#""type":"error""#));
    assert_eq!(v["code"], "nick_registered", "{v}");
    // Logging in in time keeps the nick.
    let mut back = Client::connect(server.tcp);
    back.line(r#"{"type":"hello","nick":"bob","account":"bob","account_password":"bob's password"}"#);
    back.expect(r#""type":"account""#);
    back.ping();
}

#[test]
fn the_server_answers_a_ping_while_a_burst_of_logins_is_being_checked() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut owner = native(server.tcp, "owner");
    assert_eq!(register_native(&mut owner, "owner's password")["change"], "registered");
    let mut guests: Vec<Client> = (0..20).map(|i| native(server.tcp, &format!("guest{i}"))).collect();
    let mut chatter = native(server.tcp, "chatter");
    for g in &mut guests {
        g.line(r#"{"type":"login","name":"owner","password":"owner's password","id":"burst"}"#);
    }
    // Twenty argon2id checks take hundreds of milliseconds two at a time; the ping does not
    // wait for them.
    chatter.ping();
    let last = guests.last_mut().unwrap();
    last.stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let pending = std::io::Read::read(&mut last.stream, &mut buf);
    last.stream.set_nonblocking(false).unwrap();
    match pending {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok(n) => assert!(
            !String::from_utf8_lossy(&buf[..n]).contains(r#""type":"account""#),
            "the last login was answered before the ping"
        ),
        Err(e) => panic!("{e}"),
    }
    for g in &mut guests {
        assert_eq!(answer(g, "burst")["change"], "logged_in");
    }
}

#[test]
fn wrong_account_passwords_are_logged_without_what_was_typed() {
    let server = LoggedServer::start(&["--nick-protection", "off"]);
    let mut ann = native(server.tcp, "ann");
    assert_eq!(register_native(&mut ann, "correct horse")["change"], "registered");
    server.until(&["registered an account", "ann"]);
    let mut guesser = native(server.tcp, "guesser");
    assert_eq!(login_native(&mut guesser, "ann", "hunter2hunter2", "1")["code"], "bad_credentials");
    let logged = server.until(&["wrong password", "account password"]);
    let line = logged.last().unwrap();
    assert!(line.contains("ann"), "{line}");
    // A name that is no account may be a password typed in the wrong field: not logged.
    assert_eq!(login_native(&mut guesser, "my-secret-pw", "whatever12", "2")["code"], "bad_credentials");
    let logged = server.until(&["wrong password", "(no such account)"]);
    guesser.ping();
    let all: Vec<String> = logged.into_iter().chain(server.pending()).collect();
    for secret in ["hunter2", "correct horse", "my-secret-pw", "whatever12"] {
        assert!(all.iter().all(|l| !l.contains(secret)), "{secret} in the log: {all:#?}");
    }
}

/// An account holds at most 16 client certificates: each is a row in the store, registered by
/// its owner from IRC.
#[test]
fn an_account_registers_at_most_sixteen_certificates() {
    let server = Server::start(&["--nick-protection", "off"]);
    let mut c = Client::connect(server.irc.unwrap());
    c.line("NICK ann\r\nUSER ann 0 * :Ann\r\nPRIVMSG NickServ :REGISTER correct-horse");
    c.expect(" 900 ann ");
    for i in 0..16 {
        c.line(&format!("PRIVMSG NickServ :CERT ADD {i:064x}"));
        c.expect("now logs in to ann (SASL EXTERNAL)");
    }
    c.line(&format!("PRIVMSG NickServ :CERT ADD {:064x}", 16));
    c.expect("NOTICE ann :your account has 16 certificates already, the most it may have; remove one first");
    c.line(&format!("PRIVMSG NickServ :CERT DEL {:064x}", 3));
    c.expect("no longer logs in to ann");
    c.line(&format!("PRIVMSG NickServ :CERT ADD {:064x}", 16));
    c.expect("now logs in to ann (SASL EXTERNAL)");
}
