//! A real IRC client against the IRC front door: irssi runs in tmux (its own socket, a
//! throwaway home, no user config), connects to natter's IRC port (plain, and over TLS on the
//! IRC TLS port and on the main port), joins `#lobby` and talks with a native client in the
//! same room, both ways, plain and `/me`.
//!
//! Skipped with a message when irssi or tmux is missing, unless `NATTER_REQUIRE_TOOLS` is set
//! (`.ci/run` sets it after installing both), in which case a missing client fails.

mod common;
mod tmux_util;

use common::{Server, json, native};
use tmux_util::{Tmux, tools_available};

const NICK: &str = "irssi_user";
/// irssi's configuration: its flood queue (by default 5 commands at once, then one per 2.2 s)
/// would make the test wait seconds for each message.
const IRSSI_CONFIG: &str = r#"settings = {
  core = { real_name = "natter test"; user_name = "irssi"; };
  "irc/core" = { cmd_queue_speed = "0msec"; cmds_max_at_once = "1000"; };
};
"#;

#[test]
fn irssi_joins_lobby_and_talks_with_a_native_client() {
    if !tools_available(&[("irssi", "--version"), ("tmux", "-V")]) {
        return;
    }
    let server = Server::start(&[]);
    let irc = server.irc.expect("irc port");
    talk(&server, irc, false, "nat");
}

/// irssi over TLS, on the IRC TLS port and on the main port (which tells TLS from its first
/// byte). irssi does not verify the self-signed certificate here: what is tested is natter's
/// TLS, not irssi's trust store.
#[test]
fn irssi_over_tls_on_the_irc_tls_port_and_the_main_port() {
    if !tools_available(&[("irssi", "--version"), ("tmux", "-V")]) {
        return;
    }
    let (server, _certs) = tls_server();
    talk(&server, server.irc_tls.expect("the IRC TLS port"), true, "nat");
    talk(&server, server.tcp, true, "nat2");
}

/// A server with a fresh self-signed certificate and its IRC TLS port; the directory holding
/// the certificate lives as long as the second value.
fn tls_server() -> (Server, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    let made = natter_server::cert::make(&["127.0.0.1".into()], 30).unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, &made.cert_pem).unwrap();
    std::fs::write(&key, &made.key_pem).unwrap();
    let server = Server::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--irc-tls",
        "127.0.0.1:0",
    ]);
    (server, certs)
}

