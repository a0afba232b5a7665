//! The listener cannot be stalled: strangers (idle, junk, stalled, old versions, malformed
//! handshakes, floods) are turned away while the real peer gets in, and the code still allows
//! exactly one guess. Real loopback sockets against `tcp::listen_with` / `udp::listen`; the
//! deadline tests freeze tokio's clock and move it by hand.

use std::net::SocketAddr;
use std::time::Duration;

use natter_direct::chat::{Display, Link, NetEvent, Ui, UserEvent};
use natter_direct::code::Code;
use natter_direct::error::DirectError;
use natter_direct::frame::{AbortReason, AppMsg, Packet, StreamDecoder};
use natter_direct::notices::NOTICE_BURST;
use natter_direct::session::Handshake;
use natter_direct::waiting_room::{FIRST_PACKET_TIMEOUT, MAX_WAITING, WaitingRoomLimits};
use natter_direct::{tcp, udp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::advance;

/// Real-time bound of each test (the clock may be frozen, so it is a thread, not a timer).
const REAL_LIMIT: Duration = Duration::from_secs(30);
const TICK: Duration = Duration::from_millis(1);
/// A first-packet deadline that never fires during a test: whatever gets the peer in is not
/// a timeout.
const NEVER: Duration = Duration::from_secs(3600);

/// Ends the test process when a test runs longer than `REAL_LIMIT` of real time.
struct Watchdog(std::sync::mpsc::Sender<()>);

impl Watchdog {
    fn arm(what: &'static str) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(REAL_LIMIT) {
                eprintln!("{what}: still running after {REAL_LIMIT:?} of real time; aborting");
                std::process::abort();
            }
        });
        Watchdog(tx)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Keeps tokio's paused clock from jumping ahead on its own while sockets are idle: time
/// moves only with `advance` (a blocking task in flight inhibits auto-advance).
struct FrozenClock {
    _release: std::sync::mpsc::Sender<()>,
}

fn freeze_clock() -> FrozenClock {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        let _ = rx.recv();
    });
    FrozenClock { _release: tx }
}

/// What the listener's user sees.
struct Screen {
    rx: mpsc::Receiver<Display>,
    lines: Vec<String>,
    _input: mpsc::Sender<UserEvent>,
}

impl Screen {
    /// Waits for a status line containing `needle`.
    async fn wait_for(&mut self, needle: &str) -> String {
        loop {
            if let Some(l) = self.lines.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            match self.rx.recv().await {
                Some(Display::Status(s)) => self.lines.push(s),
                Some(_) => {}
                None => panic!("the listener stopped without {needle:?}; it said {:#?}", self.lines),
            }
        }
    }

    /// Every status line shown so far, including those not read yet.
    fn drain(&mut self) -> &[String] {
        while let Ok(d) = self.rx.try_recv() {
            if let Display::Status(s) = d {
                self.lines.push(s);
            }
        }
        &self.lines
    }

    fn count(&mut self, needle: &str) -> usize {
        self.drain().iter().filter(|l| l.contains(needle)).count()
    }
}

fn ui() -> (Ui, Screen) {
    let (in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, out_rx) = mpsc::channel(1024);
    (
        Ui { input: in_rx, output: out_tx, interactive: false },
        Screen { rx: out_rx, lines: Vec::new(), _input: in_tx },
    )
}

type Listening = JoinHandle<Result<(Link, String), DirectError>>;

/// A TCP listener on a free loopback port, listening with `limits`.
async fn tcp_listener(code: &Code, limits: WaitingRoomLimits) -> (SocketAddr, Listening, Screen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (ui, screen) = ui();
    let code = code.clone();
    let task = tokio::spawn(async move { tcp::listen_with(listener, &code, &ui, limits).await });
    (addr, task, screen)
}

/// The real peer joins; both sides show the same words and a message goes through.
async fn peer_gets_in(addr: SocketAddr, code: &Code, listening: Listening) {
    let (c, c_sas) = tcp::connect(addr, code).await.expect("the peer connects");
    let (mut l, l_sas) = listening.await.unwrap().expect("the listener gets its peer");
    assert_eq!(l_sas, c_sas);
    c.tx.send(AppMsg::Text("it is me".into())).await.unwrap();
    match l.rx.recv().await {
        Some(NetEvent::Text(t)) => assert_eq!(t, "it is me"),
        other => panic!("expected the peer's message, got {other:?}"),
    }
}

/// True once the other end closed the connection (reading until the end).
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
}

