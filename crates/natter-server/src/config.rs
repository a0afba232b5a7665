//! `natter serve` settings: command-line flags, `NATTER_*` environment variables and an
//! optional TOML file, in that order of precedence, over built-in defaults.

use crate::cluster::codec::valid_node_name;
use crate::cluster::nats::NatsServers;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `natter serve`. Every flag can also come from the environment (`NATTER_TCP`...) or
/// from the TOML file given with `--config` (same names with `_` instead of `-`): the file is
/// read into this same struct, so its keys cannot drift from the flags.
#[derive(Debug, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Args {
    /// TOML file with any of the settings below.
    #[arg(long, env = "NATTER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// TCP address for the native protocol and text mode, or `off` [default: 127.0.0.1:7878].
    #[arg(long, env = "NATTER_TCP", value_name = "ADDR")]
    pub tcp: Option<String>,
    /// UDP address for UDP group chat, or `off` [default: 127.0.0.1:7878].
    #[arg(long, env = "NATTER_UDP", value_name = "ADDR")]
    pub udp: Option<String>,
    /// TCP address of the IRC front door, or `off` [default: 127.0.0.1:6667]. IRC clients may
    /// also connect to the main TCP port.
    #[arg(long, env = "NATTER_IRC", value_name = "ADDR")]
    pub irc: Option<String>,
    /// SQLite database file, `:memory:` to keep nothing, or a PostgreSQL URL
    /// (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`) [default: natter.db].
    #[arg(long, env = "NATTER_DB", value_name = "PATH|URL")]
    pub db: Option<String>,
    /// Messages replayed when joining a room [default: 50].
    #[arg(long, env = "NATTER_HISTORY", value_name = "N")]
    pub history: Option<usize>,
    /// Days room and private messages are kept; older ones are deleted (at start and every
    /// hour). 0 keeps them for ever [default: 0].
    #[arg(long, env = "NATTER_HISTORY_DAYS", value_name = "DAYS")]
    pub history_days: Option<u32>,
    /// Longest line or frame a client may send, in bytes [default: 16384].
    #[arg(long, env = "NATTER_MAX_LINE", value_name = "BYTES")]
    pub max_line: Option<usize>,
    /// Messages per second a session may send on average; 0 disables the limit [default: 10].
    #[arg(long, env = "NATTER_MSG_RATE", value_name = "N")]
    pub msg_rate: Option<u32>,
    /// Messages a session may send in a burst above the rate [default: 30].
    #[arg(long, env = "NATTER_MSG_BURST", value_name = "N")]
    pub msg_burst: Option<u32>,
    /// Events queued for a slow client before it is disconnected [default: 4096].
    #[arg(long, env = "NATTER_OUTBOX", value_name = "N")]
    pub outbox: Option<usize>,
    /// Budget units per second for commands other than messages (joins cost 5, `who` of the
    /// whole server 20, a burst of ten seconds' worth goes at once); beyond it a session's
    /// commands wait their turn. 0 disables the budget [default: 10].
    #[arg(long, env = "NATTER_COMMAND_RATE", value_name = "UNITS")]
    pub command_rate: Option<u16>,
    /// Kibibytes queued for a slow client before it is disconnected, whatever the number of
    /// events [default: 2048].
    #[arg(long, env = "NATTER_OUTBOX_KIB", value_name = "KIB")]
    pub outbox_kib: Option<u32>,
    /// Seconds a new connection has to log in [default: 30].
    #[arg(long, env = "NATTER_REGISTER_TIMEOUT", value_name = "SECS")]
    pub register_timeout: Option<u64>,
    /// What UDP text members receive: `text` (text-mode lines) or `tutorial` (only
    /// `WHO____TEXT` datagrams of at most 1024 bytes, which the socket-chat tutorials' UDP
    /// group-chat client can read) [default: text].
    #[arg(long, env = "NATTER_UDP_FORMAT", value_name = "FORMAT")]
    pub udp_format: Option<UdpFormat>,
    /// How registered nicknames are protected: `enforce` (log in within the grace time or be
    /// renamed to a guest name), `optional` (anyone may use one; its owner, logged in, takes
    /// it back) or `off` [default: enforce].
    #[arg(long, env = "NATTER_NICK_PROTECTION", value_name = "MODE")]
    pub nick_protection: Option<NickProtectionSetting>,
    /// Seconds a session holding a registered nickname has to log in under `enforce`
    /// [default: 30].
    #[arg(long, env = "NATTER_NICK_GRACE", value_name = "SECS")]
    pub nick_grace: Option<u64>,
    /// Log lines on standard error as `text` or `json` (one object per line, for log
    /// collectors); which lines, by `NATTER_LOG` (e.g. `debug`, `natter_core=warn`)
    /// [default: text].
    #[arg(long, env = "NATTER_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Seconds after which a silent UDP member is dropped [default: 300].
    #[arg(long, env = "NATTER_UDP_IDLE", value_name = "SECS")]
    pub udp_idle: Option<u64>,
    /// Whether a new UDP address must prove that it receives before it joins (it sends back
    /// a short token from the server's first reply): `on`, `off` (trusted networks only:
    /// forged datagrams then join and draw room traffic), or `auto`, on unless UDP is bound
    /// to a loopback address [default: auto].
    #[arg(long, env = "NATTER_UDP_VERIFY", value_name = "WHEN")]
    pub udp_verify: Option<UdpVerify>,
    /// UDP members at most, in all [default: 10000].
    #[arg(long, env = "NATTER_UDP_MAX_MEMBERS", value_name = "N")]
    pub udp_max_members: Option<usize>,
    /// UDP members at most from one IP address (one /64 for IPv6) [default: 16].
    #[arg(long, env = "NATTER_UDP_MEMBERS_PER_ADDRESS", value_name = "N")]
    pub udp_members_per_address: Option<u32>,
    /// Datagrams per second one IP address (one /64 for IPv6) may send, in bursts of twice
    /// that; more are dropped. 0 disables the limit [default: 50].
    #[arg(long, env = "NATTER_UDP_ADDRESS_RATE", value_name = "N")]
    pub udp_address_rate: Option<u32>,
    /// Bytes per second the server sends over UDP in all; members wait for their turn beyond
    /// it. 0 disables the limit [default: 33554432, i.e. 32 MiB/s].
    #[arg(long, env = "NATTER_UDP_SEND_RATE", value_name = "BYTES")]
    pub udp_send_rate: Option<u64>,
    /// A room that stores nothing (repeatable).
    #[arg(long = "ephemeral", env = "NATTER_EPHEMERAL", value_name = "#ROOM", value_delimiter = ',')]
    pub ephemeral: Vec<String>,
    /// Make this terminal a participant (nick `operator`), to answer visitors.
    #[arg(long, env = "NATTER_CONSOLE")]
    pub console: bool,
    /// Help-desk mode (implies --console): text-mode visitors are not asked for a name; each
    /// is logged in as guest-N and everything it types goes privately to the server operators.
    #[arg(long, env = "NATTER_HELPDESK")]
    pub helpdesk: bool,
    /// Nickname of the console participant [default: operator].
    #[arg(long, env = "NATTER_CONSOLE_NICK", value_name = "NICK")]
    pub console_nick: Option<String>,
    /// Name the server gives itself (IRC prefixes and numerics) [default: natter].
    #[arg(long, env = "NATTER_SERVER_NAME", value_name = "NAME")]
    pub server_name: Option<String>,
    /// Whether IRC sessions start in the lobby like every other client [default: true].
    #[arg(long, env = "NATTER_IRC_LOBBY", value_name = "BOOL")]
    pub irc_lobby: Option<bool>,
    /// Password every client must give to log in (IRC `PASS`, native `hello`); none by default.
    #[arg(long, env = "NATTER_PASSWORD", value_name = "TEXT")]
    pub password: Option<String>,
    /// A server operator as `name:password` (IRC `OPER`); repeatable.
    #[arg(long = "oper", env = "NATTER_OPERS", value_name = "NAME:PASSWORD", value_delimiter = ',')]
    pub opers: Vec<String>,
    /// TCP connections one address may hold at once (IPv6: one /64); 0 for no cap
    /// [default: 16].
    #[arg(long, env = "NATTER_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<u32>,
    /// TCP connections not yet logged in, server-wide, beyond which each newcomer takes the
    /// place of the one that has waited longest, lowered to a quarter of the file-descriptor
    /// limit; 0 for no cap [default: 1000].
    #[arg(long, env = "NATTER_MAX_UNREGISTERED", value_name = "N")]
    pub max_unregistered: Option<usize>,
    /// Whether connections from this machine (127.0.0.0/8, ::1) are exempt from the
    /// per-address cap and require_tls, and shown with their address uncloaked [default: true].
    #[arg(long, env = "NATTER_EXEMPT_LOOPBACK", value_name = "BOOL")]
    pub exempt_loopback: Option<bool>,
    /// Seconds of silence on a TCP connection before the system probes whether the peer is
    /// still there (TCP keepalive, then every 10 s, 3 times); 0 turns it off [default: 60].
    #[arg(long, env = "NATTER_TCP_KEEPALIVE", value_name = "SECS")]
    pub tcp_keepalive: Option<u64>,
    /// Seconds a logged-in plain TCP connection may have nothing to read or write before it
    /// parks: it gives up its task and waits, with far less memory, until its peer or a
    /// delivery wakes it; 0 never parks [default: 10].
    #[arg(long, env = "NATTER_PARK_AFTER", value_name = "SECS")]
    pub park_after: Option<u64>,
    /// Whether others see a cloak (`a1b2c3d4e5f60718.cloak`) instead of a user's IP address;
    /// server operators still see the address in WHOIS [default: true].
    #[arg(long, env = "NATTER_CLOAK", value_name = "BOOL")]
    pub cloak: Option<bool>,
    /// Secret the cloaks are derived from [default: a random one kept in `<db>.cloak-key`].
    #[arg(long, env = "NATTER_CLOAK_SECRET", value_name = "TEXT")]
    pub cloak_secret: Option<String>,
    /// PEM certificate chain (the server's certificate first) for TLS on every TCP port;
    /// with --tls-key. Reloaded on SIGHUP. `natter cert` makes a self-signed one.
    #[arg(long, env = "NATTER_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "NATTER_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// TCP address of the IRC-over-TLS port, or `off`; needs --tls-cert [default, with a
    /// certificate: the host of --tcp, port 6697].
    #[arg(long, env = "NATTER_IRC_TLS", value_name = "ADDR")]
    pub irc_tls: Option<String>,
    /// Refuse plain-text logins, except over the Unix socket and from loopback (unless
    /// exempt_loopback is false): clients must use TLS [default: false].
    #[arg(long, env = "NATTER_REQUIRE_TLS", value_name = "BOOL")]
    pub require_tls: Option<bool>,
    /// Seconds IRC clients are told to keep to TLS (IRCv3 STS), 0 for no STS [default: 30 days
    /// when the certificate file holds its issuers' chain (a CA's certificate), else 0: a
    /// self-signed certificate fails the check STS clients make].
    #[arg(long, env = "NATTER_STS_DURATION", value_name = "SECS")]
    pub sts_duration: Option<u64>,
    /// Unix-domain socket for local clients (bots, admin tools), created with mode 0660: the
    /// same protocols as the TCP port, its peers shown as this machine; none by default.
    #[arg(long, env = "NATTER_UNIX", value_name = "PATH")]
    pub unix: Option<PathBuf>,
    /// TCP address of a listener for HTTP alone (the chat page, its WebSocket endpoint and,
    /// without --metrics, the operations endpoints), over TLS when configured; or `off` to
    /// serve no HTTP anywhere. The main TCP port serves HTTP too unless this is off
    /// [default: none besides the main port].
    #[arg(long, env = "NATTER_HTTP", value_name = "ADDR")]
    pub http: Option<String>,
    /// TCP address serving /metrics, /healthz and /readyz alone (HTTP, and HTTPS when TLS is
    /// configured), which the public ports then do not serve [default: none: they are served
    /// with the page].
    #[arg(long, env = "NATTER_METRICS", value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Origin of a web page besides natter's own allowed to open WebSocket connections, as
    /// `https://host[:port]`; repeat, or separate with commas [default: natter's own page
    /// only].
    #[arg(long = "web-origin", env = "NATTER_WEB_ORIGINS", value_name = "ORIGIN", value_delimiter = ',')]
    pub web_origins: Vec<String>,
    /// WebSocket URL of another node of the same chat (a cluster), as `wss://host[:port]/ws`,
    /// which the page served here moves to when it loses its own; repeat, or separate with
    /// commas, at most 16. Each of those nodes must list this page's origin in `web_origins`
    /// [default: none: the page only ever connects to its own server].
    #[arg(long = "web-peer", env = "NATTER_WEB_PEERS", value_name = "URL", value_delimiter = ',')]
    pub web_peers: Vec<String>,
    /// NATS server joining this node to others as one chat server, as `nats://HOST:4222`
    /// (several separated by commas; credentials as `nats://USER:PASSWORD@HOST:4222`); needs a
    /// PostgreSQL --db that the nodes share [default: none: a server of its own].
    #[arg(long, env = "NATTER_CLUSTER", value_name = "URL")]
    pub cluster: Option<String>,
    /// This node's name in the cluster, unique among its nodes: 1 to 64 letters, digits, `_`
    /// or `-` [default: the host name].
    #[arg(long, env = "NATTER_NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured only on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// How registered nicknames are protected (`natter_core::hub::NickProtection`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NickProtectionSetting {
    /// Log in within the grace time or be renamed.
    #[default]
    Enforce,
    /// Anyone may use a registered nickname; its owner can reclaim it.
    Optional,
    /// No protection: accounts are only an identity.
    Off,
}

