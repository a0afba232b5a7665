//! `natter serve`: the chat server around the core hub: configuration, listeners, front doors
//! and an orderly shutdown.

/// Writes one line of a command's report on standard output (where `serve` listens, its
/// fingerprint, that it stopped; what `cert` made) and ignores an output that is closed: a
/// supervisor or a `natter serve | head -1` that stopped reading must not stop the server, as
/// `println!`'s panic on a broken pipe would.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod address;
pub mod cert;
pub mod cloak;
pub mod cluster;
pub mod config;
mod conn;
mod console;
pub mod door;
pub mod fd_limit;
mod http;
mod keepalive;
pub mod limits;
mod listener;
pub mod metrics;
mod park;
pub mod peers;
mod throttled_log;
pub mod tls;
mod transport;
mod udp;
#[cfg(unix)]
mod unix_socket;
pub mod user_admin;
mod write_batch;
mod ws;

pub use config::{
    Args, CloakSettings, ConnectionSettings, Helpdesk, LogFormat, NickProtectionSetting, SessionSettings,
    Settings, TlsFiles, UdpFormat, UdpLimits, UdpVerify,
};

use anyhow::Context as _;
use natter_core::{HubConfig, HubHandle, Store};
use std::sync::Arc;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

/// Held (through [`peers::Peers`]) by every TCP connection task, UDP member and listener; the
/// server's shutdown waits until all are dropped.
pub(crate) type Alive = tokio::sync::mpsc::Sender<()>;

/// Runs `natter serve` until Ctrl+C or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::resolve(args)?;
    init_logging(settings.console.is_some(), settings.log_format);
    fd_limit::raise_and_log();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let result = runtime.block_on(serve(settings));
    // Everything is stored and every client told by now. Do not wait for the console's read of
    // the terminal, which only ends when someone presses Enter.
    runtime.shutdown_background();
    result
}

