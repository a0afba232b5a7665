//! The hub: one task that owns all chat state (sessions, nicks, rooms) and decides who
//! receives what.
//!
//! Front doors talk to it through a cloneable [`HubHandle`]. A single owner means no locks on
//! chat state and a total order of events per room; the work per command is small (fanout is a
//! loop of non-blocking outbox pushes), so one task serves every session.

mod accounts;
mod authenticate;
mod cids;
mod claims;
mod cluster;
mod delivery;
mod dispatch;
mod history;
mod identity;
mod ignore;
mod liveness;
mod mailbox;
mod membership;
mod messages;
mod mirrors;
mod moderation;
mod monitor;
mod passwords;
mod protection;
mod queries;
mod roster;
mod routing;
mod sessions;
mod standing;
mod state;
mod tokens;
mod verifier;

pub use crate::limits::{
    MAX_AWAY_BYTES, MAX_BANS, MAX_CERTIFICATES, MAX_KEY_CHARS, MAX_KICK_BYTES, MAX_MAILBOX_BYTES,
    MAX_MAILBOX_MESSAGES, MAX_REALNAME_BYTES, MAX_TOPIC_BYTES, MAX_WATCHES, MAX_WHO_PAGE,
};
pub use protection::NickProtection;
pub use state::SessionId;

use crate::authenticate::{AuthAnswer, Credential};
use crate::command::{Command, Registration};
use crate::event::{ChatMessage, ServerStats};
use crate::metrics::{Disconnect, Metrics, Tally};
use crate::persist::{Committed, Persister};
use crate::refusal::Refusal;
use crate::request::Req;
use crate::store::{LoadWindow, Store, StoreError, StoredMessage};
use cids::CidCache;
use history::HistoryPage;
use rustc_hash::FxHashMap;

use crate::vocab::Name;
use state::Room;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Stored messages per room whose client ids are remembered across a restart.
const CID_WINDOW: usize = 1024;
/// Commands the hub takes from its queue at most per turn: enough to batch a busy moment, few
/// enough that acknowledgements and deliveries go out between turns.
const COMMAND_BATCH: usize = 256;
/// Runtime turns the hub lets pass, at most, gathering the commands of one moment.
const MAX_GATHER_TURNS: u32 = 3;
/// How long before a room's last message a start still reads its client ids: a client resends
/// what was not acknowledged when its connection dropped, the last moments before a stop.
const RESEND_WINDOW_MS: u64 = 10 * 60 * 1000;

/// Settings of the chat model.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Messages replayed when joining a room.
    pub history: usize,
    /// Largest page a history request may return.
    pub max_history_page: u32,
    /// Rooms that store nothing, whatever the store says.
    pub ephemeral_rooms: Vec<String>,
    /// The room every session starts in.
    pub lobby: String,
    /// Commands queued to the hub before front doors wait.
    pub queue: usize,
    /// Rooms with more members than this do not announce joins, parts and quits: in a room of
    /// thousands those notices would be most of the traffic (each join costs every member).
    pub presence_limit: usize,
    /// Password every session must give to log in (IRC `PASS`); `None`: none needed.
    pub password: Option<String>,
    /// Server operators' `(name, password)`: `Oper` with one of them makes a session operator
    /// of every room, like the console.
    pub operators: Vec<(String, String)>,
    /// How long an address or an operator name waits after wrong passwords.
    pub login_throttle: crate::throttle::Policy,
    /// A private message to a UDP member silent this long draws a note to the sender that
    /// the member may be gone (UDP never says when a peer vanishes).
    pub udp_quiet: std::time::Duration,
    /// Nicknames nobody may take (compared folded): the names of services IRC users trust
    /// (`NickServ`, ...) and the server's own, so that no user can pass for them.
    pub reserved_nicks: Vec<String>,
    /// How registered nicknames are protected from others.
    pub nick_protection: NickProtection,
    /// Under `enforce`, how long a session holding a registered nickname has to log in.
    pub nick_grace: std::time::Duration,
    /// Accounts one address (IPv6: one /64) may register an hour; 0: no limit.
    pub registrations_per_hour: u32,
    /// How often the hub checks whether another process (`natter user`) changed the accounts,
    /// to read its table of registered names again.
    pub account_refresh: std::time::Duration,
    /// How long room and private messages are kept (`history_days`); `None`: for ever.
    pub retention: Option<std::time::Duration>,
}