impl From<NickProtectionSetting> for natter_core::hub::NickProtection {
    fn from(s: NickProtectionSetting) -> Self {
        match s {
            NickProtectionSetting::Enforce => Self::Enforce,
            NickProtectionSetting::Optional => Self::Optional,
            NickProtectionSetting::Off => Self::Off,
        }
    }
}

/// How the UDP door writes to text members (native JSON members always get JSON).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UdpFormat {
    /// Text-mode lines, as TCP text clients get them: readable with `nc -u`.
    #[default]
    Text,
    /// Only `WHO____TEXT` datagrams (and `WHO____went offline____`), at most 1024 bytes: the
    /// tutorial UDP group-chat client crashes on anything else.
    Tutorial,
}

/// Whether new UDP addresses must prove that they receive (return routability).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UdpVerify {
    /// On, unless UDP is bound to a loopback address: every peer is then on this machine.
    #[default]
    Auto,
    /// Always: an address joins only once it has sent back the token of the server's reply.
    On,
    /// Never: the first datagram from any address joins it. For trusted networks only.
    Off,
}

impl UdpVerify {
    /// Whether the check runs for a UDP socket bound to `local`.
    pub fn applies_to(self, local: std::net::IpAddr) -> bool {
        match self {
            UdpVerify::Auto => !local.to_canonical().is_loopback(),
            UdpVerify::On => true,
            UdpVerify::Off => false,
        }
    }
}