/// Logs to standard error: what `NATTER_LOG` selects (by default `info`, or `warn` when the
/// console shares the terminal), as text (coloured only when standard error is a terminal) or
/// JSON lines.
fn init_logging(console: bool, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("NATTER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if console { "warn" } else { "info" }));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A started server: its real addresses and a way to stop it. Used by `run` and by tests that
/// embed the server.
pub struct Server {
    /// Bound TCP address, when TCP is on.
    pub tcp: Option<std::net::SocketAddr>,
    /// Bound UDP address, when UDP is on.
    pub udp: Option<std::net::SocketAddr>,
    /// Bound IRC address, when the IRC port is on.
    pub irc: Option<std::net::SocketAddr>,
    /// Bound IRC-over-TLS address, when that port is on.
    pub irc_tls: Option<std::net::SocketAddr>,
    /// Bound address of the HTTP-only listener (`--http`), when on.
    pub http: Option<std::net::SocketAddr>,
    /// Bound address of the operations listener (`--metrics`), when on.
    pub metrics: Option<std::net::SocketAddr>,
    /// The Unix socket's path, when it is on (removed at shutdown).
    pub unix: Option<std::path::PathBuf>,
    /// The certificate in use, when TLS is on: [`Server::reload_tls`] swaps it.
    tls: Option<Arc<tls::Tls>>,
    hub: HubHandle,
    /// What carries the hub's events to the other nodes of a cluster, and theirs to it.
    bridge: Option<cluster::bridge::Bridge>,
    /// The NATS connection of a cluster, closed (what is queued sent first) at shutdown.
    nats: Option<cluster::nats::NatsBus>,
    stop: watch::Sender<bool>,
    alive: Alive,
    all_gone: tokio::sync::mpsc::Receiver<()>,
}

/// A node's place in a cluster ([`Server::start_with`]): the bus to the other nodes and the
/// node's settings.
pub struct ClusterLink {
    /// The bus.
    pub bus: Arc<dyn natter_core::bus::Bus>,
    /// This node's name and timings.
    pub options: natter_core::cluster::ClusterOptions,
}

impl Server {
    /// Binds every listener and starts serving.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        // An SQLite file, or a PostgreSQL URL. The store's error names the file (or the
        // database, without its password) and what to do: no second sentence around it. Off
        // the async threads: the PostgreSQL client blocks on a runtime of its own.
        let db = settings.db.clone();
        let store = tokio::task::spawn_blocking(move || natter_store::open(&db)).await??;
        let Some(cluster) = &settings.cluster else {
            return Self::start_with(settings, store, None).await;
        };
        // The bus's error names the servers (never their credentials) and what to check.
        let bus = cluster::nats::NatsBus::connect_to(&cluster.servers, &cluster.node_name)
            .await
            .map_err(anyhow::Error::new)?;
        tracing::info!(node = %cluster.node_name, bus = %cluster.servers.display(), "joining the cluster");
        let link = ClusterLink {
            bus: Arc::new(bus.clone()),
            options: natter_core::cluster::ClusterOptions::new(cluster.node_name.as_str()),
        };
        let mut server = Self::start_with(settings, store, Some(link)).await?;
        server.nats = Some(bus);
        Ok(server)
    }

    /// Like [`Server::start`], on a store already open, and as a node of a cluster when
    /// `cluster` is given (the store must then be one the nodes share).
    pub async fn start_with(
        settings: &Settings,
        store: Arc<dyn Store>,
        cluster: Option<ClusterLink>,
    ) -> anyhow::Result<Self> {
        let config = HubConfig {
            history: settings.history,
            retention: settings.retention,
            ephemeral_rooms: settings.ephemeral.clone(),
            password: settings.password.clone(),
            operators: settings.operators.clone(),
            nick_protection: settings.nick_protection.into(),
            nick_grace: settings.nick_grace,
            reserved_nicks: natter_core::hub::SERVICE_NICKS
                .iter()
                .map(|s| s.to_string())
                .chain([settings.session.server_name.to_string()])
                .collect(),
            ..HubConfig::default()
        };
        let (stop, stop_rx) = watch::channel(false);
        // Loading reads the file: its errors name it, like opening's. Off the async threads,
        // like opening (a PostgreSQL store's client blocks on a runtime of its own).
        let bus = cluster.as_ref().map(|link| link.bus.clone());
        let (hub, bridge) = match cluster {
            None => {
                (tokio::task::spawn_blocking(move || natter_core::hub::start(config, store)).await??, None)
            }
            Some(link) => {
                let options = link.options;
                let (hub, outlet) = tokio::task::spawn_blocking(move || {
                    natter_core::hub::start_clustered(config, store, options)
                })
                .await??;
                let bridge = cluster::bridge::Bridge::start(hub.clone(), outlet, link.bus, stop_rx.clone())
                    .await
                    .map_err(anyhow::Error::new)?;
                (hub, Some(bridge))
            }
        };
        // After the store: its lock keeps a second server away from the cloak key file too.
        let (alive, all_gone) = tokio::sync::mpsc::channel(1);
        let peers = peers_for(settings, alive.clone(), shared_cloak(settings).await?)?;
        if let Some(after) = settings.connections.park_after {
            let park =
                park::Park::start(after, stop_rx.clone()).context("starting the park of idle connections")?;
            peers.set_park(park);
        }
        // The certificate's errors name the file and what to do.
        let tls = match &settings.tls {
            Some(files) => Some(tls::Tls::load(&files.cert, &files.key).map_err(anyhow::Error::new)?),
            None => None,
        };
        // `/metrics`, `/healthz` and `/readyz`, shared by the listeners that serve them.
        let readings = bridge
            .as_ref()
            .zip(bus)
            .map(|(bridge, bus)| metrics::BusReadings { bus, given_up: bridge.given_up() });
        let ops = Arc::new(metrics::Ops::new(hub.clone(), readings));
        let mut server = Server {
            tcp: None,
            udp: None,
            irc: None,
            irc_tls: None,
            http: None,
            metrics: None,
            unix: None,
            tls: tls.clone(),
            hub: hub.clone(),
            bridge,
            nats: None,
            stop,
            alive,
            all_gone,
        };
        // Every listener is bound before any serves: the IRC TLS port's number goes into what
        // plain IRC sessions are told (STS).
        let tcp = match &settings.tcp {
            Some(addr) => Some(TcpListener::bind(addr.as_str()).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on TCP {addr} ({e}); choose another address with --tcp")
            })?),
            None => None,
        };
        let irc = bind_irc(settings.irc.as_deref(), settings.irc_required, "--irc").await?;
        let irc_tls = match &tls {
            Some(_) => bind_irc(settings.irc_tls.as_deref(), settings.irc_tls_required, "--irc-tls").await?,
            None => None,
        };
        let http_listener = bind_http(settings.http.listener.as_deref(), "--http").await?;
        let metrics_listener = bind_http(settings.http.metrics.as_deref(), "--metrics").await?;
        server.http = http_listener.as_ref().map(TcpListener::local_addr).transpose()?;
        server.metrics = metrics_listener.as_ref().map(TcpListener::local_addr).transpose()?;
        server.tcp = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
        server.irc = irc.as_ref().map(TcpListener::local_addr).transpose()?;
        server.irc_tls = irc_tls.as_ref().map(TcpListener::local_addr).transpose()?;
        let policy = tls::policy(
            tls.as_deref(),
            server.irc_tls.map(|a| a.port()),
            settings.sts_duration,
            settings.require_tls,
        );
        // One copy for every connection to point at.
        let session = Arc::new(SessionSettings { tls: policy, ..settings.session });
        // Every TCP port runs the same accept loop; only the front door choice differs.
        let keepalive = settings.connections.keepalive.map(keepalive::settings);
        // What HTTP serves: the page everywhere HTTP is; the operations endpoints with it,
        // unless they have a listener of their own.
        let http = &settings.http;
        let public_web = Arc::new(http::Web {
            page: true,
            ops: http.metrics.is_none().then(|| ops.clone()),
            origins: http.origins.clone(),
            page_config: http::PageConfig::new(&http.peers),
        });
        let main_web = http.on_main_port.then(|| public_web.clone());
        let accept = |listener: TcpListener, front: listener::Front, web: Option<Arc<http::Web>>| {
            let accepting = listener::Accepting {
                hub: hub.clone(),
                settings: session.clone(),
                front,
                peers: peers.clone(),
                keepalive: keepalive.clone(),
                tls: tls.clone(),
                web,
            };
            tokio::spawn(listener::accept_loop(listener, accepting, stop_rx.clone()));
        };
        if let Some(listener) = tcp {
            accept(listener, listener::Front::Sniff, main_web.clone());
        }
        if let Some(listener) = irc {
            accept(listener, listener::Front::Irc, None);
        }
        if let Some(listener) = irc_tls {
            accept(listener, listener::Front::IrcTls, None);
        }
        if let Some(listener) = http_listener {
            accept(listener, listener::Front::Http, Some(public_web.clone()));
        }
        if let Some(listener) = metrics_listener {
            let web = Arc::new(http::Web {
                page: false,
                ops: Some(ops.clone()),
                origins: Vec::new(),
                page_config: http::PageConfig::default(),
            });
            accept(listener, listener::Front::Http, Some(web));
        }
        #[cfg(unix)]
        if let Some(path) = &settings.unix {
            let listener = unix_socket::bind(path)?;
            server.unix = Some(path.clone());
            let accepting = listener::Accepting {
                hub: hub.clone(),
                settings: session.clone(),
                front: listener::Front::Sniff,
                peers: peers.clone(),
                keepalive: None,
                tls: None,
                web: main_web.clone(),
            };
            tokio::spawn(listener::accept_unix_loop(listener, accepting, stop_rx.clone()));
        }
        if let Some(addr) = &settings.udp {
            let socket = UdpSocket::bind(addr.as_str()).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on UDP {addr} ({e}); choose another address with --udp")
            })?;
            server.udp = Some(socket.local_addr()?);
            let options = udp::Options {
                idle: settings.udp_idle,
                format: settings.udp_format,
                limits: settings.udp_limits,
            };
            let tokens = udp::Tokens::new().context("starting UDP")?;
            tokio::spawn(udp::serve(
                socket,
                hub.clone(),
                session.clone(),
                options,
                tokens,
                stop_rx.clone(),
                peers.clone(),
            ));
        }
        Ok(server)
    }

    /// Reads the certificate and key files again (SIGHUP): new TLS handshakes present the new
    /// certificate, established connections are untouched. On error (logged, and returned)
    /// the old certificate stays in use.
    pub fn reload_tls(&self) -> Result<(), tls::CertError> {
        let Some(tls) = &self.tls else { return Ok(()) };
        tls.reload().inspect_err(|e| {
            tracing::error!(error = %e, "TLS certificate not reloaded; still serving the previous one");
        })
    }

    /// The SHA-256 fingerprint of the certificate new TLS handshakes get, when TLS is on.
    pub fn tls_fingerprint(&self) -> Option<String> {
        self.tls.as_ref().map(|tls| tls.fingerprint())
    }

    /// Stops accepting, tells every client goodbye, flushes the store, and waits (a little)
    /// for the goodbyes to be written.
    pub async fn shutdown(mut self, reason: &str) {
        let _ = self.stop.send(true);
        #[cfg(unix)]
        if let Some(path) = &self.unix {
            unix_socket::remove(path);
        }
        self.hub.shutdown(reason).await;
        if let Some(bridge) = self.bridge.take() {
            // The hub's goodbye to the other nodes goes out before the process ends.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), bridge.finish()).await;
        }
        if let Some(nats) = self.nats.take() {
            nats.close().await;
        }
        drop(self.alive);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), self.all_gone.recv()).await;
    }
}

