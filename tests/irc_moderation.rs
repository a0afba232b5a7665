//! Room moderation across front doors against the real server: an IRC operator moderates a
//! room that native and text users share (MODE, KICK, INVITE, bans, away), and a text-mode
//! operator uses the slash commands.

mod common;

use common::{Client, Server, json, native, text};
use std::net::SocketAddr;

fn irc(addr: SocketAddr, nick: &str) -> Client {
    let mut c = Client::connect(addr);
    c.line(&format!("NICK {nick}"));
    c.line(&format!("USER {nick} 0 * :Real {nick}"));
    c.expect(" 376 ");
    c.expect(" 366 ");
    c
}

#[test]
fn irc_operator_moderates_native_and_text_users() {
    let server = Server::start(&[]);
    let mut op = irc(server.irc.unwrap(), "boss");
    op.line("JOIN #mod");
    op.expect(":natter 353 boss = #mod @boss");
    let mut nat = native(server.tcp, "nat");
    nat.line(r##"{"type":"join","room":"#mod"}"##);
    nat.expect(r#""type":"joined""#);
    let mut txt = text(server.tcp, "txt");
    txt.line("/join #mod");
    txt.expect("you are in #mod");
    op.expect(":txt!text@127.0.0.1 JOIN #mod");

    // +m: only the operator and voiced members speak.
    op.line("MODE #mod +m");
    op.expect(":boss!boss@127.0.0.1 MODE #mod +m");
    let m = json(&nat.expect(r#""type":"mode""#));
    assert_eq!(m["changes"][0]["mode"], "moderated");
    nat.line(r##"{"type":"send","room":"#mod","text":"can I talk?","id":1}"##);
    nat.expect(r#""code":"cannot_send""#);
    op.line("MODE #mod +v nat");
    op.expect("MODE #mod +v nat");
    nat.line(r##"{"type":"send","room":"#mod","text":"now I can","id":2}"##);
    op.expect(":nat!native@127.0.0.1 PRIVMSG #mod :now I can");
    txt.line("muted?");
    txt.expect("is moderated");

    // A non-operator cannot change modes or kick.
    nat.line(r##"{"type":"kick","room":"#mod","nick":"txt","id":3}"##);
    nat.expect(r#""code":"not_operator""#);
    txt.line("/mode +t");
    txt.expect("only an operator of #mod");

    // KICK reaches every front door, the kicked one included.
    op.line("KICK #mod txt :be nice");
    op.expect(":boss!boss@127.0.0.1 KICK #mod txt :be nice");
    let k = json(&nat.expect(r#""type":"kick""#));
    assert_eq!((k["nick"].as_str(), k["reason"].as_str()), (Some("txt"), Some("be nice")));
    txt.expect("txt was kicked by boss (be nice)");

    // A ban keeps them out until an invitation.
    op.line("MODE #mod +b txt");
    op.expect("MODE #mod +b txt!*@*");
    txt.line("/join #mod");
    txt.expect("you are banned from #mod");
    op.line("MODE #mod b");
    op.expect(" 367 boss #mod txt!*@* boss ");
    op.expect(" 368 boss #mod ");
    op.line("INVITE txt #mod");
    op.expect(" 341 boss txt #mod");
    txt.expect("boss invites you to #mod");
    txt.line("/join #mod");
    txt.expect("you are in #mod");

    // Errors name the right numerics.
    op.line("KICK #mod nobody");
    op.expect(" 401 boss nobody ");
    op.line("KICK #nowhere nat");
    op.expect(" 403 boss #nowhere ");
    op.line("MODE #mod +l");
    op.expect(" 696 boss #mod l * ");
    op.line("MODE #mod +X");
    op.expect(" 472 boss X ");
}

#[test]
fn away_is_presence_for_everyone() {
    let server = Server::start(&[]);
    let mut i = irc(server.irc.unwrap(), "irky");
    let mut nat = native(server.tcp, "nat");
    i.expect(":nat!native@127.0.0.1 JOIN #lobby");
    nat.line(r#"{"type":"away","text":"lunch","id":1}"#);
    nat.expect(r#""type":"away","id":1"#);
    i.line("PRIVMSG nat :are you there?");
    i.expect(" 301 irky nat lunch");
    i.line("WHOIS nat");
    i.expect(" 311 irky nat native 127.0.0.1 * :");
    i.expect(" 301 irky nat lunch");
    i.expect(" 318 irky nat ");
    i.line("WHO #lobby");
    i.expect(" 352 irky #lobby native 127.0.0.1 natter nat G ");
    i.line("AWAY :gone");
    i.expect(" 306 irky ");
    let a = json(&nat.expect(r#""type":"away""#));
    assert_eq!((a["nick"].as_str(), a["text"].as_str()), (Some("irky"), Some("gone")));
    i.line("AWAY");
    i.expect(" 305 irky ");
}

#[test]
fn text_mode_operator_uses_slash_commands() {
    let server = Server::start(&[]);
    let mut t = text(server.tcp, "tom");
    t.line("/join #t");
    t.expect("you are in #t");
    let mut nat = native(server.tcp, "nat");
    nat.line(r##"{"type":"join","room":"#t"}"##);
    t.expect("#t --> nat joined");
    t.line("/op nat");
    t.expect("tom sets mode +o nat on #t");
    t.line("/mode +k sesame");
    t.expect("tom sets mode +k sesame on #t");
    t.line("/mode");
    t.expect("#t modes: +nk sesame");
    t.line("/away coffee");
    t.expect("tom is away: coffee");
    t.line("/whois nat");
    t.expect("nat is native@127.0.0.1");
    t.line("/kick nat bye");
    t.expect("nat was kicked by tom (bye)");
    nat.line(r##"{"type":"join","room":"#t","id":5}"##);
    nat.expect(r#""code":"bad_key""#);
    nat.line(r##"{"type":"join","room":"#t","key":"sesame","id":6}"##);
    nat.expect(r#""type":"joined""#);
}

/// A secret room (`+s`) is named with `@` in NAMES, `=` again once it is no longer secret.
#[test]
fn names_marks_a_secret_room_while_it_is_one() {
    let server = Server::start(&[]);
    let mut op = irc(server.irc.unwrap(), "boss");
    op.line("JOIN #hush");
    op.expect(":natter 353 boss = #hush @boss");
    op.line("MODE #hush +s");
    op.expect(":boss!boss@127.0.0.1 MODE #hush +s");
    op.line("NAMES #hush");
    op.expect(":natter 353 boss @ #hush @boss");
    op.line("MODE #hush -s");
    op.expect(":boss!boss@127.0.0.1 MODE #hush -s");
    op.line("NAMES #hush");
    op.expect(":natter 353 boss = #hush @boss");
}
