//! What an administrator installs beside the binary: `natter --version` naming the commit,
//! `natter completions`, and `contrib/natter.service`, whose command line must start the
//! server.

mod common;

use common::{native, natter_bin, wait_exit};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn natter(args: &[&str]) -> std::process::Output {
    Command::new(natter_bin()).args(args).output().unwrap()
}

#[test]
fn the_version_names_the_commit_the_binary_was_built_from() {
    let out = natter(&["--version"]);
    assert!(out.status.success());
    let version = String::from_utf8(out.stdout).unwrap();
    assert!(version.starts_with(&format!("natter {} (commit ", env!("CARGO_PKG_VERSION"))), "{version}");
    // Built from a git checkout (as here and in CI), it is that checkout's commit.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_string());
    if let Some(head) = head {
        assert!(version.contains(&format!("(commit {head}")), "{version} is not built from {head}");
    }
    // Every subcommand names the same build.
    let serve = String::from_utf8(natter(&["serve", "--version"]).stdout).unwrap();
    let build = version.split_once(' ').unwrap().1;
    assert!(serve.starts_with("natter-serve ") && serve.ends_with(build), "{serve}");
}

#[test]
fn completions_are_printed_for_each_shell_and_an_unknown_one_is_named() {
    for (shell, marker) in
        [("bash", "complete -F _natter"), ("zsh", "#compdef natter"), ("fish", "complete -c natter")]
    {
        let out = natter(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {script:.200}");
        for sub in ["serve", "connect", "direct", "bench", "user", "cert"] {
            assert!(script.contains(sub), "{shell} does not complete {sub}");
        }
    }
    let out = natter(&["completions", "tcsh"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("invalid value 'tcsh'") && err.contains("bash") && err.contains("fish"), "{err}");
}

/// A reader that stops early (`natter completions bash | head -1`) ends the command quietly and
/// successfully, as for other Unix tools: no panic, no error.
#[test]
fn completions_piped_into_a_reader_that_stops_early_end_quietly() {
    let mut child = Command::new(natter_bin())
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before the first byte is written (or, should the child be quicker,
    // before the last: the script is larger than a pipe's 64 KiB, checked below, so its
    // write cannot end before the reader is gone).
    drop(child.stdout.take());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(wait_exit(&mut child).success(), "{err}");
    assert!(err.is_empty(), "{err}");
    let whole = natter(&["completions", "bash"]).stdout.len();
    assert!(whole > 64 * 1024, "the script ({whole} bytes) fits a pipe: this test proves nothing");
}

/// A server whose standard output is closed after its first line (`natter serve | head -1`, a
/// supervisor that stopped reading) goes on serving, and stops cleanly on SIGTERM.
#[test]
fn a_server_whose_output_is_closed_goes_on_serving() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let child = Command::new(natter_bin())
        .args(["serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--irc", "127.0.0.1:0"])
        .args(["--db", db.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Killed(child);
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let tcp = first.trim().strip_prefix("listening tcp ").expect(&first).parse().unwrap();
    // Whatever it writes from now on meets a closed pipe: the "listening" lines may all be in
    // the pipe already, but "stopped" at the end never is.
    drop(stdout);
    let mut ann = native(tcp, "ann");
    ann.ping();
    Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status().unwrap();
    assert!(wait_exit(&mut server.0).success());
}

/// A child process killed when the test ends, passed or failed.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The unit's `ExecStart`, with its paths moved to a temporary directory, starts a server.
#[test]
fn the_systemd_unit_starts_the_server_and_is_sandboxed() {
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/natter.service")).unwrap();
    for key in [
        "DynamicUser=yes",
        "StateDirectory=natter",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateDevices=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == key), "{key} missing");
    }
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    let mut words = exec.split(' ');
    assert_eq!(words.next(), Some("/usr/local/bin/natter"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("natter.toml");
    std::fs::write(&config, "tcp = \"127.0.0.1:0\"\nudp = \"off\"\nirc = \"off\"\n").unwrap();
    let db = dir.path().join("natter.db");
    let args: Vec<String> = words
        .map(|w| match w {
            "/etc/natter/natter.toml" => config.to_str().unwrap().to_string(),
            "/var/lib/natter/natter.db" => db.to_str().unwrap().to_string(),
            other => other.to_string(),
        })
        .collect();
    let mut child = Command::new(natter_bin())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let listening = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("listening tcp "));
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "the unit's command line did not start a server: {args:?}");
    assert!(db.exists(), "the database is where the unit says");
}
