//! End-to-end tests of `natter direct` with the real binary on loopback sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_secs(20);
const EXIT: Duration = Duration::from_secs(40);

/// A running `natter direct` with piped stdin/stdout (stderr merged into the line stream).
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
            .arg("direct")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn natter");
        let (tx, lines) = channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            thread::spawn(move || {
                let mut r = std::io::BufReader::new(stream);
                let mut line = Vec::new();
                while std::io::BufRead::read_until(&mut r, b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
                    let _ = tx.send(String::from_utf8_lossy(&line).trim_end().to_string());
                    line.clear();
                }
            });
        }
        let stdin = child.stdin.take();
        Peer { child, stdin, lines, seen: Vec::new() }
    }

    /// Waits for a line containing `needle` and returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no line with {needle:?} in time; got {:#?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("output ended without {needle:?}; got {:#?}", self.seen)
                }
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stdin.as_mut().unwrap().write_all(bytes).unwrap();
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit; returns success and all its output lines.
    fn finish(mut self) -> (bool, Vec<String>) {
        self.close_stdin();
        let deadline = Instant::now() + EXIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("natter did not exit in time; output so far {:#?}", self.seen);
            }
            // Polling interval of the wait for the observable exit.
            thread::sleep(Duration::from_millis(20));
        };
        // Readers end at EOF once the process is gone.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(l);
        }
        (status.success(), std::mem::take(&mut self.seen))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a listener and returns it with its loopback address and code.
fn listener(extra: &[&str]) -> (Peer, SocketAddr, String) {
    let mut args = vec!["listen", "--port", "0", "--bind", "127.0.0.1"];
    args.extend_from_slice(extra);
    let mut p = Peer::spawn(&args);
    let addr = p.wait_for("address: ").rsplit(' ').next().unwrap().parse().unwrap();
    let code = if extra.contains(&"--plain") {
        String::new()
    } else {
        p.wait_for("code: ").rsplit(' ').next().unwrap().to_string()
    };
    (p, addr, code)
}

fn texts_from_peer(lines: &[String]) -> Vec<String> {
    lines.iter().filter_map(|l| l.split_once(" <peer> ").map(|(_, t)| t.to_string())).collect()
}

fn numbered(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag} line {i}: héllo 你好")).collect()
}

fn as_input(lines: &[String]) -> Vec<u8> {
    lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect()
}

fn sas(p: &mut Peer) -> String {
    p.wait_for("secure channel established, verify: ").split("verify: ").nth(1).unwrap().to_string()
}

/// Both sides type `n` lines at once, then end their input; everything arrives in order.
fn chat_both_ways(extra: &[&str], n: usize, relay: Option<fn(SocketAddr) -> SocketAddr>, big: bool) {
    let (mut l, addr, code) = listener(extra);
    let target = relay.map_or(addr, |r| r(addr)).to_string();
    let mut args = vec!["connect", target.as_str(), "--code", code.as_str()];
    args.extend_from_slice(extra);
    let mut c = Peer::spawn(&args);
    let from_l = numbered("L", n);
    let mut from_c = numbered("C", n);
    if big {
        // Far larger than one datagram: split and reassembled.
        from_c.insert(n / 2, format!("big {}", "0123456789".repeat(2000)));
    }
    // Type before the channel is even up: nothing may be lost.
    l.send(&as_input(&from_l));
    c.send(&as_input(&from_c));
    assert_eq!(sas(&mut l), sas(&mut c), "both sides show the same verification words");
    // End both inputs together: each side waits for the other's goodbye.
    l.close_stdin();
    c.close_stdin();
    let (l_ok, l_out) = l.finish();
    let (c_ok, c_out) = c.finish();
    assert!(l_ok && c_ok, "clean exits\nL: {l_out:#?}\nC: {c_out:#?}");
    assert_eq!(texts_from_peer(&l_out), from_c, "listener got everything once, in order");
    assert_eq!(texts_from_peer(&c_out), from_l, "connector got everything once, in order");
    assert!(l_out.iter().any(|x| x.contains("the other side left")), "{l_out:#?}");
    assert!(c_out.iter().any(|x| x.contains("the other side left")), "{c_out:#?}");
}

#[test]
fn tcp_encrypted_both_directions() {
    chat_both_ways(&[], 3, None, false);
}

#[test]
fn tcp_full_duplex_200_lines_each() {
    chat_both_ways(&[], 200, None, false);
}

#[test]
fn udp_encrypted_through_lossy_relay() {
    chat_both_ways(&["--udp"], 100, Some(lossy_udp_relay), true);
}