/// What bounds the UDP door: the address check, the member caps and the rates. Together they
/// keep a forged source address from drawing traffic and any one address from taking the
/// server over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpLimits {
    /// Whether new addresses prove that they receive.
    pub verify: UdpVerify,
    /// Members at most, in all.
    pub max_members: usize,
    /// Members at most per IP address (IPv6: per /64).
    pub members_per_address: u32,
    /// Datagrams per second per IP address (IPv6: per /64), in bursts of twice that; 0 =
    /// unlimited.
    pub address_rate: u32,
    /// Bytes per second sent over UDP in all; 0 = unlimited.
    pub send_rate: u64,
}

impl Default for UdpLimits {
    fn default() -> Self {
        Self {
            verify: UdpVerify::Auto,
            max_members: 10_000,
            members_per_address: 16,
            address_rate: 50,
            send_rate: 32 * 1024 * 1024,
        }
    }
}

/// Resolved settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// TCP listen address; `None` when off.
    pub tcp: Option<String>,
    /// UDP listen address; `None` when off.
    pub udp: Option<String>,
    /// IRC listen address; `None` when off.
    pub irc: Option<String>,
    /// True when the IRC address was chosen (flag, environment or file): failing to bind it is
    /// then an error. The default port being taken only costs a warning, so that several
    /// servers (or another IRC server) can run on one machine without configuration.
    pub irc_required: bool,
    /// Database path, `:memory:`, or a PostgreSQL URL (`postgres://` or `postgresql://`).
    pub db: String,
    /// Messages replayed on join.
    pub history: usize,
    /// How long messages are kept; `None`: for ever.
    pub retention: Option<Duration>,
    /// What every session gets (bounds, the server's name).
    pub session: SessionSettings,
    /// UDP member expiry.
    pub udp_idle: Duration,
    /// What UDP text members receive.
    pub udp_format: UdpFormat,
    /// How registered nicknames are protected.
    pub nick_protection: NickProtectionSetting,
    /// How long a registered nickname may be held without logging in, under `enforce`.
    pub nick_grace: Duration,
    /// The UDP door's bounds.
    pub udp_limits: UdpLimits,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Ephemeral rooms.
    pub ephemeral: Vec<String>,
    /// Console participant nick, when `--console`.
    pub console: Option<String>,
    /// Server password, when one is required.
    pub password: Option<String>,
    /// Server operators `(name, password)`.
    pub operators: Vec<(String, String)>,
    /// Caps on TCP connections and how dead peers are found.
    pub connections: ConnectionSettings,
    /// How users' addresses are shown to others.
    pub cloak: CloakSettings,
    /// The certificate and key files, when TLS is on.
    pub tls: Option<TlsFiles>,
    /// IRC-over-TLS listen address; `None` when off (always off without TLS).
    pub irc_tls: Option<String>,
    /// True when the IRC TLS address was chosen: failing to bind it is then an error, as for
    /// [`Settings::irc_required`].
    pub irc_tls_required: bool,
    /// Plain-text logins refused except from this machine.
    pub require_tls: bool,
    /// IRC STS duration: `None` automatic, `Some(0)` off.
    pub sts_duration: Option<u64>,
    /// The Unix socket's path, when on.
    pub unix: Option<PathBuf>,
    /// Where HTTP is served.
    pub http: HttpSettings,
    /// The cluster this node is part of; `None`: a server of its own.
    pub cluster: Option<ClusterSettings>,
}

/// How a node joins the others of its cluster (`--cluster`, `--node-name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The NATS servers of the bus, their credentials apart (shown without them).
    pub servers: NatsServers,
    /// This node's name: what NATS shows its connection as, and the token that names the node
    /// in bus subjects (hence its alphabet).
    pub node_name: String,
}

/// The longest node name [`valid_node_name`] takes (the test below holds them together).
const MAX_NODE_NAME: usize = 64;

/// This machine's host name made into a node name: its first label, with any other character
/// made `-`; `natter` when there is none.
fn host_node_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is what is passed.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let host = if ok { String::from_utf8_lossy(&buf[..len]).into_owned() } else { String::new() };
    node_name_from_host(&host)
}

fn node_name_from_host(host: &str) -> String {
    let label = host.split('.').next().unwrap_or("");
    let name: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' })
        .take(MAX_NODE_NAME)
        .collect();
    if name.is_empty() { "natter".into() } else { name }
}

