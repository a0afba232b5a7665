//! Screen tests: the state is fed connection events and keys, drawn into ratatui's
//! `TestBackend`, and the screen is compared row by row with what a user should see (tabs,
//! topic, messages with their `HH:MM`, member list, status bar, input line). They run in
//! process, with no terminal and no server; the tmux tests at the workspace root remain the
//! end-to-end check.
//!
//! Times are shown in the local zone, so the expected `HH:MM` comes from the same
//! [`hhmm`] the view uses, and lines made locally (info, errors) get a fixed timestamp before
//! drawing: the screens are the same in every zone and at every hour.

use super::layout::LineKind;
use super::state::App;
use super::testing::*;
use super::view;
use crate::conn::{Event, Status, Target};
use crate::format::hhmm;
use natter_proto::native::{MessageFrame, ServerFrame};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::borrow::Cow;
use std::time::Duration;

const W: u16 = 60;
const H: u16 = 12;

/// Timestamps of the messages: 2024-03-09 12:34:56 UTC, then a minute apart per step.
const T0: u64 = 1_709_987_696_000;

fn at(step: u64) -> u64 {
    T0 + step * 60_000
}

/// Draws `app` on a `W`×`H` screen and returns its rows, trailing blanks removed.
fn screen(app: &App) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(W, H)).expect("test backend");
    terminal.draw(|f| view::draw(f, app)).expect("draw");
    let buf = terminal.backend().buffer();
    (0..H)
        .map(|y| {
            let row: String = (0..W).map(|x| buf[(x, y)].symbol()).collect();
            row.trim_end().to_string()
        })
        .collect()
}

/// Gives the lines made locally (info, errors, pending) the timestamp `ts`: they are stamped
/// with the clock when they are made.
fn pin_local_lines(app: &mut App, ts: u64) {
    for b in &mut app.buffers {
        for l in &mut b.lines {
            if !matches!(l.kind, LineKind::Msg { .. }) {
                l.ts = ts;
            }
        }
    }
}

fn message(room: Option<&str>, from: &str, to: Option<&str>, text: &str, mid: Option<u64>, ts: u64) -> Event {
    heard(MessageFrame { ts, ..msg(room, from, to, text, mid) })
}

fn welcome() -> Event {
    Event::Status(Status::Connected {
        addr: "h:1".into(),
        server: "natter 0.1".into(),
        nick: "ann".into(),
        reconnected: false,
        moved_from: None,
    })
}

fn joined_with_topic(room: &str, topic: &str, members: &[&str]) -> Event {
    Event::Frame(ServerFrame::Joined {
        id: None,
        room: Cow::Owned(room.into()),
        topic: Cow::Owned(topic.into()),
        members: members.iter().map(|m| Cow::Owned(m.to_string())).collect(),
        count: None,
        ephemeral: false,
        operators: vec![],
        voiced: vec![],
        history: vec![],
    })
}