/// The connection is still open, and nothing is waiting to be read on it.
fn still_open(s: &TcpStream) -> bool {
    matches!(s.try_read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

fn frame(p: &Packet) -> Vec<u8> {
    p.encode_stream().unwrap()
}

/// The first packet a connector with `code` sends.
fn pake_from(code: &str) -> Vec<u8> {
    let (_, first) = Handshake::connector(&Code::parse(code).unwrap());
    frame(&Packet::from_hs(first))
}

/// Reads one whole packet from a stranger's connection (`None` at its end).
async fn read_packet(s: &mut TcpStream) -> Option<Packet> {
    let mut d = StreamDecoder::default();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(p) = d.next_packet().unwrap() {
            return Some(p);
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => d.extend(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn idle_junk_stalled_and_old_version_connections_do_not_keep_the_peer_out() {
    let _watchdog = Watchdog::arm("strangers first");
    let code = Code::generate().unwrap();
    let limits = WaitingRoomLimits { first_packet: NEVER, ..WaitingRoomLimits::default() };
    let (addr, listening, mut screen) = tcp_listener(&code, limits).await;

    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // A frame header and the first byte of a PAKE packet, then nothing.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&[0, 35, 1]).await.unwrap();
    // An HTTP probe: its first two bytes announce an 18 KB frame; refused at once.
    let mut junk = TcpStream::connect(addr).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(closed(&mut junk).await);
    let junk_addr = junk.local_addr().unwrap();
    screen.wait_for(&format!("ignored a connection from {junk_addr} that is not natter direct")).await;
    // A later version: told so with a protocol abort, and its attempt uses nothing.
    let mut newer = TcpStream::connect(addr).await.unwrap();
    newer.write_all(&frame(&Packet::Pake { version: 9, msg: vec![0x42; 33] })).await.unwrap();
    assert_eq!(read_packet(&mut newer).await, Some(Packet::Abort(AbortReason::Protocol)));
    assert!(closed(&mut newer).await);
    screen.wait_for("it speaks natter direct version 9, we speak 1").await;

    // All of them still waiting (none timed out: the deadline is an hour); the peer gets in.
    assert!(idle.iter().all(still_open) && still_open(&stalled));
    peer_gets_in(addr, &code, listening).await;
    // The strangers are sent away once the peer is in.
    for s in idle.iter_mut().chain([&mut stalled]) {
        assert!(closed(s).await);
    }
    screen.wait_for("is connecting; checking the code").await;
}

#[tokio::test(start_paused = true)]
async fn silent_and_stalled_connections_are_closed_at_the_first_packet_deadline_and_not_before() {
    let _watchdog = Watchdog::arm("first packet deadline");
    let _frozen = freeze_clock();
    let code = Code::generate().unwrap();
    let (addr, listening, mut screen) = tcp_listener(&code, WaitingRoomLimits::default()).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&pake_from("7-orbit-lantern")[..20]).await.unwrap();
    // Both are in the room, with their deadlines set, once a later arrival was turned away.
    barrier(addr, &mut screen).await;

    advance(FIRST_PACKET_TIMEOUT - TICK).await;
    barrier(addr, &mut screen).await;
    assert!(still_open(&silent) && still_open(&stalled), "closed before the deadline");
    assert_eq!(screen.count("closed a connection"), 0, "{:#?}", screen.lines);

    advance(TICK).await;
    assert!(closed(&mut silent).await && closed(&mut stalled).await);
    let (silent_addr, stalled_addr) = (silent.local_addr().unwrap(), stalled.local_addr().unwrap());
    screen.wait_for(&format!("closed a connection from {silent_addr}: it sent nothing for 3 s")).await;
    screen
        .wait_for(&format!(
            "closed a connection from {stalled_addr}: it sent part of a first message, then nothing, for 3 s"
        ))
        .await;
    // The listener is still there for the real peer.
    peer_gets_in(addr, &code, listening).await;
}

/// A junk connection, turned away: everything accepted before it has been admitted.
async fn barrier(addr: SocketAddr, screen: &mut Screen) {
    let mut junk = TcpStream::connect(addr).await.unwrap();
    junk.write_all(&[0, 0]).await.unwrap();
    assert!(closed(&mut junk).await);
    let junk_addr = junk.local_addr().unwrap();
    screen.wait_for(&format!("from {junk_addr} that is not natter direct")).await;
}

#[tokio::test]
async fn a_flood_beyond_the_cap_closes_the_oldest_and_the_peer_still_gets_in() {
    let _watchdog = Watchdog::arm("flood");
    let code = Code::generate().unwrap();
    let limits = WaitingRoomLimits { first_packet: NEVER, ..WaitingRoomLimits::default() };
    let (addr, listening, mut screen) = tcp_listener(&code, limits).await;
    let extra = 8;
    let mut flood = Vec::new();
    for _ in 0..MAX_WAITING + extra {
        flood.push(TcpStream::connect(addr).await.unwrap());
    }
    // The oldest ones make room, in order of arrival.
    for s in &mut flood[..extra] {
        assert!(closed(s).await);
    }
    // The last eviction came with the last arrival: the rest are waiting, and stay.
    assert!(flood[extra..].iter().all(still_open));
    let first = flood[0].local_addr().unwrap();
    screen
        .wait_for(&format!(
            "closed a connection from {first}: {MAX_WAITING} connections were already waiting for their \
             first message, so the oldest made room"
        ))
        .await;

    // The peer arrives into a full room: the oldest stranger makes room for it.
    peer_gets_in(addr, &code, listening).await;
    assert!(closed(&mut flood[extra]).await);
    // One line each, rate-limited: the burst, and a count of the rest when the room closes.
    screen.wait_for("is connecting; checking the code").await;
    let shown = screen.count("so the oldest made room");
    assert_eq!(shown, NOTICE_BURST as usize, "{:#?}", screen.lines);
    let hidden = extra + 1 - shown;
    screen.wait_for(&format!("{hidden} more notices about other connections were not shown")).await;
}

#[tokio::test]
async fn a_malformed_pake_message_is_refused_and_does_not_use_the_code() {
    let _watchdog = Watchdog::arm("malformed PAKE");
    let code = Code::generate().unwrap();
    let (addr, listening, mut screen) = tcp_listener(&code, WaitingRoomLimits::default()).await;
    for bad in [vec![0x42; 5], vec![0x42; 33], Vec::new()] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&frame(&Packet::Pake { version: 1, msg: bad })).await.unwrap();
        assert_eq!(read_packet(&mut s).await, Some(Packet::Abort(AbortReason::Protocol)));
        assert!(closed(&mut s).await);
        let from = s.local_addr().unwrap();
        screen
            .wait_for(&format!(
                "ignored {from}: its handshake message is not valid natter direct; the code is still unused"
            ))
            .await;
    }
    peer_gets_in(addr, &code, listening).await;
}

/// Waiting side by side must not mean guessing side by side: of two well-formed guesses sent
/// at once, one is answered and the other is closed unanswered, and after the answered one
/// failed the listener is gone (the code works once, as documented in `docs/direct.md`).
#[tokio::test]
async fn racing_guesses_get_one_answer_and_a_wrong_guess_uses_the_code() {
    let _watchdog = Watchdog::arm("racing guesses");
    let code = Code::parse("7-orbit-lantern").unwrap();
    let (addr, listening, _screen) = tcp_listener(&code, WaitingRoomLimits::default()).await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    let (ga, gb) = (pake_from("8-orbit-lantern"), pake_from("9-orbit-lantern"));
    let (wa, wb) = tokio::join!(a.write_all(&ga), b.write_all(&gb));
    wa.unwrap();
    wb.unwrap();
    let (pa, pb) = tokio::join!(read_packet(&mut a), read_packet(&mut b));
    let answered = [&pa, &pb].iter().filter(|p| matches!(p, Some(Packet::Pake { .. }))).count();
    assert_eq!(answered, 1, "exactly one guess is answered: {pa:?} {pb:?}");
    assert!([&pa, &pb].contains(&&None), "the other is closed unanswered: {pa:?} {pb:?}");
    // The answered guesser cannot finish (wrong code) and leaves: the listener fails, for good.
    drop((a, b));
    assert!(listening.await.unwrap().is_err());
    assert!(tcp::connect(addr, &code).await.is_err(), "no second attempt");
}

#[tokio::test]
async fn udp_strangers_do_not_use_the_code_and_their_notices_are_limited() {
    let _watchdog = Watchdog::arm("udp strangers");
    let code = Code::generate().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (ui, mut screen) = ui();
    let listen_code = code.clone();
    let listening = tokio::spawn(async move { udp::listen(socket, &listen_code, &ui).await });

    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 64];
    // Junk is ignored silently; other versions and malformed PAKE messages are refused, each
    // with an abort (the barrier that it was handled).
    stranger.send_to(b"GET / HTTP/1.1\r\n\r\n", addr).await.unwrap();
    let refusals = 3 * NOTICE_BURST as usize;
    for i in 0..refusals {
        let p = if i % 2 == 0 {
            Packet::Pake { version: 9, msg: vec![0x42; 33] }
        } else {
            Packet::Pake { version: 1, msg: vec![0x42; 5] }
        };
        stranger.send_to(&p.encode(), addr).await.unwrap();
        let (n, _) = stranger.recv_from(&mut buf).await.unwrap();
        assert_eq!(Packet::decode(&buf[..n]), Ok(Packet::Abort(AbortReason::Protocol)));
    }
    let (c, c_sas) = udp::connect(addr, &code).await.expect("the peer connects");
    let (mut l, l_sas) = listening.await.unwrap().expect("the listener gets its peer");
    assert_eq!(l_sas, c_sas);
    c.tx.send(AppMsg::Text("over udp".into())).await.unwrap();
    assert!(matches!(l.rx.recv().await, Some(NetEvent::Text(t)) if t == "over udp"));
    let shown = screen.count(&format!("ignored {}", stranger.local_addr().unwrap()));
    assert_eq!(shown, NOTICE_BURST as usize, "{:#?}", screen.lines);
    screen
        .wait_for(&format!("{} more notices about other connections were not shown", refusals - shown))
        .await;
}
