//! The tmux harness of the terminal tests (`client_tui`, `direct_tui`, `irc_client`): a tmux
//! server of the test's own (its own socket, no config), one session per terminal, keys typed
//! with `send-keys`/`paste-buffer`, screens read with `capture-pane`; killed on drop.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a wait for the screen lasts before the test fails with the screen's contents.
pub const WAIT: Duration = Duration::from_secs(20);
/// How often a wait reads the screen.
const POLL: Duration = Duration::from_millis(100);

/// True when `program arg` runs and succeeds (`tmux -V`, `irssi --version`).
pub fn installed(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success())
}

/// True when every `(program, version flag)` runs. When one is missing the test is skipped
/// with a message, unless `NATTER_REQUIRE_TOOLS` is set (`.ci/run` sets it after installing
/// them): then a missing tool fails the test, so CI can never pass by skipping.
pub fn tools_available(tools: &[(&str, &str)]) -> bool {
    let missing: Vec<&str> = tools.iter().filter(|(p, a)| !installed(p, a)).map(|(p, _)| *p).collect();
    if missing.is_empty() {
        return true;
    }
    let what = format!("not installed: {} (apt-get install {})", missing.join(", "), missing.join(" "));
    if std::env::var_os("NATTER_REQUIRE_TOOLS").is_some_and(|v| !v.is_empty()) {
        panic!("NATTER_REQUIRE_TOOLS is set but {what}");
    }
    eprintln!("SKIPPED: {what} (set NATTER_REQUIRE_TOOLS=1 to fail instead)");
    false
}

/// True when tmux can run ([`tools_available`]).
pub fn have_tmux() -> bool {
    tools_available(&[("tmux", "-V")])
}

/// A tmux server of our own; killed on drop.
pub struct Tmux {
    /// `-L NAME` (a named socket in tmux's directory) or `-S PATH` (a socket at that path).
    socket: [String; 2],
}

/// One session (one terminal) of a [`Tmux`].
pub struct Pane<'a> {
    tmux: &'a Tmux,
    name: &'static str,
}

impl Tmux {
    /// A server on a socket named after the process and a counter.
    pub fn new() -> Tmux {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("natter-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        Tmux { socket: ["-L".into(), name] }
    }

    /// A server as [`Tmux::new`] when tmux can run; otherwise `None`, after saying the test
    /// is skipped ([`have_tmux`]).
    pub fn if_installed() -> Option<Tmux> {
        have_tmux().then(Tmux::new)
    }

    /// A server whose socket is at `path` (in a temporary directory, so nothing stays behind).
    pub fn at(path: PathBuf) -> Tmux {
        Tmux { socket: ["-S".into(), path.to_str().expect("UTF-8 socket path").into()] }
    }

    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(&self.socket).args(["-f", "/dev/null"]);
        c
    }

    /// Runs a tmux command on this server; returns its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `command` in a new detached session `name` of `w`×`h` cells, without tmux's status
    /// line (the whole terminal is the program's).
    pub fn start<'a>(&'a self, name: &'static str, command: &str, w: u16, h: u16) -> Pane<'a> {
        self.run(&["new-session", "-d", "-s", name, "-x", &w.to_string(), "-y", &h.to_string(), command]);
        self.run(&["set-option", "-t", name, "status", "off"]);
        Pane { tmux: self, name }
    }
}

impl Drop for Tmux {
    /// Kills the server and removes its socket, which `kill-server` leaves behind.
    fn drop(&mut self) {
        let socket = self.run(&["display-message", "-p", "#{socket_path}"]);
        let _ = self.command().arg("kill-server").output();
        if !socket.trim().is_empty() {
            let _ = std::fs::remove_file(socket.trim());
        }
    }
}

impl Pane<'_> {
    /// The session's name, for messages.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Types text literally.
    pub fn type_text(&self, text: &str) {
        self.tmux.run(&["send-keys", "-t", self.name, "-l", text]);
    }

    /// Presses keys by tmux name (`Enter`, `C-c`, `PPage`...).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.name];
        args.extend_from_slice(keys);
        self.tmux.run(&args);
    }

    /// Types a line and presses Enter.
    pub fn say(&self, text: &str) {
        self.type_text(text);
        self.keys(&["Enter"]);
    }

    /// Pastes `text` as a terminal paste (bracketed, as the application asked for).
    pub fn paste(&self, text: &str) {
        let mut load = self
            .tmux
            .command()
            .args(["load-buffer", "-b", "paste", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run tmux load-buffer");
        std::io::Write::write_all(&mut load.stdin.take().unwrap(), text.as_bytes()).unwrap();
        assert!(load.wait().unwrap().success(), "tmux load-buffer failed");
        self.tmux.run(&["paste-buffer", "-p", "-d", "-b", "paste", "-t", self.name]);
    }

    pub fn screen(&self) -> String {
        self.tmux.run(&["capture-pane", "-p", "-t", self.name])
    }

    pub fn resize(&self, w: u16, h: u16) {
        self.tmux.run(&["resize-window", "-t", self.name, "-x", &w.to_string(), "-y", &h.to_string()]);
    }

    /// Waits until the screen satisfies `pred`; panics with the screen after [`WAIT`].
    pub fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("{}: timed out waiting for {what}; screen:\n{s}", self.name);
            }
            // Polling interval between screen reads: tmux cannot tell when the screen changes.
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the screen contains `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait(&format!("{needle:?}"), |s| s.contains(needle))
    }
}