/// Service names IRC clients show as trustworthy: reserved on every server.
pub const SERVICE_NICKS: &[&str] =
    &["nickserv", "chanserv", "memoserv", "operserv", "hostserv", "botserv", "saslserv", "global", "natter"];

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            history: 50,
            max_history_page: 500,
            ephemeral_rooms: Vec::new(),
            lobby: "#lobby".into(),
            queue: 16 * 1024,
            presence_limit: 500,
            password: None,
            operators: Vec::new(),
            login_throttle: crate::throttle::Policy::default(),
            udp_quiet: std::time::Duration::from_secs(60),
            reserved_nicks: SERVICE_NICKS.iter().map(|s| s.to_string()).collect(),
            nick_protection: NickProtection::default(),
            nick_grace: std::time::Duration::from_secs(30),
            account_refresh: std::time::Duration::from_secs(30),
            registrations_per_hour: 5,
            retention: None,
        }
    }
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The session's id, for every later command.
    pub session: SessionId,
    /// The nickname in use.
    pub nick: String,
}

/// A refused login; the session may try again (unless the password was wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegisterError(pub Refusal);

/// Why a store probe was not even sent ([`HubHandle::try_probe_store`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProbeRefused {
    /// The hub's queue is full.
    #[error("the hub is saturated: its queue of {queue} commands is full")]
    Busy {
        /// The queue's size.
        queue: usize,
    },
    /// The hub has stopped.
    #[error("the server is shutting down")]
    Stopped,
}

/// The hub has stopped (server shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is shutting down")]
pub struct HubGone;

enum HubMsg {
    /// Boxed, like `Authenticate`: a connection's task holds a `HubMsg` while it sends one
    /// (every command), so the largest variant sets what every idle connection pays, and a
    /// registration is the largest by far and sent once.
    Register(Box<Registration>, oneshot::Sender<Result<Registered, RegisterError>>),
    /// Boxed: see `Register`.
    Authenticate(Box<(Credential, Option<std::net::IpAddr>)>, oneshot::Sender<AuthAnswer>),
    Command(SessionId, Command),
    /// Asks the commit thread for a write to the store (`HubHandle::try_probe_store`).
    ProbeStore(oneshot::Sender<Result<(), String>>),
    /// An event from another node of the cluster (boxed: see `Register`).
    Node(Box<crate::cluster::NodeEvent>),
    /// The bus to the other nodes is back after an outage.
    BusBack,
    Shutdown(String, oneshot::Sender<()>),
}

/// The front doors' way into the hub.
#[derive(Clone)]
pub struct HubHandle {
    tx: mpsc::Sender<HubMsg>,
    /// What never changes, behind one thin pointer: every connection holds a handle.
    shared: Arc<Shared>,
}

/// The part of [`HubHandle`] its clones share.
struct Shared {
    lobby: Box<str>,
    metrics: Arc<Metrics>,
}

impl HubHandle {
    /// The room every session starts in ([`HubConfig::lobby`]): doors that mention it (a
    /// greeting, a message of the day) read it here, so that it is set in one place.
    pub fn lobby(&self) -> &str {
        &self.shared.lobby
    }