/// Ann in #lobby with bob and cy: a few messages, her own one acknowledged, a private
/// message from cy, a measured lag, and a half-typed line.
fn lobby_app() -> App {
    let mut app = App::new("h:1", "ann", "#lobby");
    app.size = (W, H);
    app.on_event(welcome());
    app.on_event(joined_with_topic("#lobby", "tea", &["bob", "ann", "cy"]));
    app.on_event(message(Some("#lobby"), "bob", None, "morning all", Some(1), at(0)));
    app.on_event(message(Some("#lobby"), "cy", None, "hi ann", Some(2), at(1)));
    app.queued(&Target::Room("#lobby".into()), "hello", false, "c1".into());
    app.on_event(Event::Message {
        msg: MessageFrame { ts: at(2), ..msg(Some("#lobby"), "ann", None, "hello", Some(3)) },
        own: true,
        history: false,
    });
    app.on_event(message(None, "cy", Some("ann"), "psst", None, at(3)));
    app.on_event(Event::Lag(Duration::from_millis(42)));
    for c in "draft".chars() {
        app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    pin_local_lines(&mut app, at(0));
    app
}

#[test]
fn a_room_shows_tabs_topic_messages_members_status_and_input() {
    let app = lobby_app();
    let (t0, t1, t2) = (hhmm(at(0)), hhmm(at(1)), hhmm(at(2)));
    let expected = [
        " 1:#lobby  2:cy(1)!".to_string(),
        "#lobby: tea".to_string(),
        format!("{:<42}│ members (3)", ""),
        format!("{:<42}│ ann", ""),
        format!("{:<42}│ bob", ""),
        format!("{t0} -- you joined #lobby (3 member(s):  │ cy"),
        format!("{:<42}│", "         bob ann cy); topic: tea"),
        format!("{:<42}│", format!("{t0} <bob> morning all")),
        format!("{:<42}│", format!("{t1} <cy> hi ann")),
        format!("{:<42}│", format!("{t2} <ann> hello")),
        " h:1 │ ann │ connected │ lag 42 ms".to_string(),
        "[#lobby] draft".to_string(),
    ];
    assert_eq!(screen(&app), expected);
}

/// Someone else's escape sequences, bell and line break show as visible text in their one
/// message line; a name from a server that does not keep natter's name rules cannot turn the
/// tab bar around (its right-to-left override is closed right after it, and not drawn).
#[test]
fn hostile_text_and_names_are_shown_not_obeyed() {
    let mut app = lobby_app();
    app.on_event(message(Some("#lobby"), "bob", None, "\u{1b}[2J\u{7}x\n*** fake", Some(4), at(4)));
    app.on_event(message(None, "e\u{202e}ve", Some("ann"), "hi", None, at(4)));
    let rows = screen(&app);
    assert_eq!(rows[9], format!("{:<42}│", format!("{} <bob> ␛[2J␇x ⏎ *** fake", hhmm(at(4)))));
    assert!(rows.iter().all(|r| !r.starts_with("***") && !r.chars().any(char::is_control)), "{rows:#?}");
    assert!(rows[0].ends_with("  3:eve(1)!"), "{:?}", rows[0]);
}

#[test]
fn a_private_conversation_has_no_member_list() {
    let mut app = lobby_app();
    app.on_key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::CONTROL));
    let t3 = hhmm(at(3));
    let mut expected =
        vec![" 1:#lobby  2:cy".to_string(), "private conversation with cy (/close to close it)".to_string()];
    expected.extend(std::iter::repeat_n(String::new(), 7));
    expected.push(format!("{t3} <cy> psst"));
    expected.push(" h:1 │ ann │ connected │ lag 42 ms".to_string());
    expected.push("[cy] draft".to_string());
    assert_eq!(screen(&app), expected);
}

#[test]
fn the_status_bar_follows_the_connection() {
    let mut app = lobby_app();
    app.on_event(Event::Status(Status::Reconnecting {
        next: "h:2".into(),
        attempt: 1,
        delay: Duration::from_millis(500),
        reason: "lost".into(),
    }));
    pin_local_lines(&mut app, at(4));
    let rows = screen(&app);
    let t4 = hhmm(at(4));
    assert_eq!(rows[7], format!("{:<42}│", format!("{t4} -- disconnected (lost);")));
    assert_eq!(rows[8], format!("{:<42}│", "         reconnecting to h:2 in 0.5 s"));
    assert_eq!(rows[9], format!("{:<42}│", "         (attempt 1)"));
    assert_eq!(rows[10], " h:1 │ ann │ reconnecting (attempt 1) │ lag -");

    // Another node of the cluster took over: the status line names it.
    app.on_event(Event::Status(Status::Connected {
        addr: "h:2".into(),
        server: "natter 0.1".into(),
        nick: "ann".into(),
        reconnected: true,
        moved_from: Some("h:1".into()),
    }));
    pin_local_lines(&mut app, at(5));
    let rows = screen(&app);
    assert_eq!(rows[8], format!("{:<42}│", format!("{} -- connected to h:2 as ann (moved", hhmm(at(5)))));
    assert_eq!(rows[9], format!("{:<42}│", "         from h:1)"));
    assert_eq!(rows[10], " h:2 │ ann │ connected │ lag -");

    app.on_event(Event::Status(Status::Closed { reason: "quit".into() }));
    pin_local_lines(&mut app, at(5));
    let rows = screen(&app);
    assert_eq!(rows[9], format!("{:<42}│", format!("{} -- session closed: quit", hhmm(at(5)))));
    assert_eq!(rows[10], " h:2 │ ann │ closed │ lag -");
}

