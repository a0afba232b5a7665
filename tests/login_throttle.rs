//! Password guessing against the real binary: after a few wrong passwords an address (or an
//! operator name) must wait, twice as long after each further one, and every door says so
//! clearly. (The waits themselves, on paused time, are tested in natter-core's hub tests.)
//! Before, one connection could try 105,000 `hello` passwords, and 88,000 `OPER` passwords, a
//! second.

mod common;
use common::*;

/// Mistakes that cost nothing (`throttle::Policy::default().free`): a person retries at once.
const FREE: usize = 3;

#[test]
fn native_hello_guesses_are_held_back_after_a_few() {
    let server = Server::start(&["--password", "sesame"]);
    let mut guesser = Client::connect(server.tcp);
    for i in 0..=FREE {
        guesser.line(&format!(r#"{{"type":"hello","nick":"ann","password":"guess{i}","id":{i}}}"#));
        let e = json(&guesser.expect(r#""type":"error""#));
        assert_eq!((e["id"].as_u64(), e["code"].as_str()), (Some(i as u64), Some("bad_password")));
    }
    // The right password now waits too: it is not even checked, so a guess tells nothing.
    guesser.line(r#"{"type":"hello","nick":"ann","password":"sesame","id":"late"}"#);
    let e = json(&guesser.expect(r#""type":"error""#));
    assert_eq!(e["code"], "too_many_attempts", "{e}");
    assert_eq!(e["id"], "late");
    assert_eq!(e["message"], "too many wrong passwords from your address; try again in 1 s");
    // A login without any password guessed nothing: refused as before, not held back.
    let mut plain = Client::connect(server.tcp);
    plain.line(r#"{"type":"hello","nick":"bob"}"#);
    assert_eq!(json(&plain.expect(r#""type":"error""#))["code"], "bad_password");
}

#[test]
fn irc_pass_guesses_are_held_back_after_a_few() {
    let server = Server::start(&["--password", "sesame"]);
    let addr = server.irc.expect("irc port");
    let register = |password: &str| {
        let mut c = Client::connect(addr);
        c.line(&format!("PASS {password}"));
        c.line("NICK ann");
        c.line("USER ann 0 * :Ann");
        c
    };
    for _ in 0..=FREE {
        let mut wrong = register("guess");
        wrong.expect(" 464 * :Password incorrect");
        assert!(wrong.expect("ERROR ").contains("Bad password"));
        assert!(wrong.closed());
    }
    let mut right = register("sesame");
    let tryagain = right.expect(" 263 ");
    assert_eq!(
        tryagain, ":natter 263 * PASS :too many wrong passwords from your address; try again in 1 s",
        "RPL_TRYAGAIN naming the command held back"
    );
    let bye = right.expect("ERROR ");
    assert!(bye.contains("too many wrong passwords"), "{bye}");
    assert!(right.closed());
}

#[test]
fn irc_oper_guesses_are_held_back_after_a_few() {
    let server = Server::start(&["--oper", "boss:secret"]);
    let addr = server.irc.expect("irc port");
    let mut c = Client::connect(addr);
    c.line("NICK op");
    c.line("USER op 0 * :Op");
    c.expect(" 376 ");
    for _ in 0..=FREE {
        c.line("OPER boss guess");
        c.expect(" 464 op :Password incorrect");
    }
    c.line("OPER boss secret");
    let tryagain = c.expect(" 263 ");
    assert!(
        tryagain.ends_with(" 263 op OPER :too many wrong passwords for this operator; try again in 1 s"),
        "{tryagain}"
    );
    // Still registered, still not an operator.
    c.line("WALLOPS :now?");
    c.expect(" 481 op ");
}
