//! `natter direct`'s full-screen interface as two people use it: one tmux server runs a
//! listener and a connector in two sessions (two real terminals), `send-keys` and
//! `paste-buffer` type, `capture-pane` reads the screens. Every wait polls the screen with a
//! timeout and fails with the screen's contents. Skipped (with a message) when tmux is not
//! installed; CI installs it.

mod tmux_util;

use tmux_util::{Pane, Tmux};

const NATTER: &str = env!("CARGO_BIN_EXE_natter");
/// The message limit of natter direct (60 KiB), for the oversized paste.
const MAX_MESSAGE: usize = 60 * 1024;

/// Runs `natter direct ARGS` in a new `w`×`h` session; when it exits the shell prints
/// `EXITED rc=N` on the normal screen, which shows whether the terminal was restored (the
/// shell's `sleep` only keeps the pane open to be read).
fn direct<'a>(tmux: &'a Tmux, name: &'static str, args: &str, w: u16, h: u16) -> Pane<'a> {
    let command = format!(
        "env TERM=xterm-256color RUST_BACKTRACE=0 sh -c '{NATTER} direct {args}; echo EXITED rc=$?; sleep 60'"
    );
    tmux.start(name, &command, w, h)
}

/// The verification words of the "secure channel established" line.
fn verify_words(p: &Pane) -> String {
    let s = p.wait_for("secure channel established, verify: ");
    let line = s.lines().find(|l| l.contains("secure channel established")).unwrap();
    line.split("verify: ").nth(1).unwrap().trim().to_string()
}

/// Waits for the program to exit and checks the normal screen is back: the shell's
/// `EXITED` line shows, the full-screen view and everything in it are gone.
fn wait_exit(p: &Pane, rc: i32) -> String {
    let s = p.wait_for("EXITED rc=");
    assert!(s.contains(&format!("EXITED rc={rc}")), "{}: exit status, screen:\n{s}", p.name());
    assert!(!s.contains("natter direct │"), "{}: the full-screen view is gone:\n{s}", p.name());
    s
}

/// The other side left: `p` says so and its screen stays (the status bar and the input line
/// tell how to close it) until `key` closes it; then it exits cleanly, the terminal restored.
fn told_the_other_left_then_closed_with(p: &Pane, key: &str) {
    let s = p.wait("the notice", |s| {
        s.contains("the other side left the chat")
            && s.contains("[closed] the chat is over: Enter, Esc or Ctrl+C")
    });
    let status = s.lines().rev().nth(1).unwrap_or_default();
    assert!(status.contains("the other side left"), "{}: status bar:\n{s}", p.name());
    p.keys(&[key]);
    wait_exit(p, 0);
}

/// The value after `label` on the screen's line containing it (`address: `, `code: `).
fn field(screen: &str, label: &str) -> String {
    let line = screen.lines().find(|l| l.contains(label)).unwrap_or_else(|| panic!("{label}:\n{screen}"));
    line.split(label).nth(1).unwrap().split_whitespace().next().unwrap().to_string()
}

/// Starts a listener on a free loopback port and a connector joining it; returns both panes
/// once each shows the channel as connected.
fn pair<'a>(tmux: &'a Tmux, flags: &str, w: u16, h: u16) -> (Pane<'a>, Pane<'a>) {
    let l = direct(tmux, "l", &format!("listen --port 0 --bind 127.0.0.1 {flags}"), w, h);
    let plain = flags.contains("--plain");
    let s = l.wait("the address and code", |s| s.contains("address: ") && (plain || s.contains("code: ")));
    let addr = field(&s, "address: ");
    let code = if plain { String::new() } else { format!("--code {}", field(&s, "code: ")) };
    let c = direct(tmux, "c", &format!("connect {addr} {code} {flags}"), w, h);
    for p in [&l, &c] {
        p.wait("the connected status", |s| {
            s.lines().nth(h as usize - 2).is_some_and(|l| l.contains("connected"))
        });
    }
    (l, c)
}

