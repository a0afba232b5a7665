//! IRC SASL end to end on the real server: PLAIN and SCRAM-SHA-256 before registration (the
//! session starts logged in, and takes its account's nickname back), a SCRAM client written
//! from the RFCs in Python, `account-tag`, and bad input: wrong passwords (throttled, one
//! answer for unknown accounts), messages split across `AUTHENTICATE` chunks, oversized and
//! malformed base64, aborts, registration in the middle of an exchange.

mod common;

use base64ct::{Base64, Encoding};
use common::{Client, Server, user};
use std::process::Command;

/// An IRC client that asked for `sasl` and waits before registering.
fn negotiating(server: &Server) -> Client {
    let mut c = Client::connect(server.irc.unwrap());
    c.line("CAP LS 302");
    let ls = c.expect(" CAP * LS ");
    assert!(ls.contains(" sasl=PLAIN,SCRAM-SHA-256"), "{ls}");
    assert!(ls.contains("account-tag") && ls.contains("cap-notify"), "{ls}");
    c.line("CAP REQ :sasl");
    c.expect(" ACK sasl");
    c
}

fn plain(authzid: &str, authcid: &str, password: &str) -> String {
    Base64::encode_string(format!("{authzid}\0{authcid}\0{password}").as_bytes())
}

fn server_with(accounts: &[(&str, &str)]) -> Server {
    let server = Server::start(&[]);
    for (name, password) in accounts {
        assert!(user(&server.db, &["add", name], &format!("{password}\n")));
    }
    server
}

#[test]
fn plain_logs_in_before_registration_and_the_session_starts_logged_in() {
    let server = server_with(&[("ann", "correct horse")]);
    let mut c = negotiating(&server);
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line(&format!("AUTHENTICATE {}", plain("", "ann", "correct horse")));
    c.expect(" 900 * *!*@* ann :You are now logged in as ann");
    c.expect(" 903 * :SASL authentication successful");
    // Once logged in, a second exchange is refused.
    c.line("AUTHENTICATE PLAIN");
    c.expect(" 907 * ");
    c.line("NICK ann\r\nUSER ann 0 * :Ann\r\nCAP END");
    c.expect(" 001 ann ");
    let burst = c.irc_ping();
    assert!(burst.iter().all(|l| !l.contains("is registered")), "no nick protection notice: {burst:#?}");
    c.line("WHOIS ann");
    let whois = c.until(" 318 ");
    assert!(whois.iter().any(|l| l.contains(" 330 ann ann ann :is logged in as")), "{whois:#?}");
}

/// A nickname refused at registration (someone has it) loses nothing of the SASL login: the
/// retry with another nickname starts logged in.
#[test]
fn a_nick_refused_at_registration_keeps_the_sasl_login_for_the_retry() {
    let server = server_with(&[("ann", "correct horse")]);
    let mut bob = Client::connect(server.irc.unwrap());
    bob.line("NICK taken\r\nUSER b 0 * :B");
    bob.expect(" 001 taken ");
    let mut c = negotiating(&server);
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line(&format!("AUTHENTICATE {}", plain("", "ann", "correct horse")));
    c.expect(" 903 * :SASL authentication successful");
    c.line("NICK taken\r\nUSER ann 0 * :Ann\r\nCAP END");
    c.expect(" 433 ");
    c.line("NICK other");
    c.expect(" 001 other ");
    c.line("WHOIS other");
    let whois = c.until(" 318 ");
    assert!(whois.iter().any(|l| l.contains(" 330 other other ann :is logged in as")), "{whois:#?}");
}

