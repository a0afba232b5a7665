//! `natter direct`: a private, encrypted chat for two, with no server in between.
//!
//! One side listens and shows its address and a one-time code; the other connects with the
//! code. SPAKE2 turns the short code into a strong key (no offline guessing), a Noise
//! handshake keyed by it sets up the session, and every message is authenticated and
//! encrypted. `--udp` adds a reliable layer over datagrams; `--plain` talks to netcat.
//! Nothing is ever written to disk. Design and threat model: `docs/direct.md`.
//!
//! Pure modules (no I/O, unit- and property-tested): [`code`], [`words`], [`session`],
//! [`frame`], [`reliable`], [`notices`]. I/O modules: [`tcp`] (whose listener lets new
//! connections wait side by side in the [`waiting_room`]), [`udp`], [`plain`]; user interfaces: [`ui`]
//! (lines, for pipes and `--line`) and [`tui`] (full screen, on a terminal, built from
//! `natter connect`'s TUI parts); [`chat`] joins a user interface to a network link through two
//! channel seams.

#![warn(missing_docs)]

pub mod chat;
pub mod code;
pub mod error;
pub mod frame;
pub mod notices;
pub mod plain;
pub mod reliable;
pub mod session;
pub mod tcp;
pub mod tui;
pub mod udp;
pub mod ui;
pub mod waiting_room;
pub mod words;

use std::future::Future;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::chat::{Display, Link, Ui, UserEvent, converse};
use crate::code::Code;
use crate::error::DirectError;
use crate::ui::LineUi;
use natter_proto::decode::EncodingChoice;

/// Port used when none is given (an unassigned port in the dynamic range).
pub const DEFAULT_PORT: u16 = 51423;
/// The whole handshake must finish within this time.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// After our goodbye, how long we wait for the other side's.
pub const LINGER: Duration = Duration::from_secs(10);

/// Command-line arguments of `natter direct`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Line mode even on a terminal: each stdin line is sent, each message printed as one line
    /// (as when stdin or stdout is not a terminal).
    #[arg(long, global = true)]
    pub line: bool,
    /// Listen or connect.
    #[command(subcommand)]
    pub command: DirectCommand,
}

/// The two roles of a direct chat.
#[derive(Debug, clap::Subcommand)]
pub enum DirectCommand {
    /// Wait for the other side; prints the address(es) to share and a one-time code.
    Listen {
        /// Port to listen on (0 picks a free one; the chosen port is printed).
        #[arg(long, default_value_t = DEFAULT_PORT)]
        port: u16,
        /// Local address to bind: all IPv4 interfaces by default; `::` for IPv6.
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
        bind: IpAddr,
        /// Transport options (must match the other side's).
        #[command(flatten)]
        mode: Mode,
    },
    /// Join a listener with the code it printed.
    Connect {
        /// The listener's address, HOST or HOST:PORT (default port 51423).
        target: String,
        /// The one-time code shown by the listener, e.g. 7-orbit-lantern.
        #[arg(long)]
        code: Option<String>,
        /// Transport options (must match the other side's).
        #[command(flatten)]
        mode: Mode,
    },
}

/// Transport options shared by both roles (both sides must use the same ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct Mode {
    /// Use UDP datagrams (with acknowledgements and retransmission) instead of TCP.
    #[arg(long)]
    pub udp: bool,
    /// No encryption: plain text lines, for netcat or raw socket peers. NOT private.
    #[arg(long)]
    pub plain: bool,
    /// With --plain: the encoding the other side reads. auto sends GBK (GB18030) once the
    /// other side sends GBK (Windows peers) and UTF-8 again after UTF-8; gbk and utf-8 fix it.
    /// Each side sets its own.
    #[arg(long, value_name = "gbk|utf-8|auto", default_value = "auto", value_parser = parse_encoding, requires = "plain")]
    pub encoding: EncodingChoice,
}

/// `--encoding`: the words `/encoding` accepts on the server.
fn parse_encoding(word: &str) -> Result<EncodingChoice, String> {
    word.parse()
}

/// Runs `natter direct`: its own runtime, then the chat in the full-screen interface on a
/// terminal, or the line interface when stdin or stdout is not one (or with `--line`); the
/// same choice as `natter connect`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let result =
        if args.line || !tty { run_line(&rt, args.command) } else { rt.block_on(run_tui(args.command)) };
    rt.shutdown_timeout(Duration::from_millis(200));
    result
}

