//! `natter serve --helpdesk`: the tutorials' customer-service and half-duplex clients, which
//! never send a nickname, talk to the operator at the console; everyone else logs in as usual.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// The server in help-desk mode with its console on pipes, and its IRC port.
struct Desk {
    console: ConsoleServer,
    tcp: SocketAddr,
    irc: SocketAddr,
}

impl Desk {
    fn start() -> Desk {
        let mut console = ConsoleServer::start(&["--helpdesk", "--irc", "127.0.0.1:0"]);
        let irc = console.listening("irc");
        // The console is logged in: visitors have someone to talk to.
        console.expect("Hello operator");
        Desk { tcp: console.tcp, irc, console }
    }

    fn expect(&mut self, needle: &str) -> String {
        self.console.expect(needle)
    }

    fn type_line(&mut self, line: &str) {
        self.console.type_line(line)
    }
}

/// A visitor as the tutorials write it: a bare socket.
fn visitor(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// Exactly one read of at most 1024 bytes, as the half-duplex client does.
fn one_read(stream: &mut TcpStream) -> String {
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).expect("a reply within the wait");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// True when the server hung up (end of stream) within the wait.
fn hung_up(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    matches!(stream.read(&mut buf), Ok(0))
}

#[test]
fn the_half_duplex_client_reads_the_answer_to_its_first_question() {
    let mut desk = Desk::start();
    let mut v = visitor(desk.tcp);
    // One send per message, no newline, as the tutorial does.
    v.write_all(b"hello, is anyone there?").unwrap();
    let asked = desk.expect("hello, is anyone there?");
    assert!(asked.contains("*guest-1* hello, is anyone there?"), "{asked}");
    desk.type_line("@guest-1 yes, how can I help?");
    // Its first and only read is the answer: no greeting, no welcome, no notice before it.
    assert_eq!(one_read(&mut v), "yes, how can I help?\n");
    v.write_all(b"exit").unwrap();
    let left = desk.expect("<-- guest-1");
    assert!(left.contains("<-- guest-1 quit (left)"), "{left}");
    assert!(hung_up(&mut v), "exit ends the conversation");
}

#[test]
fn the_customer_service_client_gets_only_its_own_answers() {
    let mut desk = Desk::start();
    let mut a = visitor(desk.tcp);
    let mut a_lines = BufReader::new(a.try_clone().unwrap());
    let b = visitor(desk.tcp);
    let mut b_lines = BufReader::new(b.try_clone().unwrap());
    let next = |r: &mut BufReader<TcpStream>| {
        let mut line = String::new();
        r.read_line(&mut line).expect("a line within the wait");
        line
    };
    (&a).write_all(b"where is my order?\n").unwrap();
    desk.expect("*guest-1* where is my order?");
    (&b).write_all(b"do you ship abroad?\n").unwrap();
    desk.expect("*guest-2* do you ship abroad?");
    // `/r` answers whoever spoke last; `@guest-N` answers a given guest.
    desk.type_line("/r yes, everywhere");
    desk.expect("-> *guest-2* yes, everywhere");
    desk.type_line("@guest-1 it ships today");
    assert_eq!(next(&mut a_lines), "it ships today\n", "guest-1 is not sent guest-2's answer");
    assert_eq!(next(&mut b_lines), "yes, everywhere\n");
    // `/r` follows the conversation.
    (&a).write_all(b"thanks!\n").unwrap();
    desk.expect("*guest-1* thanks!");
    desk.type_line("/r you're welcome");
    assert_eq!(next(&mut a_lines), "you're welcome\n");

    a.write_all(b"quit\n").unwrap();
    desk.expect("<-- guest-1 quit (left)");
    assert!(hung_up(&mut a));
    // Guest-2 hears nothing of guest-1 leaving: its next line is its next answer.
    (&b).write_all(b"how long does it take?\n").unwrap();
    desk.expect("*guest-2* how long does it take?");
    desk.type_line("/r about a week");
    assert_eq!(next(&mut b_lines), "about a week\n");
    // A visitor that just closes its socket is gone too.
    drop(b_lines);
    drop(b);
    desk.expect("<-- guest-2 quit (connection lost)");
    // `/r` to someone gone is refused at the console.
    desk.type_line("/r anyone?");
    desk.expect("!!! guest-2 is not online");
}

#[test]
fn other_clients_log_in_as_usual_and_never_see_guests() {
    let mut desk = Desk::start();
    // Native and IRC clients on the shared port, and IRC on its own port.
    let mut ann = native(desk.tcp, "ann");
    let mut bob = Client::connect(desk.tcp);
    bob.line("NICK bob");
    bob.line("USER bob 0 * :Bob");
    bob.expect(" 001 bob ");
    bob.expect(" JOIN ");
    let mut cat = Client::connect(desk.irc);
    cat.line("NICK cat");
    cat.line("USER cat 0 * :Cat");
    cat.expect(" 001 cat ");
    desk.expect("cat joined");
    // A name a user took is skipped.
    let mut taken = native(desk.tcp, "guest-1");
    desk.expect("guest-1 joined");

    let mut v = visitor(desk.tcp);
    v.write_all(b"is this the help desk?\n").unwrap();
    desk.expect("*guest-2* is this the help desk?");
    ann.line(r##"{"type":"send","room":"#lobby","text":"hello room"}"##);
    desk.expect("<ann> hello room");
    desk.type_line("@guest-2 it is");
    assert_eq!(one_read(&mut v), "it is\n", "no room chatter reaches a guest");
    drop(v);
    desk.expect("guest-2 quit");
    // Room members saw nothing of the guest: not its arrival, words or departure.
    for (who, lines) in
        [("ann", ann.ping()), ("taken", taken.ping()), ("bob", bob.irc_ping()), ("cat", cat.irc_ping())]
    {
        assert!(!lines.iter().any(|l| l.contains("guest-2")), "{who} saw the guest: {lines:#?}");
    }
    ann.line(r##"{"type":"who","room":"#lobby"}"##);
    let members = ann.expect(r#""type":"members""#);
    assert!(!members.contains("guest-2") && members.contains("ann"), "{members}");
}

#[test]
fn bad_input_from_a_guest_is_handled_like_text_mode() {
    let mut desk = Desk::start();
    let mut v = visitor(desk.tcp);
    let mut lines = BufReader::new(v.try_clone().unwrap());
    // Bytes that are no text encoding at all arrive as text, lossily.
    v.write_all(b"caf\xc3 \x80\xc0 still asking\n").unwrap();
    desk.expect("still asking");
    // A 20 KB line is refused (the limit is 16 KB), and the guest can go on.
    let mut long = vec![b'x'; 20 * 1024];
    long.push(b'\n');
    v.write_all(&long).unwrap();
    let mut refusal = String::new();
    lines.read_line(&mut refusal).unwrap();
    assert!(refusal.starts_with("!!! line too long"), "{refusal}");
    // Blank lines and telnet negotiation are no questions.
    v.write_all(b"\n  \r\n\xff\xfb\x01still there?\n").unwrap();
    let asked = desk.expect("*guest-1*");
    assert!(asked.ends_with("*guest-1* still there?"), "{asked}");
    desk.type_line("/r yes");
    let mut answer = String::new();
    lines.read_line(&mut answer).unwrap();
    assert_eq!(answer, "yes\n");
    // A guest that sends nothing but garbage and hangs up costs nothing either.
    let mut w = visitor(desk.tcp);
    w.write_all(&[0xff, 0x00, 0xfe, 0x80, 0xc0]).unwrap();
    drop(w);
    // The server is still up and serving: a new visitor is answered.
    let mut z = visitor(desk.tcp);
    z.write_all(b"ping?").unwrap();
    let asked = desk.expect("ping?");
    let nick = asked.split('*').nth(1).unwrap().to_string();
    desk.type_line(&format!("@{nick} pong"));
    assert_eq!(one_read(&mut z), "pong\n");
    assert!(desk.console.child.try_wait().unwrap().is_none());
}

/// What one side types cannot drive the other's terminal: a visitor's escape sequences reach
/// the operator's console as visible text, and an answer's (from anyone who writes to the
/// guest) reach the visitor so, on one line.
#[test]
fn escape_sequences_are_shown_not_obeyed_both_ways() {
    let mut desk = Desk::start();
    let mut v = visitor(desk.tcp);
    let mut lines = BufReader::new(v.try_clone().unwrap());
    v.write_all(b"\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07help\n").unwrap();
    let asked = desk.expect("*guest-1*");
    assert!(asked.ends_with("*guest-1* ␛[2J␛]52;c;cm0gLXJmIH4=␇help"), "{asked:?}");
    let mut eve = native(desk.tcp, "eve");
    let text = serde_json::to_string("\u{1b}[2Jsure\u{7}\n!!! fake\u{202e}").unwrap();
    eve.line(&format!(r#"{{"type":"send","to":"guest-1","text":{text},"id":1}}"#));
    eve.expect(r#""type":"ack""#);
    let mut answer = String::new();
    lines.read_line(&mut answer).unwrap();
    assert_eq!(answer, "␛[2Jsure␇ ⏎ !!! fake\u{202e}\u{202c}\n");
}

/// A Chinese Windows client writes GBK: its question reaches the operator as text, and the
/// answer comes back in GBK, which is all that client can read.
#[test]
fn a_gbk_visitor_reads_the_answer_in_gbk() {
    let mut desk = Desk::start();
    let mut v = visitor(desk.tcp);
    let (question, _, _) = encoding_rs::GBK.encode("你好，在吗？");
    v.write_all(&question).unwrap();
    desk.expect("*guest-1* 你好，在吗？");
    desk.type_line("@guest-1 在的，请问有什么事？");
    let mut buf = [0u8; 1024];
    let n = v.read(&mut buf).unwrap();
    let (answer, had_errors) = encoding_rs::GBK.decode_without_bom_handling(&buf[..n]);
    assert!(!had_errors, "not GBK: {:?}", &buf[..n]);
    assert_eq!(answer, "在的，请问有什么事？\n");
}