#[test]
fn wrong_code_is_rejected_on_both_sides() {
    let (l, addr, code) = listener(&[]);
    let (number, words) = code.split_once('-').unwrap();
    let other = format!("{}-{words}", number.parse::<u16>().unwrap() % 999 + 1);
    let c = Peer::spawn(&["connect", &addr.to_string(), "--code", &other]);
    let (c_ok, c_out) = c.finish();
    let (l_ok, l_out) = l.finish();
    assert!(!c_ok && !l_ok, "both fail\nL: {l_out:#?}\nC: {c_out:#?}");
    assert!(c_out.iter().any(|x| x.contains("wrong code")), "{c_out:#?}");
    assert!(l_out.iter().any(|x| x.contains("wrong code")), "{l_out:#?}");
    assert!(!c_out.iter().chain(&l_out).any(|x| x.contains("secure channel established")));
}

/// Strangers first (three silent connections, a half-sent first packet, an HTTP probe), then
/// the real peer: it gets in at once. (The listener used to serve them one at a time, 10 s
/// each, so the peer waited 40 s and its own 30 s handshake deadline ran out.)
#[test]
fn idle_and_junk_connections_do_not_keep_the_peer_out() {
    let (mut l, addr, code) = listener(&[]);
    let idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(&[0, 35, 1]).unwrap();
    let mut junk = TcpStream::connect(addr).unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let junk_addr = junk.local_addr().unwrap();
    // Turned away at once, while the others still wait (their deadline is seconds away).
    l.wait_for(&format!("ignored a connection from {junk_addr} that is not natter direct"));
    let mut c = Peer::spawn(&["connect", &addr.to_string(), "--code", &code]);
    assert_eq!(sas(&mut l), sas(&mut c), "both sides show the same verification words");
    c.send(b"it is me\n");
    l.wait_for("<peer> it is me");
    drop((idle, stalled, junk));
    // End both inputs together: each side waits for the other's goodbye.
    l.close_stdin();
    c.close_stdin();
    let (l_ok, l_out) = l.finish();
    let (c_ok, c_out) = c.finish();
    assert!(l_ok && c_ok, "clean exits\nL: {l_out:#?}\nC: {c_out:#?}");
}

#[test]
fn malformed_code_is_refused_before_connecting() {
    let c = Peer::spawn(&["connect", "127.0.0.1:9", "--code", "7-orbitt-lantern"]);
    let (ok, out) = c.finish();
    assert!(!ok);
    assert!(out.iter().any(|x| x.contains("'orbitt' is not one of natter's code words")), "{out:#?}");
}

#[test]
fn tampered_tcp_stream_is_rejected() {
    let (l, addr, code) = listener(&[]);
    let relay = flipping_tcp_relay(addr);
    let mut c = Peer::spawn(&["connect", &relay.to_string(), "--code", &code]);
    c.wait_for("secure channel established");
    c.send(b"this message will be altered on the way\n");
    let (l_ok, l_out) = l.finish();
    let (_, c_out) = c.finish();
    assert!(!l_ok, "{l_out:#?}");
    assert!(l_out.iter().any(|x| x.contains("failed authentication")), "{l_out:#?}");
    assert!(texts_from_peer(&l_out).is_empty(), "nothing forged is shown: {l_out:#?}");
    assert!(c_out.iter().any(|x| x.contains("lost") || x.contains("closed")), "{c_out:#?}");
}

#[test]
fn plain_tcp_with_raw_socket_peer_sending_gbk_without_newline() {
    let (mut l, addr, _) = listener(&["--plain"]);
    l.wait_for("NOT private");
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(STEP)).unwrap();
    // "你好，世界" in GBK, no newline: the pause ends the message.
    raw.write_all(&[0xC4, 0xE3, 0xBA, 0xC3, 0xA3, 0xAC, 0xCA, 0xC0, 0xBD, 0xE7]).unwrap();
    assert!(l.wait_for("<peer>").ends_with("<peer> 你好，世界"));
    raw.write_all(b"second\r\n").unwrap();
    l.wait_for("<peer> second");
    // It sent GBK, so it reads GBK (--encoding auto, the default).
    l.wait_for("the other side writes GBK (GB18030)");
    l.send("réponse 好\n".as_bytes());
    assert_eq!(strict_gbk(&read_line(&mut raw)), "réponse 好\n");
    // UTF-8 from it: UTF-8 again.
    raw.write_all("é utf-8\n".as_bytes()).unwrap();
    l.wait_for("<peer> é utf-8");
    l.send("好\n".as_bytes());
    assert_eq!(read_line(&mut raw), "好\n".as_bytes());
    drop(raw);
    let (ok, out) = l.finish();
    assert!(ok, "{out:#?}");
    assert!(out.iter().any(|x| x.contains("the other side left")));
}

/// One line (with its newline) from a raw peer's socket.
fn read_line(raw: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\n") {
        assert_eq!(raw.read(&mut byte).unwrap(), 1, "the line ends early: {got:?}");
        got.push(byte[0]);
    }
    got
}

/// Decodes as a Windows GBK peer does; any byte that is not GBK fails the test.
fn strict_gbk(bytes: &[u8]) -> String {
    let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(bytes);
    assert!(!had_errors, "not GBK: {bytes:?}");
    text.into_owned()
}