/// Binds an IRC port (`flag` names it in errors). A default address that is taken costs a
/// warning (IRC clients can use the main port); a chosen one is an error.
async fn bind_irc(addr: Option<&str>, required: bool, flag: &str) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = addr else { return Ok(None) };
    match TcpListener::bind(addr).await {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if !required => {
            tracing::warn!(%addr, error = %e, "{flag} port unavailable; IRC clients can use the TCP port");
            Ok(None)
        }
        Err(e) => {
            Err(anyhow::anyhow!("cannot listen for IRC on {addr} ({e}); choose another address with {flag}"))
        }
    }
}

/// Binds an HTTP listener (`--http`, `--metrics`) when one is asked for: failing is an error.
async fn bind_http(addr: Option<&str>, flag: &str) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = addr else { return Ok(None) };
    match TcpListener::bind(addr).await {
        Ok(listener) => Ok(Some(listener)),
        Err(e) => {
            Err(anyhow::anyhow!("cannot listen for HTTP on {addr} ({e}); choose another address with {flag}"))
        }
    }
}

/// Connections not yet logged in that the server lets wait, unless configured.
const DEFAULT_MAX_UNREGISTERED: usize = 1000;

/// With PostgreSQL, the cloak key the nodes of a cluster share, kept in the database (made at
/// random by the first node to ask); `None` with SQLite, or when cloaks are off or come from a
/// configured secret.
async fn shared_cloak(settings: &Settings) -> anyhow::Result<Option<cloak::Cloak>> {
    if settings.cloak.off || settings.cloak.secret.is_some() || !natter_store::is_postgres_url(&settings.db) {
        return Ok(None);
    }
    let db = settings.db.clone();
    let cloak = tokio::task::spawn_blocking(move || -> anyhow::Result<cloak::Cloak> {
        // A connection of its own for a moment: the store the hub uses is behind the Store
        // trait, which knows no shared settings.
        let pg = natter_store::PostgresStore::open(&db)?;
        Ok(cloak::Cloak::shared(|new| pg.shared_setting("cloak_key", || new))?)
    })
    .await??;
    Ok(Some(cloak))
}

