//! The TUI as a person uses it: tmux runs `natter connect`, `send-keys` types, `capture-pane`
//! reads the screen. Skipped (with a message) when tmux is not installed; CI installs it.

mod client_util;
mod tmux_util;

use client_util::{NATTER, Server, TempDir};
use natter_client::conn::{Client, ConnectOptions, Event, Target};
use tmux_util::{Pane, Tmux, WAIT};

/// Runs `natter connect ADDR --nick NICK` in a `w`×`h` session of `tmux`; when it exits the
/// shell prints `EXITED rc=N` (the shell's `sleep` only keeps the pane open to be read).
fn connect<'a>(tmux: &'a Tmux, addr: &str, nick: &str, w: u16, h: u16) -> Pane<'a> {
    // Nothing the TUI saves (a login) may land in the real data directory.
    connect_with_data(tmux, "t", addr, nick, "/nonexistent-natter-test", w, h)
}

/// [`connect`] in tmux session `name`, with `$XDG_DATA_HOME` at `data`.
fn connect_with_data<'a>(
    tmux: &'a Tmux,
    name: &'static str,
    addr: &str,
    nick: &str,
    data: &str,
    w: u16,
    h: u16,
) -> Pane<'a> {
    let command = format!(
        "env XDG_CONFIG_HOME=/nonexistent-natter-test XDG_DATA_HOME={data} TERM=xterm-256color sh -c '{NATTER} connect {addr} --nick {nick}; echo EXITED rc=$?; sleep 30'"
    );
    tmux.start(name, &command, w, h)
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

#[test]
fn a_login_is_kept_across_a_restart_of_the_tui_in_private_files_without_the_password() {
    let Some(tmux) = Tmux::if_installed() else { return };
    let server = Server::start();
    let data = TempDir::new("tui-data");
    let data_dir = data.0.to_str().unwrap().to_string();
    let tui = connect_with_data(&tmux, "t1", &server.addr, "ann", &data_dir, 100, 30);
    tui.wait("the TUI", |s| s.contains("connected"));
    tui.type_text("/register correct horse battery");
    tui.keys(&["Enter"]);
    let s = tui.wait("the registration", |s| s.contains("registered the account ann"));
    assert!(!s.contains("correct horse"), "the password is not shown: {s}");
    // The server answers in order: once the whois is answered, so is the token request the
    // TUI sent right after the registration's answer, and the token is saved.
    tui.type_text("/whois ann");
    tui.keys(&["Enter"]);
    tui.wait("the whois", |s| s.contains("logged in as ann in"));
    let dir = data.0.join("natter").join("resume");
    let files: Vec<std::path::PathBuf> =
        std::fs::read_dir(&dir).expect("the saved logins' directory").map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&dir), mode(&files[0])), (0o700, 0o600));
    let saved = std::fs::read_to_string(&files[0]).unwrap();
    assert!(saved.contains(r#""account":"ann""#), "{saved}");
    for file in walk(&data.0) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(21).any(|w| w == b"correct horse battery"), "the password is in {file:?}");
    }
    tui.type_text("/quit");
    tui.keys(&["Enter"]);
    tui.wait("the TUI to exit", |s| s.contains("EXITED rc=0"));

    // natter connect again: logged in to the account from the start, and nick protection
    // never asks for the password.
    let again = connect_with_data(&tmux, "t2", &server.addr, "ann", &data_dir, 100, 30);
    let s = again.wait("logged in again", |s| s.contains("you are logged in as ann"));
    assert!(!s.contains("is registered"), "{s}");
    // /logout forgets it.
    again.type_text("/logout");
    again.keys(&["Enter"]);
    again.wait("logged out", |s| s.contains("you logged out of ann"));
    again.type_text("/whois ann");
    again.keys(&["Enter"]);
    again.wait("the whois", |s| s.lines().any(|l| l.contains("ann is ") && !l.contains("logged in as")));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the saved login is deleted");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