/// IRCv3 SASL 3.2: a registered client may authenticate again, to switch accounts; neighbours
/// with account-notify see the change, and it costs the command budget like a NickServ login.
#[test]
fn a_registered_client_reauthenticates_and_switches_accounts() {
    let server = server_with(&[("ann", "correct horse"), ("bea", "battery staple")]);
    let mut c = Client::connect(server.irc.unwrap());
    c.line("CAP REQ :sasl account-notify\r\nNICK ann\r\nUSER ann 0 * :Ann\r\nCAP END");
    c.expect(" 001 ann ");
    let mut friend = Client::connect(server.irc.unwrap());
    friend.line("CAP REQ :account-notify\r\nNICK friend\r\nUSER f 0 * :F\r\nCAP END");
    friend.expect(" 366 friend #lobby ");
    for (name, password) in [("ann", "correct horse"), ("bea", "battery staple")] {
        c.line("AUTHENTICATE PLAIN");
        c.expect("AUTHENTICATE +");
        c.line(&format!("AUTHENTICATE {}", plain("", name, password)));
        c.expect(&format!(" 900 ann ann!ann@127.0.0.1 {name} :You are now logged in as {name}"));
        c.expect(" 903 ann :SASL authentication successful");
        friend.expect(&format!(":ann!ann@127.0.0.1 ACCOUNT {name}"));
    }
    c.line("WHOIS ann");
    let whois = c.until(" 318 ");
    assert!(whois.iter().any(|l| l.contains(" 330 ann ann bea :is logged in as")), "{whois:#?}");
    // A wrong password after registration fails like before it.
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line(&format!("AUTHENTICATE {}", plain("", "ann", "wrong horse")));
    c.expect(" 904 ann ");
}

#[test]
fn wrong_and_unknown_credentials_fail_alike_and_a_retry_works() {
    let server = server_with(&[("ann", "correct horse")]);
    let mut c = negotiating(&server);
    for attempt in [plain("", "ann", "wrong horse"), plain("", "nobody", "correct horse")] {
        c.line("AUTHENTICATE PLAIN");
        c.expect("AUTHENTICATE +");
        c.line(&format!("AUTHENTICATE {attempt}"));
        c.expect("NOTICE * :SASL: wrong account name or password");
        c.expect(" 904 * :SASL authentication failed");
    }
    // Acting as someone else is refused before any password is checked.
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line(&format!("AUTHENTICATE {}", plain("bob", "ann", "correct horse")));
    c.expect("NOTICE * :SASL: you may only log in as yourself");
    c.expect(" 904 ");
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line(&format!("AUTHENTICATE {}", plain("ann", "ann", "correct horse")));
    c.expect(" 903 ");
}

#[test]
fn guessing_is_throttled_per_address_like_every_password() {
    let server = server_with(&[("ann", "correct horse")]);
    let mut refused = None;
    // Three free tries (docs/protocol.md), then a wait, also for the right password.
    for i in 0..6 {
        let mut c = negotiating(&server);
        c.line("AUTHENTICATE PLAIN");
        c.expect("AUTHENTICATE +");
        let password = if i == 5 { "correct horse" } else { "wrong guess!" };
        c.line(&format!("AUTHENTICATE {}", plain("", "ann", password)));
        let notice = c.expect("NOTICE * :SASL: ");
        c.expect(" 904 ");
        if notice.contains("too many") {
            refused = Some((i, notice));
        }
    }
    let (at, notice) = refused.expect("the guesses were throttled");
    assert!(at >= 3, "three free tries: {at}");
    assert!(notice.contains("try again in"), "{notice}");
}