#[test]
fn plain_tcp_encoding_gbk_is_gbk_whatever_the_peer_sends() {
    let (mut l, addr, _) = listener(&["--plain", "--encoding", "gbk"]);
    l.wait_for("NOT private");
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(STEP)).unwrap();
    // ASCII, then UTF-8, from the peer: forced GBK stays.
    raw.write_all(b"hello\n").unwrap();
    l.wait_for("<peer> hello");
    raw.write_all("é\n".as_bytes()).unwrap();
    l.wait_for("<peer> é");
    l.send("你好, raw\n".as_bytes());
    assert_eq!(strict_gbk(&read_line(&mut raw)), "你好, raw\n");
    // GBK from the peer is read as such; bytes that are neither GBK nor UTF-8 change nothing.
    let (gbk, _, _) = encoding_rs::GBK.encode("收到");
    raw.write_all(&gbk).unwrap();
    raw.write_all(b"\n\x81 junk \xc4\n").unwrap();
    l.wait_for("<peer> 收到");
    l.wait_for(" junk ");
    l.send("再见\n".as_bytes());
    assert_eq!(strict_gbk(&read_line(&mut raw)), "再见\n");
    drop(raw);
    let (ok, out) = l.finish();
    assert!(ok, "{out:#?}");
    assert!(!out.iter().any(|x| x.contains("the other side writes")), "forced: no switch {out:#?}");
}

#[test]
fn plain_encoding_flag_is_checked() {
    let bad =
        Peer::spawn(&["listen", "--port", "0", "--bind", "127.0.0.1", "--plain", "--encoding", "latin-1"]);
    let (ok, out) = bad.finish();
    assert!(!ok);
    assert!(out.iter().any(|x| x.contains("use one of gbk|utf-8|auto")), "{out:#?}");
    let encrypted = Peer::spawn(&["listen", "--port", "0", "--bind", "127.0.0.1", "--encoding", "gbk"]);
    let (ok, out) = encrypted.finish();
    assert!(!ok, "--encoding needs --plain: {out:#?}");
    assert!(out.iter().any(|x| x.contains("--plain")), "{out:#?}");
}

#[test]
fn plain_udp_with_raw_socket_peer() {
    let (mut l, addr, _) = listener(&["--plain", "--udp"]);
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    raw.set_read_timeout(Some(STEP)).unwrap();
    raw.send_to(&[0xC4, 0xE3, 0xBA, 0xC3], addr).unwrap();
    assert!(l.wait_for("<peer>").ends_with("<peer> 你好"));
    l.send(b"pong\n");
    let mut buf = [0u8; 100];
    let (n, _) = raw.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong\n");
    let (ok, _) = l.finish();
    assert!(ok);
}

/// A tiny deterministic generator for the relays.
struct Rng(u64);
impl Rng {
    fn percent(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 100
    }
}

/// A UDP relay in front of `server` that drops, duplicates or reorders about a fifth of the
/// datagrams in each direction. Returns the address the connector should use.
fn lossy_udp_relay(server: SocketAddr) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    thread::spawn(move || {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut client: Option<SocketAddr> = None;
        let mut held: Option<(Vec<u8>, SocketAddr)> = None;
        let mut buf = vec![0u8; 65_536];
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            let (n, from) = match sock.recv_from(&mut buf) {
                Ok(x) => x,
                Err(_) => {
                    // Release a held datagram if traffic paused.
                    if let Some((d, to)) = held.take() {
                        let _ = sock.send_to(&d, to);
                    }
                    continue;
                }
            };
            let to = if from == server {
                match client {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                client = Some(from);
                server
            };
            let d = buf[..n].to_vec();
            match rng.percent() {
                0..7 => {}
                7..14 => {
                    let _ = sock.send_to(&d, to);
                    let _ = sock.send_to(&d, to);
                }
                14..21 if held.is_none() => held = Some((d, to)),
                _ => {
                    let _ = sock.send_to(&d, to);
                    if let Some((h, hto)) = held.take() {
                        let _ = sock.send_to(&h, hto);
                    }
                }
            }
        }
    });
    addr
}

/// A TCP relay that flips one bit in the first encrypted message from the connector.
fn flipping_tcp_relay(server: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let (client, _) = l.accept().unwrap();
        let upstream = TcpStream::connect(server).unwrap();
        let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        thread::spawn(move || {
            let _ = std::io::copy(&mut u2, &mut c2);
            let _ = c2.shutdown(std::net::Shutdown::Write);
        });
        let (mut from, mut to) = (client, upstream);
        // Connector's handshake: PAKE frame (2 + 2 + 33) then Noise frame (2 + 1 + 48).
        let handshake = 37 + 51;
        let mut offset = 0usize;
        let mut buf = [0u8; 4096];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let target = handshake + 20;
            if offset <= target && target < offset + n {
                buf[target - offset] ^= 0x40;
            }
            offset += n;
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
    addr
}
