//! The `server_session` target's check, shared with the corpus replay in `cargo test`
//! (`crates/natter-server/tests/fuzz_corpus.rs`): whole sessions against the real server, in
//! process. Every input is split into up to four byte streams, each sent on its own
//! connection (the server picks native JSON, text mode or IRC from the first bytes, as for any
//! client) or as UDP datagrams, and then closed. After each input a probe session checks the
//! invariants: the server still answers (no panic, no hang: a panic in any task aborts the
//! process), no two online users share a nick, and the process stays within a memory bound
//! (outboxes and history are bounded).

use natter_server::{Server, Settings, UdpLimits};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Streams in one input are separated by this byte (never valid UTF-8 on its own).
const SEPARATOR: u8 = 0xff;
/// What the server process may hold, whatever it is sent.
const MEMORY_BOUND_KIB: u64 = 1024 * 1024;

struct Target {
    tcp: SocketAddr,
    udp: SocketAddr,
    probe: Mutex<Probe>,
    _runtime: tokio::runtime::Runtime,
    _server: Server,
}

struct Probe {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    next: u64,
}

impl Probe {
    /// Sends a request and reads until the answer carrying its id.
    fn ask(&mut self, frame: &str) -> String {
        self.next += 1;
        let id = self.next;
        let frame = frame.replace("ID", &id.to_string());
        self.writer.write_all(format!("{frame}\n").as_bytes()).expect("the server is gone");
        let needle = format!("\"id\":{id}");
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("the server stopped answering");
            assert!(n > 0, "the server closed the probe");
            if line.contains(&needle) {
                return line;
            }
        }
    }
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        // A panic in any server task must end the process, so that libFuzzer sees it.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            hook(info);
            std::process::abort();
        }));
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        // `natter serve`'s own defaults, as it resolves them, but for:
        let args = natter_server::Args {
            tcp: Some("127.0.0.1:0".into()),
            udp: Some("127.0.0.1:0".into()),
            irc: Some("off".into()),
            db: Some(":memory:".into()),
            // No rates: the fuzzer explores what sessions can do, not how fast.
            msg_rate: Some(0),
            command_rate: Some(0),
            ..natter_server::Args::default()
        };
        let mut settings = Settings::resolve(args).expect("the defaults resolve");
        // Every input's datagrams come from 127.0.0.1: one address, no rate, and as many
        // members as the server takes in all.
        settings.udp_limits =
            UdpLimits { address_rate: 0, members_per_address: 10_000, ..settings.udp_limits };
        settings.ephemeral = vec!["#eph".into()];
        settings.operators = vec![("root".into(), "hunter2".into())];
        let server = runtime.block_on(Server::start(&settings)).expect("start the server");
        let tcp = server.tcp.unwrap();
        let writer = TcpStream::connect(tcp).unwrap();
        writer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut probe = Probe { reader: BufReader::new(writer.try_clone().unwrap()), writer, next: 0 };
        probe.writer.write_all(b"{\"type\":\"hello\",\"nick\":\"fuzzprobe\",\"id\":0}\n").unwrap();
        Target { tcp, udp: server.udp.unwrap(), probe: Mutex::new(probe), _runtime: runtime, _server: server }
    })
}

/// Sends `data` as one input of up to four sessions and checks the invariants; panics (or
/// aborts, for a panic in a server task) when one breaks.
pub fn check(data: &[u8]) {
    let t = target();
    let mut connections = Vec::new();
    for (i, stream) in data.split(|&b| b == SEPARATOR).take(4).enumerate() {
        if i == 3 {
            // The fourth stream goes as datagrams, one per line.
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            for datagram in stream.split(|&b| b == b'\n').take(16) {
                let _ = udp.send_to(datagram, t.udp);
            }
            continue;
        }
        let Ok(mut c) = TcpStream::connect(t.tcp) else { continue };
        let _ = c.write_all(stream);
        let _ = c.write_all(b"\n");
        connections.push(c);
    }
    let mut probe = t.probe.lock().unwrap();
    // Everything those sessions sent the hub before the probe's question has been handled.
    probe.ask(r#"{"type":"ping","id":ID}"#);
    let who = probe.ask(r#"{"type":"who","id":ID}"#);
    let frame: serde_json::Value = serde_json::from_str(&who).expect("the server's JSON parses");
    if let Some(nicks) = frame["nicks"].as_array() {
        let mut folded: Vec<String> =
            nicks.iter().filter_map(|n| n.as_str()).map(natter_proto::names::fold).collect();
        let total = folded.len();
        folded.sort();
        folded.dedup();
        assert_eq!(folded.len(), total, "two online users share a nick: {who}");
    }
    drop(connections);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(rss) = status.lines().find_map(|l| l.strip_prefix("VmRSS:")) {
        let kib: u64 = rss.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
        assert!(kib < MEMORY_BOUND_KIB, "the server holds {kib} KiB");
    }
}