/// The cluster settings, when `--cluster` is given: its servers readable, the node's name
/// valid, and a store the nodes share.
fn cluster_settings(
    cluster: Option<String>,
    node_name: Option<String>,
    db: &str,
) -> Result<Option<ClusterSettings>, ConfigError> {
    if let Some(name) = node_name.as_ref().filter(|name| !valid_node_name(name)) {
        return Err(ConfigError::Value {
            name: "node_name",
            message: format!(
                "{name:?} cannot name a node: use 1 to {MAX_NODE_NAME} letters, digits, '_' or '-' (it goes into bus subjects)"
            ),
        });
    }
    let Some(cluster) = cluster.filter(|c| !c.trim().is_empty()) else { return Ok(None) };
    let servers =
        NatsServers::parse(&cluster).map_err(|message| ConfigError::Value { name: "cluster", message })?;
    if !(db.starts_with("postgres://") || db.starts_with("postgresql://")) {
        return Err(ConfigError::Value {
            name: "cluster",
            message: format!(
                "the nodes of a cluster share one store: give --db postgres://USER@HOST/DATABASE \
                 ({db:?} would be this node's alone)"
            ),
        });
    }
    Ok(Some(ClusterSettings { servers, node_name: node_name.unwrap_or_else(host_node_name) }))
}

/// Where HTTP (the page, its WebSocket, the operations endpoints) is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpSettings {
    /// The main TCP port (and the Unix socket) recognise HTTP requests.
    pub on_main_port: bool,
    /// A listener of its own, for HTTP alone.
    pub listener: Option<String>,
    /// A listener for the operations endpoints alone; when set, the others do not serve them.
    pub metrics: Option<String>,
    /// Origins besides the page's own allowed to open WebSocket connections (normalised).
    pub origins: Vec<String>,
    /// WebSocket URLs of the other nodes the page may move to, in order (checked, no
    /// duplicates).
    pub peers: Vec<String>,
}

/// Where the server's certificate and key are (PEM files, read at start and on SIGHUP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// Caps on TCP connections, so that one address (or a crowd of silent newcomers) cannot take
/// every file descriptor, and how the system finds peers that vanished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Connections one address (an IPv4 address, an IPv6 /64) may hold; 0 = no cap.
    pub per_address: u32,
    /// Connections not yet logged in, server-wide; 0 = no cap; `None`: the default (1,000).
    /// Lowered at start to a quarter of the file-descriptor limit.
    pub max_unregistered: Option<usize>,
    /// Loopback peers are not counted per address and not cloaked.
    pub exempt_loopback: bool,
    /// Idle time before TCP keepalive probes; `None` = off.
    pub keepalive: Option<Duration>,
    /// Idle time before a logged-in connection parks ([`crate::park`]); `None` = never.
    pub park_after: Option<Duration>,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            per_address: 16,
            max_unregistered: None,
            exempt_loopback: true,
            keepalive: Some(Duration::from_secs(60)),
            park_after: Some(Duration::from_secs(10)),
        }
    }
}

/// How a user's address is shown to others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloakSettings {
    /// Off: everyone sees everyone's address.
    pub off: bool,
    /// The configured secret; `None`: one kept next to the database.
    pub secret: Option<String>,
}

/// What every session gets, whatever its front door: its bounds (line length, message rate,
/// outbox, time to log in) and how the server presents itself to it (name, IRC lobby).
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// Longest accepted line or frame, in bytes (a `u32`: these settings are copied into
    /// every connection).
    pub max_line: u32,
    /// Average messages per second; 0 = unlimited.
    pub msg_rate: u32,
    /// Burst above the average.
    pub msg_burst: u32,
    /// Outbox capacity, in events (a `u32` for the same reason).
    pub outbox: u32,
    /// Outbox capacity, in KiB of events (a `u32`: it fits beside the flags, and these
    /// settings are copied into every connection).
    pub outbox_kib: u32,
    /// Command budget units earned per second ([`crate::limits::CommandBudget`]); 0 = no
    /// budget. A `u16` for the same reason.
    pub command_rate: u16,
    /// Time to log in.
    pub register_timeout: Duration,
    /// Name the server gives itself (IRC); set once at startup, hence `'static`.
    pub server_name: &'static str,
    /// IRC sessions start in the lobby.
    pub irc_lobby: bool,
    /// Help-desk mode, when on: text-mode visitors become guests of the operators. (One
    /// pointer: these settings are copied into every connection's task.)
    pub helpdesk: Option<&'static Helpdesk>,
    /// STS and `require_tls`, when either applies (one pointer, for the same reason).
    pub tls: Option<&'static crate::tls::TlsPolicy>,
}

/// What help-desk mode needs (`--helpdesk`): the console operator visitors talk to, and the
/// counter their `guest-N` names come from, shared by every connection of one server.
#[derive(Debug)]
pub struct Helpdesk {
    /// The console's nickname (the operator visitors are told about).
    pub operator: String,
    /// The next guest number to try.
    pub next_guest: std::sync::atomic::AtomicU64,
}

impl Helpdesk {
    /// A help desk answered by `operator`, numbering its guests from 1. Leaked once per
    /// server: every session borrows it for the server's lifetime.
    pub fn new(operator: &str) -> &'static Self {
        Box::leak(Box::new(Self {
            operator: operator.to_string(),
            next_guest: std::sync::atomic::AtomicU64::new(1),
        }))
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            max_line: 16 * 1024,
            msg_rate: 10,
            msg_burst: 30,
            outbox: 4096,
            outbox_kib: 2048,
            command_rate: natter_core::command::COST_UNITS_PER_SECOND as u16,
            register_timeout: Duration::from_secs(30),
            server_name: "natter",
            irc_lobby: true,
            helpdesk: None,
            tls: None,
        }
    }
}

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {problem}")]
    Read {
        /// File.
        path: PathBuf,
        /// Why (not a `source`: the one sentence already says it).
        problem: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting {name}: {message}")]
    Value {
        /// Setting.
        name: &'static str,
        /// What to use instead.
        message: String,
    },
}

fn off(addr: String) -> Option<String> {
    (!addr.eq_ignore_ascii_case("off")).then_some(addr)
}

/// Checks that a listen address (`name`: tcp, udp or irc) is `HOST:PORT` (`[::]:PORT` for
/// IPv6), so that a bare port or a typo is refused with what to write instead.
fn listen_address(name: &'static str, addr: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(addr) = addr else { return Ok(None) };
    let port = addr.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
    match port {
        Some((host, Ok(_))) if !host.is_empty() => Ok(Some(addr)),
        _ => {
            let port = addr.parse::<u16>().map_or(7878, |p| p);
            Err(ConfigError::Value {
                name,
                message: format!(
                    "{addr:?} is not an address: give HOST:PORT, e.g. 127.0.0.1:{port} (this machine only), \
                     0.0.0.0:{port} (every interface) or [::]:{port} (IPv6), or off"
                ),
            })
        }
    }
}