/// The connection caps and address cloaks of a server with `settings`.
/// `db_cloak` is the key kept in the database (PostgreSQL), when there is one.
fn peers_for(
    settings: &Settings,
    alive: Alive,
    db_cloak: Option<cloak::Cloak>,
) -> anyhow::Result<Arc<peers::Peers>> {
    let connections = &settings.connections;
    let unregistered = newcomer_cap(connections.max_unregistered, fd_limit::current());
    let caps = peers::Caps {
        per_address: connections.per_address,
        unregistered,
        exempt_loopback: connections.exempt_loopback,
    };
    let cloak = match (&settings.cloak.off, &settings.cloak.secret) {
        (true, _) => None,
        (false, Some(secret)) => Some(cloak::Cloak::from_secret(secret)),
        (false, None) => Some(match db_cloak {
            Some(shared) => shared,
            None => cloak::Cloak::for_database(&settings.db)?,
        }),
    };
    tracing::info!(
        per_address = caps.per_address,
        unregistered = caps.unregistered,
        exempt_loopback = caps.exempt_loopback,
        keepalive_secs = connections.keepalive.map_or(0, |d| d.as_secs()),
        cloaked = cloak.is_some(),
        "connection limits"
    );
    Ok(peers::Peers::new(caps, cloak, Some(alive)))
}

