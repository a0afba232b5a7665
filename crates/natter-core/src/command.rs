//! What front doors ask of the hub, in protocol-neutral terms.

use crate::outbox::Outbox;
use crate::password::Password;
use crate::request::{DoorNote, Req};
use crate::store::HistoryQuery;
pub use crate::vocab::{Name, RoomChange, SessionKind, Target};

/// Everything the hub needs to log a session in.
#[derive(Debug)]
pub struct Registration {
    /// Requested nickname.
    pub nick: String,
    /// `user@host` of the peer as everyone sees it (IRC prefixes, WHO, WHOIS); the host may be
    /// a cloak standing for the address.
    pub ident: String,
    /// The peer's real address when `ident` shows a cloak: told only to server operators and
    /// to the user itself (WHOIS), never to the rooms.
    pub real_host: Option<String>,
    /// Front door.
    pub kind: SessionKind,
    /// Where the hub delivers this session's events.
    pub outbox: Outbox,
    /// Free-form real name (IRC's `USER` realname); shown by `whois`. Empty when none.
    pub realname: String,
    /// Start in the lobby (every natter client does; IRC may be configured not to).
    pub lobby: bool,
    /// The server password the client gave, checked against the configured one (if any).
    pub password: Option<String>,
    /// The address the session comes from (`None`: the server's own console): wrong passwords
    /// are counted per address, and an address with too many waits before it may try again.
    pub addr: Option<std::net::IpAddr>,
    /// A secret the client keeps for its lifetime and gives at every login (natter's own
    /// clients do): its client message ids (`cid`) are remembered under it, so that a resend
    /// after a reconnect is recognised and nobody else, whatever nick they take, can match or
    /// suppress them. `None`: the session's ids are its own, forgotten when it ends.
    pub client_secret: Option<String>,
    /// A resume token the client was given after logging in to an account before
    /// (`crate::resume`): the session is logged in to that account right after the welcome
    /// (answered by `Event::Account` or refused with `Refusal::BadToken`, carrying `req`),
    /// and its nickname, when the account's, is not treated as taken without it meanwhile.
    pub resume: Option<crate::resume::ResumeToken>,
    /// The account the connection logged in to before registering (IRC SASL), as the hub
    /// answered [`crate::HubHandle::authenticate`]: the session starts logged in to it, and
    /// takes back the account's nickname from a guest holding it.
    pub account: Option<crate::authenticate::Authenticated>,
    /// Request id echoed in the welcome.
    pub req: Req,
}

/// Which page of a long list (`Command::Who`) to answer: lists of a big room or server are
/// answered a page at a time, so that no single request costs what the whole server does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paging {
    /// Start after this nick (compared case-insensitively; it need not be online any more):
    /// the last nick of the previous page. `None`: from the start.
    pub after: Option<String>,
    /// At most this many entries; `None` or anything above [`crate::hub::MAX_WHO_PAGE`]
    /// means that many, 0 means 1.
    pub limit: Option<u32>,
}

/// A change to, or a question about, a watch list ([`Command::Monitor`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorChange {
    /// Watch these nicks too; answered with which are online and which offline (and which did
    /// not fit in the list).
    Add(Vec<String>),
    /// Stop watching these nicks; no answer.
    Remove(Vec<String>),
    /// Stop watching anyone; no answer.
    Clear,
    /// Answered by `Event::WatchList`.
    List,
    /// Answered by `Event::Watched` for the whole list.
    Status,
}

/// Budget units a session earns per second ([`Command::cost`]).
pub const COST_UNITS_PER_SECOND: u32 = 10;