#[test]
fn a_message_split_across_chunks_is_joined_and_oversized_or_broken_ones_refused() {
    // 298 bytes of PLAIN: 400 bytes of base64, so a chunk of exactly 400 and then `+`.
    let name = "a".repeat(21);
    let password = "p".repeat(298 - 2 * name.len() - 2);
    let server = server_with(&[(&name, &password)]);
    let message = plain(&name, &name, &password);
    assert_eq!(message.len(), 400);
    let mut c = negotiating(&server);
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line(&format!("AUTHENTICATE {message}"));
    c.line("AUTHENTICATE +");
    c.expect(" 903 ");

    let mut c = negotiating(&server);
    // One line longer than 400: 905.
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line(&format!("AUTHENTICATE {}", "A".repeat(401)));
    c.expect(" 905 * :SASL message too long");
    // Chunks without end: 905 once the message passes the bound, not a growing buffer.
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    for _ in 0..5 {
        c.line(&format!("AUTHENTICATE {}", "A".repeat(400)));
    }
    c.expect(" 905 * :SASL message too long");
    // Not base64, and base64 of garbage.
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line("AUTHENTICATE !!!notbase64");
    c.expect("NOTICE * :SASL: the SASL message is not valid base64");
    c.expect(" 904 ");
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line(&format!("AUTHENTICATE {}", Base64::encode_string(b"\xff\xfe\0\0")));
    c.expect(" 904 ");
    // An unknown mechanism: the list, and a failure.
    c.line("AUTHENTICATE DIGEST-MD5");
    c.expect(" 908 * PLAIN,SCRAM-SHA-256 :are available SASL mechanisms");
    c.expect(" 904 ");
    // EXTERNAL needs a client certificate.
    c.line("AUTHENTICATE EXTERNAL");
    c.expect(" 908 ");
    // Abort.
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line("AUTHENTICATE *");
    c.expect(" 906 * :SASL authentication aborted");
    // Registering in the middle of an exchange aborts it, and registers as a guest.
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line("NICK someone\r\nUSER s 0 * :S\r\nCAP END");
    c.expect(" 906 * :SASL authentication aborted");
    c.expect(" 001 someone ");
    c.line("WHOIS someone");
    let whois = c.until(" 318 ");
    assert!(whois.iter().all(|l| !l.contains(" 330 ")), "{whois:#?}");
}

#[test]
fn the_account_takes_its_nickname_back_from_a_guest_at_registration() {
    let server = server_with(&[("ann", "correct horse")]);
    let mut squatter = Client::connect(server.irc.unwrap());
    squatter.line("NICK ann\r\nUSER s 0 * :S");
    squatter.expect(" 001 ann ");
    let mut owner = negotiating(&server);
    owner.line("AUTHENTICATE PLAIN");
    owner.expect("AUTHENTICATE +");
    owner.line(&format!("AUTHENTICATE {}", plain("", "ann", "correct horse")));
    owner.expect(" 903 ");
    owner.line("NICK ann\r\nUSER ann 0 * :Ann\r\nCAP END");
    owner.expect(" 001 ann ");
    let renamed = squatter.expect(" NICK ");
    assert!(renamed.starts_with(":ann!") && renamed.contains(" NICK Guest"), "{renamed}");
}

#[test]
fn account_tag_clients_see_who_is_logged_in() {
    let server = server_with(&[("ann", "correct horse")]);
    let mut ann = negotiating(&server);
    ann.line("AUTHENTICATE PLAIN");
    ann.expect("AUTHENTICATE +");
    ann.line(&format!("AUTHENTICATE {}", plain("", "ann", "correct horse")));
    ann.expect(" 903 ");
    ann.line("NICK ann\r\nUSER ann 0 * :Ann\r\nCAP END\r\nJOIN #room");
    ann.expect(" 366 ann #room ");
    let mut readers = Vec::new();
    for (nick, caps) in [
        ("tagged", "account-tag message-tags"),
        ("timed", "account-tag message-tags server-time"),
        ("lone", "account-tag"),
        ("plain", ""),
    ] {
        let mut c = Client::connect(server.irc.unwrap());
        if !caps.is_empty() {
            c.line(&format!("CAP REQ :{caps}"));
            c.expect(" ACK ");
            c.line("CAP END");
        }
        c.line(&format!("NICK {nick}\r\nUSER r 0 * :R\r\nJOIN #room"));
        c.expect(&format!(" 366 {nick} #room "));
        readers.push((nick, c));
    }
    let mut guest = Client::connect(server.irc.unwrap());
    guest.line("NICK guest\r\nUSER g 0 * :G\r\nJOIN #room");
    guest.expect(" 366 guest #room ");
    ann.line("PRIVMSG #room :from an account");
    let from_ann: Vec<String> = readers.iter_mut().map(|(_, c)| c.expect("from an account")).collect();
    guest.line("PRIVMSG #room :from a guest");
    for ((nick, c), from_ann) in readers.iter_mut().zip(from_ann) {
        let from_guest = c.expect("from a guest");
        let tagged = *nick != "plain";
        assert_eq!(from_ann.contains("account=ann"), tagged, "{nick}: {from_ann}");
        assert!(!from_guest.contains("account="), "{nick}: {from_guest}");
    }
}

