//! GBK peers read GBK (issue 10, section 4): a text-mode, UDP or `natter direct --plain` peer
//! that sends GBK gets GB18030 back from then on; UTF-8 switches back; `/encoding` and
//! `--encoding` set it by hand. Every test peer here decodes what it reads strictly, as a
//! Windows peer would, and fails on a single bad byte.

mod common;

use common::{Client, Server, Udp, WAIT, native};
use std::time::Instant;

/// `text` in GBK, as a Windows peer sends it.
fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable, "{text} is not GBK");
    bytes.into_owned()
}

/// Decodes strictly as GBK: any byte sequence that is not GBK fails the test.
fn strict_gbk(bytes: &[u8]) -> String {
    let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(bytes);
    assert!(!had_errors, "not GBK: {bytes:?} (as UTF-8: {})", String::from_utf8_lossy(bytes));
    text.into_owned()
}

/// Decodes strictly as UTF-8.
fn strict_utf8(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap_or_else(|_| panic!("not UTF-8: {bytes:?}"))
}

/// Reads lines, each decoded with `decode` (which fails on a bad byte), until one contains
/// `needle`.
fn expect_in(c: &mut Client, needle: &str, decode: fn(&[u8]) -> String) -> String {
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match c.next_raw() {
            Some(raw) => {
                let line = decode(&raw);
                if line.contains(needle) {
                    return line;
                }
                seen.push(line);
            }
            None => break,
        }
    }
    panic!("expected a line containing {needle:?}; saw {seen:#?}");
}

fn expect_gbk(c: &mut Client, needle: &str) -> String {
    expect_in(c, needle, strict_gbk)
}

fn expect_utf8(c: &mut Client, needle: &str) -> String {
    expect_in(c, needle, strict_utf8)
}

/// Like [`expect_in`] for datagrams.
fn expect_datagram(u: &Udp, needle: &str, decode: fn(&[u8]) -> String) -> String {
    let mut seen = Vec::new();
    while let Some(raw) = u.recv_raw() {
        let d = decode(&raw);
        if d.contains(needle) {
            return d;
        }
        seen.push(d);
    }
    panic!("expected a datagram containing {needle:?}; saw {seen:#?}");
}