/// irssi connects to `port` (over TLS when `tls`), joins #lobby and talks with a native client
/// logged in as `nat_nick`.
fn talk(server: &Server, port: std::net::SocketAddr, tls: bool, nat_nick: &str) {
    let mut nat = native(server.tcp, nat_nick);

    // A throwaway home: irssi reads and writes nothing of the user's.
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().to_str().expect("UTF-8 temp path");
    std::fs::create_dir(home.path().join("irssi")).unwrap();
    let config = match tls {
        false => IRSSI_CONFIG.to_string(),
        // A server entry is the way to ask irssi for TLS at start; it connects by itself.
        true => format!(
            "{IRSSI_CONFIG}servers = ( {{ address = \"{}\"; chatnet = \"natter\"; port = \"{}\"; \
             use_tls = \"yes\"; tls_verify = \"no\"; autoconnect = \"yes\"; }} );\n\
             chatnets = {{ natter = {{ type = \"IRC\"; }}; }};\n",
            port.ip(),
            port.port()
        ),
    };
    std::fs::write(home.path().join("irssi/config"), config).unwrap();
    let connect = match tls {
        false => format!("-c {} -p {}", port.ip(), port.port()),
        true => String::new(),
    };
    // tmux's socket in the temporary home too, so that nothing is left behind.
    let tmux = Tmux::at(home.path().join("tmux.sock"));
    let irssi = tmux.start(
        "irssi",
        &format!("env HOME={home_path} irssi --home={home_path}/irssi -n {NICK} {connect}"),
        120,
        40,
    );
    // Registration: natter's welcome, then the automatic join of #lobby reaches the native side.
    irssi.wait_for("Welcome to natter");
    let j = json(&nat.expect(r#""type":"join""#));
    assert_eq!((j["nick"].as_str(), j["room"].as_str()), (Some(NICK), Some("#lobby")), "{j}");

    // `/join` of a channel already joined brings its window to the front.
    irssi.say("/join #lobby");
    let screen = irssi.wait_for("has joined #lobby");
    // The ident between the brackets is the server's business (`irc` or the USER name).
    assert!(
        screen.lines().any(|l| l.contains(&format!(" {NICK} [")) && l.contains("@127.0.0.1] has joined")),
        "{screen}"
    );
    irssi.wait_for("[#lobby]");

    // IRC to native, plain and action.
    irssi.say("hello from irssi");
    let m = json(&nat.expect(r#""type":"message""#));
    assert_eq!(
        (m["room"].as_str(), m["from"].as_str(), m["text"].as_str()),
        (Some("#lobby"), Some(NICK), Some("hello from irssi")),
        "{m}"
    );
    irssi.say("/me waves from irssi");
    let m = json(&nat.expect(r#""type":"message""#));
    assert_eq!((m["text"].as_str(), m["action"].as_bool()), (Some("waves from irssi"), Some(true)), "{m}");

    // Native to IRC, plain and action, as irssi shows them.
    nat.line(r##"{"type":"send","room":"#lobby","text":"hello irssi, from native"}"##);
    irssi.wait_for(&format!("< {nat_nick}> hello irssi, from native"));
    nat.line(r##"{"type":"send","room":"#lobby","text":"nods","action":true}"##);
    irssi.wait_for(&format!(" * {nat_nick} nods"));

    // Leaving: irssi's QUIT reaches the native side with its reason.
    irssi.say("/quit see you");
    let q = json(&nat.expect(r#""type":"quit""#));
    assert_eq!(q["nick"].as_str(), Some(NICK), "{q}");
}

/// irssi over TLS with SASL PLAIN, as its users set it up (`/network add -sasl_mechanism
/// PLAIN ...` writes these settings): it logs in to its account before registering, and the
/// other users see the account.
#[test]
fn irssi_logs_in_with_sasl_plain_over_tls() {
    if !tools_available(&[("irssi", "--version"), ("tmux", "-V")]) {
        return;
    }
    let (server, _certs) = tls_server();
    assert!(common::user(&server.db, &["add", NICK], "correct horse battery\n"));
    let port = server.irc_tls.expect("the IRC TLS port");
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().to_str().expect("UTF-8 temp path");
    std::fs::create_dir(home.path().join("irssi")).unwrap();
    let config = format!(
        "{IRSSI_CONFIG}servers = ( {{ address = \"{}\"; chatnet = \"natter\"; port = \"{}\"; \
         use_tls = \"yes\"; tls_verify = \"no\"; autoconnect = \"yes\"; }} );\n\
         chatnets = {{ natter = {{ type = \"IRC\"; sasl_mechanism = \"PLAIN\"; \
         sasl_username = \"{NICK}\"; sasl_password = \"correct horse battery\"; }}; }};\n",
        port.ip(),
        port.port()
    );
    std::fs::write(home.path().join("irssi/config"), config).unwrap();
    let tmux = Tmux::at(home.path().join("tmux.sock"));
    let irssi = tmux.start(
        "irssi",
        &format!("env HOME={home_path} irssi --home={home_path}/irssi -n {NICK}"),
        120,
        40,
    );
    irssi.wait_for(&format!("You are now logged in as {NICK}"));
    irssi.wait_for("Welcome to natter");
    let mut nat = native(server.tcp, "nat");
    nat.line(&format!(r#"{{"type":"whois","nick":"{NICK}","id":"w"}}"#));
    let info = json(&nat.expect(r#""type":"user_info""#));
    assert_eq!(info["user"]["account"], NICK, "{info}");
}