#[test]
fn long_messages_wrap_under_their_text_and_paging_up_shows_them() {
    let mut app = lobby_app();
    app.on_event(message(
        Some("#lobby"),
        "bob",
        None,
        "one two three four five six seven eight",
        Some(4),
        at(4),
    ));
    let t4 = hhmm(at(4));
    let rows = screen(&app);
    assert_eq!(rows[8], format!("{:<42}│", format!("{t4} <bob> one two three four five six ")));
    assert_eq!(rows[9], format!("{:<42}│", "            seven eight"));

    for n in 0..10 {
        app.on_event(message(Some("#lobby"), "cy", None, &format!("n{n}"), Some(10 + n), at(5)));
    }
    // A page is 8 rows; PageUp scrolls 7, which brings the long message back into view.
    assert!(app.on_key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE)).is_empty());
    let rows = screen(&app);
    let t5 = hhmm(at(5));
    assert_eq!(rows[2], format!("{:<42}│ members (3)", format!("{} <bob> morning all", hhmm(at(0)))));
    assert_eq!(rows[5], format!("{:<42}│ cy", format!("{t4} <bob> one two three four five six ")));
    assert_eq!(rows[6], format!("{:<42}│", "            seven eight"));
    assert_eq!(rows[7], format!("{:<42}│", format!("{t5} <cy> n0")));
    assert_eq!(rows[10], " h:1 │ ann │ connected │ lag 42 ms │ scrolled up 7");
}

/// `@nobody hi` typed in #lobby: the server refuses it (nobody is online under that name).
/// The refusal shows in #lobby, where the user typed and looks, in words; no tab is left for
/// a nick that is not there.
#[test]
fn a_private_message_to_someone_not_online_is_refused_where_it_was_typed() {
    let mut app = lobby_app();
    app.on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    for action in type_line(&mut app, "@nobody hi") {
        let super::state::Action::Send { target, text, action } = action else { panic!("{action:?}") };
        assert_eq!(target, Target::Nick("nobody".into()));
        app.queued(&target, &text, action, "c9".into());
    }
    app.on_event(Event::SendFailed {
        cid: "c9".into(),
        code: natter_proto::native::ErrorCode::NoSuchNick,
        message: "nobody is not online; /ls lists who is".into(),
    });
    pin_local_lines(&mut app, at(4));
    let rows = screen(&app);
    let t4 = hhmm(at(4));
    assert_eq!(rows[0], " 1:#lobby  2:cy(1)!", "no tab for nobody");
    assert_eq!(rows[7], format!("{:<42}│", format!("{} <ann> hello", hhmm(at(2)))));
    assert_eq!(rows[8], format!("{:<42}│", format!("{t4} !! not sent to nobody: hi (nobody")));
    assert_eq!(rows[9], format!("{:<42}│", "         is not online; /ls lists who is)"));
    assert_eq!(rows[11], "[#lobby]");
}

/// A private conversation that already holds messages stays open when one of its messages is
/// refused (the person went offline); the refusal shows there and where the user looks.
#[test]
fn a_refused_message_to_a_known_conversation_keeps_it() {
    let mut app = lobby_app();
    app.queued(&Target::Nick("cy".into()), "still there?", false, "c9".into());
    app.on_event(Event::SendFailed {
        cid: "c9".into(),
        code: natter_proto::native::ErrorCode::NoSuchNick,
        message: "cy is not online; /ls lists who is".into(),
    });
    assert_eq!(app.buffers.len(), 2);
    assert_eq!(app.current().name, "#lobby");
    let last = |b: &super::state::Buffer| b.lines.last().map(|l| l.kind.clone());
    assert_eq!(
        last(&app.buffers[0]),
        Some(LineKind::Error("not sent to cy: still there? (cy is not online; /ls lists who is)".into()))
    );
    assert_eq!(
        last(&app.buffers[1]),
        Some(LineKind::Error(
            "not sent: still there? (no_such_nick: cy is not online; /ls lists who is)".into()
        ))
    );
}

