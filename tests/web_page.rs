//! The web page in a real browser: Debian's chromium, driven by playwright-core from the node
//! scripts in `tests/browser/`, against the real `natter serve` binary on port 0. Each test
//! starts a server, runs one script with the page's URL, and passes when the script exits 0
//! having printed `PASS name`. The scripts check what a user sees (the DOM) and what the other
//! users (native, text mode over real sockets) receive; see each script's header.
//!
//! Skipped with a message when node, chromium or `tests/browser/node_modules` is missing;
//! with `NATTER_REQUIRE_TOOLS` set (as `.ci/run` does after installing them) that fails
//! instead. Browsers run one at a time: each is a few hundred MB and the machine's cores
//! are shared.

mod common;
mod tmux_util;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// One browser at a time.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// How long a script may run before the test kills it and fails.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(240);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// True when the browser tests can run: node, chromium and the npm packages are installed.
/// Otherwise the test is skipped with a message, or fails under `NATTER_REQUIRE_TOOLS`.
fn browser_available() -> bool {
    if !tmux_util::tools_available(&[("node", "--version"), ("chromium", "--version")]) {
        return false;
    }
    if browser_dir().join("node_modules/playwright-core/package.json").is_file() {
        return true;
    }
    let what = "tests/browser/node_modules is missing (npm ci --prefix tests/browser)";
    if std::env::var_os("NATTER_REQUIRE_TOOLS").is_some_and(|v| !v.is_empty()) {
        panic!("NATTER_REQUIRE_TOOLS is set but {what}");
    }
    eprintln!("SKIPPED: {what} (set NATTER_REQUIRE_TOOLS=1 to fail instead)");
    false
}

/// `natter serve` on a given database and port (0: any), with what the browser needs only:
/// no UDP, no IRC port, and no message rate limit so the scripts can seed hundreds of
/// messages at once. Killed (SIGKILL, like a crash) on drop.
struct WebServer {
    child: Child,
    port: u16,
}

