//! Big rooms as each door shows them: a room of more than 1,000 members lists its first
//! members on joining with how many it has, and `who`/`NAMES`/`WHO` answer a page of at most
//! 1,000 nicks, saying how many there are, rather than the whole room or server. The real
//! server in process, clients over real sockets.

mod harness;

use harness::{Client, TestServer, json};
use serde_json::Value;

/// Members beyond the largest `who` page, so that every list is partial.
const CROWD: usize = 1001;

/// Fills `#lobby` with `CROWD` native clients `u0000`, `u0001`, ...: the connections are
/// kept open (members stay as long as they do).
async fn crowd(server: &TestServer) -> Vec<Client> {
    let mut clients = Vec::with_capacity(CROWD);
    for i in 0..CROWD {
        clients.push(Client::native(server.tcp, &format!("u{i:04}")).await);
    }
    clients
}

/// The nicks of a native frame's list `field`.
fn names(frame: &Value, field: &str) -> Vec<String> {
    let list = frame[field].as_array().unwrap_or_else(|| panic!("no {field}: {frame}"));
    list.iter().map(|n| n.as_str().expect("a nick").to_string()).collect()
}

/// Sends a native request and returns the answer carrying its `id`.
async fn ask(client: &mut Client, request: &str, id: u32) -> Value {
    client.line(request).await;
    json(&client.expect(&format!(r#""id":{id}"#)).await)
}

#[tokio::test]
async fn native_joined_lists_a_first_page_with_the_count_and_who_pages_through_the_rest() {
    let server = TestServer::start().await;
    let _crowd = crowd(&server).await;
    let total = CROWD as u64 + 1;
    let mut aaa = Client::connect(server.tcp).await;
    aaa.line(r#"{"type":"hello","nick":"aaa"}"#).await;
    let joined = json(&aaa.expect(r#""type":"joined""#).await);
    let members = names(&joined, "members");
    assert_eq!(members.len(), 500, "the presence limit's worth");
    assert_eq!((members[0].as_str(), members[1].as_str(), members[499].as_str()), ("aaa", "u0000", "u0498"));
    assert_eq!(joined["count"], total, "{joined}");

    let first = ask(&mut aaa, r##"{"type":"who","room":"#lobby","id":1}"##, 1).await;
    let nicks = names(&first, "nicks");
    assert_eq!((nicks.len(), nicks.last().map(String::as_str)), (1000, Some("u0998")));
    assert_eq!((&first["more"], &first["count"]), (&Value::from(true), &Value::from(total)));
    let rest = ask(&mut aaa, r##"{"type":"who","room":"#lobby","after":"U0998","id":2}"##, 2).await;
    assert_eq!(names(&rest, "nicks"), ["u0999", "u1000"]);
    assert_eq!((rest.get("more"), &rest["count"]), (None, &Value::from(total)), "the last page: {rest}");
    let server_page =
        ask(&mut aaa, r#"{"type":"who","after":"u0500","limit":3,"detail":true,"id":3}"#, 3).await;
    assert_eq!(names(&server_page, "nicks"), ["u0501", "u0502", "u0503"]);
    assert_eq!(server_page["users"].as_array().map(Vec::len), Some(3), "{server_page}");
    assert_eq!((&server_page["more"], &server_page["count"]), (&Value::from(true), &Value::from(total)));

    // A small room is answered whole, and says nothing more than before.
    let small = ask(&mut aaa, r##"{"type":"join","room":"#small","id":4}"##, 4).await;
    assert_eq!((names(&small, "members"), small.get("count")), (vec!["aaa".to_string()], None));
    let small = ask(&mut aaa, r##"{"type":"who","room":"#small","id":5}"##, 5).await;
    assert_eq!((small.get("more"), small.get("count")), (None, None), "{small}");

    // A limit that is not a count is refused, with the id.
    for (id, bad) in [(6, r#""ten""#), (7, "-1"), (8, "4294967296")] {
        let answer = ask(&mut aaa, &format!(r#"{{"type":"who","limit":{bad},"id":{id}}}"#), id).await;
        assert_eq!(answer["code"], "bad_frame", "{answer}");
    }
    server.shutdown("done").await;
}

#[tokio::test]
async fn text_mode_says_how_many_are_in_a_big_room_and_how_many_it_left_out() {
    let server = TestServer::start().await;
    let _crowd = crowd(&server).await;
    let mut aaa = Client::connect(server.tcp).await;
    aaa.line("aaa").await;
    let here = aaa.expect("*** you are in #lobby").await;
    assert!(here.contains("*** you are in #lobby (1002 here: aaa, u0000, u0001, "), "{here}");
    assert!(here.ends_with(", u0498 and 502 more; /who #lobby lists more)"), "{here}");
    aaa.line("/who").await;
    let who = aaa.expect("*** #lobby (1002): ").await;
    assert!(who.ends_with(", u0998 and more (/who #lobby u0998 lists the next)"), "{who}");
    aaa.line("/ls").await;
    let ls = aaa.expect("*** online (1002): ").await;
    assert!(ls.ends_with(", u0998 and more (/who * u0998 lists the next)"), "{ls}");
    // The next page, as the line said, is the last of the list.
    aaa.line("/who #lobby u0998").await;
    let next = aaa.expect("*** #lobby (1002): ").await;
    assert!(next.ends_with("(1002): u0999, u1000"), "{next}");
    aaa.line("/ls U0999").await;
    let next = aaa.expect("*** online (1002): ").await;
    assert!(next.ends_with("(1002): u1000"), "a nick in any case marks the place: {next}");
    server.shutdown("done").await;
}

/// A client's lines up to and including the first that contains `needle`.
async fn irc_until(client: &mut Client, needle: &str) -> Vec<String> {
    let (mut seen, last) = client.until(needle).await;
    seen.push(last);
    seen
}

/// The nicks of every `353` line among `lines`, checking each line is one IRC line.
fn names_of_353(lines: &[String]) -> Vec<String> {
    let mut nicks = Vec::new();
    for line in lines.iter().filter(|l| l.split(' ').nth(1) == Some("353")) {
        assert!(line.len() + 2 <= 512, "a 353 line longer than IRC allows: {} bytes", line.len() + 2);
        let list = line.split_once(" :").expect("a trailing list").1;
        nicks.extend(list.split(' ').map(|n| n.trim_start_matches(['@', '+']).to_string()));
    }
    nicks
}

#[tokio::test]
async fn irc_names_and_who_answer_a_first_page_and_a_notice_in_a_big_room() {
    let server = TestServer::start().await;
    let _crowd = crowd(&server).await;
    let mut aaa = Client::connect(server.irc).await;
    aaa.send(b"NICK aaa\r\nUSER aaa 0 * :A\r\n").await;
    // On joining: the names of the first 500, a well-formed end, then how many there are.
    let join = irc_until(&mut aaa, " 366 aaa #lobby ").await;
    let listed = names_of_353(&join);
    assert_eq!((listed.len(), listed[0].as_str(), listed[499].as_str()), (500, "aaa", "u0498"));
    let notice = aaa.next().await.expect("a notice");
    assert_eq!(
        notice,
        ":natter NOTICE aaa :#lobby has 1002 members; the first 500 by nick are listed \
         (WHO with a mask, such as WHO a*, finds the others)"
    );

    aaa.send(b"NAMES #lobby\r\n").await;
    let names = irc_until(&mut aaa, " 366 aaa #lobby ").await;
    let listed = names_of_353(&names);
    assert_eq!((listed.len(), listed[999].as_str()), (1000, "u0998"));
    let notice = aaa.next().await.expect("a notice");
    assert!(notice.contains("#lobby has 1002 members; the first 1000 by nick are listed"), "{notice}");

    for (ask, end, says) in [
        ("WHO #lobby", " 315 aaa #lobby ", "#lobby has 1002 members; the first 1000"),
        ("WHO *", " 315 aaa * ", "1002 users are online; the first 1000"),
        ("WHO u*", " 315 aaa u* ", "1001 users match u*; the first 1000"),
    ] {
        aaa.send(format!("{ask}\r\n").as_bytes()).await;
        let who = irc_until(&mut aaa, end).await;
        let replies = who.iter().filter(|l| l.split(' ').nth(1) == Some("352")).count();
        assert_eq!(replies, 1000, "{ask}");
        let notice = aaa.next().await.expect("a notice");
        assert!(notice.contains(says), "{ask}: {notice}");
    }
    // A list that fits is answered whole, without a notice.
    aaa.send(b"WHO u1*\r\nPING done\r\n").await;
    let who = irc_until(&mut aaa, "PONG").await;
    assert_eq!(who.iter().filter(|l| l.split(' ').nth(1) == Some("352")).count(), 1, "{who:#?}");
    assert!(!who.iter().any(|l| l.contains("NOTICE")), "{who:#?}");
    server.shutdown("done").await;
}
