//! TLS on the server's TCP doors, end to end over real sockets with the in-process server:
//! native, text mode and IRC inside TLS on the main port, IRC on the IRC TLS port, large
//! output through TLS to a reader that falls behind, what a peer that does not finish (or
//! botches) its handshake gets, the clear-text answers to clients on the wrong side of TLS, and
//! certificate reloads.

mod harness;

use harness::{Client, TestServer, Watchdog, freeze_clock, json, settings};
use natter_client::tls::{ClientTls, Trust};
use natter_server::{Settings, TlsFiles};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long a test waits for something the server must do at once.
const WAIT: Duration = Duration::from_secs(5);

/// A self-signed certificate and key in a directory of their own.
struct Certs {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    fingerprint: String,
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let fingerprint = write_pair(&cert, &key);
    Certs { _dir: dir, cert, key, fingerprint }
}

/// Writes a fresh certificate and key over `cert` and `key`; returns its fingerprint.
fn write_pair(cert: &std::path::Path, key: &std::path::Path) -> String {
    let made = natter_server::cert::make(&["localhost".into(), "127.0.0.1".into()], 30).unwrap();
    std::fs::write(cert, &made.cert_pem).unwrap();
    std::fs::write(key, &made.key_pem).unwrap();
    made.fingerprint
}

fn tls_settings(certs: &Certs) -> Settings {
    Settings {
        tls: Some(TlsFiles { cert: certs.cert.clone(), key: certs.key.clone() }),
        irc_tls: Some("127.0.0.1:0".into()),
        irc_tls_required: true,
        ..settings()
    }
}

/// A line-oriented client over TLS.
struct TlsClient {
    reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    /// The fingerprint of the certificate the server presented.
    fingerprint: String,
    next_ping: u64,
}

impl TlsClient {
    /// Connects and runs the handshake, accepting any certificate (the test checks which).
    async fn connect(addr: SocketAddr) -> Self {
        let tls = ClientTls::new(&addr.to_string(), Trust::Anything).unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (stream, _) =
            timeout(WAIT, tls.connect(tcp)).await.expect("handshake in time").expect("handshake");
        let presented = stream.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec();
        let fingerprint = natter_proto::fingerprint::sha256(&presented);
        let (read, write) = tokio::io::split(stream);
        TlsClient {
            reader: BufReader::new(Box::new(read)),
            writer: Box::new(write),
            fingerprint,
            next_ping: 0,
        }
    }