/// A request from a logged-in session. Each carries the request id (`req`) that the answer
/// or error must echo; front doors that have no ids pass `None`.
#[derive(Debug, Clone)]
pub enum Command {
    /// Send a message (or `/me` action when `action`); `cid` is the client's id for dedupe.
    Say {
        /// Room or user.
        target: Target,
        /// Message text; may be empty only when `meta` is set (a metadata-only message).
        text: String,
        /// True for `/me`.
        action: bool,
        /// True for a notice (never answered automatically; no away reply).
        notice: bool,
        /// Metadata the client attached for other clients (IRC client-only tags, escaped, `;`
        /// separated), relayed as given, never stored.
        meta: Option<String>,
        /// Client message id.
        cid: Option<String>,
        /// Request id.
        req: Req,
    },
    /// Join or create a room.
    Join {
        /// Room name.
        room: String,
        /// The room's key (password), needed when the room has one.
        key: Option<String>,
        /// Request id.
        req: Req,
    },
    /// Leave a room.
    Part {
        /// Room name.
        room: String,
        /// Shown to the room.
        reason: Option<String>,
        /// Request id.
        req: Req,
    },
    /// Change nickname.
    Nick {
        /// New nickname.
        nick: String,
        /// Request id.
        req: Req,
    },
    /// Query (`topic: None`) or set a topic.
    Topic {
        /// Room name.
        room: String,
        /// New topic.
        topic: Option<String>,
        /// Request id.
        req: Req,
    },
    /// Who is in a room, or on the server (`room: None`): one page of the list, sorted by
    /// nick (`Event::Members` says how many there are and whether more follow).
    Who {
        /// Room name.
        room: Option<String>,
        /// Also describe each member (`user@host`, standing, away): `Members::info`.
        detail: bool,
        /// Which page.
        page: Paging,
        /// Request id.
        req: Req,
    },
    /// The users whose nickname matches a mask (`*` and `?` wildcards), answered by
    /// `Event::Members` with only the matches: users hidden from searches are left out unless
    /// they share a room with the asker or the mask names them exactly.
    Search {
        /// The mask.
        mask: String,
        /// Request id.
        req: Req,
    },
    /// Several users at once, answered by `Event::Users` with those online, in the order asked.
    Lookup {
        /// Nicknames.
        nicks: Vec<String>,
        /// Request id.
        req: Req,
    },
    /// Changes or reads the session's watch list (IRC `MONITOR`): the nicks it is told about
    /// when they come online or go offline (`Event::Watched`).
    Monitor {
        /// What to do.
        change: MonitorChange,
        /// Request id.
        req: Req,
    },
    /// How many users are online, hidden and operators, and the most ever online: answered by
    /// `Event::ServerStats`, at a cost that does not grow with the server.
    ServerStats {
        /// Request id.
        req: Req,
    },
    /// List rooms.
    Rooms {
        /// Request id.
        req: Req,
    },
    /// Set (`Some`) or toggle (`None`) ignore mode.
    IgnoreAll {
        /// Desired mode.
        on: Option<bool>,
        /// Request id.
        req: Req,
    },
    /// Ignore a user; `None` just lists who is ignored.
    Ignore {
        /// Nickname.
        nick: Option<String>,
        /// Request id.
        req: Req,
    },
    /// Stop ignoring a user.
    Unignore {
        /// Nickname.
        nick: String,
        /// Request id.
        req: Req,
    },
    /// Page through stored messages of a room (by id or by time, see [`HistoryQuery`]).
    History {
        /// Room name (or a nick: private conversations are not stored, so the page is empty).
        room: String,
        /// Which page.
        query: HistoryQuery,
        /// True: the page centres on the message `query.before` (an id, included) or the time
        /// `query.before_ts` (included), half older and half newer (IRCv3 `CHATHISTORY AROUND`).
        around: bool,
        /// Request id.
        req: Req,
    },
    /// Rooms of the session that saw messages in a time range, most recently active last:
    /// answered by `Event::ActiveRooms`.
    ActiveRooms {
        /// Only activity after this time (ms since the epoch).
        after_ts: u64,
        /// Only activity before this time.
        before_ts: u64,
        /// At most this many rooms.
        limit: u32,
        /// Request id.
        req: Req,
    },
    /// Make a room ephemeral or persistent (room operators only).
    SetEphemeral {
        /// Room name.
        room: String,
        /// True: store nothing.
        on: bool,
        /// Request id.
        req: Req,
    },
    /// Change room settings or someone's standing in a room (operators only).
    Mode {
        /// Room name.
        room: String,
        /// The changes, applied in order; each one that took effect is announced.
        changes: Vec<RoomChange>,
        /// Request id.
        req: Req,
    },
    /// Ask for a room's settings (answered by `Event::RoomModes`).
    RoomModes {
        /// Room name.
        room: String,
        /// Request id.
        req: Req,
    },
    /// Ask for a room's ban list (answered by `Event::Bans`).
    Bans {
        /// Room name.
        room: String,
        /// Request id.
        req: Req,
    },
    /// Remove someone from a room (operators only).
    Kick {
        /// Room name.
        room: String,
        /// Who.
        nick: String,
        /// Shown to the room.
        reason: Option<String>,
        /// Request id.
        req: Req,
    },
    /// Invite someone into a room: lets them past invite-only, bans and the key once.
    Invite {
        /// Room name.
        room: String,
        /// Who.
        nick: String,
        /// Request id.
        req: Req,
    },
    /// List the rooms you are invited into and have not joined yet (answered by
    /// `Event::Invites`).
    Invites {
        /// Request id.
        req: Req,
    },
    /// Mark yourself away (`Some(text)`) or back (`None`).
    Away {
        /// Away message.
        text: Option<String>,
        /// Request id.
        req: Req,
    },
    /// Describe one online user (answered by `Event::UserInfo`).
    Whois {
        /// Nickname.
        nick: String,
        /// Request id.
        req: Req,
    },
    /// Who recently used a nickname that is now gone (answered by `Event::Whowas`).
    Whowas {
        /// Nickname.
        nick: String,
        /// At most this many entries, newest first.
        count: usize,
        /// Request id.
        req: Req,
    },
    /// Register the session's nickname as an account with this password, and log in as it.
    /// Answered by `Event::Account` once the password is hashed (off the hub's task).
    Register {
        /// The account's password (at least 8 characters, at most 256 bytes).
        password: Password,
        /// The address the session comes from: registrations per address are limited.
        from: Option<std::net::IpAddr>,
        /// Request id.
        req: Req,
    },
    /// Log in as a registered account. Answered by `Event::Account`, or refused with one
    /// refusal (`BadCredentials`) whether the name or the password was wrong; wrong passwords
    /// are counted against the account and the address (`TooManyAttempts`).
    Login {
        /// The account name.
        name: String,
        /// Its password.
        password: Password,
        /// The address the session comes from, for the login throttle.
        from: Option<std::net::IpAddr>,
        /// Request id.
        req: Req,
    },
    /// A resume token for the account the session is logged in as, so that its client can
    /// log in again without the password (`Registration::resume`). Answered by
    /// `Event::ResumeToken`; the session's previous token, if any, is revoked.
    IssueToken {
        /// Request id.
        req: Req,
    },
    /// Stop being logged in as an account (the session stays, with its nickname); the
    /// session's resume token, if it has one, is revoked.
    Logout {
        /// Request id.
        req: Req,
    },
    /// Change the password of the account the session is logged in as.
    Passwd {
        /// The current password.
        old: Password,
        /// The new one.
        new: Password,
        /// The address the session comes from: a wrong current password counts like a wrong
        /// login.
        from: Option<std::net::IpAddr>,
        /// Request id.
        req: Req,
    },
    /// Become a server operator (operator of every room) with a configured name and password.
    Oper {
        /// Operator name.
        name: String,
        /// Its password.
        password: String,
        /// The address the session comes from: wrong passwords are counted per address as
        /// well as per operator name.
        from: Option<std::net::IpAddr>,
        /// Request id; the answer is a `Notice` carrying it.
        req: Req,
    },
    /// Receive (`true`) or stop receiving the server operators' announcements.
    HearAnnouncements {
        /// Receive them.
        on: bool,
    },
    /// An announcement from a server operator to every session that asked for them
    /// (`HearAnnouncements`) and to the operator; server operators only.
    Announce {
        /// The announcement.
        text: String,
        /// Request id: a refusal carries it.
        req: Req,
    },
    /// A private message to every server operator online (help-desk visitors ask their
    /// questions this way: they know no operator's name). Each operator gets a private
    /// `Event::Message` addressed to it; the sender gets no acknowledgement, and a refusal
    /// (`NoSuchRecipient`) when no operator is online. From then on the operators are also
    /// told (`Event::Quit`) when the sender leaves, since they share no room with it.
    AskOperators {
        /// The question.
        text: String,
        /// Request id: a refusal carries it.
        req: Req,
    },
    /// Hide from (`true`) or show again in server-wide searches by people who share no room
    /// with you.
    HideFromSearches {
        /// Hidden.
        on: bool,
    },
    /// Register, unregister or list the TLS client certificates (SHA-256 fingerprints, as
    /// `natter_proto::fingerprint` writes them) that log in to your account with SASL
    /// EXTERNAL. Answered by `Event::Certificates`.
    Certificates {
        /// What to do.
        change: crate::vocab::CertificateChange,
        /// Request id.
        req: Req,
    },
    /// Log in to the account a credential proved ([`crate::HubHandle::authenticate`]), or
    /// switch to it: IRC SASL after registration. Answered by `Event::Account`.
    AdoptAccount {
        /// What the hub answered.
        account: crate::authenticate::Authenticated,
        /// Request id.
        req: Req,
    },
    /// Change your real name (IRC `SETNAME`): told to whoever shares a room with you.
    SetRealname {
        /// The new real name (at most [`crate::hub::MAX_REALNAME_BYTES`] bytes, not empty).
        realname: String,
        /// Request id, for a refusal.
        req: Req,
    },
    /// Mark yourself as a bot (`true`) or not: others see it on your messages and in lists
    /// (IRCv3 bot mode).
    MarkBot {
        /// A bot.
        on: bool,
    },
    /// End someone's session (server operators only).
    Kill {
        /// Who.
        nick: String,
        /// Shown to them and to their rooms as the reason they left, worded by the front door.
        reason: String,
        /// Request id.
        req: Req,
    },
    /// Hand this back to the session, in order after its earlier commands: front doors send
    /// their own output (IRC numerics, pongs, refusals they decide themselves) this way so
    /// that it never overtakes the hub's answers to commands sent before.
    Echo {
        /// The event to deliver: usually `Event::Local` with the door's own note.
        event: Box<crate::event::Event>,
    },
    /// Leave the server. Front doors send this on `/quit` and when the connection ends.
    Quit {
        /// Shown to the rooms.
        reason: Option<String>,
    },
}