fn say(native: &mut Client, text: &str) {
    native.line(&format!(r##"{{"type":"send","room":"#lobby","text":"{text}"}}"##));
}

#[test]
fn a_text_user_with_a_gbk_nick_reads_gbk_and_utf8_users_do_not() {
    let server = Server::start(&[]);
    let mut ann = native(server.tcp, "ann");
    // A UTF-8 text user in the same room: shares the render cache with nobody GBK.
    let mut una = common::text(server.tcp, "una");
    let mut wang = Client::connect(server.tcp);
    wang.send(&gbk("王小明\r\n"));
    expect_gbk(&mut wang, "Hello 王小明!");
    expect_gbk(&mut wang, "you are in #lobby");
    // Room traffic from a native (UTF-8) user: GBK for wang, UTF-8 for una, both every time.
    for round in 0..3 {
        say(&mut ann, &format!("你好, ann {round}"));
        assert!(expect_gbk(&mut wang, &format!("你好, ann {round}")).contains("#lobby <ann> 你好, ann"));
        assert!(expect_utf8(&mut una, &format!("你好, ann {round}")).contains("#lobby <ann> 你好, ann"));
    }
    // The room's answers too.
    wang.send(&gbk("/who\r\n"));
    let who = expect_gbk(&mut wang, "*** #lobby (3)");
    assert!(who.contains("王小明") && who.contains("ann"), "{who}");
    wang.send(&gbk("/topic 欢迎光临\r\n"));
    expect_gbk(&mut wang, "set the topic of #lobby: 欢迎光临");
    expect_utf8(&mut una, "set the topic of #lobby: 欢迎光临");
    // What wang types reaches UTF-8 users as UTF-8.
    wang.send(&gbk("大家好\r\n"));
    ann.expect("大家好");
    expect_utf8(&mut una, "<王小明> 大家好");
    // A private answer.
    ann.line(r#"{"type":"send","to":"王小明","text":"私聊 ok"}"#);
    expect_gbk(&mut wang, "*ann* 私聊 ok");
}

#[test]
fn a_text_user_switches_back_to_utf8_by_typing_it_or_by_command() {
    let server = Server::start(&[]);
    let mut ann = native(server.tcp, "ann");
    let mut t = common::text(server.tcp, "tina");
    // ASCII changes nothing: still UTF-8.
    t.line("plain ascii");
    ann.expect("plain ascii");
    say(&mut ann, "你好, ann");
    expect_utf8(&mut t, "<ann> 你好, ann");
    // A GBK line: GBK from then on.
    t.send(&gbk("我在这里\r\n"));
    ann.expect("我在这里");
    say(&mut ann, "你好, tina");
    expect_gbk(&mut t, "<ann> 你好, tina");
    // ASCII keeps it.
    t.line("/who");
    expect_gbk(&mut t, "*** #lobby (2)");
    // UTF-8 typed: UTF-8 again (auto).
    t.line("é 我用 UTF-8");
    ann.expect("é 我用 UTF-8");
    say(&mut ann, "再见");
    expect_utf8(&mut t, "<ann> 再见");
    // By hand: gbk, then utf-8; the answer already comes in the new encoding.
    t.line("/encoding gbk");
    expect_gbk(&mut t, "*** encoding is now GBK (GB18030)");
    say(&mut ann, "强制 GBK");
    expect_gbk(&mut t, "<ann> 强制 GBK");
    // Forced: UTF-8 input does not switch back.
    t.line("é still gbk");
    ann.expect("é still gbk");
    say(&mut ann, "还是 GBK");
    expect_gbk(&mut t, "<ann> 还是 GBK");
    t.send(&gbk("/encoding utf-8\r\n"));
    expect_utf8(&mut t, "*** encoding is now UTF-8");
    // Forced UTF-8: GBK input is still decoded, but answers stay UTF-8.
    t.send(&gbk("中文输入\r\n"));
    ann.expect("中文输入");
    say(&mut ann, "仍然 UTF-8");
    expect_utf8(&mut t, "<ann> 仍然 UTF-8");
    t.line("/encoding");
    expect_utf8(&mut t, "*** encoding is now UTF-8, whatever you send");
    t.line("/encoding auto");
    expect_utf8(&mut t, "*** encoding is now auto, currently UTF-8");
    t.send(&gbk("又是 GBK\r\n"));
    ann.expect("又是 GBK");
    say(&mut ann, "自动");
    expect_gbk(&mut t, "<ann> 自动");
}

#[test]
fn an_ascii_user_can_force_gbk_and_bad_words_are_refused() {
    let server = Server::start(&[]);
    let mut ann = native(server.tcp, "ann");
    let mut t = common::text(server.tcp, "asc");
    t.line("/encoding bogus");
    assert_eq!(expect_utf8(&mut t, "!!!"), "!!! usage: /encoding gbk|utf-8|auto");
    t.line("/encoding");
    expect_utf8(&mut t, "*** encoding is now auto, currently UTF-8");
    t.line("/help encoding");
    expect_utf8(&mut t, "/encoding [gbk|utf-8|auto]");
    t.line("/encoding GBK");
    expect_gbk(&mut t, "*** encoding is now GBK (GB18030), whatever you send");
    say(&mut ann, "你好, ann");
    expect_gbk(&mut t, "<ann> 你好, ann");
    // A refusal in GBK mode is GBK too, and the setting survives it.
    t.line("/encoding latin-1");
    expect_gbk(&mut t, "!!! usage: /encoding gbk|utf-8|auto");
    say(&mut ann, "还在");
    expect_gbk(&mut t, "<ann> 还在");
}

#[test]
fn bytes_that_are_neither_utf8_nor_gbk_change_nothing() {
    let server = Server::start(&[]);
    let mut ann = native(server.tcp, "ann");
    // Not UTF-8 and not GB18030 either (0x81 needs a trail byte of 0x30 or more; 0xC4 at the
    // end has none). No 0xFF: text mode strips it as telnet negotiation.
    let junk: &[u8] = b"\x81 junk \xc4\r\n";
    let mut g = Client::connect(server.tcp);
    g.send(&gbk("小刚\r\n"));
    expect_gbk(&mut g, "Hello 小刚");
    let mut u = common::text(server.tcp, "uta");
    for _ in 0..3 {
        g.send(junk);
        u.send(junk);
    }
    ann.expect(" junk ");
    say(&mut ann, "你好, ann");
    expect_gbk(&mut g, "<ann> 你好, ann");
    expect_utf8(&mut u, "<ann> 你好, ann");
    // Junk as the very first line (the nickname) is refused, never a crash; the session
    // keeps UTF-8.
    let mut j = Client::connect(server.tcp);
    j.send(junk);
    expect_utf8(&mut j, "!!!");
    j.line("jay");
    expect_utf8(&mut j, "Hello jay");
    say(&mut ann, "still up");
    expect_utf8(&mut j, "<ann> still up");
}

#[test]
fn udp_text_members_that_send_gbk_get_gbk_datagrams() {
    let server = Server::start(&[]);
    let mut ann = native(server.tcp, "ann");
    let u = Udp::new(server.udp.unwrap());
    u.send(&gbk("大家好"));
    ann.expect("大家好");
    say(&mut ann, "你好, ann");
    let d = expect_datagram(&u, "你好, ann", strict_gbk);
    assert!(d.contains("#lobby <ann> 你好, ann"), "{d}");
    // Long room text: split into several datagrams, each GBK on its own (no character cut).
    let long = "长".repeat(600);
    say(&mut ann, &long);
    let mut got = String::new();
    while got.matches('长').count() < 600 {
        let raw = u.recv_raw().expect("the long message arrives");
        assert!(raw.len() <= 1200, "{} bytes", raw.len());
        got.push_str(&strict_gbk(&raw));
    }
    // `/encoding` works for UDP members too.
    u.send(b"/encoding utf-8");
    expect_datagram(&u, "encoding is now UTF-8", strict_utf8);
    say(&mut ann, "回到 UTF-8");
    expect_datagram(&u, "<ann> 回到 UTF-8", strict_utf8);
    u.send(b"/encoding nope");
    expect_datagram(&u, "usage: /encoding gbk|utf-8|auto", strict_utf8);
    // Junk is no GBK and no UTF-8: nothing changes, nothing breaks.
    u.send(b"/encoding auto");
    expect_datagram(&u, "encoding is now auto", strict_utf8);
    u.send(b"\x81 junk \xc4");
    ann.expect(" junk");
    say(&mut ann, "没变");
    expect_datagram(&u, "<ann> 没变", strict_utf8);
}

#[test]
fn tutorial_udp_members_that_send_gbk_get_gbk_datagrams() {
    let server = Server::start(&["--udp-format", "tutorial"]);
    let mut ann = native(server.tcp, "ann");
    let u = Udp::new(server.udp.unwrap());
    u.send(&gbk("/nick 小红"));
    u.send(&gbk("大家好"));
    assert!(ann.expect("大家好").contains("小红"));
    say(&mut ann, "你好, ann");
    assert_eq!(expect_datagram(&u, "你好, ann", strict_gbk), "ann____你好, ann");
    // Text-mode answers come as `natter____...` datagrams, in GBK.
    u.send(b"/who");
    let who = expect_datagram(&u, "#lobby (2)", strict_gbk);
    assert!(who.starts_with("natter____") && who.contains("小红"), "{who}");
    // Long text: every datagram at most 1024 bytes, each GBK and shaped WHO____TEXT.
    let long = "长".repeat(600);
    say(&mut ann, &long);
    let mut got = String::new();
    while got.len() < long.len() {
        let raw = u.recv_raw().expect("the long message arrives");
        assert!(raw.len() <= 1024, "{} bytes", raw.len());
        let d = strict_gbk(&raw);
        got.push_str(d.strip_prefix("ann____").unwrap_or_else(|| panic!("{d}")));
    }
    assert_eq!(got, long);
    // Leaving is three parts, in GBK.
    let bo = native(server.tcp, "波波");
    drop(bo);
    assert_eq!(expect_datagram(&u, "went offline", strict_gbk), "波波____went offline____");
    u.send(b"/encoding utf-8");
    assert_eq!(
        expect_datagram(&u, "encoding is now", strict_utf8),
        "natter____encoding is now UTF-8, whatever you send (/encoding auto follows your input)"
    );
}