/// The cap on connections not yet logged in: as configured (1,000 by default, 0 for none),
/// but never more than a quarter of the file descriptors, so that silent newcomers cannot take
/// the descriptors logged-in users need (a limit of 1,024 lets 256 wait).
fn newcomer_cap(configured: Option<usize>, fd_limit: Option<u64>) -> usize {
    let wanted = configured.unwrap_or(DEFAULT_MAX_UNREGISTERED);
    let quarter = fd_limit.map(|fds| usize::try_from(fds / 4).unwrap_or(usize::MAX).max(1));
    match quarter {
        Some(quarter) if wanted > quarter => {
            if configured.is_some() {
                tracing::warn!(
                    configured = wanted,
                    limit = quarter,
                    "max_unregistered lowered to a quarter of the file-descriptor limit"
                );
            }
            quarter
        }
        _ => wanted,
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let mut signals = StopSignals::install()?;
    let server = Server::start(&settings).await?;
    if let Some(addr) = server.tcp {
        say!("listening tcp {addr}");
    }
    if let Some(addr) = server.udp {
        say!("listening udp {addr}");
    }
    if let Some(addr) = server.irc {
        say!("listening irc {addr}");
    }
    if let Some(addr) = server.irc_tls {
        say!("listening irc-tls {addr}");
    }
    if let Some(path) = &server.unix {
        say!("listening unix {}", path.display());
    }
    if let Some(addr) = server.http {
        say!("listening http {addr}");
    }
    if let Some(addr) = server.metrics {
        say!("listening metrics {addr}");
    }
    if server.tcp.is_none()
        && server.udp.is_none()
        && server.irc.is_none()
        && server.unix.is_none()
        && server.http.is_none()
        && settings.console.is_none()
    {
        anyhow::bail!("every listener is off; enable --tcp, --udp, --irc, --unix or --http");
    }
    if let Some(fingerprint) = server.tls_fingerprint() {
        say!("tls sha256 {fingerprint}");
    }
    let console = settings.console.clone().map(|nick| tokio::spawn(console::run(server.hub.clone(), nick)));
    let console_quit = async {
        match console {
            Some(c) => c.await.is_ok(),
            None => std::future::pending().await,
        }
    };
    tokio::pin!(console_quit);
    let reason = loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Signal::Stop(reason) => break reason,
                Signal::Reload if settings.tls.is_some() => {
                    // Logged either way; a bad file leaves the old certificate in use.
                    let _ = server.reload_tls();
                }
                Signal::Reload => tracing::info!("SIGHUP: nothing to reload (no TLS certificate configured)"),
            },
            true = &mut console_quit => break "operator quit",
        }
    };
    tracing::info!(reason, "shutting down");
    server.shutdown("server shutting down").await;
    say!("stopped");
    Ok(())
}

/// What a signal asks of the server.
enum Signal {
    /// Stop (Ctrl+C, SIGTERM), named for the log.
    Stop(&'static str),
    /// Read the TLS certificate and key again (SIGHUP), keeping every connection.
    Reload,
}

/// The signals the server answers. Registered before the listeners are announced: until a
/// handler is installed, SIGTERM or Ctrl+C kills the process outright, and a script (or test)
/// that signals right after `listening` would get no goodbyes and no flushed store.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
                hangup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for the next signal.
    async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Signal::Stop("interrupt"),
                _ = self.terminate.recv() => Signal::Stop("terminate"),
                _ = self.hangup.recv() => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop("interrupt")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::newcomer_cap;

    #[test]
    fn newcomers_never_hold_more_than_a_quarter_of_the_descriptors() {
        assert_eq!(newcomer_cap(None, Some(524_288)), 1000);
        assert_eq!(newcomer_cap(None, Some(1024)), 256);
        assert_eq!(newcomer_cap(Some(5000), Some(1024)), 256);
        assert_eq!(newcomer_cap(Some(10), Some(1024)), 10);
        assert_eq!(newcomer_cap(None, Some(2)), 1);
        assert_eq!(newcomer_cap(None, None), 1000);
        assert_eq!(newcomer_cap(Some(0), Some(1024)), 0, "0 turns the cap off");
    }
}