impl Command {
    /// What this command costs the server, in budget units (a session earns
    /// [`COST_UNITS_PER_SECOND`] of them): what the front doors charge before handing it on, so
    /// that no command can be repeated at line speed. Messages cost nothing here (their own
    /// rate limit counts them); answers that grow with the server (who is online, the rooms)
    /// cost most; changes that every member of a room hears (nick, topic) cost more than
    /// questions only the asker hears.
    pub fn cost(&self) -> u32 {
        match self {
            Command::Say { .. } | Command::Echo { .. } | Command::Quit { .. } => 0,
            Command::Who { room: None, .. } | Command::Search { .. } | Command::Rooms { .. } => 20,
            Command::ActiveRooms { .. } => 10,
            Command::Nick { .. } | Command::Topic { topic: Some(_), .. } | Command::Announce { .. } => 10,
            Command::Oper { .. } | Command::Kill { .. } | Command::AskOperators { .. } => 10,
            // Each costs a password hash on the server (tens of milliseconds of CPU).
            Command::Register { .. } | Command::Login { .. } | Command::Passwd { .. } => 20,
            Command::Certificates { .. } => 5,
            Command::Logout { .. } => 2,
            // A store write, no hash.
            Command::IssueToken { .. } => 5,
            Command::Join { .. } | Command::Who { room: Some(_), .. } | Command::History { .. } => 5,
            Command::Invite { .. } | Command::Away { .. } | Command::SetEphemeral { .. } => 5,
            Command::Monitor { change: MonitorChange::Add(_) | MonitorChange::Status, .. } => 5,
            Command::Part { .. } | Command::Mode { .. } | Command::Kick { .. } | Command::Whowas { .. } => 3,
            Command::Topic { topic: None, .. }
            | Command::Lookup { .. }
            | Command::ServerStats { .. }
            | Command::IgnoreAll { .. }
            | Command::Ignore { .. }
            | Command::Unignore { .. }
            | Command::RoomModes { .. }
            | Command::Bans { .. }
            | Command::Invites { .. }
            | Command::Whois { .. }
            | Command::HearAnnouncements { .. }
            | Command::HideFromSearches { .. }
            | Command::MarkBot { .. }
            | Command::SetRealname { .. }
            | Command::AdoptAccount { .. }
            | Command::Monitor { .. } => 2,
        }
    }

    /// A plain message as the simple front doors send it: no `/me`, no notice, no metadata, no
    /// client or request id. Doors set the fields they have on the result.
    pub fn say(target: Target, text: String) -> Self {
        Command::Say { target, text, action: false, notice: false, meta: None, cid: None, req: None }
    }

    /// The same for an action (`/me waves`).
    pub fn me(target: Target, text: String) -> Self {
        Command::Say { target, text, action: true, notice: false, meta: None, cid: None, req: None }
    }

    /// Door-local output, to be handed back in order (see [`Command::Echo`]).
    pub fn local(note: DoorNote) -> Self {
        Command::Echo { event: Box::new(crate::event::Event::Local(note)) }
    }
}