    async fn native(addr: SocketAddr, nick: &str) -> Self {
        let mut c = Self::connect(addr).await;
        c.line(&format!(r#"{{"type":"hello","nick":"{nick}"}}"#)).await;
        c.expect(r#""type":"welcome""#).await;
        c.expect(r#""type":"joined""#).await;
        c
    }

    async fn line(&mut self, text: &str) {
        self.writer.write_all(format!("{text}\n").as_bytes()).await.unwrap();
        self.writer.flush().await.unwrap();
    }

    async fn next(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match timeout(WAIT, self.reader.read_until(b'\n', &mut buf)).await.expect("a line in time") {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(String::from_utf8_lossy(&buf).trim_end().to_string()),
        }
    }

    async fn until(&mut self, needle: &str) -> (Vec<String>, String) {
        let mut seen = Vec::new();
        while let Some(line) = self.next().await {
            if line.contains(needle) {
                return (seen, line);
            }
            seen.push(line);
        }
        panic!("connection closed before a line containing {needle:?}; saw {seen:#?}");
    }

    async fn expect(&mut self, needle: &str) -> String {
        self.until(needle).await.1
    }

    async fn ping(&mut self) -> Vec<String> {
        self.next_ping += 1;
        let id = self.next_ping;
        self.line(&format!(r#"{{"type":"ping","id":{id}}}"#)).await;
        self.until(&format!(r#"{{"type":"pong","id":{id}}}"#)).await.0
    }
}

/// Reads a raw connection to its end (bounded in time); what the server sent before closing.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    // A reset after the server closes with our bytes unread is an end too.
    let _ = timeout(WAIT, stream.read_to_end(&mut got)).await.expect("the server closes the connection");
    got
}

#[tokio::test]
async fn native_text_and_irc_all_work_inside_tls_on_the_main_port_and_irc_on_the_tls_port() {
    let certs = certs();
    let server = TestServer::start_with(tls_settings(&certs)).await;

    let mut ann = TlsClient::native(server.tcp, "ann").await;
    assert_eq!(ann.fingerprint, certs.fingerprint, "the configured certificate is presented");

    let mut bob = TlsClient::connect(server.tcp).await;
    bob.line("bob").await;
    bob.expect("Hello bob").await;

    let mut cid = TlsClient::connect(server.tcp).await;
    cid.line("NICK cid\r\nUSER c 0 * :Cid\r").await;
    cid.expect(" 001 cid ").await;
    cid.line("JOIN #lobby\r").await;
    cid.expect(" 366 cid #lobby ").await;

    let irc_tls = server.irc_tls.expect("the IRC TLS port is on");
    let mut dee = TlsClient::connect(irc_tls).await;
    assert_eq!(dee.fingerprint, certs.fingerprint);
    dee.line("NICK dee\r\nUSER d 0 * :Dee\r").await;
    dee.expect(" 001 dee ").await;
    dee.line("JOIN #lobby\r").await;
    dee.expect(" 366 dee #lobby ").await;

    // Plain clients still share the port.
    let mut eve = Client::native(server.tcp, "eve").await;

    bob.line("hello over tls").await;
    let m = json(&ann.expect(r#""type":"message""#).await);
    assert_eq!((m["from"].as_str(), m["text"].as_str()), (Some("bob"), Some("hello over tls")), "{m}");
    cid.expect(":bob!").await;
    dee.expect("PRIVMSG #lobby :hello over tls").await;
    let m = json(&eve.expect(r#""type":"message""#).await);
    assert_eq!(m["text"], "hello over tls", "{m}");
    server.shutdown("done").await;
}

/// Megabytes for a TLS reader that does not read: the server's writes fill the socket, TLS
/// records wait inside rustls, and everything arrives once it reads, in order, nothing lost
/// or repeated.
#[tokio::test]
async fn a_tls_reader_that_falls_behind_gets_every_message_in_order() {
    let certs = certs();
    let mut s = tls_settings(&certs);
    s.session.outbox = 20_000;
    s.session.outbox_kib = 64 * 1024;
    let server = TestServer::start_with(s).await;
    let mut ann = TlsClient::native(server.tcp, "ann").await;
    let mut bob = Client::native(server.tcp, "bob").await;
    const N: usize = 3000;
    let filler = "x".repeat(1000);
    for i in 0..N {
        bob.line(&format!(r##"{{"type":"send","room":"#lobby","text":"{i} {filler}"}}"##)).await;
    }
    // Every message is in the hub's hands once bob's ping is answered.
    bob.ping().await;
    let mut next = 0;
    while next < N {
        let line = ann.next().await.expect("the server keeps the connection");
        if !line.contains(r#""type":"message""#) {
            continue;
        }
        let m = json(&line);
        let text = m["text"].as_str().unwrap();
        assert_eq!(text.split(' ').next(), Some(next.to_string().as_str()), "in order");
        next += 1;
    }
    assert!(ann.ping().await.iter().all(|l| !l.contains(r#""type":"message""#)), "nothing repeated");
    server.shutdown("done").await;
}

/// A peer that sends the start of a ClientHello and then nothing holds no more than its
/// registration time, and holds up no one else meanwhile.
#[tokio::test(start_paused = true)]
async fn a_stalled_handshake_is_closed_at_the_registration_deadline_while_others_connect() {
    let _watchdog = Watchdog::arm("stalled handshake", Duration::from_secs(30));
    let certs = certs();
    let mut s = tls_settings(&certs);
    s.session.register_timeout = Duration::from_secs(30);
    let server = TestServer::start_with(s).await;
    let _frozen = freeze_clock();
    let mut stalled = TcpStream::connect(server.tcp).await.unwrap();
    // A handshake record header announcing 512 bytes, and 4 of them.
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]).await.unwrap();
    let mut irc_stalled = TcpStream::connect(server.irc_tls.unwrap()).await.unwrap();
    irc_stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();

    // Others connect, over TLS and not, and talk.
    let mut ann = TlsClient::native(server.tcp, "ann").await;
    let mut bob = Client::native(server.tcp, "bob").await;
    bob.line(r##"{"type":"send","room":"#lobby","text":"still here"}"##).await;
    ann.expect("still here").await;

    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(read_to_close(&mut stalled).await.is_empty(), "nothing in clear text to a TLS peer");
    read_to_close(&mut irc_stalled).await;
    // The logged-in ones are unaffected.
    ann.ping().await;
    bob.ping().await;
    server.shutdown("done").await;
}

/// Garbage after the TLS byte, and a ClientHello cut short by a disconnect: the connection
/// ends, nothing panics, and the server goes on serving TLS.
#[tokio::test]
async fn garbage_after_the_tls_byte_and_a_truncated_client_hello_end_only_their_connection() {
    let certs = certs();
    let server = TestServer::start_with(tls_settings(&certs)).await;

    let mut garbage = TcpStream::connect(server.tcp).await.unwrap();
    let mut bytes = vec![0x16];
    bytes.extend((0..2000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    garbage.write_all(&bytes).await.unwrap();
    let answer = read_to_close(&mut garbage).await;
    assert!(!answer.starts_with(b"***"), "TLS peers get TLS alerts, not text: {answer:?}");

    // A record that claims 16 KiB and more than TLS allows.
    let mut oversized = TcpStream::connect(server.tcp).await.unwrap();
    oversized.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff]).await.unwrap();
    oversized.write_all(&[0u8; 4096]).await.unwrap();
    read_to_close(&mut oversized).await;

    let mut truncated = TcpStream::connect(server.tcp).await.unwrap();
    truncated.write_all(&[0x16, 0x03, 0x01, 0x00, 0xc0, 0x01, 0x00, 0x00, 0xbc, 0x03, 0x03]).await.unwrap();
    drop(truncated);

    let mut ann = TlsClient::native(server.tcp, "ann").await;
    ann.ping().await;
    server.shutdown("done").await;
}

#[tokio::test]
async fn without_a_certificate_a_client_hello_is_told_in_one_clear_text_line() {
    let server = TestServer::start().await;
    let mut hello = TcpStream::connect(server.tcp).await.unwrap();
    hello.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]).await.unwrap();
    let answer = String::from_utf8_lossy(&read_to_close(&mut hello).await).into_owned();
    assert_eq!(answer, "*** bye: this server does not speak TLS; connect without TLS\r\n");
    server.shutdown("done").await;
}

#[tokio::test]
async fn plain_irc_on_the_irc_tls_port_is_told_to_turn_tls_on() {
    let certs = certs();
    let server = TestServer::start_with(tls_settings(&certs)).await;
    let mut plain = Client::connect(server.irc_tls.unwrap()).await;
    plain.send(b"NICK ann\r\nUSER a 0 * :A\r\n").await;
    let rest = plain.rest().await;
    assert!(rest.starts_with("ERROR :") && rest.contains("TLS only"), "{rest:?}");
    server.shutdown("done").await;
}

#[tokio::test]
async fn a_bad_reload_keeps_the_old_certificate_and_a_good_one_reaches_new_connections_only() {
    let certs = certs();
    let server = TestServer::start_with(tls_settings(&certs)).await;
    let mut old = TlsClient::native(server.tcp, "old").await;
    assert_eq!(old.fingerprint, certs.fingerprint);

    std::fs::write(&certs.cert, "not a certificate").unwrap();
    let e = server.reload_tls().unwrap_err().to_string();
    assert!(e.contains("cert.pem") && e.contains("CERTIFICATE"), "{e}");
    assert_eq!(TlsClient::connect(server.tcp).await.fingerprint, certs.fingerprint, "old one kept");

    let renewed = write_pair(&certs.cert, &certs.key);
    assert_ne!(renewed, certs.fingerprint);
    server.reload_tls().unwrap();
    let mut new = TlsClient::native(server.tcp, "new").await;
    assert_eq!(new.fingerprint, renewed, "new handshakes get the new certificate");

    // The connection made before both reloads is untouched.
    old.line(r##"{"type":"send","room":"#lobby","text":"from before"}"##).await;
    new.expect("from before").await;
    old.ping().await;
    server.shutdown("done").await;
}

#[tokio::test]
async fn sts_tells_plain_irc_the_tls_port_and_tls_irc_how_long_to_keep_to_it() {
    let certs = certs();
    let mut s = tls_settings(&certs);
    s.sts_duration = Some(86_400);
    let server = TestServer::start_with(s).await;
    let port = server.irc_tls.unwrap().port();
    for plain_port in [server.irc, server.tcp] {
        let mut plain = Client::connect(plain_port).await;
        plain.send(b"CAP LS 302\r\n").await;
        let ls = plain.expect(" LS ").await;
        assert!(ls.contains(&format!(" sts=port={port}")) && !ls.contains("duration"), "{ls}");
    }
    let mut secure = TlsClient::connect(server.irc_tls.unwrap()).await;
    secure.line("CAP LS 302\r").await;
    let ls = secure.expect(" LS ").await;
    assert!(ls.contains(" sts=duration=86400") && !ls.contains("port="), "{ls}");
    server.shutdown("done").await;

    // A lone self-signed certificate would fail the check STS clients make: no STS unless
    // asked for.
    let server = TestServer::start_with(tls_settings(&certs)).await;
    let mut plain = Client::connect(server.irc).await;
    plain.send(b"CAP LS 302\r\n").await;
    let ls = plain.expect(" LS ").await;
    assert!(!ls.contains("sts"), "{ls}");
    server.shutdown("done").await;
}

#[tokio::test]
async fn require_tls_refuses_plain_logins_on_every_door_and_admits_tls_and_trusted_loopback() {
    let certs = certs();
    let mut s = tls_settings(&certs);
    s.require_tls = true;
    // Loopback is this test's only address: it stands for another machine here.
    s.connections.exempt_loopback = false;
    let server = TestServer::start_with(s.clone()).await;

    let mut native = Client::connect(server.tcp).await;
    native.line(r#"{"type":"hello","nick":"ann"}"#).await;
    let bye = json(&native.expect(r#""type":"bye""#).await);
    assert!(bye["reason"].as_str().unwrap().contains("requires TLS"), "{bye}");
    let mut text = Client::connect(server.tcp).await;
    text.line("bob").await;
    let rest = text.rest().await;
    assert!(rest.contains("*** bye: this server requires TLS"), "{rest}");
    assert!(!rest.contains("Hello bob"), "{rest}");
    let mut irc = Client::connect(server.irc).await;
    // STS-capable clients learn where TLS is before they try to log in.
    irc.send(b"CAP LS 302\r\nNICK cid\r\nUSER c 0 * :C\r\nCAP END\r\n").await;
    let rest = irc.rest().await;
    assert!(rest.contains("ERROR :") && rest.contains("requires TLS"), "{rest}");
    assert!(!rest.contains(" 001 "), "{rest}");
    // UDP is plain text too: a member from another machine is refused the same way.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let bye = udp_answer(&udp, server.udp, r#"{"type":"hello","nick":"fay"}"#, "bye").await;
    assert!(bye.contains("requires TLS"), "{bye}");

    let mut secure = TlsClient::native(server.tcp, "dee").await;
    secure.ping().await;
    server.shutdown("done").await;

    // By default this machine is trusted: a local bot needs no TLS.
    s.connections.exempt_loopback = true;
    let server = TestServer::start_with(s).await;
    let mut local = Client::native(server.tcp, "eve").await;
    local.ping().await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let welcome = udp_answer(&udp, server.udp, r#"{"type":"hello","nick":"fay"}"#, "welcome").await;
    assert!(welcome.contains("fay"), "{welcome}");
    server.shutdown("done").await;
}

/// Sends `datagram` from `socket` to `server` and returns the first answer containing
/// `needle` (failing the test after 10 s).
async fn udp_answer(
    socket: &tokio::net::UdpSocket,
    server: SocketAddr,
    datagram: &str,
    needle: &str,
) -> String {
    socket.send_to(datagram.as_bytes(), server).await.unwrap();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = timeout(Duration::from_secs(10), socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no datagram containing {needle:?}"))
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
        if answer.contains(needle) {
            return answer;
        }
    }
}

#[tokio::test]
async fn a_tls_client_on_the_plain_irc_port_is_told_where_tls_is() {
    let certs = certs();
    let server = TestServer::start_with(tls_settings(&certs)).await;
    let mut hello = TcpStream::connect(server.irc).await.unwrap();
    hello.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]).await.unwrap();
    let answer = String::from_utf8_lossy(&read_to_close(&mut hello).await).into_owned();
    assert!(answer.starts_with("ERROR :Closing Link: this port does not speak TLS"), "{answer:?}");
    // Plain IRC there is as it was.
    let mut ann = Client::connect(server.irc).await;
    ann.send(b"NICK ann\r\nUSER a 0 * :A\r\n").await;
    ann.expect(" 001 ann ").await;
    server.shutdown("done").await;
}