/// The TLS files, when both are given; either alone is a mistake worth naming.
fn tls_files(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::Value {
            name: "tls_key",
            message: "--tls-cert needs its private key: give --tls-key too".into(),
        }),
        (None, Some(_)) => Err(ConfigError::Value {
            name: "tls_cert",
            message: "--tls-key needs its certificate: give --tls-cert too".into(),
        }),
    }
}

/// The IRC TLS address: as chosen (which needs a certificate), or by default the main TCP
/// address's host on port 6697 when TLS is on (127.0.0.1 when the TCP port is off), so that
/// TLS never opens the server to more interfaces than the operator chose.
fn irc_tls_address(
    chosen: Option<String>,
    tls: bool,
    tcp: Option<&str>,
) -> Result<Option<String>, ConfigError> {
    match chosen.map(off) {
        Some(Some(addr)) if tls => listen_address("irc_tls", Some(addr)),
        Some(Some(_)) => Err(ConfigError::Value {
            name: "irc_tls",
            message:
                "IRC over TLS needs a certificate: give --tls-cert and --tls-key (natter cert makes them)"
                    .into(),
        }),
        Some(None) => Ok(None),
        None if tls => {
            let host = tcp.and_then(|addr| addr.rsplit_once(':')).map_or("127.0.0.1", |(host, _)| host);
            Ok(Some(format!("{host}:6697")))
        }
        None => Ok(None),
    }
}

/// An origin as the operator writes it, normalised for comparison (`https://chat.example`),
/// or why it cannot be one.
fn web_origin(origin: &str) -> Result<String, String> {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    match origin.split_once("://") {
        Some(("http" | "https", host)) if !host.is_empty() && !host.contains('/') => Ok(origin),
        _ => Err(format!(
            "{origin:?} is not an origin: write the scheme and host of the page, e.g. https://chat.example.org"
        )),
    }
}

/// The most other nodes a page is told of: it tries each in turn, so a longer list only
/// lengthens a round of failed attempts.
pub const MAX_WEB_PEERS: usize = 16;

/// A WebSocket URL of another node as the operator writes it (`wss://host[:port]/path`),
/// with the scheme and host lowercased, or why it cannot be one. The URL goes into the page's
/// Content-Security-Policy (`connect-src`), whose source expressions have no query, fragment,
/// quotes, commas or semicolons: those are refused rather than escaped.
fn web_peer(url: &str) -> Result<String, String> {
    let url = url.trim();
    let bad = |why: &str| {
        format!(
            "{url:?} is not a WebSocket URL of another node ({why}): write e.g. wss://chat2.example.org/ws"
        )
    };
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ';' | ',' | '\'' | '"' | '?' | '#'))
    {
        return Err(bad("no spaces, quotes, commas, semicolons, query or fragment"));
    }
    let uri: http::Uri = url.parse().map_err(|_| bad("it does not parse"))?;
    let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
    if !matches!(scheme.as_deref(), Some("ws" | "wss")) {
        return Err(bad("the scheme must be ws:// or wss://"));
    }
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        return Err(bad("it has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(bad("no user name or password"));
    }
    let path = match uri.path() {
        "" => "/",
        path => path,
    };
    Ok(format!("{}://{}{path}", scheme.unwrap_or_default(), authority.as_str().to_ascii_lowercase()))
}

/// The peers' URLs, checked, the same URL kept once, at most [`MAX_WEB_PEERS`].
fn web_peers<'a>(peers: impl Iterator<Item = &'a String>) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for peer in peers {
        let peer = web_peer(peer).map_err(|message| ConfigError::Value { name: "web_peers", message })?;
        if !out.contains(&peer) {
            out.push(peer);
        }
        if out.len() > MAX_WEB_PEERS {
            return Err(ConfigError::Value {
                name: "web_peers",
                message: format!("more than {MAX_WEB_PEERS} URLs: list the other nodes of this chat only"),
            });
        }
    }
    Ok(out)
}

/// Where HTTP is served, from the flags over the file.
fn http_settings<'a>(
    http: Option<String>,
    metrics: Option<String>,
    origins: impl Iterator<Item = &'a String>,
    peers: impl Iterator<Item = &'a String>,
) -> Result<HttpSettings, ConfigError> {
    let (on_main_port, listener) = match http.map(off) {
        Some(None) => (false, None),
        Some(Some(addr)) => (true, listen_address("http", Some(addr))?),
        None => (true, None),
    };
    let metrics = listen_address("metrics", metrics)?;
    let origins = origins
        .map(|origin| web_origin(origin))
        .collect::<Result<_, _>>()
        .map_err(|message| ConfigError::Value { name: "web_origins", message })?;
    let peers = web_peers(peers)?;
    Ok(HttpSettings { on_main_port, listener, metrics, origins, peers })
}