/// The peer's messages on a screen, in order.
fn from_peer(screen: &str) -> Vec<String> {
    screen.lines().filter_map(|l| l.split_once("<peer> ").map(|(_, t)| t.trim_end().to_string())).collect()
}

#[test]
fn encrypted_chat_both_ways_at_once_then_the_peer_leaves() {
    let Some(tmux) = Tmux::if_installed() else { return };
    let (l, c) = pair(&tmux, "", 100, 40);

    // The same verification words on both sides, in the chat and in the title bar.
    let words = verify_words(&l);
    assert_eq!(words.split(' ').count(), 4, "{words:?}");
    assert_eq!(verify_words(&c), words, "both sides show the same words");
    for p in [&l, &c] {
        let s = p.screen();
        let title = s.lines().next().unwrap();
        assert!(title.contains("encrypted TCP") && title.contains(&format!("verify: {words}")), "{s}");
        assert!(s.lines().last().unwrap().starts_with("[peer]"), "the input line:\n{s}");
    }

    // Both type at the same time, interleaved, with CJK and emoji.
    let lines_l: Vec<String> = (0..5).map(|i| format!("L{i} héllo 你好")).collect();
    let lines_c: Vec<String> = (0..5).map(|i| format!("C{i} 😀 ok")).collect();
    for (a, b) in lines_l.iter().zip(&lines_c) {
        l.say(a);
        c.say(b);
    }
    let sl = l.wait("all of C's lines", |s| from_peer(s).len() == lines_c.len());
    let sc = c.wait("all of L's lines", |s| from_peer(s).len() == lines_l.len());
    assert_eq!(from_peer(&sl), lines_c, "listener got everything once, in order:\n{sl}");
    assert_eq!(from_peer(&sc), lines_l, "connector got everything once, in order:\n{sc}");
    assert!(sl.contains("<you> L4 héllo 你好"), "own lines are shown:\n{sl}");

    // /quit: the connector leaves cleanly and its terminal is restored, with nothing of the
    // chat printed on the normal screen.
    c.say("/quit");
    let after = wait_exit(&c, 0);
    assert!(!after.contains("verify") && !after.contains("L0"), "nothing leaked:\n{after}");

    // The listener is told, and its screen stays until closed.
    told_the_other_left_then_closed_with(&l, "Enter");
}

#[test]
fn plain_chat_shows_it_is_not_private_and_ctrl_c_leaves() {
    let Some(tmux) = Tmux::if_installed() else { return };
    let (l, c) = pair(&tmux, "--plain", 90, 24);
    for p in [&l, &c] {
        let s = p.screen();
        let title = s.lines().next().unwrap();
        assert!(title.contains("PLAIN TCP: NOT private"), "{s}");
        assert!(!s.contains("verify:"), "no verification words without encryption:\n{s}");
    }
    l.say("plain hello");
    c.wait_for("<peer> plain hello");
    c.say("plain answer");
    l.wait_for("<peer> plain answer");

    // Ctrl+C on the listener: a clean goodbye; the connector sees it and closes with Esc.
    l.keys(&["C-c"]);
    wait_exit(&l, 0);
    told_the_other_left_then_closed_with(&c, "Escape");
}

