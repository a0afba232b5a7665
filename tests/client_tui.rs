//! The TUI as a person uses it: tmux runs `natter connect`, `send-keys` types, `capture-pane`
//! reads the screen. Skipped (with a message) when tmux is not installed; CI installs it.

mod client_util;

use client_util::{NATTER, Server};
use natter_client::conn::{Client, ConnectOptions, Event, Target};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn have_tmux() -> bool {
    let ok = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: tmux is not installed (apt-get install tmux); the TUI tests need it");
    }
    ok
}

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `command` in a new detached session of `w`×`h` cells.
    fn start(command: &str, w: u16, h: u16) -> Tmux {
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = format!("natter-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let t = Tmux { socket };
        t.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            command,
        ]);
        t.run(&["set-option", "-t", "t", "status", "off"]);
        t
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types text (literally) into the pane.
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Presses keys by tmux name (`Enter`, `C-n`, `PPage`...).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    fn resize(&self, w: u16, h: u16) {
        self.run(&["resize-window", "-t", "t", "-x", &w.to_string(), "-y", &h.to_string()]);
    }

    /// Waits until the screen satisfies `pred`; panics with the screen after [`WAIT`].
    fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

fn connect_cmd(addr: &str, nick: &str) -> String {
    format!(
        "env XDG_CONFIG_HOME=/nonexistent-natter-test TERM=xterm-256color sh -c '{NATTER} connect {addr} --nick {nick}; echo EXITED rc=$?; sleep 30'"
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn lines(screen: &str) -> Vec<&str> {
    screen.lines().collect()
}

#[test]
fn messages_flow_and_a_private_message_opens_its_conversation() {
    if !have_tmux() {
        return;
    }
    let server = Server::start();
    let rt = runtime();
    let (bob, mut bob_ev) =
        rt.block_on(Client::connect(ConnectOptions::new(server.addr.clone(), "bob"))).unwrap();
    let tmux = Tmux::start(&connect_cmd(&server.addr, "ann"), 100, 30);
    tmux.wait_screen("the TUI with bob in the member list", |s| {
        s.contains("connected") && s.contains("│ bob")
    });

    // Another client's message appears.
    bob.say("#lobby", "hello from bob");
    tmux.wait_screen("bob's message", |s| s.contains("<bob> hello from bob"));

    // What ann types reaches bob.
    tmux.type_text("hi bob, 你好 😀");
    tmux.keys(&["Enter"]);
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
    tmux.wait_screen("ann's own message", |s| s.contains("<ann> hi bob, 你好 😀"));

    // A private message opens a marked conversation; Ctrl-N shows it.
    bob.send(Target::Nick("ann".into()), "a secret", false);
    let s = tmux.wait_screen("a marked tab for bob", |s| lines(s)[0].contains("2:bob(1)!"));
    assert!(!s.contains("a secret"), "not shown before switching:\n{s}");
    tmux.keys(&["C-n"]);
    let s = tmux.wait_screen("the private conversation", |s| s.contains("private conversation with bob"));
    assert!(s.contains("<bob> a secret"), "{s}");
    assert!(lines(&s).last().unwrap().starts_with("[bob]"), "{s}");

    // /me is shown as an action, Tab completes nicks.
    tmux.keys(&["C-p"]);
    tmux.type_text("/me waves at b");
    tmux.keys(&["Tab", "Enter"]);
    tmux.wait_screen("the action", |s| s.contains("* ann waves at bob"));

    // /quit restores the terminal and exits cleanly.
    tmux.type_text("/quit");
    tmux.keys(&["Enter"]);
    let s = tmux.wait_screen("the client's exit", |s| s.contains("EXITED rc=0"));
    assert!(!s.contains("members ("), "the full-screen view is gone:\n{s}");
}

#[test]
fn resize_keeps_the_layout() {
    if !have_tmux() {
        return;
    }
    let server = Server::start();
    let tmux = Tmux::start(&connect_cmd(&server.addr, "ann"), 100, 30);
    tmux.wait_screen("the TUI", |s| s.contains("connected"));
    tmux.type_text("a line long enough to wrap once the window becomes narrow, which it will shortly");
    tmux.keys(&["Enter"]);
    tmux.wait_screen("the message", |s| s.contains("shortly"));

    let check = |w: usize, h: usize, members: bool| {
        let s = tmux.wait_screen(&format!("the layout at {w}x{h}"), |s| {
            let l = lines(s);
            l.len() == h
                && l[h - 2].contains("connected")
                && l[h - 1].starts_with("[#lobby]")
                && l[0].contains("1:#lobby")
                && l.iter().any(|x| x.contains("shortly"))
                && l.iter().any(|x| x.contains("members (1)")) == members
        });
        for l in lines(&s) {
            assert!(unicode_cols(l) <= w, "row wider than {w}: {l:?}\n{s}");
        }
    };
    check(100, 30, true);
    tmux.resize(50, 12);
    check(50, 12, false);
    tmux.resize(70, 16);
    check(70, 16, true);
}

/// Columns a captured row takes (captured text has no escapes).
fn unicode_cols(s: &str) -> usize {
    s.chars().count()
}

#[test]
fn scrollback_loads_older_history_from_the_server() {
    if !have_tmux() {
        return;
    }
    // Joins replay only 5 messages: the rest must be fetched while scrolling up.
    let server = Server::start_with(&["--msg-rate", "0", "--history", "5"]);
    let rt = runtime();
    let (bob, _ev) = rt.block_on(Client::connect(ConnectOptions::new(server.addr.clone(), "bob"))).unwrap();
    for i in 0..40 {
        bob.say("#lobby", format!("old message {i}"));
    }
    rt.block_on(bob.wait_idle());
    let tmux = Tmux::start(&connect_cmd(&server.addr, "ann"), 80, 20);
    let s = tmux.wait_screen("the latest messages", |s| s.contains("old message 39"));
    assert!(!s.contains("old message 30"), "{s}");
    for _ in 0..12 {
        tmux.keys(&["PPage"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.wait_screen("the oldest message", |s| {
        s.contains("old message 0") || s.contains("beginning of #lobby")
    });
    tmux.keys(&["NPage", "NPage", "NPage", "NPage", "NPage", "NPage", "NPage", "NPage", "NPage", "NPage"]);
    tmux.wait_screen("back at the bottom", |s| s.contains("old message 39") && !s.contains("scrolled up"));
}