    /// The hub's counters (connections, sessions, messages, disconnects, commits), for the
    /// front doors to count what they decide and for the server's metrics to read.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Commands queued to the hub and not yet taken: how far behind the hub is.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Asks the store for a small write through the hub and its commit thread, behind the
    /// writes queued before it (readiness checks). The receiver gets `Ok` once the store took
    /// it, or the store's complaint; it is dropped unanswered when the server stops. Never
    /// waits: a hub whose queue is full is not ready either.
    pub fn try_probe_store(&self) -> Result<oneshot::Receiver<Result<(), String>>, ProbeRefused> {
        let (tx, rx) = oneshot::channel();
        match self.tx.try_send(HubMsg::ProbeStore(tx)) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(ProbeRefused::Busy { queue: self.tx.max_capacity() })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(ProbeRefused::Stopped),
        }
    }

    /// Logs a session in (and into the lobby). On `Err` the caller may retry with another nick.
    ///
    /// Not an `async fn`: the registration is boxed before the future is made, so that the
    /// future (which sits in every connection's task, inside its door's) holds a pointer, not
    /// the registration.
    pub fn register(
        &self,
        registration: Registration,
    ) -> impl Future<Output = Result<Result<Registered, RegisterError>, HubGone>> + Send + '_ {
        let registration = Box::new(registration);
        async move {
            let (tx, rx) = oneshot::channel();
            let permit = self.tx.reserve().await.map_err(|_| HubGone)?;
            permit.send(HubMsg::Register(registration, tx));
            rx.await.map_err(|_| HubGone)
        }
    }

    /// Checks a credential offered before registering (IRC SASL) from `from`; the
    /// [`Authenticated`](crate::authenticate::Authenticated) it answers goes in the
    /// registration. Wrong credentials count in the login throttle like any wrong password.
    pub fn authenticate(
        &self,
        credential: Credential,
        from: Option<std::net::IpAddr>,
    ) -> impl Future<Output = Result<AuthAnswer, HubGone>> + Send + '_ {
        let asked = Box::new((credential, from));
        async move {
            let (tx, rx) = oneshot::channel();
            let permit = self.tx.reserve().await.map_err(|_| HubGone)?;
            permit.send(HubMsg::Authenticate(asked, tx));
            rx.await.map_err(|_| HubGone)
        }
    }

    /// Queues a command; answers and errors arrive in the session's outbox.
    ///
    /// It waits for room in the hub's queue first and builds the message after (`reserve`,
    /// not `send`): the future, which every connection's task holds, then keeps the command
    /// once rather than both the command and the message made of it.
    pub async fn command(&self, session: SessionId, command: Command) -> Result<(), HubGone> {
        let permit = self.tx.reserve().await.map_err(|_| HubGone)?;
        permit.send(HubMsg::Command(session, command));
        Ok(())
    }

    /// Hands the hub an event from another node of the cluster; waits while its queue is
    /// full, so a bus that brings more than the hub can take slows down rather than piles up.
    pub async fn node_event(&self, event: crate::cluster::NodeEvent) -> Result<(), HubGone> {
        let permit = self.tx.reserve().await.map_err(|_| HubGone)?;
        permit.send(HubMsg::Node(Box::new(event)));
        Ok(())
    }

    /// Tells the hub that the bus to the other nodes is back after an outage: it says hello
    /// again and reads from the store what its rooms missed meanwhile.
    pub async fn bus_back(&self) -> Result<(), HubGone> {
        let permit = self.tx.reserve().await.map_err(|_| HubGone)?;
        permit.send(HubMsg::BusBack);
        Ok(())
    }

    /// True once the hub has stopped (the server is shutting down): sessions it does not know
    /// yet, still logging in, look here to end too.
    pub fn is_stopped(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queues a command without waiting; `false` when the hub's queue is full. Front doors
    /// hand their own output back this way (`SessionCtx::local`), falling back to the outbox.
    pub fn try_command(&self, session: SessionId, command: Command) -> bool {
        self.tx.try_send(HubMsg::Command(session, command)).is_ok()
    }

    /// Tells every session goodbye with `reason`, flushes the store, and stops the hub.
    pub async fn shutdown(&self, reason: &str) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(HubMsg::Shutdown(reason.into(), tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// A message waiting for its group commit before it is delivered.
pub(crate) struct PendingMessage {
    pub sender: SessionId,
    pub message: Arc<ChatMessage>,
    pub req: Req,
    pub cid: Option<Box<str>>,
    /// For a private message: the recipient's away message, told with the ack.
    pub away: Option<Name>,
    /// For a private message: it waits in an offline account's mailbox.
    pub offline: bool,
    /// For a room message in a cluster: it has no id until the store gives it one, and is
    /// delivered then (boxed: single servers never have one).
    pub numbering: Option<Box<cluster::Numbering>>,
    /// Where its `cid` is remembered ([`cids::CidCache::insert`]): what a failed commit
    /// marks (or forgets) for the resend.
    pub cid_key: Option<u64>,
    /// A resend of a room message the store refused before: stored now, acknowledged as a
    /// duplicate (it was delivered the first time).
    pub resent: bool,
}

pub(crate) struct Hub {
    config: HubConfig,
    /// The counters shared with the front doors and the server's metrics.
    metrics: Arc<Metrics>,
    /// Messages received and delivered, published to `metrics` once per batch.
    tally: Tally,
    store: Arc<dyn Store>,
    persister: Persister,
    /// One entry per queued write, in commit order; `None` for writes with no follow-up.
    pending: VecDeque<Option<PendingMessage>>,
    sessions: sessions::Sessions,
    /// Everyone online by folded nick: who holds a nick (a B-tree lookup, O(log n): one index
    /// of the server's nicks rather than a hash table beside it, 40 bytes less per session),
    /// and pages of the server-wide `who` and of searches.
    everyone: roster::Roster<SessionId>,
    /// Look-alike keys of the nicks online (`identity::skeleton_key`): no two sessions may
    /// have nicks that look the same.
    skeletons: FxHashMap<u64, SessionId>,
    /// Look-alike keys of the reserved nicks (`HubConfig::reserved_nicks`), computed once.
    reserved: rustc_hash::FxHashSet<u64>,
    rooms: FxHashMap<String, Room>,
    cids: CidCache,
    /// The digest of each session's client secret (`Registration::client_secret`), for the
    /// sessions that gave one: their client message ids are remembered under it. (Beside the
    /// sessions rather than in them: a session record is at its allocator size class.)
    clients: FxHashMap<SessionId, std::num::NonZeroU64>,
    /// Sessions with staged deliveries, flushed at the end of each batch of commands.
    dirty: Vec<SessionId>,
    /// Sessions that kept their staged list's room after the last flush (they were busy): a
    /// session not busy again in the next batch gives it back, so an idle session holds none.
    staged_kept: Vec<SessionId>,
    /// Every delivery of the current batch of commands, in order; sessions stage ranges of it.
    log: Vec<crate::event::Delivery>,
    /// Running sums of the log's weights: entry `i` is the weight of `log[..i]`, so a range's
    /// weight costs one subtraction however many recipients it has.
    log_sums: Vec<u64>,
    /// Reused buffer for handing pieces to outboxes.
    pieces: Vec<crate::outbox::Piece>,
    /// Nicknames recently given up (quit or renamed), newest last, for `Whowas`.
    whowas: VecDeque<crate::event::PastUser>,
    /// Counts for `ServerStats`, kept as sessions come, go and change.
    stats: ServerStats,
    /// Where history pages read on the blocking pool come back, to be delivered in order.
    pages: mpsc::UnboundedSender<HistoryPage>,
    /// Numbers the history requests in flight.
    next_ticket: u64,
    /// History pages being read on the blocking pool (at most `MAX_PAGE_READS`).
    page_reads: usize,
    /// History pages waiting for a free reader, in the order asked.
    page_queue: VecDeque<history::PageRead>,
    /// The server password (`HubConfig::password`), as a digest.
    password: Option<crate::secret::Secret>,
    /// The server operators (`HubConfig::operators`), as digests.
    operators: Vec<passwords::Operator>,
    /// Wrong passwords per address and per operator name.
    throttle: crate::throttle::Throttle,
    /// How many wrong passwords the log may still take.
    login_log: crate::throttle::LogBudget,
    /// Who watches whom (IRC `MONITOR`).
    watches: monitor::Watches,
    /// Registered account names, folded -> as registered: which nicknames are protected.
    /// Loaded at start; kept up to date by registrations and by every login's read of the
    /// store (the password hashes themselves are never kept here).
    accounts: FxHashMap<String, crate::vocab::Name>,
    /// Look-alike keys of the registered names -> the folded name.
    account_looks: FxHashMap<u64, String>,
    /// The account each logged-in session is logged in as (its name as registered). Beside
    /// the sessions, like `clients`: a session record is at its allocator size class.
    logged_in: FxHashMap<SessionId, crate::vocab::Name>,
    /// The real address behind each cloaked session's ident (`Registration::real_host`), for
    /// its own and operators' `whois`. Beside the sessions, like `clients`: with cloaking on,
    /// nearly every session has one, and in the record it would cost every session a size
    /// class.
    real_hosts: FxHashMap<SessionId, crate::vocab::Name>,
    /// The resume token each session logged in with or was given last (its digest): logging
    /// out revokes it.
    session_tokens: FxHashMap<SessionId, crate::resume::TokenDigest>,
    /// The password checkers (argon2id off the hub's task).
    verifier: verifier::Verifier,
    /// Sessions with an account request being checked -> its held answer's ticket.
    checking: FxHashMap<SessionId, u64>,
    /// The address of each session whose login or password change is being checked, to
    /// count a wrong password against it when the answer comes.
    login_from: FxHashMap<SessionId, Option<std::net::IpAddr>>,
    /// Nick protection deadlines, earliest first.
    protect_deadlines: std::collections::BTreeSet<(tokio::time::Instant, SessionId)>,
    /// Each protected session's deadline.
    protect_pending: FxHashMap<SessionId, tokio::time::Instant>,
    /// Where the walk through guest names stands.
    next_guest: u32,
    /// The store's `outside_writes` when the table of registered names was last read.
    accounts_seen: u64,
    /// Registrations per address.
    registrations: crate::registration_limit::RegistrationLimit,
    /// A read of the table of registered names is under way.
    refreshing: bool,
    /// Where those reads come back.
    refreshed: mpsc::UnboundedSender<accounts::TableRead>,
    /// The last private message id used (one server-wide sequence, see `StoredPrivate`).
    private_mid: u64,
    /// The accounts' mailboxes that hold undelivered messages, by party key, with their size.
    mailboxes: FxHashMap<String, mailbox::Size>,
    /// Mailboxes being read for delivery at a login: a second login meanwhile does not read
    /// them again.
    mail_reading: rustc_hash::FxHashSet<String>,
    /// The key of the stand-in salts answered to SCRAM logins as names that are not
    /// accounts (drawn at start).
    scram_key: [u8; 32],
    /// The empty name, allocated once: most sessions give no real name, and each would
    /// otherwise hold an allocation of its own for it.
    no_name: Name,
    /// Its place in a cluster; `None` for a single server.
    cluster: Option<Box<cluster::Cluster>>,
}

/// Loads the store and starts the hub on the current tokio runtime.
pub fn start(config: HubConfig, store: Arc<dyn Store>) -> Result<HubHandle, StoreError> {
    start_hub(config, store, None).map(|(hub, _)| hub)
}

/// Starts the hub as one node of a cluster, on a store the nodes share (one that numbers
/// messages: [`Store::commit_numbered`]). What the other nodes must hear comes out of the
/// returned receiver, for the server to put on the bus; what they say goes in through
/// [`HubHandle::node_event`].
pub fn start_clustered(
    config: HubConfig,
    store: Arc<dyn Store>,
    options: crate::cluster::ClusterOptions,
) -> Result<(HubHandle, mpsc::UnboundedReceiver<crate::cluster::NodeEvent>), StoreError> {
    let (hub, out) = start_hub(config, store, Some(options))?;
    Ok((hub, out.expect("a cluster has an outlet")))
}

type Outlet = Option<mpsc::UnboundedReceiver<crate::cluster::NodeEvent>>;

fn start_hub(
    config: HubConfig,
    store: Arc<dyn Store>,
    options: Option<crate::cluster::ClusterOptions>,
) -> Result<(HubHandle, Outlet), StoreError> {
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let (refills, refills_rx) = mpsc::unbounded_channel();
    let (cluster, outlet) = match options {
        Some(options) => {
            // The sessions this node had before it (re)started are gone.
            store.forget_node(&options.node)?;
            store.heartbeat(&options.node, crate::time::now_ms())?;
            let (out, outlet) = mpsc::unbounded_channel();
            let replies = refills.clone();
            let tell: claims::Tell = Box::new(move |news| {
                let _ = replies.send(cluster::Reply::Claims(news));
            });
            let claims = claims::Claims::start(store.clone(), options.node.clone(), tell)
                .map_err(|e| StoreError::Io(format!("claims thread: {e}")))?;
            (Some(Box::new(cluster::Cluster::new(options, out, refills, claims))), Some(outlet))
        }
        None => (None, None),
    };
    let (pages, pages_rx) = mpsc::unbounded_channel();
    let (checked, checked_rx) = mpsc::unbounded_channel();
    let (refreshed, refreshed_rx) = mpsc::unbounded_channel();
    let reserved = config.reserved_nicks.iter().map(|n| identity::skeleton_key(n)).collect();
    let password = config.password.as_deref().map(crate::secret::Secret::new);
    let operators = config.operators.iter().map(|(n, p)| passwords::Operator::new(n, p)).collect();
    let throttle = crate::throttle::Throttle::new(config.login_throttle);
    let registrations = crate::registration_limit::RegistrationLimit::new(config.registrations_per_hour);
    let metrics = Arc::new(Metrics::default());
    let mut hub = Hub {
        config,
        metrics: metrics.clone(),
        tally: Tally::default(),
        store,
        // Started once the store is loaded: a store that cannot be loaded is not closed (its
        // closing would fail too, and say so a second time).
        persister: Persister::stopped(),
        pending: VecDeque::new(),
        sessions: sessions::Sessions::default(),
        everyone: roster::Roster::default(),
        skeletons: FxHashMap::default(),
        reserved,
        rooms: FxHashMap::default(),
        cids: CidCache::default(),
        clients: FxHashMap::default(),
        dirty: Vec::new(),
        staged_kept: Vec::new(),
        log: Vec::new(),
        log_sums: vec![0],
        pieces: Vec::new(),
        whowas: VecDeque::new(),
        stats: ServerStats::default(),
        pages,
        next_ticket: 0,
        page_reads: 0,
        page_queue: VecDeque::new(),
        password,
        operators,
        throttle,
        login_log: crate::throttle::LogBudget::new(tokio::time::Instant::now()),
        watches: monitor::Watches::default(),
        accounts: FxHashMap::default(),
        account_looks: FxHashMap::default(),
        logged_in: FxHashMap::default(),
        real_hosts: FxHashMap::default(),
        session_tokens: FxHashMap::default(),
        verifier: verifier::Verifier::new(checked),
        checking: FxHashMap::default(),
        login_from: FxHashMap::default(),
        protect_deadlines: Default::default(),
        protect_pending: FxHashMap::default(),
        next_guest: (crate::time::now_ms() % 90_000) as u32,
        accounts_seen: 0,
        registrations,
        refreshing: false,
        refreshed,
        no_name: Name::from(""),
        private_mid: 0,
        mailboxes: FxHashMap::default(),
        mail_reading: Default::default(),
        scram_key: random_key()?,
        cluster,
    };
    hub.private_mid = hub.store.last_private_mid()?;
    for size in hub.store.mailboxes()? {
        hub.mailboxes.insert(size.to_key, mailbox::Size { count: size.count, bytes: size.bytes });
    }
    hub.accounts_seen = hub.store.outside_writes()?;
    for account in hub.store.accounts()? {
        hub.note_account(&account.folded, &account.name);
    }
    // Rooms are read without their replay, which their first join reads (`history.rs`): a
    // start reads little of a big database and holds nothing of rooms nobody joins. What is
    // read of their messages is the client ids of the last ones before the stop, so that a
    // client that resends across a restart is recognised before its message is delivered
    // twice. One room at a time.
    let window = LoadWindow { messages: CID_WINDOW, ms: RESEND_WINDOW_MS };
    let store = hub.store.clone();
    store.load_each_within(window, &mut |room| {
        let name: Arc<str> = room.record.name.as_str().into();
        for m in &room.recent {
            hub.cids.load(&room.record.folded, m);
        }
        let mut r = Room::new(name.clone(), room.record.folded.as_str().into(), room.record.created_ts);
        r.cold = room.last_mid > 0;
        r.last_ts = room.recent.last().map_or(0, |m| m.ts);
        r.topic = room.record.topic.as_str().into();
        r.topic_by = room.record.topic_by.map(|s| s.as_str().into());
        r.ephemeral = room.record.ephemeral;
        let rules = room.record.rules;
        r.op_nicks = rules.operators;
        r.founder = rules.founder;
        r.modes = rules.modes;
        r.bans = rules.bans.into_iter().map(|b| state::Ban::new(&b.mask, b.by, b.ts)).collect();
        r.last_mid = room.last_mid;
        if let Some(cluster) = &mut hub.cluster {
            cluster.start_room(&room.record.folded, room.last_mid);
        }
        hub.rooms.insert(room.record.folded, r);
    })?;
    let numbered = hub.cluster.is_some();
    hub.persister =
        Persister::start(hub.store.clone(), done_tx, hub.config.retention, metrics.clone(), numbered)
            .map_err(|e| StoreError::Io(format!("commit thread: {e}")))?;
    let lobby = hub.config.lobby.clone();
    for name in hub.config.ephemeral_rooms.iter().chain([&lobby]).cloned().collect::<Vec<_>>() {
        let new = !hub.rooms.contains_key(&natter_proto::names::fold(&name));
        let ephemeral = hub.config.ephemeral_rooms.contains(&name);
        let room = hub.ensure_room(&name);
        // Not in the store at start: no history to read at its first join, in a cluster too.
        room.cold &= !new;
        room.ephemeral |= ephemeral;
    }
    let (tx, rx) = mpsc::channel(hub.config.queue);
    hub.say_hello();
    hub.metrics.publish(&hub.tally, hub.rooms.len());
    tokio::spawn(hub.run(rx, done_rx, pages_rx, checked_rx, refreshed_rx, refills_rx));
    Ok((HubHandle { tx, shared: Arc::new(Shared { lobby: lobby.into(), metrics }) }, outlet))
}

/// Turns a stored private message into a chat message.
pub(crate) fn private_to_chat(m: &crate::store::StoredPrivate) -> ChatMessage {
    ChatMessage {
        room: None,
        from: m.nick.as_str().into(),
        ident: format!("{}@history", m.from_key.trim_start_matches('~')).into(),
        account: None,
        to: Some(m.to_nick.as_str().into()),
        text: m.text.as_str().into(),
        action: m.action,
        bot: false,
        notice: m.notice,
        meta: None,
        mid: Some(m.mid),
        uid: 0,
        ts: m.ts,
    }
}

/// A fresh random key.
fn random_key() -> Result<[u8; 32], StoreError> {
    let mut key = [0; 32];
    getrandom::fill(&mut key).map_err(|e| StoreError::Io(format!("cannot draw a random key: {e}")))?;
    Ok(key)
}

/// Turns a stored row into a chat message of the room named `room`.
pub(crate) fn stored_to_chat(m: &StoredMessage, room: &Arc<str>) -> ChatMessage {
    ChatMessage {
        room: Some(room.clone()),
        from: m.nick.as_str().into(),
        ident: format!("{}@history", m.sender_key).into(),
        account: None,
        to: None,
        text: m.text.as_str().into(),
        action: m.action,
        bot: false,
        notice: m.notice,
        meta: None,
        mid: Some(m.mid),
        uid: 0,
        ts: m.ts,
    }
}

impl Hub {
    /// The oldest time a message may have to be shown (ms): retention deletes older ones
    /// from the store, and replays from memory leave them out too.
    fn kept_since(&self) -> u64 {
        self.config.retention.map_or(0, |keep| {
            crate::time::now_ms().saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX))
        })
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<HubMsg>,
        mut done: mpsc::UnboundedReceiver<Committed>,
        mut pages: mpsc::UnboundedReceiver<HistoryPage>,
        mut checked: mpsc::UnboundedReceiver<verifier::Checked>,
        mut refreshed: mpsc::UnboundedReceiver<accounts::TableRead>,
        mut refills: mpsc::UnboundedReceiver<cluster::Reply>,
    ) {
        // Gaps in a cluster's room order are looked at this often.
        let gap_check =
            self.cluster.as_ref().map_or(std::time::Duration::from_secs(3600), |c| c.gap_wait() / 2);
        let mut gaps = tokio::time::interval(gap_check.max(std::time::Duration::from_millis(1)));
        gaps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let beat =
            self.cluster.as_ref().map_or(std::time::Duration::from_secs(3600), |c| c.options().heartbeat);
        let mut heartbeat = tokio::time::interval(beat.max(std::time::Duration::from_millis(1)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refresh = tokio::time::interval(self.config.account_refresh);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        refresh.reset();
        let mut batch = Vec::with_capacity(COMMAND_BATCH);
        // The nick protection timer: reset only when the earliest deadline changes.
        let far = || tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365);
        let protection = tokio::time::sleep_until(far());
        tokio::pin!(protection);
        loop {
            let next = self.next_protection_deadline();
            if let Some(at) = next
                && protection.deadline() != at
            {
                protection.as_mut().reset(at);
            }
            tokio::select! {
                biased;
                Some(committed) = done.recv() => {
                    self.on_committed(committed);
                    self.flush();
                }
                Some(page) = pages.recv() => {
                    self.on_history_page(page);
                    self.flush();
                }
                Some(answer) = checked.recv() => {
                    self.on_checked(answer);
                    self.flush();
                }
                Some(table) = refreshed.recv() => {
                    self.on_account_table(table);
                    self.flush();
                }
                Some(reply) = refills.recv() => {
                    self.on_cluster_reply(reply);
                    self.flush();
                }
                _ = heartbeat.tick(), if self.cluster.is_some() => self.heartbeat(),
                _ = gaps.tick(), if self.cluster.as_ref().is_some_and(|c| c.has_gaps()) => {
                    self.check_gaps();
                    self.flush();
                }
                _ = refresh.tick() => self.refresh_accounts(),
                () = &mut protection, if next.is_some() => {
                    self.on_protection_deadlines();
                    self.flush();
                    protection.as_mut().reset(far());
                }
                n = rx.recv_many(&mut batch, COMMAND_BATCH) => {
                    if n == 0 {
                        break;
                    }
                    // Commands arrive one connection at a time, and the hub is woken by the
                    // first. Yielding lets the runtime finish its turn (the other connections
                    // that are ready read their lines) so that the commands of this moment are
                    // handled, and their deliveries to each session written, together: at
                    // paced load a message to a room is then not one write per member but one
                    // per member per moment. Again while a turn brings more, a few times.
                    let mut turns = if n < COMMAND_BATCH { MAX_GATHER_TURNS } else { 0 };
                    while turns > 0 {
                        turns -= 1;
                        tokio::task::yield_now().await;
                        let before = batch.len();
                        while batch.len() < COMMAND_BATCH
                            && let Ok(more) = rx.try_recv()
                        {
                            batch.push(more);
                        }
                        if batch.len() == before || batch.len() == COMMAND_BATCH {
                            break;
                        }
                    }
                    for msg in batch.drain(..) {
                        match msg {
                            HubMsg::Register(reg, reply) => {
                                let _ = reply.send(self.register(*reg));
                            }
                            HubMsg::Command(session, cmd) => self.handle(session, cmd),
                            HubMsg::ProbeStore(answer) => self.persister.probe(answer),
                            HubMsg::Node(event) => self.on_node_event(*event),
                            HubMsg::BusBack => self.resync(),
                            HubMsg::Authenticate(asked, answer) => {
                                let (credential, from) = *asked;
                                self.authenticate(credential, from, answer)
                            }
                            HubMsg::Shutdown(reason, reply) => {
                                self.flush();
                                self.shutdown(&reason, &mut done).await;
                                let _ = reply.send(());
                                return;
                            }
                        }
                    }
                    self.flush();
                }
            }
        }
        self.shutdown("server stopped", &mut done).await;
    }

    async fn shutdown(&mut self, reason: &str, done: &mut mpsc::UnboundedReceiver<Committed>) {
        self.leave_cluster(reason).await;
        // Let queued messages reach storage (and their senders' acks go out) before goodbye.
        let mut persister = std::mem::replace(&mut self.persister, Persister::stopped());
        let finished = tokio::task::spawn_blocking(move || {
            persister.finish();
            persister
        });
        let persister = finished.await.ok();
        while let Ok(committed) = done.try_recv() {
            self.on_committed(committed);
        }
        self.flush();
        if let Some(p) = persister {
            self.persister = p;
        }
        for session in self.sessions.values() {
            session.outbox.close(reason, false);
            self.metrics.disconnected(Disconnect::Shutdown);
        }
        self.metrics.sessions_cleared();
        self.sessions.clear();
        self.clients.clear();
        self.logged_in.clear();
        self.real_hosts.clear();
        self.everyone.clear();
        self.skeletons.clear();
    }
}