impl Settings {
    /// Merges flags/env over the file over defaults.
    pub fn resolve(args: Args) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|problem| ConfigError::Read { path: path.clone(), problem })?;
                toml::from_str::<Args>(&text)
                    .map_err(|e| ConfigError::Parse { path: path.clone(), message: e.to_string() })?
            }
            None => Args::default(),
        };
        let defaults = SessionSettings::default();
        let session = SessionSettings {
            max_line: match args.max_line.or(file.max_line) {
                Some(max) => u32::try_from(max).map_err(|_| ConfigError::Value {
                    name: "max_line",
                    message: "must be at most 4294967295 bytes".into(),
                })?,
                None => defaults.max_line,
            },
            msg_rate: args.msg_rate.or(file.msg_rate).unwrap_or(defaults.msg_rate),
            msg_burst: args.msg_burst.or(file.msg_burst).unwrap_or(defaults.msg_burst),
            outbox: match args.outbox.or(file.outbox) {
                Some(n) => u32::try_from(n).map_err(|_| ConfigError::Value {
                    name: "outbox",
                    message: "must be at most 4294967295 events".into(),
                })?,
                None => defaults.outbox,
            },
            outbox_kib: args.outbox_kib.or(file.outbox_kib).unwrap_or(defaults.outbox_kib),
            command_rate: args.command_rate.or(file.command_rate).unwrap_or(defaults.command_rate),
            register_timeout: args
                .register_timeout
                .or(file.register_timeout)
                .map(Duration::from_secs)
                .unwrap_or(defaults.register_timeout),
            server_name: match args.server_name.or(file.server_name) {
                // Leaked once at startup: every session borrows it for the server's lifetime.
                Some(name) => Box::leak(name.into_boxed_str()),
                None => defaults.server_name,
            },
            irc_lobby: args.irc_lobby.or(file.irc_lobby).unwrap_or(defaults.irc_lobby),
            helpdesk: None,
            tls: None,
        };
        if session.server_name.is_empty() || session.server_name.contains([' ', ':', '!', '@']) {
            return Err(ConfigError::Value {
                name: "server_name",
                message: "must be one word without ':', '!' or '@'".into(),
            });
        }
        if session.max_line < 64 {
            return Err(ConfigError::Value { name: "max_line", message: "must be at least 64 bytes".into() });
        }
        if session.outbox == 0 {
            return Err(ConfigError::Value { name: "outbox", message: "must be at least 1".into() });
        }
        if session.outbox_kib < 64 {
            return Err(ConfigError::Value { name: "outbox_kib", message: "must be at least 64 KiB".into() });
        }
        let udp_defaults = UdpLimits::default();
        let udp_limits = UdpLimits {
            verify: args.udp_verify.or(file.udp_verify).unwrap_or(udp_defaults.verify),
            max_members: args.udp_max_members.or(file.udp_max_members).unwrap_or(udp_defaults.max_members),
            members_per_address: args
                .udp_members_per_address
                .or(file.udp_members_per_address)
                .unwrap_or(udp_defaults.members_per_address),
            address_rate: args
                .udp_address_rate
                .or(file.udp_address_rate)
                .unwrap_or(udp_defaults.address_rate),
            send_rate: args.udp_send_rate.or(file.udp_send_rate).unwrap_or(udp_defaults.send_rate),
        };
        if udp_limits.max_members == 0 {
            return Err(ConfigError::Value {
                name: "udp_max_members",
                message: "must be at least 1 (turn UDP off with udp = \"off\")".into(),
            });
        }
        if udp_limits.members_per_address == 0 {
            return Err(ConfigError::Value {
                name: "udp_members_per_address",
                message: "must be at least 1".into(),
            });
        }
        if udp_limits.send_rate != 0 && udp_limits.send_rate < 64 * 1024 {
            return Err(ConfigError::Value {
                name: "udp_send_rate",
                message: "must be at least 65536 bytes per second, or 0 for no limit".into(),
            });
        }
        let mut ephemeral = file.ephemeral;
        ephemeral.extend(args.ephemeral);
        for room in &ephemeral {
            natter_proto::names::validate_room(room)
                .map_err(|e| ConfigError::Value { name: "ephemeral", message: format!("{room}: {e}") })?;
        }
        let mut operators = Vec::new();
        for oper in file.opers.iter().chain(&args.opers) {
            match oper.split_once(':') {
                Some((name, password)) if !name.is_empty() && !password.is_empty() => {
                    operators.push((name.to_string(), password.to_string()))
                }
                _ => {
                    return Err(ConfigError::Value {
                        name: "opers",
                        message: format!("{oper:?}: use name:password"),
                    });
                }
            }
        }
        let helpdesk = args.helpdesk || file.helpdesk;
        // Someone has to answer the visitors: help-desk mode brings the console along.
        let console = args.console || file.console || helpdesk;
        let console_nick = args.console_nick.or(file.console_nick).unwrap_or_else(|| "operator".into());
        if console {
            natter_proto::names::validate_nick(&console_nick)
                .map_err(|e| ConfigError::Value { name: "console_nick", message: e.to_string() })?;
        }
        let session = SessionSettings { helpdesk: helpdesk.then(|| Helpdesk::new(&console_nick)), ..session };
        let tcp =
            listen_address("tcp", off(args.tcp.or(file.tcp).unwrap_or_else(|| "127.0.0.1:7878".into())))?;
        let tls = tls_files(args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key))?;
        let irc_tls_chosen = args.irc_tls.or(file.irc_tls);
        let irc_tls_required = irc_tls_chosen.is_some();
        let irc_tls = irc_tls_address(irc_tls_chosen, tls.is_some(), tcp.as_deref())?;
        let http = http_settings(
            args.http.or(file.http),
            args.metrics.or(file.metrics),
            file.web_origins.iter().chain(&args.web_origins),
            file.web_peers.iter().chain(&args.web_peers),
        )?;
        let db = args.db.or(file.db).unwrap_or_else(|| "natter.db".into());
        let cluster =
            cluster_settings(args.cluster.or(file.cluster), args.node_name.or(file.node_name), &db)?;
        Ok(Self {
            cluster,
            tcp,
            tls,
            irc_tls,
            irc_tls_required,
            require_tls: args.require_tls.or(file.require_tls).unwrap_or(false),
            sts_duration: args.sts_duration.or(file.sts_duration),
            unix: args.unix.or(file.unix),
            http,
            udp: listen_address(
                "udp",
                off(args.udp.or(file.udp).unwrap_or_else(|| "127.0.0.1:7878".into())),
            )?,
            irc_required: args.irc.is_some() || file.irc.is_some(),
            irc: listen_address(
                "irc",
                off(args.irc.or(file.irc).unwrap_or_else(|| "127.0.0.1:6667".into())),
            )?,
            db,
            history: args.history.or(file.history).unwrap_or(50),
            retention: match args.history_days.or(file.history_days).unwrap_or(0) {
                0 => None,
                days => Some(Duration::from_secs(u64::from(days) * 86_400)),
            },
            session,
            udp_idle: Duration::from_secs(args.udp_idle.or(file.udp_idle).unwrap_or(300)),
            udp_format: args.udp_format.or(file.udp_format).unwrap_or_default(),
            nick_protection: args.nick_protection.or(file.nick_protection).unwrap_or_default(),
            nick_grace: Duration::from_secs(args.nick_grace.or(file.nick_grace).unwrap_or(30).max(1)),
            udp_limits,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            ephemeral,
            console: console.then_some(console_nick),
            password: args.password.or(file.password).filter(|p| !p.is_empty()),
            operators,
            connections: ConnectionSettings {
                per_address: args
                    .max_connections_per_address
                    .or(file.max_connections_per_address)
                    .unwrap_or(ConnectionSettings::default().per_address),
                max_unregistered: args.max_unregistered.or(file.max_unregistered),
                exempt_loopback: args
                    .exempt_loopback
                    .or(file.exempt_loopback)
                    .unwrap_or(ConnectionSettings::default().exempt_loopback),
                keepalive: match args.tcp_keepalive.or(file.tcp_keepalive) {
                    Some(0) => None,
                    Some(secs) => Some(Duration::from_secs(secs)),
                    None => ConnectionSettings::default().keepalive,
                },
                park_after: match args.park_after.or(file.park_after) {
                    Some(0) => None,
                    Some(secs) => Some(Duration::from_secs(secs)),
                    None => ConnectionSettings::default().park_after,
                },
            },
            cloak: CloakSettings {
                off: !args.cloak.or(file.cloak).unwrap_or(true),
                secret: args.cloak_secret.or(file.cloak_secret).filter(|s| !s.is_empty()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let s = Settings::resolve(Args::default()).unwrap();
        assert_eq!(s.tcp.as_deref(), Some("127.0.0.1:7878"));
        assert_eq!(s.db, "natter.db");
        assert_eq!(s.irc.as_deref(), Some("127.0.0.1:6667"));
        assert_eq!(s.history, 50);
        assert_eq!(s.retention, None, "messages are kept for ever unless told otherwise");
        assert_eq!(s.udp_format, UdpFormat::Text);
        assert_eq!(s.udp_limits, UdpLimits::default());
        assert!(s.session.helpdesk.is_none());
        assert_eq!(s.connections, ConnectionSettings::default());
        assert_eq!(s.connections.per_address, 16);
        assert!(s.connections.exempt_loopback);
        assert_eq!(s.connections.keepalive, Some(Duration::from_secs(60)));
        assert_eq!(s.connections.park_after, Some(Duration::from_secs(10)));
        assert_eq!(s.cloak, CloakSettings { off: false, secret: None });
    }

    #[test]
    fn the_udp_address_check_is_automatic_off_loopback_only() {
        use std::net::IpAddr;
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(!UdpVerify::Auto.applies_to(ip("127.0.0.1")));
        assert!(!UdpVerify::Auto.applies_to(ip("::1")));
        assert!(!UdpVerify::Auto.applies_to(ip("::ffff:127.0.0.1")));
        for public in ["0.0.0.0", "::", "192.168.1.5", "2001:db8::1"] {
            assert!(UdpVerify::Auto.applies_to(ip(public)), "{public}");
        }
        assert!(UdpVerify::On.applies_to(ip("127.0.0.1")));
        assert!(!UdpVerify::Off.applies_to(ip("0.0.0.0")));
    }

    #[test]
    fn udp_caps_that_would_shut_udp_out_are_refused() {
        for (args, name) in [
            (Args { udp_max_members: Some(0), ..Default::default() }, "udp_max_members"),
            (Args { udp_members_per_address: Some(0), ..Default::default() }, "udp_members_per_address"),
            (Args { udp_send_rate: Some(1000), ..Default::default() }, "udp_send_rate"),
        ] {
            let e = Settings::resolve(args).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
        let unlimited = Args { udp_send_rate: Some(0), udp_address_rate: Some(0), ..Default::default() };
        let s = Settings::resolve(unlimited).unwrap();
        assert_eq!((s.udp_limits.send_rate, s.udp_limits.address_rate), (0, 0));
    }

    #[test]
    fn a_bare_port_is_refused_with_what_to_write() {
        let e = Settings::resolve(Args { tcp: Some("17026".into()), ..Default::default() }).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("tcp") && text.contains("HOST:PORT") && text.contains("0.0.0.0:17026"),
            "{text}"
        );
        for bad in ["localhost", ":80", "host:99999", "1.2.3.4:x"] {
            assert!(
                Settings::resolve(Args { udp: Some(bad.into()), ..Default::default() }).is_err(),
                "{bad}"
            );
        }
        for good in ["[::]:7878", "localhost:7000", "0.0.0.0:0", "off"] {
            assert!(
                Settings::resolve(Args { irc: Some(good.into()), ..Default::default() }).is_ok(),
                "{good}"
            );
        }
    }

    /// These settings are copied into every connection's task, whose size decides what an
    /// idle connection costs: they stay within 72 bytes.
    #[test]
    fn session_settings_stay_small() {
        assert!(std::mem::size_of::<SessionSettings>() <= 72, "{}", std::mem::size_of::<SessionSettings>());
    }

    #[test]
    fn helpdesk_brings_the_console() {
        let s = Settings::resolve(Args {
            helpdesk: true,
            console_nick: Some("ops".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.console.as_deref(), Some("ops"));
        let desk = s.session.helpdesk.unwrap();
        assert_eq!(desk.operator, "ops");
        assert_eq!(desk.next_guest.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn flags_override_file_and_off_disables() {
        let dir = std::env::temp_dir().join(format!("natter-config-test-{}", std::process::id()));
        std::fs::write(
            &dir,
            "tcp = \"[::1]:9000\"\nudp = \"off\"\nudp_format = \"tutorial\"\nirc = \"off\"\nhistory = 5\nhistory_days = 30\nephemeral = [\"#secret\"]\n",
        )
        .unwrap();
        let args = Args {
            config: Some(dir.clone()),
            history: Some(7),
            udp_format: Some(UdpFormat::Text),
            ..Default::default()
        };
        let s = Settings::resolve(args).unwrap();
        std::fs::remove_file(&dir).ok();
        assert_eq!(s.tcp.as_deref(), Some("[::1]:9000"));
        assert_eq!(s.udp, None);
        assert_eq!(s.irc, None);
        assert_eq!(s.history, 7);
        assert_eq!(s.retention, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(s.udp_format, UdpFormat::Text, "the flag wins over the file");
        assert_eq!(s.ephemeral, vec!["#secret".to_string()]);
    }

    #[test]
    fn every_file_key_is_read_and_config_is_not_one() {
        let path = std::env::temp_dir().join(format!("natter-config-keys-{}", std::process::id()));
        std::fs::write(
            &path,
            "db = \":memory:\"\nmax_line = 100\nmsg_rate = 2\nmsg_burst = 3\noutbox = 4\n\
             register_timeout = 5\nudp_idle = 6\nudp_format = \"tutorial\"\nconsole = true\nconsole_nick = \"op\"\n\
             server_name = \"irc.test\"\nirc_lobby = false\npassword = \"pw\"\nopers = [\"a:b\"]\n\
             helpdesk = true\nlog_format = \"json\"\nudp_verify = \"on\"\nudp_max_members = 7\n\
             udp_members_per_address = 8\nudp_address_rate = 9\nudp_send_rate = 100000\n\
             max_connections_per_address = 7\nmax_unregistered = 8\nexempt_loopback = false\n\
             tcp_keepalive = 0\npark_after = 0\ncloak = false\ncloak_secret = \"salt\"\n",
        )
        .unwrap();
        let s = Settings::resolve(Args { config: Some(path.clone()), ..Default::default() });
        std::fs::write(&path, "config = \"other.toml\"\n").unwrap();
        let nested = Settings::resolve(Args { config: Some(path.clone()), ..Default::default() });
        std::fs::remove_file(&path).ok();
        let s = s.unwrap();
        assert_eq!(s.db, ":memory:");
        assert_eq!(
            (s.session.max_line, s.session.msg_rate, s.session.msg_burst, s.session.outbox),
            (100, 2, 3, 4)
        );
        assert_eq!(s.session.register_timeout, Duration::from_secs(5));
        assert_eq!(s.udp_idle, Duration::from_secs(6));
        assert_eq!(s.udp_format, UdpFormat::Tutorial);
        assert_eq!(
            s.udp_limits,
            UdpLimits {
                verify: UdpVerify::On,
                max_members: 7,
                members_per_address: 8,
                address_rate: 9,
                send_rate: 100_000
            }
        );
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.console.as_deref(), Some("op"));
        assert_eq!(s.session.server_name, "irc.test");
        assert!(!s.session.irc_lobby);
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.operators, vec![("a".to_string(), "b".to_string())]);
        assert_eq!(s.session.helpdesk.map(|h| h.operator.as_str()), Some("op"));
        assert_eq!(
            s.connections,
            ConnectionSettings {
                per_address: 7,
                max_unregistered: Some(8),
                exempt_loopback: false,
                keepalive: None,
                park_after: None
            }
        );
        assert_eq!(s.cloak, CloakSettings { off: true, secret: Some("salt".into()) });
        let err = nested.unwrap_err();
        assert!(err.to_string().contains("unknown field `config`"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let path = std::env::temp_dir().join(format!("natter-config-bad-{}", std::process::id()));
        std::fs::write(&path, "tpc = \"x\"\n").unwrap();
        let err = Settings::resolve(Args { config: Some(path.clone()), ..Default::default() }).unwrap_err();
        std::fs::remove_file(&path).ok();
        assert!(err.to_string().contains("tpc"), "{err}");
        let err =
            Settings::resolve(Args { ephemeral: vec!["nohash".into()], ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("nohash"), "{err}");
        let path = std::env::temp_dir().join(format!("natter-config-badfmt-{}", std::process::id()));
        std::fs::write(&path, "udp_format = \"json\"\n").unwrap();
        let err = Settings::resolve(Args { config: Some(path.clone()), ..Default::default() }).unwrap_err();
        std::fs::remove_file(&path).ok();
        assert!(err.to_string().contains("udp_format") || err.to_string().contains("tutorial"), "{err}");
    }

    #[test]
    fn a_cluster_needs_postgres_and_a_node_name_fit_for_subjects() {
        let cluster = |db: &str, name: Option<&str>| {
            Settings::resolve(Args {
                db: Some(db.into()),
                cluster: Some("nats://natter:s3cret@10.0.0.1:4222,10.0.0.2".into()),
                node_name: name.map(Into::into),
                ..Default::default()
            })
        };
        let s = cluster("postgres://natter@db/natter", Some("node-1")).unwrap();
        let c = s.cluster.unwrap();
        assert_eq!(
            (c.servers.display().as_str(), c.node_name.as_str()),
            ("nats://10.0.0.1:4222,nats://10.0.0.2", "node-1")
        );
        assert!(!format!("{c:?}").contains("s3cret"), "{c:?}");
        assert!(valid_node_name(
            &cluster("postgresql://db/natter", None).unwrap().cluster.unwrap().node_name
        ));
        for db in ["natter.db", ":memory:", "/var/lib/natter/postgres://x"] {
            let e = cluster(db, None).unwrap_err().to_string();
            assert!(e.contains("cluster") && e.contains("postgres://") && e.contains(db), "{e}");
        }
        for bad in ["", "a.b", "node 1", "n*", "x>", &"n".repeat(65), "nœud"] {
            let e = cluster("postgres://db/natter", Some(bad)).unwrap_err().to_string();
            assert!(e.contains("node_name") && e.contains("letters"), "{bad}: {e}");
        }
        assert!(cluster("postgres://db/natter", Some(&"n".repeat(64))).is_ok());
        let e = Settings::resolve(Args {
            cluster: Some("http://u:pw@h".into()),
            db: Some("postgres://db".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("cluster") && e.contains("NATS") && !e.contains("pw"), "{e}");
        assert!(Settings::resolve(Args::default()).unwrap().cluster.is_none());
        let path = std::env::temp_dir().join(format!("natter-config-cluster-{}", std::process::id()));
        std::fs::write(
            &path,
            "db = \"postgres://db/natter\"\ncluster = \"nats://n1:4222\"\nnode_name = \"n1\"\n",
        )
        .unwrap();
        let s = Settings::resolve(Args { config: Some(path.clone()), ..Default::default() });
        std::fs::remove_file(&path).ok();
        assert_eq!(s.unwrap().cluster.unwrap().node_name, "n1");
    }

    #[test]
    fn host_names_become_node_names() {
        assert_eq!(node_name_from_host("web-1.example.org"), "web-1");
        assert_eq!(node_name_from_host("db_2"), "db_2");
        assert_eq!(node_name_from_host("h\u{e9}te"), "h-te");
        assert_eq!(node_name_from_host(""), "natter");
        assert_eq!(node_name_from_host(&"x".repeat(100)).len(), 64);
        assert!(valid_node_name(&host_node_name()));
    }

    #[test]
    fn web_origins_are_checked() {
        assert!(web_origin("chat.example").is_err());
        assert!(web_origin("ftp://chat.example").is_err());
        assert!(web_origin("https://chat.example/path").is_err());
        assert_eq!(web_origin("HTTPS://Chat.Example/").unwrap(), "https://chat.example");
    }

    #[test]
    fn web_peers_are_checked_normalised_deduplicated_and_bounded() {
        assert_eq!(web_peer("WSS://Chat2.Example:8443/ws").unwrap(), "wss://chat2.example:8443/ws");
        assert_eq!(web_peer(" ws://10.0.0.2:7878 ").unwrap(), "ws://10.0.0.2:7878/");
        for bad in [
            "https://chat2.example/ws",
            "chat2.example/ws",
            "wss:///ws",
            "wss://chat2.example/ws?x=1",
            "wss://chat2.example/ws#top",
            "wss://chat2.example/ws; script-src *",
            "wss://chat2.example/'unsafe-inline'",
            "wss://a.example/ws,wss://b.example/ws",
            "wss://user:pw@chat2.example/ws",
            "",
        ] {
            let e = web_peer(bad).unwrap_err();
            assert!(e.contains("wss://chat2.example.org/ws"), "{bad}: {e}");
        }
        let list =
            ["wss://a.example/ws".to_string(), "WSS://A.example/ws".into(), "wss://b.example/ws".into()];
        assert_eq!(web_peers(list.iter()).unwrap(), ["wss://a.example/ws", "wss://b.example/ws"]);
        let many: Vec<String> = (0..100).map(|i| format!("wss://n{i}.example/ws")).collect();
        let e = web_peers(many.iter()).unwrap_err().to_string();
        assert!(e.contains("web_peers") && e.contains("more than 16"), "{e}");
        assert_eq!(web_peers(many[..16].iter()).unwrap().len(), 16);
    }
}
