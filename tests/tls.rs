//! TLS end to end with the real binary and real clients: `openssl s_client` in text mode and
//! IRC on the main port and the IRC TLS port, `natter connect --tls` (trust on first use, a
//! pinned fingerprint, a changed certificate), `natter cert`, and SIGHUP reloads.

mod common;
mod tmux_util;

use common::natter_bin;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// Lines a child writes, read by a thread of their own.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns it.
fn expect(lines: &Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line containing {needle:?} within {WAIT:?}; saw {seen:#?}"),
        }
    }
}

/// `natter serve` with a certificate, its stderr (the log) readable.
struct TlsServer {
    child: Child,
    tcp: SocketAddr,
    irc_tls: SocketAddr,
    log: Receiver<String>,
    dir: tempfile::TempDir,
    fingerprint: String,
    db: PathBuf,
}

impl TlsServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fingerprint = make_pair(dir.path());
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let db = dir.path().join("natter.db");
        let mut child = Command::new(natter_bin())
            .args([
                "serve",
                "--tcp",
                "127.0.0.1:0",
                "--udp",
                "off",
                "--irc",
                "off",
                "--db",
                db.to_str().unwrap(),
            ])
            .args([
                "--irc-tls",
                "127.0.0.1:0",
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ])
            .env("NATTER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = lines_of(child.stdout.take().unwrap());
        let log = lines_of(child.stderr.take().unwrap());
        let tcp = expect(&out, "listening tcp ").rsplit(' ').next().unwrap().parse().unwrap();
        let irc_tls = expect(&out, "listening irc-tls ").rsplit(' ').next().unwrap().parse().unwrap();
        let announced = expect(&out, "tls sha256 ");
        assert!(announced.ends_with(&fingerprint), "{announced}");
        TlsServer { child, tcp, irc_tls, log, dir, fingerprint, db }
    }

    /// Replaces the certificate files with a new pair, sends SIGHUP and waits for the log to
    /// say it was taken; returns the new fingerprint.
    fn renew(&mut self) -> String {
        let fingerprint = make_pair(self.dir.path());
        self.hangup();
        expect(&self.log, "TLS certificate reloaded");
        fingerprint
    }

    fn hangup(&self) {
        Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().unwrap();
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes cert.pem and key.pem in `dir` with `natter cert --force`; returns the fingerprint
/// it printed.
fn make_pair(dir: &Path) -> String {
    let out = Command::new(natter_bin())
        .args(["cert", "--host", "localhost", "--host", "127.0.0.1", "--force"])
        .args([
            "--cert",
            dir.join("cert.pem").to_str().unwrap(),
            "--key",
            dir.join("key.pem").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().find(|l| l.starts_with("sha256 fingerprint: ")).expect("a fingerprint");
    line["sha256 fingerprint: ".len()..].to_string()
}

/// `openssl s_client` connected to `addr`, reading what it prints.
struct SClient {
    child: Child,
    stdin: ChildStdin,
    out: Receiver<String>,
}

impl SClient {
    fn connect(addr: SocketAddr) -> Self {
        Self::connect_with(addr, &[])
    }

    /// Connects with more `s_client` arguments (a client certificate: `-cert`, `-key`).
    fn connect_with(addr: SocketAddr, extra: &[&str]) -> Self {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &addr.to_string()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = lines_of(child.stdout.take().unwrap());
        SClient { child, stdin, out }
    }

    fn send(&mut self, text: &str) {
        self.stdin.write_all(text.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for SClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_openssl() -> bool {
    tmux_util::tools_available(&[("openssl", "version")])
}

#[test]
fn openssl_s_client_speaks_text_mode_and_irc_over_tls_on_both_ports() {
    if !have_openssl() {
        return;
    }
    let server = TlsServer::start();
    let mut ann = SClient::connect(server.tcp);
    ann.send("ann\n");
    expect(&ann.out, "Hello ann");
    let mut bob = SClient::connect(server.tcp);
    bob.send("NICK bob\r\nUSER b 0 * :Bob\r\nJOIN #lobby\r\n");
    expect(&bob.out, " 001 bob ");
    expect(&bob.out, " 366 bob #lobby ");
    let mut cid = SClient::connect(server.irc_tls);
    cid.send("NICK cid\r\nUSER c 0 * :Cid\r\nJOIN #lobby\r\n");
    expect(&cid.out, " 001 cid ");
    expect(&cid.out, " 366 cid #lobby ");

    ann.send("hello from openssl\n");
    expect(&bob.out, "PRIVMSG #lobby :hello from openssl");
    expect(&cid.out, "PRIVMSG #lobby :hello from openssl");
    cid.send("PRIVMSG #lobby :and back\r\n");
    expect(&ann.out, "and back");
}

/// A client certificate made by `natter cert` in a directory of its own (kept as long as the
/// first value), its fingerprint, and the `s_client` arguments that present it.
fn client_certificate() -> (tempfile::TempDir, String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let fingerprint = make_pair(dir.path());
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let args = vec!["-cert".into(), path("cert.pem"), "-key".into(), path("key.pem")];
    (dir, fingerprint, args)
}

/// SASL EXTERNAL: a client certificate registered to an account (`natter user cert`) logs in
/// before registration; the same certificate unregistered, or none, does not, and a client
/// without one is not offered EXTERNAL.
#[test]
fn a_registered_client_certificate_logs_in_with_sasl_external() {
    if !have_openssl() {
        return;
    }
    let server = TlsServer::start();
    let (_mine, fingerprint, with_cert) = client_certificate();
    let with_cert: Vec<&str> = with_cert.iter().map(String::as_str).collect();
    assert!(common::user(&server.db, &["add", "ann"], "correct horse\n"));
    let mut c = SClient::connect_with(server.irc_tls, &with_cert);
    c.send("CAP LS 302\r\n");
    let ls = expect(&c.out, " CAP * LS ");
    assert!(ls.contains(" sasl=PLAIN,SCRAM-SHA-256,EXTERNAL"), "{ls}");
    c.send("CAP REQ :sasl\r\nAUTHENTICATE EXTERNAL\r\n");
    expect(&c.out, "AUTHENTICATE +");
    c.send("AUTHENTICATE +\r\n");
    expect(&c.out, " 904 ");
    assert!(common::user(&server.db, &["cert", "ann", "add", &fingerprint.to_lowercase()], ""));
    // Another account's name as the authorization identity: refused.
    c.send("AUTHENTICATE EXTERNAL\r\n");
    expect(&c.out, "AUTHENTICATE +");
    c.send("AUTHENTICATE Ym9i\r\n");
    expect(&c.out, "SASL: the certificate is not registered to that account");
    c.send("AUTHENTICATE EXTERNAL\r\n");
    expect(&c.out, "AUTHENTICATE +");
    c.send("AUTHENTICATE +\r\n");
    expect(&c.out, " 900 * *!*@* ann :You are now logged in as ann");
    expect(&c.out, " 903 ");
    c.send("NICK ann\r\nUSER a 0 * :A\r\nCAP END\r\nWHOIS ann\r\n");
    expect(&c.out, " 330 ann ann ann :is logged in as");

    let mut plain = SClient::connect(server.tcp);
    plain.send("CAP LS 302\r\n");
    let ls = expect(&plain.out, " CAP * LS ");
    assert!(ls.contains(" sasl=PLAIN,SCRAM-SHA-256 "), "no EXTERNAL without a certificate: {ls}");
    plain.send("AUTHENTICATE EXTERNAL\r\n");
    expect(&plain.out, " 908 * PLAIN,SCRAM-SHA-256 ");
    // Unregistered, the certificate logs in no more.
    assert!(common::user(&server.db, &["cert", "ann", "del", &fingerprint], ""));
    assert!(!common::user(&server.db, &["cert", "ann", "del", &fingerprint], ""));
    let mut again = SClient::connect_with(server.irc_tls, &with_cert);
    again.send("AUTHENTICATE EXTERNAL\r\nAUTHENTICATE +\r\n");
    expect(&again.out, " 904 ");
}

/// `NickServ CERT`: a user logged in over TLS with a client certificate registers it for
/// itself, lists it, logs in with it by EXTERNAL on the next connection, and removes it.
#[test]
fn nickserv_cert_registers_the_connections_certificate_for_sasl_external() {
    if !have_openssl() {
        return;
    }
    let server = TlsServer::start();
    let (_mine, fingerprint, with_cert) = client_certificate();
    let with_cert: Vec<&str> = with_cert.iter().map(String::as_str).collect();
    let mut c = SClient::connect_with(server.irc_tls, &with_cert);
    c.send("NICK ann\r\nUSER a 0 * :A\r\n");
    expect(&c.out, " 001 ann ");
    c.send("PRIVMSG NickServ :CERT ADD\r\n");
    expect(&c.out, "NOTICE ann :You are not logged in");
    c.send("PRIVMSG NickServ :REGISTER correct-horse\r\n");
    expect(&c.out, " 900 ann ");
    c.send("PRIVMSG NickServ :CERT ADD not-a-fingerprint\r\n");
    expect(&c.out, "that is not a SHA-256 fingerprint");
    c.send("PRIVMSG NickServ :CERT ADD\r\n");
    expect(&c.out, &format!(":{fingerprint} now logs in to ann (SASL EXTERNAL)"));
    expect(&c.out, &format!(":  {fingerprint}"));
    c.send("PRIVMSG NickServ :CERT LIST\r\n");
    expect(&c.out, ":ann's certificates:");
    expect(&c.out, &format!(":  {fingerprint}"));

    let mut again = SClient::connect_with(server.irc_tls, &with_cert);
    again.send("CAP REQ :sasl\r\nAUTHENTICATE EXTERNAL\r\nAUTHENTICATE +\r\n");
    expect(&again.out, " 903 ");

    c.send(&format!("PRIVMSG NickServ :CERT DEL {}\r\n", fingerprint.replace(':', "").to_lowercase()));
    expect(&c.out, &format!(":{fingerprint} no longer logs in to ann"));
    let mut third = SClient::connect_with(server.irc_tls, &with_cert);
    third.send("CAP REQ :sasl\r\nAUTHENTICATE EXTERNAL\r\nAUTHENTICATE +\r\n");
    expect(&third.out, " 904 ");
    // Without a certificate, CERT ADD needs the fingerprint.
    let mut plain = SClient::connect(server.tcp);
    plain.send("NICK bob\r\nUSER b 0 * :B\r\nPRIVMSG NickServ :REGISTER battery-staple\r\n");
    expect(&plain.out, " 900 bob ");
    plain.send("PRIVMSG NickServ :CERT ADD\r\n");
    expect(&plain.out, "you connected without a client certificate");
}

/// Runs `natter connect --line ARGS ADDR` with `input`, with its own XDG directories.
fn connect(data: &Path, addr: SocketAddr, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(natter_bin())
        .arg("connect")
        .args(["--line", "--no-reconnect", "--nick", "ann"])
        .args(args)
        .arg(addr.to_string())
        .env("XDG_DATA_HOME", data)
        .env("XDG_CONFIG_HOME", "/nonexistent-natter-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    common::wait_exit(&mut child);
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn natter_connect_trusts_on_first_use_then_pins_and_refuses_a_changed_certificate() {
    let mut server = TlsServer::start();
    let data = tempfile::tempdir().unwrap();
    let known_hosts: PathBuf = data.path().join("natter").join("known_hosts");

    let first = connect(data.path(), server.tcp, &["--tls"], "first\n");
    let (out, err) = text(&first);
    assert!(first.status.success(), "{out}{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("trusting it on first use") && all.contains(&server.fingerprint), "{all}");
    assert!(all.contains(known_hosts.to_str().unwrap()), "the file is named: {all}");
    assert!(out.contains("<ann> first"), "{out}");
    let remembered = std::fs::read_to_string(&known_hosts).unwrap();
    assert_eq!(remembered, format!("{} {}\n", server.tcp, server.fingerprint));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&known_hosts).unwrap().permissions().mode() & 0o777, 0o600);

    let again = connect(data.path(), server.tcp, &["--tls"], "again\n");
    let (out, err) = text(&again);
    assert!(again.status.success() && out.contains("<ann> again"), "{out}{err}");
    assert!(!format!("{out}{err}").contains("first use"), "announced once: {out}{err}");

    let pinned = connect(data.path(), server.tcp, &["--fingerprint", &server.fingerprint], "pinned\n");
    let (out, err) = text(&pinned);
    assert!(pinned.status.success() && out.contains("<ann> pinned"), "{out}{err}");

    let old = server.fingerprint.clone();
    let new = server.renew();
    let changed = connect(data.path(), server.tcp, &["--tls"], "must not be sent\n");
    let (out, err) = text(&changed);
    assert_eq!(changed.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("WARNING") && err.contains("has changed"), "{err}");
    assert!(err.contains(&old) && err.contains(&new), "both fingerprints: {err}");
    assert!(err.contains(&format!("delete line 1 of {}", known_hosts.display())), "{err}");
    assert!(!out.contains("must not be sent"), "{out}");

    let wrong_pin = connect(data.path(), server.tcp, &["--fingerprint", &old], "nor this\n");
    let (out, err) = text(&wrong_pin);
    assert_eq!(wrong_pin.status.code(), Some(1), "{out}{err}");
    assert!(err.contains(&new) && err.contains(&old) && err.contains("--fingerprint"), "{err}");

    let bad = connect(data.path(), server.tcp, &["--fingerprint", "AB:CD"], "");
    assert!(text(&bad).1.contains("invalid certificate fingerprint"), "{:?}", text(&bad));
}

#[test]
fn sighup_with_a_bad_file_keeps_the_old_certificate_and_a_new_one_reaches_new_connections_only() {
    if !have_openssl() {
        return;
    }
    let mut server = TlsServer::start();
    let mut old = SClient::connect(server.tcp);
    old.send("old\n");
    expect(&old.out, "Hello old");

    let cert = server.dir.path().join("cert.pem");
    let good = std::fs::read(&cert).unwrap();
    std::fs::write(&cert, "garbage").unwrap();
    server.hangup();
    let error = expect(&server.log, "TLS certificate not reloaded");
    assert!(error.contains("cert.pem") && error.contains("previous one"), "{error}");
    std::fs::write(&cert, good).unwrap();
    let data = tempfile::tempdir().unwrap();
    let still = connect(data.path(), server.tcp, &["--fingerprint", &server.fingerprint], "still\n");
    assert!(still.status.success(), "{:?}", text(&still));

    let renewed = server.renew();
    let fresh = connect(data.path(), server.tcp, &["--fingerprint", &renewed], "renewed\n");
    assert!(fresh.status.success(), "{:?}", text(&fresh));
    // The connection from before both signals still works.
    let mut watcher = SClient::connect(server.tcp);
    watcher.send("watcher\n");
    expect(&watcher.out, "Hello watcher");
    old.send("still talking\n");
    expect(&watcher.out, "still talking");
}

#[test]
fn natter_cert_writes_a_private_key_refuses_to_overwrite_and_prints_openssls_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let run = |force: bool| {
        let mut cmd = Command::new(natter_bin());
        cmd.args(["cert", "--host", "chat.example"]).args([
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]);
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };
    let made = run(false);
    let out = String::from_utf8_lossy(&made.stdout).into_owned();
    assert!(made.status.success(), "{made:?}");
    assert!(out.contains("natter serve") && out.contains("--tls-cert") && out.contains("--tls-key"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let printed = out.lines().find_map(|l| l.strip_prefix("sha256 fingerprint: ")).unwrap().to_string();

    let again = run(false);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(err.contains("already exists") && err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&cert).unwrap().len(),
        std::fs::metadata(&cert).unwrap().len() as usize
    );

    if have_openssl() {
        let openssl = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in", cert.to_str().unwrap()])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&openssl.stdout).into_owned();
        assert_eq!(line.trim().rsplit('=').next(), Some(printed.as_str()), "{line}");
    }
    assert!(run(true).status.success(), "--force replaces");
}