#[test]
fn an_oversized_paste_is_refused_like_line_mode_and_scrollback_works() {
    let Some(tmux) = Tmux::if_installed() else { return };
    let (l, c) = pair(&tmux, "", 80, 20);

    // A paste over the 60 KiB limit: refused locally with line mode's words, nothing sent.
    l.paste(&format!("{}END", "x".repeat(MAX_MESSAGE)));
    l.wait("the paste in the input line", |s| s.lines().last().is_some_and(|r| r.contains("xxxEND")));
    l.keys(&["Enter"]);
    l.wait_for(&format!("line too long (more than {MAX_MESSAGE} bytes); not sent"));
    l.say("after the paste");
    let s = c.wait_for("<peer> after the paste");
    assert_eq!(from_peer(&s), ["after the paste"], "the oversized line never reached the peer:\n{s}");

    // Many lines: PageUp goes back to the first line (and no further), PageDown comes back.
    for i in 0..40 {
        c.say(&format!("line {i:02}"));
    }
    let s = l.wait_for("<peer> line 39");
    assert!(!s.contains("<peer> line 00"), "{s}");
    l.keys(&["PPage", "PPage", "PPage", "PPage", "PPage", "PPage"]);
    let s = l.wait("the oldest lines", |s| {
        s.contains("listening on") && s.contains("<peer> line 00") && s.contains("scrolled up")
    });
    assert!(!s.contains("<peer> line 39"), "{s}");
    l.keys(&["NPage", "NPage", "NPage", "NPage", "NPage", "NPage"]);
    l.wait("back at the bottom", |s| s.contains("<peer> line 39") && !s.contains("scrolled up"));

    // Ctrl+D on an empty line leaves cleanly, and the other side is told.
    l.keys(&["C-d"]);
    wait_exit(&l, 0);
    told_the_other_left_then_closed_with(&c, "C-c");
}

#[test]
fn setup_errors_are_plain_messages_and_line_mode_can_be_forced() {
    let Some(tmux) = Tmux::if_installed() else { return };
    let bad = direct(&tmux, "bad", "connect 127.0.0.1:9 --code 7-orbitt-lantern", 100, 10);
    let s = wait_exit(&bad, 1);
    assert!(s.contains("'orbitt' is not one of natter's code words"), "{s}");

    // Ctrl+C while waiting for the other side: the listener stops at once, cleanly.
    let waiting = direct(&tmux, "waiting", "listen --port 0 --bind 127.0.0.1", 100, 12);
    waiting.wait_for("waiting for the other side");
    waiting.keys(&["C-c"]);
    wait_exit(&waiting, 0);

    // --line on a terminal: the line interface, no full screen; `/quit` typed while waiting
    // for the other side ends the wait at once.
    let line = direct(&tmux, "line", "listen --line --port 0 --bind 127.0.0.1", 100, 12);
    let s = line.wait_for("*** code: ");
    assert!(s.contains("*** listening on 127.0.0.1:"), "{s}");
    assert!(!s.contains("natter direct │"), "{s}");
    line.say("/quit");
    let s = wait_exit(&line, 0);
    assert!(s.contains("stopped before the chat started; the code was not used by anyone"), "{s}");

    // The same with Ctrl+D, and without a code to mention (--plain).
    let plain = direct(&tmux, "plainline", "listen --line --plain --port 0 --bind 127.0.0.1", 100, 12);
    plain.wait_for("*** listening on 127.0.0.1:");
    plain.keys(&["C-d"]);
    let s = wait_exit(&plain, 0);
    assert!(s.contains("stopped before the chat started"), "{s}");
    assert!(!s.contains("code was not used"), "{s}");
}

#[test]
fn a_wrong_code_fails_on_the_screen_and_again_after_it_closes() {
    let Some(tmux) = Tmux::if_installed() else { return };
    let l = direct(&tmux, "l", "listen --port 0 --bind 127.0.0.1", 100, 20);
    let s = l.wait("the address and code", |s| s.contains("address: ") && s.contains("code: "));
    let (addr, code) = (field(&s, "address: "), field(&s, "code: "));
    let (number, words) = code.split_once('-').unwrap();
    let wrong = format!("{}-{words}", number.parse::<u16>().unwrap() % 999 + 1);
    let c = direct(&tmux, "c", &format!("connect {addr} --code {wrong}"), 100, 20);
    for p in [&l, &c] {
        // The error line and the status bar are drawn in separate frames: wait for both.
        let s = p.wait("the failure in the log and the status bar", |s| {
            s.contains("!! ")
                && s.contains("wrong code")
                && s.lines().nth(18).is_some_and(|bar| bar.contains("failed"))
        });
        assert!(!s.contains("secure channel established"), "{s}");
        p.keys(&["Enter"]);
        let after = wait_exit(p, 1);
        assert!(after.contains("wrong code"), "the error is printed on the normal screen too:\n{after}");
    }
}
