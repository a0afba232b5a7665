//! The bench measured against tiny in-process servers whose behaviour is known exactly:
//! every message reaches every other member, nothing is lost, so the bench must report
//! exact delivery counts and zero loss, in both dialects.

use clap::Parser;
use natter_proto::line::{LineBuffer, LineEvent};
use natter_proto::native::{ClientFrame, MessageFrame, ServerFrame, parse_client_frame, write_server_frame};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: natter_bench::Args,
}

/// Members of the one room: id -> (nick, outbox).
type Members = Arc<Mutex<HashMap<u64, (String, mpsc::UnboundedSender<Vec<u8>>)>>>;

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Native,
    Irc,
}

async fn fake_server(dialect: Dialect) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let members: Members = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (members, id) = (members.clone(), ids.fetch_add(1, Ordering::Relaxed));
            tokio::spawn(async move {
                let (mut read, mut write) = stream.into_split();
                let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
                tokio::spawn(async move {
                    while let Some(bytes) = rx.recv().await {
                        if bytes.is_empty() || write.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                });
                let mut lines = LineBuffer::new(64 * 1024);
                let mut buf = vec![0u8; 16 * 1024];
                let mut nick = String::new();
                'conn: loop {
                    let n = match read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    lines.extend(&buf[..n]);
                    while let Some(LineEvent::Line(line)) = lines.next_line() {
                        let keep = match dialect {
                            Dialect::Native => native_line(line, id, &mut nick, &members, &tx),
                            Dialect::Irc => irc_line(line, id, &mut nick, &members, &tx),
                        };
                        if !keep {
                            break 'conn;
                        }
                    }
                }
                members.lock().unwrap().remove(&id);
                let _ = tx.send(Vec::new());
            });
        }
    });
    addr
}

fn frame(f: &ServerFrame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    write_server_frame(f, &mut out);
    out
}

fn broadcast(members: &Members, from: u64, bytes: &[u8]) {
    for (id, (_, tx)) in members.lock().unwrap().iter() {
        if *id != from {
            let _ = tx.send(bytes.to_vec());
        }
    }
}

fn native_line(
    line: &[u8],
    id: u64,
    nick: &mut String,
    members: &Members,
    tx: &mpsc::UnboundedSender<Vec<u8>>,
) -> bool {
    match parse_client_frame(line) {
        Ok(ClientFrame::Hello { nick: n, .. }) => {
            *nick = n;
            let _ = tx.send(frame(&ServerFrame::Welcome {
                v: 1,
                nick: nick.as_str().into(),
                server: "fake".into(),
                max_line: None,
                id: None,
                token: None,
            }));
            broadcast(
                members,
                id,
                &frame(&ServerFrame::Join { room: "#lobby".into(), nick: nick.as_str().into(), ts: 1 }),
            );
            let mut m = members.lock().unwrap();
            m.insert(id, (nick.clone(), tx.clone()));
            let names = m.values().map(|(n, _)| n.as_str().into()).collect();
            let _ = tx.send(frame(&ServerFrame::Joined {
                id: None,
                room: "#lobby".into(),
                topic: "".into(),
                members: names,
                count: None,
                ephemeral: false,
                operators: vec![],
                voiced: vec![],
                // Old history must not be counted as deliveries.
                history: vec![MessageFrame {
                    room: Some("#lobby".into()),
                    from: "old".into(),
                    to: None,
                    text: "history".into(),
                    action: false,
                    notice: false,
                    mid: Some(1),
                    ts: 1,
                }],
            }));
        }
        Ok(ClientFrame::Send { room, text, cid, .. }) => {
            let _ = tx.send(frame(&ServerFrame::Ack {
                id: None,
                cid: cid.map(Into::into),
                mid: Some(2),
                room: room.clone().map(Into::into),
                ts: 1,
                duplicate: false,
                away: None,
                offline: false,
            }));
            broadcast(
                members,
                id,
                &frame(&ServerFrame::Message(MessageFrame {
                    room: room.map(Into::into),
                    from: nick.as_str().into(),
                    to: None,
                    text: text.into(),
                    action: false,
                    notice: false,
                    mid: Some(2),
                    ts: 1,
                })),
            );
        }
        Ok(ClientFrame::Quit { .. }) => {
            let _ = tx.send(frame(&ServerFrame::Bye { reason: "quit".into() }));
            return false;
        }
        _ => {}
    }
    true
}

fn irc_line(
    line: &[u8],
    id: u64,
    nick: &mut String,
    members: &Members,
    tx: &mpsc::UnboundedSender<Vec<u8>>,
) -> bool {
    let line = String::from_utf8_lossy(line);
    let mut words = line.splitn(2, ' ');
    let (cmd, rest) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    match cmd {
        "NICK" => *nick = rest.to_string(),
        "USER" => {
            // A PING before the welcome: the bench must answer it.
            let _ = tx.send(
                format!("PING :fake\r\n:fake 001 {nick} :Welcome\r\n:fake 375 {nick} :motd\r\n").into_bytes(),
            );
        }
        "JOIN" => {
            members.lock().unwrap().insert(id, (nick.clone(), tx.clone()));
            broadcast(members, id, format!(":{nick}!u@h JOIN {rest}\r\n").as_bytes());
            let _ = tx.send(format!(":{nick}!u@h JOIN {rest}\r\n:fake 353 {nick} = {rest} :{nick}\r\n:fake 366 {nick} {rest} :End of NAMES\r\nPING :again\r\n").into_bytes());
        }
        "PRIVMSG" => broadcast(members, id, format!(":{nick}!u@h PRIVMSG {rest}\r\n").as_bytes()),
        "QUIT" => {
            let _ = tx.send(b"ERROR :bye\r\n".to_vec());
            return false;
        }
        _ => {}
    }
    true
}