fn run_line(rt: &tokio::runtime::Runtime, cmd: DirectCommand) -> anyhow::Result<()> {
    let mut line_ui = LineUi::start();
    let ctrl_c_tx = line_ui.input_tx.clone();
    let result = rt.block_on(async {
        let start = prepare(cmd).await?;
        line_session(start, &mut line_ui.ui, ctrl_c_tx, line_ui.quit_typed.clone()).await
    });
    line_ui.finish();
    result.map_err(anyhow::Error::from)
}

async fn line_session(
    start: Start,
    ui: &mut Ui,
    ctrl_c_tx: mpsc::Sender<UserEvent>,
    mut quit_typed: watch::Receiver<bool>,
) -> Result<(), DirectError> {
    // Before the channel is up: Ctrl+C, or `/quit` or Ctrl+D typed at a terminal, ends the wait.
    let stop = async move {
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let typed = async {
            if quit_typed.wait_for(|quit| *quit).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = ctrl_c => {}
            () = typed => {}
        }
    };
    let Some(link) = open(start, ui, stop).await? else { return Ok(()) };
    tokio::spawn(async move {
        // First Ctrl+C: leave cleanly (goodbye to the peer). Second: leave now.
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = ctrl_c_tx.send(UserEvent::Quit).await;
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    chat(ui, link).await
}

/// The full-screen chat. Setup errors (address, code) are plain messages before the screen
/// is taken; later ones are shown on the screen until the person closes it, then returned so
/// they are printed on the normal screen too.
async fn run_tui(cmd: DirectCommand) -> anyhow::Result<()> {
    let start = prepare(cmd).await?;
    let (in_tx, in_rx) = mpsc::channel(256);
    let (out_tx, out_rx) = mpsc::channel(256);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut ui = Ui { input: in_rx, output: out_tx, interactive: true };
    // No mouse capture: the terminal's own selection must work to copy the address and code.
    let (guard, terminal) = natter_client::tui::term::enter(false)?;
    let screen = tui::Screen::new(start.mode());
    let mut screen = tokio::spawn(tui::run(terminal, screen, out_rx, in_tx, stop_tx));
    let chat = async move {
        let stop = async move {
            // Also ends when the screen is gone (its sender dropped).
            let _ = stop_rx.wait_for(|stop| *stop).await;
        };
        let result = match open(start, &mut ui, stop).await {
            Ok(Some(link)) => chat(&mut ui, link).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            let _ = ui.output.send(Display::Error(e.to_string())).await;
        }
        // Dropping `ui` here tells the screen the chat is over.
        result
    };
    tokio::pin!(chat);
    let mut chat_result = None;
    let ended = tokio::select! {
        r = &mut chat => {
            chat_result = Some(r);
            (&mut screen).await
        }
        ended = &mut screen => ended,
    };
    drop(guard);
    match ended.map_err(|e| anyhow::anyhow!("the full-screen interface failed: {e}"))?? {
        tui::Ending::LeftNow => std::process::exit(130),
        tui::Ending::Closed => {}
    }
    let result = match chat_result {
        Some(r) => r,
        // The screen closes only once the chat has ended; this returns at once.
        None => chat.await,
    };
    result.map_err(anyhow::Error::from)
}

/// What is set up before any interface starts: the code checked, the address resolved, the
/// socket bound. Mistakes here are reported as plain messages before the full-screen
/// interface takes the terminal (as `natter connect` connects before it does).
/// `code` is `None` exactly with `--plain`.
enum Start {
    Listen { socket: Bound, mode: Mode, code: Option<Code> },
    Connect { addr: SocketAddr, mode: Mode, code: Option<Code> },
}

enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Start {
    fn mode(&self) -> Mode {
        match self {
            Start::Listen { mode, .. } | Start::Connect { mode, .. } => *mode,
        }
    }
}

async fn prepare(cmd: DirectCommand) -> Result<Start, DirectError> {
    match cmd {
        DirectCommand::Listen { port, bind, mode } => {
            let addr = SocketAddr::new(bind, port);
            let bind_err = |e: std::io::Error| DirectError::Address(addr.to_string(), e.to_string());
            let socket = if mode.udp {
                Bound::Udp(UdpSocket::bind(addr).await.map_err(bind_err)?)
            } else {
                Bound::Tcp(TcpListener::bind(addr).await.map_err(bind_err)?)
            };
            let code = if mode.plain { None } else { Some(Code::generate()?) };
            Ok(Start::Listen { socket, mode, code })
        }
        DirectCommand::Connect { target, code, mode } => {
            let addr = resolve(&target).await?;
            if mode.plain {
                return Ok(Start::Connect { addr, mode, code: None });
            }
            let Some(code) = code else {
                return Err(DirectError::Address(
                    target,
                    "an encrypted connection needs --code CODE (the code `natter direct listen` printed)"
                        .into(),
                ));
            };
            Ok(Start::Connect { addr, mode, code: Some(Code::parse(&code)?) })
        }
    }
}

/// Sets up the channel, unless `stop` (the person giving up) comes first: then `None`.
async fn open(
    start: Start,
    ui: &mut Ui,
    stop: impl Future<Output = ()>,
) -> Result<Option<Link>, DirectError> {
    let coded = matches!(start, Start::Listen { code: Some(_), .. } | Start::Connect { code: Some(_), .. });
    let (link, sas) = tokio::select! {
        r = establish(start, ui) => r?,
        () = stop => {
            let note = if coded { "; the code was not used by anyone" } else { "" };
            ui.status(format!("stopped before the chat started{note}")).await;
            return Ok(None);
        }
    };
    let secure = sas.is_some();
    let _ = ui.output.send(Display::Connected { sas }).await;
    if secure {
        ui.status("(both sides must show the same words; if they differ, someone is in the middle: /quit)")
            .await;
    }
    Ok(Some(link))
}

async fn chat(ui: &mut Ui, link: Link) -> Result<(), DirectError> {
    converse(ui, link).await?;
    ui.status("chat closed").await;
    Ok(())
}

/// Listens or connects as prepared; returns the link once the channel is ready, with the
/// verification words of an encrypted one.
async fn establish(start: Start, ui: &Ui) -> Result<(Link, Option<String>), DirectError> {
    let secured = |(link, sas): (Link, String)| (link, Some(sas));
    match start {
        Start::Listen { socket, mode, code } => {
            if mode.plain {
                warn_plain(ui).await;
            }
            match socket {
                Bound::Udp(socket) => {
                    announce(ui, socket.local_addr()?, mode, code.as_ref()).await;
                    match code {
                        None => Ok((plain::udp_link(socket, None, mode.encoding), None)),
                        Some(code) => udp::listen(socket, &code, ui).await.map(secured),
                    }
                }
                Bound::Tcp(listener) => {
                    announce(ui, listener.local_addr()?, mode, code.as_ref()).await;
                    match code {
                        None => {
                            let (stream, from) = listener.accept().await?;
                            ui.status(format!("{from} connected")).await;
                            Ok((plain::tcp_link(stream, mode.encoding), None))
                        }
                        Some(code) => tcp::listen(listener, &code, ui).await.map(secured),
                    }
                }
            }
        }
        // No code: --plain.
        Start::Connect { addr, mode, code: None } => {
            warn_plain(ui).await;
            if mode.udp {
                let local: SocketAddr =
                    if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
                let socket = UdpSocket::bind(local).await?;
                ui.status(format!("sending to {addr} (UDP, plain)")).await;
                return Ok((plain::udp_link(socket, Some(addr), mode.encoding), None));
            }
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| DirectError::Lost(format!("cannot connect to {addr}: {e}")))?;
            ui.status(format!("connected to {addr} (TCP, plain)")).await;
            Ok((plain::tcp_link(stream, mode.encoding), None))
        }
        Start::Connect { addr, mode, code: Some(code) } => {
            ui.status(format!("connecting to {addr} ({})", if mode.udp { "UDP" } else { "TCP" })).await;
            let established =
                if mode.udp { udp::connect(addr, &code).await? } else { tcp::connect(addr, &code).await? };
            Ok(secured(established))
        }
    }
}

async fn warn_plain(ui: &Ui) {
    ui.status("WARNING: --plain: this channel is NOT private; anyone on the path can read and change it")
        .await;
}

/// Prints where to connect and how.
async fn announce(ui: &Ui, local: SocketAddr, mode: Mode, code: Option<&Code>) {
    let proto = if mode.udp { "UDP" } else { "TCP" };
    let kind = if mode.plain { "plain text" } else { "encrypted" };
    ui.status(format!("listening on {local} ({proto}, {kind})")).await;
    let addrs = shareable_addrs(local);
    for a in &addrs {
        ui.status(format!("address: {a}")).await;
    }
    let first = addrs.first().copied().unwrap_or(local);
    let udp_flag = if mode.udp { " --udp" } else { "" };
    match code {
        Some(code) => {
            ui.status(format!("code: {code}")).await;
            ui.status(format!("the other side runs: natter direct connect {first} --code {code}{udp_flag}"))
                .await;
            ui.status("the code works once; waiting for the other side (Ctrl+C to give up)").await;
        }
        None => {
            let nc = if mode.udp { "nc -u" } else { "nc" };
            ui.status(format!(
                "the other side runs: natter direct connect {first} --plain{udp_flag}   (or: {nc} {} {})",
                first.ip(),
                first.port()
            ))
            .await;
            if mode.udp {
                ui.status("waiting for the first datagram from the other side").await;
            } else {
                ui.status("waiting for the other side (Ctrl+C to give up)").await;
            }
        }
    }
}

/// The addresses worth telling the other side: the bound one, or when bound to all
/// interfaces, the address of the default route's interface and loopback.
fn shareable_addrs(local: SocketAddr) -> Vec<SocketAddr> {
    if !local.ip().is_unspecified() {
        return vec![local];
    }
    let (probe, loopback): (SocketAddr, IpAddr) = if local.is_ipv4() {
        (([192, 0, 2, 1], 9).into(), [127, 0, 0, 1].into())
    } else {
        (([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 9).into(), std::net::Ipv6Addr::LOCALHOST.into())
    };
    let mut out = Vec::new();
    // Connecting a UDP socket sends nothing; it only asks the OS which source it would use.
    let bind: SocketAddr = SocketAddr::new(local.ip(), 0);
    if let Ok(s) = std::net::UdpSocket::bind(bind)
        && s.connect(probe).is_ok()
        && let Ok(a) = s.local_addr()
        && !a.ip().is_unspecified()
        && !a.ip().is_loopback()
    {
        out.push(SocketAddr::new(a.ip(), local.port()));
    }
    out.push(SocketAddr::new(loopback, local.port()));
    out
}

/// Splits `HOST`, `HOST:PORT`, `IP`, `IP:PORT`, `[IPv6]:PORT` into host and port.
pub fn split_target(target: &str) -> (String, u16) {
    let t = target.trim();
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return (sa.ip().to_string(), sa.port());
    }
    let unbracketed = t.trim_start_matches('[').trim_end_matches(']');
    if unbracketed.parse::<IpAddr>().is_ok() {
        return (unbracketed.to_string(), DEFAULT_PORT);
    }
    if let Some((host, port)) = t.rsplit_once(':')
        && !host.contains(':')
        && let Ok(port) = port.parse()
    {
        return (host.to_string(), port);
    }
    (t.to_string(), DEFAULT_PORT)
}

async fn resolve(target: &str) -> Result<SocketAddr, DirectError> {
    let (host, port) = split_target(target);
    let mut addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| DirectError::Address(target.to_string(), e.to_string()))?;
    addrs.next().ok_or_else(|| DirectError::Address(target.to_string(), "the name has no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_split() {
        assert_eq!(split_target("10.0.0.1:9"), ("10.0.0.1".into(), 9));
        assert_eq!(split_target("10.0.0.1"), ("10.0.0.1".into(), DEFAULT_PORT));
        assert_eq!(split_target("example.org"), ("example.org".into(), DEFAULT_PORT));
        assert_eq!(split_target("example.org:77"), ("example.org".into(), 77));
        assert_eq!(split_target("[::1]:5"), ("::1".into(), 5));
        assert_eq!(split_target("::1"), ("::1".into(), DEFAULT_PORT));
        assert_eq!(split_target("[::1]"), ("::1".into(), DEFAULT_PORT));
    }

    #[test]
    fn shareable_addresses_keep_the_port() {
        let addrs = shareable_addrs("0.0.0.0:4242".parse().unwrap());
        assert!(addrs.iter().all(|a| a.port() == 4242));
        assert!(addrs.contains(&"127.0.0.1:4242".parse().unwrap()));
        assert_eq!(shareable_addrs("127.0.0.1:1".parse().unwrap()), vec!["127.0.0.1:1".parse().unwrap()]);
    }
}