impl WebServer {
    fn start(db: &Path, port: u16, extra: &[&str]) -> WebServer {
        let mut child = Command::new(common::natter_bin())
            .args(["serve", "--tcp", &format!("127.0.0.1:{port}"), "--udp", "off", "--irc", "off"])
            .args(["--msg-rate", "0", "--db"])
            .arg(db)
            .args(extra)
            .env_remove("NATTER_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start natter serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let addr: std::net::SocketAddr = loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "the server exited before listening");
            if let Some(a) = line.trim().strip_prefix("listening tcp ") {
                break a.parse().unwrap();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stdout.read_to_string(&mut sink);
        });
        WebServer { child, port: addr.port() }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `tests/browser/NAME.mjs` against a fresh server and asserts that it passed. The
/// script may ask (`CONTROL kill`, `CONTROL start`) for the server to be killed and started
/// again on the same port and database; it is told `done kill` / `done start`.
fn run_script(name: &str) {
    run_script_with(name, &[], |_| Box::new(move |request| panic!("{name}.mjs asked for {request:?}")));
}

/// [`run_script`] with `extra` flags for the server, and `other(server port)` making what
/// does what the script asks beyond `kill` and `start` (given the request without `CONTROL `).
fn run_script_with<'a>(name: &str, extra: &[&str], other: impl FnOnce(u16) -> Box<dyn FnMut(&str) + 'a>) {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let mut server = WebServer::start(&db, 0, extra);
    let port = server.port;
    let mut other = other(port);
    drive_script(name, port, &[], |request| match request {
        "kill" => server.kill(),
        "start" => {
            server = WebServer::start(&db, port, extra);
            assert_eq!(server.port, port);
        }
        request => other(request),
    });
}

/// Runs `tests/browser/NAME.mjs` against the page on `port` (with `env` besides NATTER_URL and
/// NATTER_TCP), does what it asks (`CONTROL request` lines: `on_control(request)`, then the
/// script is told `done request`), and asserts that it passed.
fn drive_script(name: &str, port: u16, env: &[(&str, String)], mut on_control: impl FnMut(&str)) {
    let mut script = Command::new("node")
        .arg(browser_dir().join(format!("{name}.mjs")))
        .env("NATTER_URL", format!("http://127.0.0.1:{port}/"))
        .env("NATTER_TCP", format!("127.0.0.1:{port}"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let mut to_script = script.stdin.take().unwrap();
    let lines = common::line_channel(script.stdout.take().unwrap());
    let mut stderr = script.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + SCRIPT_DEADLINE;
    let mut out = Vec::new();
    let mut exited_at = None;
    loop {
        // The script's output ends when it exits; a browser process it left behind could
        // keep the pipe open, so its exit is watched too (at the pace of this poll).
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Some(what) = line.strip_prefix("CONTROL ") {
                    on_control(what);
                    writeln!(to_script, "done {what}").unwrap();
                }
                out.push(line);
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                if exited_at.is_none() && script.try_wait().unwrap().is_some() {
                    exited_at = Some(now);
                }
                // Once it exited, what it wrote is read within a second.
                if exited_at.is_some_and(|t| now > t + Duration::from_secs(1)) {
                    break;
                }
                if now > deadline {
                    let _ = script.kill();
                    panic!("{name}.mjs ran longer than {SCRIPT_DEADLINE:?}; it said:\n{}", out.join("\n"));
                }
            }
        }
    }
    let status = script.wait().unwrap();
    let errors = errors.join().unwrap();
    let said = out.join("\n");
    assert!(
        status.success() && out.iter().any(|l| l == &format!("PASS {name}")),
        "{name}.mjs failed ({status}):\n{said}\n{errors}"
    );
}

#[test]
fn the_page_chats_with_native_and_text_mode_users() {
    if browser_available() {
        run_script("chat");
    }
}

#[test]
fn the_page_scrolls_back_through_500_stored_messages() {
    if browser_available() {
        run_script("history");
    }
}

#[test]
fn the_page_loses_and_doubles_nothing_across_a_network_drop_and_a_server_restart() {
    if browser_available() {
        run_script("reconnect");
    }
}

#[test]
fn hostile_text_renders_as_text() {
    if browser_available() {
        run_script("hostile");
    }
}

#[test]
fn the_page_works_on_a_390x844_phone() {
    if browser_available() {
        run_script("phone");
    }
}

#[test]
fn the_page_refuses_bad_nicknames_and_keeps_an_account_login_as_a_token_never_the_password() {
    if browser_available() {
        run_script("account");
    }
}

/// The terminal client in the same room as the page: `natter connect` in tmux; the script
/// asks for what the TUI types (`CONTROL tui-say TEXT`) and what it must show
/// (`CONTROL tui-sees TEXT`).
#[test]
fn the_page_chats_with_a_terminal_client_user() {
    if !browser_available() || !tmux_util::have_tmux() {
        return;
    }
    let tmux = tmux_util::Tmux::new();
    let tmux = &tmux;
    run_script_with("tui", &[], move |port| {
        let command = format!(
            "env XDG_CONFIG_HOME=/nonexistent-natter-test XDG_DATA_HOME=/nonexistent-natter-test TERM=xterm-256color {} connect 127.0.0.1:{port} --nick termie",
            common::natter_bin().to_str().unwrap()
        );
        let pane = tmux.start("tui", &command, 100, 30);
        pane.wait("the TUI connected", |s| s.contains("connected"));
        Box::new(move |request: &str| {
            if let Some(text) = request.strip_prefix("tui-say ") {
                pane.say(text);
            } else if let Some(text) = request.strip_prefix("tui-sees ") {
                pane.wait_for(text);
            } else {
                panic!("tui.mjs asked for {request:?}");
            }
        })
    });
}

#[test]
fn the_page_asks_for_a_servers_password_when_it_has_one() {
    if browser_available() {
        run_script_with("server_password", &["--password", "sesame"], |_| {
            Box::new(|request| panic!("server_password.mjs asked for {request:?}"))
        });
    }
}

/// A loopback port that refuses connections while the returned socket lives (bound, never
/// listening), so that no other test takes it before the node meant for it starts.
fn reserved_port() -> (tokio::net::TcpSocket, u16) {
    let held = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    held.bind("127.0.0.1:0".parse().unwrap()).expect("bind a loopback port");
    let port = held.local_addr().unwrap().port();
    (held, port)
}

/// The page moves to another node of the chat (`tests/browser/failover.mjs`): node A serves
/// the page and names node B (`--web-peer`), B allows A's page (`--web-origin`); they run one
/// after the other on one SQLite file, as cluster nodes share their store. After the script,
/// B's store holds every message once.
#[test]
fn the_page_moves_to_another_node_and_catches_up_with_nothing_lost_or_doubled() {
    if !browser_available() {
        return;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let (held_a, port_a) = reserved_port();
    let (held_b, port_b) = reserved_port();
    let peer = format!("ws://127.0.0.1:{port_b}/ws");
    drop(held_a);
    let mut a = WebServer::start(&db, port_a, &["--web-peer", &peer]);
    assert_eq!(a.port, port_a);
    let mut held_b = Some(held_b);
    let mut b = None;
    drive_script("failover", port_a, &[("NATTER_PEER", peer.clone())], |request| match request {
        "kill-a" => a.kill(),
        "meanwhile" => {
            let c = WebServer::start(&db, 0, &[]);
            let mut ann = common::native(format!("127.0.0.1:{}", c.port).parse().unwrap(), "ann");
            for i in 1..=3 {
                ann.line(&format!(r##"{{"type":"send","room":"#lobby","text":"missed {i}","id":{i}}}"##));
                ann.expect(r#""type":"ack""#);
            }
        }
        "start-b" => {
            drop(held_b.take());
            let origin = format!("http://127.0.0.1:{port_a}");
            let node = WebServer::start(&db, port_b, &["--web-origin", &origin]);
            assert_eq!(node.port, port_b);
            b = Some(node);
        }
        request => panic!("failover.mjs asked for {request:?}"),
    });
    let b = b.expect("node B started");
    let mut checker = common::native(format!("127.0.0.1:{}", b.port).parse().unwrap(), "checker");
    checker.line(r##"{"type":"history","room":"#lobby","limit":100,"id":"h"}"##);
    let history = common::json(&checker.expect(r#""type":"history""#));
    let texts: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        ["before the crash", "acked before", "missed 1", "missed 2", "missed 3", "typed with no node up"]
    );
}

/// The page is told its server's other nodes by `/config.json`, and its
/// Content-Security-Policy lets it open WebSockets to them (and nothing else).
#[test]
fn the_page_is_told_the_other_nodes_and_allowed_to_reach_them() {
    let dir = tempfile::tempdir().unwrap();
    let peers = "wss://b.example/ws,WSS://C.example:8443/ws";
    let server = WebServer::start(&dir.path().join("natter.db"), 0, &["--web-peer", peers]);
    let mut http = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    http.write_all(b"GET /config.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    http.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"peers":["wss://b.example/ws","wss://c.example:8443/ws"]}"#), "{answer}");
    let csp =
        answer.lines().find(|l| l.to_ascii_lowercase().starts_with("content-security-policy:")).unwrap();
    assert!(
        csp.contains("connect-src 'self' wss://b.example/ws wss://c.example:8443/ws;")
            && csp.contains("script-src 'self';"),
        "{csp}"
    );

    // A bad URL stops the server at start with what to write instead.
    let out = Command::new(common::natter_bin())
        .args(["serve", "--tcp", "127.0.0.1:0", "--udp", "off", "--irc", "off", "--db", ":memory:"])
        .args(["--web-peer", "wss://b.example/ws; script-src *"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("web_peers")
            && stderr.contains("wss://chat2.example.org/ws"),
        "{stderr}"
    );
}

/// Not a check: writes the screenshots of docs/web.md (`tests/browser/screenshots.mjs`).
#[test]
#[ignore = "writes docs/web-*.png; run by hand: cargo test --test web_page screenshots -- --ignored"]
fn screenshots() {
    if browser_available() {
        run_script("screenshots");
    }
}

/// The page's pure parts (slash commands, link targets, mentions, backoff) in node alone,
/// from the page's own modules (`tests/browser/units.mjs`).
#[test]
fn the_pages_commands_links_mentions_and_backoff() {
    if !tmux_util::tools_available(&[("node", "--version")]) {
        return;
    }
    let out = Command::new("node").arg(browser_dir().join("units.mjs")).output().expect("run node");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("PASS units"),
        "units.mjs failed ({}):\n{said}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