async fn bench(addr: SocketAddr, args: &[&str]) -> serde_json::Value {
    let addr = addr.to_string();
    let pid = std::process::id().to_string();
    let mut argv =
        vec!["bench", "--addr", &addr, "--json", "--quiet", "--server-pid", &pid, "--timeout", "60"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let report = natter_bench::run_scenario(cli.args).await.unwrap();
    assert!(!report.text.is_empty());
    report.json
}

/// The fake servers lose nothing: every message arrives, in order, on connections that stay up.
fn assert_all_delivered(r: &serde_json::Value, delivered: u64) {
    assert_eq!(r["delivered"], delivered, "{r:#}");
    assert_eq!(r["lost"], 0, "{r:#}");
    assert_eq!(r["out_of_order"], 0, "{r:#}");
    assert_eq!(r["disconnects"], 0, "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_fanout_counts_exactly() {
    let addr = fake_server(Dialect::Native).await;
    let r = bench(addr, &["fanout", "-n", "20", "-s", "3", "-m", "200", "--warmup", "5"]).await;
    assert_eq!(r["expected"], 3 * 200 * 19);
    assert_all_delivered(&r, 3 * 200 * 19);
    assert_eq!(r["acks"], 3 * (200 + 5), "{r:#}"); // warm-up sends are acknowledged too
    assert_eq!(r["warmup_delivered"], 3 * 5 * 19);
    assert_eq!(r["latency"]["samples"], 3 * 200 * 19);
    assert!(r["server_cpu_s"].is_number());
    assert!(r["deliveries_per_s"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_fanout_paced() {
    let addr = fake_server(Dialect::Native).await;
    // The fake server has one room whatever the name, but answers no `join`: so use the lobby
    // and check pacing: 20 messages at 100/s take about 0.2 s.
    let r =
        bench(addr, &["fanout", "-n", "4", "-s", "4", "-m", "20", "--rate", "100", "--size", "200"]).await;
    assert_all_delivered(&r, 4 * 20 * 3);
    let send = r["send_s"].as_f64().unwrap();
    assert!((0.15..2.0).contains(&send), "paced send took {send} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_fanout_with_window() {
    let addr = fake_server(Dialect::Native).await;
    let r =
        bench(addr, &["fanout", "-n", "5", "-s", "2", "-m", "300", "--window", "3", "--warmup", "2"]).await;
    assert_all_delivered(&r, 2 * 300 * 4);
    assert_eq!(r["window"], 3);
    assert!(r["bench_cpu_s"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irc_fanout_counts_exactly() {
    let addr = fake_server(Dialect::Irc).await;
    let r =
        bench(addr, &["--protocol", "irc", "--room", "#bench", "fanout", "-n", "10", "-s", "2", "-m", "100"])
            .await;
    assert_all_delivered(&r, 2 * 100 * 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losses_and_disconnects_are_reported() {
    // Nobody listens: the server accepts, welcomes, then closes every connection.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"{\"type\":\"welcome\",\"v\":1,\"nick\":\"x\",\"server\":\"f\"}\n\
                          {\"type\":\"joined\",\"room\":\"#lobby\",\"topic\":\"\",\"members\":[],\"history\":[]}\n",
                    )
                    .await;
                // Part of the scenario, not a wait for a state: the fake server goes away
                // a while after the welcome, while the bench's messages are in flight.
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let _ = s.write_all(b"{\"type\":\"bye\",\"reason\":\"going away\"}\n").await;
            });
        }
    });
    let r = bench(addr, &["fanout", "-n", "3", "-s", "1", "-m", "10", "--drain", "0.5"]).await;
    assert_eq!(r["delivered"], 0);
    assert_eq!(r["lost"], 20);
    assert_eq!(r["disconnects"], 3, "{r:#}");
    assert!(r["first_error"].as_str().unwrap().contains("going away"), "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_connect() {
    let addr = fake_server(Dialect::Native).await;
    let r = bench(addr, &["idle", "-n", "200", "--hold", "0.3", "--settle", "0.5"]).await;
    assert_eq!(r["opened"], 200, "{r:#}");
    assert_eq!(r["failed"], 0);
    assert_eq!(r["dropped"], 0);
    assert!(r["kib_per_connection"].is_number());

    let r = bench(addr, &["connect", "-n", "300", "-c", "8"]).await;
    assert_eq!(r["registered"], 300, "{r:#}");
    assert_eq!(r["failed"], 0);
    assert!(r["registrations_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(r["latency"]["samples"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irc_idle_and_connect() {
    let addr = fake_server(Dialect::Irc).await;
    let r = bench(addr, &["--protocol", "irc", "--room", "#b", "idle", "-n", "20"]).await;
    assert_eq!(r["opened"], 20, "{r:#}");
    let r = bench(addr, &["--protocol", "irc", "connect", "-n", "50", "-c", "4"]).await;
    assert_eq!(r["registered"], 50, "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_a_clear_error() {
    // A bound socket that never listens: the port stays ours and connecting to it is refused.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = held.local_addr().unwrap();
    let argv = ["bench", "--addr", &addr.to_string(), "--quiet", "fanout", "-n", "2", "-s", "1", "-m", "1"];
    let err = natter_bench::run_scenario(Cli::try_parse_from(argv).unwrap().args).await.unwrap_err();
    assert!(format!("{err:#}").contains("cannot connect"), "{err:#}");
}
