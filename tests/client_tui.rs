//! The TUI as a person uses it: tmux runs `natter connect`, `send-keys` types, `capture-pane`
//! reads the screen. Skipped (with a message) when tmux is not installed; CI installs it.

mod client_util;
mod tmux_util;

use client_util::{NATTER, Server};
use natter_client::conn::{Client, ConnectOptions, Event, Target};
use tmux_util::{Pane, Tmux, WAIT};

/// Runs `natter connect ADDR --nick NICK` in a `w`×`h` session of `tmux`; when it exits the
/// shell prints `EXITED rc=N` (the shell's `sleep` only keeps the pane open to be read).
fn connect<'a>(tmux: &'a Tmux, addr: &str, nick: &str, w: u16, h: u16) -> Pane<'a> {
    let command = format!(
        "env XDG_CONFIG_HOME=/nonexistent-natter-test TERM=xterm-256color sh -c '{NATTER} connect {addr} --nick {nick}; echo EXITED rc=$?; sleep 30'"
    );
    tmux.start("t", &command, w, h)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn lines(screen: &str) -> Vec<&str> {
    screen.lines().collect()
}

#[test]
fn messages_flow_and_a_private_message_opens_its_conversation() {
    let Some(tmux) = Tmux::if_installed() else { return };
    let server = Server::start();
    let rt = runtime();
    let (bob, mut bob_ev) =
        rt.block_on(Client::connect(ConnectOptions::new(server.addr.clone(), "bob"))).unwrap();
    let tui = connect(&tmux, &server.addr, "ann", 100, 30);
    tui.wait("the TUI with bob in the member list", |s| s.contains("connected") && s.contains("│ bob"));

    // Another client's message appears.
    bob.say("#lobby", "hello from bob");
    tui.wait("bob's message", |s| s.contains("<bob> hello from bob"));

    // What ann types reaches bob.
    tui.type_text("hi bob, 你好 😀");
    tui.keys(&["Enter"]);
    let got = rt.block_on(async {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(Event::Message { msg, .. }) = bob_ev.recv().await
                    && msg.from == "ann"
                {
                    return msg.text.to_string();
                }
            }
        })
        .await
    });
    assert_eq!(got.expect("bob receives ann's message"), "hi bob, 你好 😀");
    tui.wait("ann's own message", |s| s.contains("<ann> hi bob, 你好 😀"));

    // A private message opens a marked conversation; Ctrl-N shows it.
    bob.send(Target::Nick("ann".into()), "a secret", false);
    let s = tui.wait("a marked tab for bob", |s| lines(s)[0].contains("2:bob(1)!"));
    assert!(!s.contains("a secret"), "not shown before switching:\n{s}");
    tui.keys(&["C-n"]);
    let s = tui.wait("the private conversation", |s| s.contains("private conversation with bob"));
    assert!(s.contains("<bob> a secret"), "{s}");
    assert!(lines(&s).last().unwrap().starts_with("[bob]"), "{s}");

    // /me is shown as an action, Tab completes nicks.
    tui.keys(&["C-p"]);
    tui.type_text("/me waves at b");
    tui.keys(&["Tab", "Enter"]);
    tui.wait("the action", |s| s.contains("* ann waves at bob"));

    // /quit restores the terminal and exits cleanly.
    tui.type_text("/quit");
    tui.keys(&["Enter"]);
    let s = tui.wait("the client's exit", |s| s.contains("EXITED rc=0"));
    assert!(!s.contains("members ("), "the full-screen view is gone:\n{s}");
}

#[test]
fn resize_keeps_the_layout() {
    let Some(tmux) = Tmux::if_installed() else { return };
    let server = Server::start();
    let tui = connect(&tmux, &server.addr, "ann", 100, 30);
    tui.wait("the TUI", |s| s.contains("connected"));
    tui.type_text("a line long enough to wrap once the window becomes narrow, which it will shortly");
    tui.keys(&["Enter"]);
    tui.wait("the message", |s| s.contains("shortly"));

    let check = |w: usize, h: usize, members: bool| {
        tui.wait(&format!("the layout at {w}x{h}"), |s| {
            let l = lines(s);
            l.len() == h
                && l[h - 2].contains("connected")
                && l[h - 1].starts_with("[#lobby]")
                && l[0].contains("1:#lobby")
                && l.iter().any(|x| x.contains("shortly"))
                && l.iter().any(|x| x.contains("members (1)")) == members
        });
    };
    check(100, 30, true);
    tui.resize(50, 12);
    check(50, 12, false);
    tui.resize(70, 16);
    check(70, 16, true);
}

#[test]
fn scrollback_loads_older_history_from_the_server() {
    let Some(tmux) = Tmux::if_installed() else { return };
    // Joins replay only 5 messages: the rest must be fetched while scrolling up.
    let server = Server::start_with(&["--msg-rate", "0", "--history", "5"]);
    let rt = runtime();
    let (bob, _ev) = rt.block_on(Client::connect(ConnectOptions::new(server.addr.clone(), "bob"))).unwrap();
    for i in 0..40 {
        bob.say("#lobby", format!("old message {i}"));
    }
    rt.block_on(bob.wait_idle());
    let tui = connect(&tmux, &server.addr, "ann", 80, 20);
    let s = tui.wait("the latest messages", |s| s.contains("old message 39"));
    assert!(!s.contains("old message 30"), "{s}");
    // Page up until the top, each key once the previous one has moved the view (or loaded
    // an older page), instead of pressing at a guessed pace.
    let at_top = |s: &str| s.contains("old message 0") || s.contains("beginning of #lobby");
    let mut screen = s;
    for _ in 0..40 {
        if at_top(&screen) {
            break;
        }
        tui.keys(&["PPage"]);
        let before = screen;
        screen = tui.wait("the view to move up", |s| s != before);
    }
    tui.wait("the oldest message", at_top);
    tui.keys(&["NPage", "NPage", "NPage", "NPage", "NPage", "NPage", "NPage", "NPage", "NPage", "NPage"]);
    tui.wait("back at the bottom", |s| s.contains("old message 39") && !s.contains("scrolled up"));
}