#[test]
fn a_scram_client_written_from_the_rfcs_logs_in_and_checks_the_server() {
    let server = server_with(&[("Scrammy", "correct horse")]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/scram_client.py");
    let port = server.irc.unwrap().port().to_string();
    let run = |account: &str, password: &str, extra: &[&str]| {
        let out = Command::new("python3")
            .args([script, "127.0.0.1", &port, "scrammy", account, password])
            .args(extra)
            .output()
            .expect("python3 runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = run("scrammy", "correct horse", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(" 900 ") && out.contains(" Scrammy :You are now logged in as Scrammy"), "{out}");
    // The client's check of the server's signature can fail.
    let (code, out) = run("scrammy", "correct horse", &["--tamper-signature"]);
    assert_eq!(code, Some(2), "{out}");
    // A wrong password, and an account that does not exist, fail alike at the proof.
    for (account, password) in [("scrammy", "wrong horse"), ("nobody", "correct horse")] {
        let (code, out) = run(account, password, &[]);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains(" 904 "), "{out}");
    }
}

/// Exchanges that are started and aborted cost the server a lookup each and count as no wrong
/// password: a connection may start only so many.
#[test]
fn a_connection_that_keeps_starting_exchanges_is_closed() {
    let server = server_with(&[]);
    let mut c = negotiating(&server);
    for _ in 0..20 {
        c.line("AUTHENTICATE SCRAM-SHA-256");
        c.expect("AUTHENTICATE +");
        c.line("AUTHENTICATE *");
        c.expect(" 906 ");
    }
    c.line("AUTHENTICATE SCRAM-SHA-256");
    c.expect("ERROR :Closing Link");
    assert!(c.closed());
}

/// A message sent to an account while nobody was logged in to it comes to the session that
/// logs in to it with SASL, after the registration burst, with its time.
#[test]
fn a_sasl_login_brings_what_waited_in_the_mailbox() {
    let server = Server::start(&[]);
    let mut bob = common::native(server.tcp, "bob");
    bob.line(r#"{"type":"register","password":"correct horse","id":"r"}"#);
    assert_eq!(common::json(&bob.expect(r#""id":"r""#))["change"], "registered");
    bob.line(r#"{"type":"quit"}"#);
    assert!(bob.closed());
    let mut ann = common::native(server.tcp, "ann");
    ann.line(r#"{"type":"send","to":"bob","text":"while you were out","id":"s"}"#);
    let ack = common::json(&ann.expect(r#""id":"s""#));
    assert_eq!(ack["offline"], true, "{ack}");
    let mut c = negotiating(&server);
    c.line("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +");
    c.line(&format!("AUTHENTICATE {}", plain("", "bob", "correct horse")));
    c.expect(" 903 * :SASL authentication successful");
    c.line("NICK bob\r\nUSER bob 0 * :Bob\r\nCAP END");
    c.expect(" 001 bob ");
    let burst = c.irc_ping();
    let mail: Vec<&String> = burst.iter().filter(|l| l.contains(" PRIVMSG bob :")).collect();
    assert_eq!(mail.len(), 1, "{burst:#?}");
    assert!(mail[0].ends_with(":ann!ann@history PRIVMSG bob :while you were out"), "{}", mail[0]);
}
