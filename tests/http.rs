//! HTTP on natter's ports against the real server: the page and its files with their
//! security headers and cache validation on the main port, `--http ADDR` and `--http off`,
//! `--metrics ADDR` keeping the operations endpoints off the public ports, malformed and
//! oversized requests, and the page and its WebSocket over TLS.

mod common;

use common::{Server, native};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// An HTTP answer: status, headers (names lowercased), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn parse(bytes: &[u8]) -> Answer {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP head");
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Answer { status, headers, body: bytes[end + 4..].to_vec() }
    }
}

/// Sends `request` bytes as they are and reads until the server closes.
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n");
    Answer::parse(&exchange(addr, request.as_bytes()))
}

#[test]
fn the_main_port_serves_the_page_with_its_security_headers() {
    let server = Server::start(&[]);
    let page = get(server.tcp, "/", "");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.header("content-security-policy").unwrap();
    for directive in
        ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]
    {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(String::from_utf8_lossy(&page.body).contains("/assets/app.js"));
    let script = get(server.tcp, "/assets/app.js", "");
    assert_eq!((script.status, script.header("content-type")), (200, Some("text/javascript; charset=utf-8")));
    // The browser's copy is revalidated, not downloaded again.
    let etag = script.header("etag").unwrap().to_string();
    let again = get(server.tcp, "/assets/app.js", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((again.status, again.body.len()), (304, 0));
    let head = Answer::parse(&exchange(
        server.tcp,
        format!("HEAD /assets/style.css HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.tcp)
            .as_bytes(),
    ));
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("content-type"), Some("text/css; charset=utf-8"));
    // Without --metrics, the health check is served with the page.
    assert_eq!(get(server.tcp, "/healthz", "").status, 200);
}

#[test]
fn unknown_paths_methods_and_broken_requests_get_the_right_status() {
    let server = Server::start(&[]);
    for path in ["/nope", "/assets/../Cargo.toml", "/assets/", "/assets/app.js/x", "/%00"] {
        let answer = get(server.tcp, path, "");
        assert_eq!(answer.status, 404, "{path}");
        assert!(answer.header("content-security-policy").is_some(), "{path}: every answer is secured");
    }
    let post = Answer::parse(&exchange(
        server.tcp,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    ));
    assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")));
    // A broken header line.
    let broken = Answer::parse(&exchange(server.tcp, b"GET / HTTP/1.1\r\nHost x\r\n\x00\x01\r\n\r\n"));
    assert_eq!(broken.status, 400);
    // Headers beyond the 16 KiB bound: refused, not buffered.
    let huge = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(40_000));
    let refused = exchange(server.tcp, huge.as_bytes());
    assert!(
        refused.is_empty() || Answer::parse(&refused).status == 431,
        "{}",
        String::from_utf8_lossy(&refused)
    );
    // Invalid UTF-8 and a bare newline request: answered, the server goes on.
    let odd = Answer::parse(&exchange(
        server.tcp,
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ));
    assert!(odd.status == 400 || odd.status == 404, "{}", odd.status);
    // Two requests on one connection, both answered in order.
    let both = exchange(
        server.tcp,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&both);
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("HTTP/1.1 404"), "{text}");
    // Chat still works next to all that.
    let mut ann = native(server.tcp, "ann");
    ann.ping();
}

#[test]
fn http_off_leaves_the_port_to_chat_clients() {
    let server = Server::start(&["--http", "off"]);
    let mut stream = TcpStream::connect(server.tcp).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 64];
    let n = stream.read(&mut first).unwrap();
    let text = String::from_utf8_lossy(&first[..n]);
    assert!(!text.starts_with("HTTP/"), "no HTTP with --http off: {text}");
}

#[test]
fn an_http_listener_of_its_own_serves_only_http() {
    let server = Server::start(&["--http", "127.0.0.1:0"]);
    let http = server.http.expect("listening http");
    assert_eq!(get(http, "/", "").status, 200);
    // The main port serves the page too.
    assert_eq!(get(server.tcp, "/", "").status, 200);
    // A chat client on the HTTP port gets an HTTP error, not a session.
    let answer = exchange(http, b"{\"type\":\"hello\",\"nick\":\"lost\"}\n");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn a_metrics_listener_keeps_the_operations_endpoints_off_the_public_ports() {
    let server = Server::start(&["--metrics", "127.0.0.1:0"]);
    let ops = server.metrics.expect("listening metrics");
    let health = get(ops, "/healthz", "");
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok\n"[..]));
    assert_eq!(get(server.tcp, "/healthz", "").status, 404);
    // The operations port serves no page.
    assert_eq!(get(ops, "/", "").status, 404);
}

#[test]
fn the_page_and_its_websocket_work_over_tls_on_the_main_port() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new(common::natter_bin())
        .args([
            "cert",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--host",
            "localhost",
        ])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let server = Server::start(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tls =
            natter_client::tls::ClientTls::new(&server.tcp.to_string(), natter_client::tls::Trust::Anything)
                .unwrap();
        // The page over HTTPS.
        let tcp = tokio::net::TcpStream::connect(server.tcp).await.unwrap();
        let (mut stream, _) = tls.connect(tcp).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut page = Vec::new();
        let _ = stream.read_to_end(&mut page).await;
        assert_eq!(Answer::parse(&page).status, 200);
        // A native session over WSS.
        let tcp = tokio::net::TcpStream::connect(server.tcp).await.unwrap();
        let (mut stream, _) = tls.connect(tcp).await.unwrap();
        stream
            .write_all(
                b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            )
            .await
            .unwrap();
        let hello = br#"{"type":"hello","nick":"secure"}"#;
        let mut frame = vec![0x81, 0x80 | hello.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(hello);
        stream.write_all(&frame).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(r#""type":"welcome""#) {
            let n = tokio::time::timeout(WAIT, stream.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 101"));
    });
}