/// Operators show as `@nick` and voiced members as `+nick`, from `joined` and then from
/// `mode` changes, and a nick change keeps the mark; the order stays by nick.
#[test]
fn the_member_list_marks_operators_and_voiced_members() {
    use natter_proto::native::RoomChangeFrame;
    let mut app = lobby_app();
    app.on_event(Event::Frame(ServerFrame::Joined {
        id: None,
        room: Cow::Borrowed("#lobby"),
        topic: Cow::Borrowed("tea"),
        members: ["ann", "bob", "cy", "dee"].iter().map(|m| Cow::Owned(m.to_string())).collect(),
        count: None,
        ephemeral: false,
        operators: vec![Cow::Borrowed("ann")],
        voiced: vec![Cow::Borrowed("BOB")],
        history: vec![],
    }));
    let members = |app: &App| screen(app)[2..7].iter().map(|r| r[42..].to_string()).collect::<Vec<_>>();
    let want = |rows: &[&str]| rows.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    assert_eq!(members(&app), want(&["│ members (4)", "│ @ann", "│ +bob", "│ cy", "│ dee"]));

    let mode = |changes| {
        Event::Frame(ServerFrame::Mode {
            room: Cow::Borrowed("#lobby"),
            by: Cow::Borrowed("ann"),
            changes,
            ts: 1,
        })
    };
    app.on_event(mode(vec![
        RoomChangeFrame::Op { nick: "dee".into(), on: true },
        RoomChangeFrame::Voice { nick: "cy".into(), on: true },
        RoomChangeFrame::Voice { nick: "bob".into(), on: false },
        RoomChangeFrame::Op { nick: "ann".into(), on: false },
    ]));
    assert_eq!(members(&app), want(&["│ members (4)", "│ ann", "│ bob", "│ +cy", "│ @dee"]));

    app.on_event(Event::Frame(ServerFrame::Nick { old: "dee".into(), new: "abe".into(), ts: 1 }));
    assert_eq!(members(&app), want(&["│ members (4)", "│ @abe", "│ ann", "│ bob", "│ +cy"]));
}

#[test]
fn a_typed_password_is_starred_out_on_screen_and_never_kept_in_the_history() {
    let mut app = lobby_app();
    app.input.set("");
    let actions = type_line(&mut app, "/login ann hunter2hunter2");
    // The password goes to the server, in the login frame.
    assert!(
        matches!(
            actions.as_slice(),
            [super::state::Action::Submit(natter_proto::native::ClientFrame::Login { name: Some(n), password: Some(p), .. })]
                if n == "ann" && p == "hunter2hunter2"
        ),
        "{actions:?}"
    );
    type_line(&mut app, "/register correct horse battery");
    type_line(&mut app, "/passwd hunter2hunter2 a new password");
    let rows = screen(&app);
    assert!(rows.iter().any(|r| r.contains("/login ann ********")), "{rows:#?}");
    assert!(rows.iter().any(|r| r.contains("/register ********")), "{rows:#?}");
    assert!(rows.iter().any(|r| r.contains("/passwd ******** ********")), "{rows:#?}");
    assert!(!rows.iter().any(|r| r.contains("hunter2") || r.contains("horse") || r.contains("new password")));
    // Up recalls the last line typed without a password, never one with.
    type_line(&mut app, "hello");
    type_line(&mut app, "/login ann hunter2hunter2");
    app.on_key(key(KeyCode::Up));
    assert_eq!(app.input.text(), "hello");
    app.on_key(key(KeyCode::Up));
    assert!(!app.input.text().contains("hunter2"), "{}", app.input.text());
}
