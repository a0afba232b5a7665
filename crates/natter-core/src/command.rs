//! What front doors ask of the hub, in protocol-neutral terms.

use crate::outbox::Outbox;
use crate::store::HistoryQuery;
use natter_proto::native::RequestId;
use std::sync::Arc;

/// Which front door a session came through; shown in logs and used for defaults (for
/// example the console session is a server operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// Native JSON frames over TCP.
    Native,
    /// Plain text lines (netcat, telnet).
    Text,
    /// UDP datagrams.
    Udp,
    /// IRC.
    Irc,
    /// The server's own terminal (`natter serve --console`): operator of every room.
    Console,
}

/// Everything the hub needs to log a session in.
#[derive(Debug)]
pub struct Registration {
    /// Requested nickname.
    pub nick: String,
    /// `user@host` of the peer, for front doors (IRC) that show where someone comes from.
    pub ident: String,
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
    /// Request id echoed in the welcome.
    pub req: Option<RequestId>,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A room, by name (`#lobby`).
    Room(String),
    /// A user, by nickname.
    Nick(String),
}

/// A request from a logged-in session. Each carries the request id (`req`) that the answer
/// or error must echo; front doors that have no ids pass `None`.
#[derive(Debug, Clone)]
pub enum Command {
    /// Send a message (or `/me` action when `action`); `cid` is the client's id for dedupe.
    Say {
        /// Room or user.
        target: Target,
        /// Message text; may be empty only when `tags` is set (a tag-only message).
        text: String,
        /// True for `/me`.
        action: bool,
        /// True for a notice (never answered automatically; no away reply).
        notice: bool,
        /// Client-only tags (IRCv3 `+name=value;...`, escaped), relayed as given.
        tags: Option<String>,
        /// Client message id.
        cid: Option<String>,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Join or create a room.
    Join {
        /// Room name.
        room: String,
        /// The room's key (password), needed when the room has one.
        key: Option<String>,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Leave a room.
    Part {
        /// Room name.
        room: String,
        /// Shown to the room.
        reason: Option<String>,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Change nickname.
    Nick {
        /// New nickname.
        nick: String,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Query (`topic: None`) or set a topic.
    Topic {
        /// Room name.
        room: String,
        /// New topic.
        topic: Option<String>,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Who is in a room, or on the server (`room: None`).
    Who {
        /// Room name.
        room: Option<String>,
        /// Also describe each member (`user@host`, standing, away): `Members::info`.
        detail: bool,
        /// Request id.
        req: Option<RequestId>,
    },
    /// List rooms.
    Rooms {
        /// Request id.
        req: Option<RequestId>,
    },
    /// Set (`Some`) or toggle (`None`) ignore mode.
    IgnoreAll {
        /// Desired mode.
        on: Option<bool>,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Ignore a user; `None` just lists who is ignored.
    Ignore {
        /// Nickname.
        nick: Option<String>,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Stop ignoring a user.
    Unignore {
        /// Nickname.
        nick: String,
        /// Request id.
        req: Option<RequestId>,
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
        req: Option<RequestId>,
    },
    /// Rooms of the session that saw messages in a time range, for IRCv3 `CHATHISTORY
    /// TARGETS`: answered by `Event::Conversations`.
    Conversations {
        /// Only activity after this time (ms since the epoch).
        after_ts: u64,
        /// Only activity before this time.
        before_ts: u64,
        /// At most this many rooms.
        limit: u32,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Make a room ephemeral or persistent (room operators only).
    SetEphemeral {
        /// Room name.
        room: String,
        /// True: store nothing.
        on: bool,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Change room settings or someone's standing in a room (operators only).
    Mode {
        /// Room name.
        room: String,
        /// The changes, applied in order; each one that took effect is announced.
        changes: Vec<RoomChange>,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Ask for a room's settings (answered by `Event::RoomModes`).
    RoomModes {
        /// Room name.
        room: String,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Ask for a room's ban list (answered by `Event::Bans`).
    Bans {
        /// Room name.
        room: String,
        /// Request id.
        req: Option<RequestId>,
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
        req: Option<RequestId>,
    },
    /// Invite someone into a room: lets them past invite-only, bans and the key once.
    Invite {
        /// Room name.
        room: String,
        /// Who.
        nick: String,
        /// Request id.
        req: Option<RequestId>,
    },
    /// List the rooms you are invited into and have not joined yet (answered by
    /// `Event::Invites`).
    Invites {
        /// Request id.
        req: Option<RequestId>,
    },
    /// Mark yourself away (`Some(text)`) or back (`None`).
    Away {
        /// Away message.
        text: Option<String>,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Describe one online user (answered by `Event::UserInfo`).
    Whois {
        /// Nickname.
        nick: String,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Who recently used a nickname that is now gone (answered by `Event::Whowas`).
    Whowas {
        /// Nickname.
        nick: String,
        /// At most this many entries, newest first.
        count: usize,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Become a server operator (operator of every room) with a configured name and password.
    Oper {
        /// Operator name.
        name: String,
        /// Its password.
        password: String,
        /// Request id; the answer is a `Notice` carrying it.
        req: Option<RequestId>,
    },
    /// Receive (`true`) or stop receiving the server operators' announcements (IRC user mode
    /// `+w`).
    HearWallops {
        /// Receive them.
        on: bool,
    },
    /// An announcement from a server operator to every session that asked for them
    /// (`HearWallops`) and to the operator; server operators only.
    Wallops {
        /// The announcement.
        text: String,
        /// Request id: a refusal carries it.
        req: Option<RequestId>,
    },
    /// Hide from (`true`) or show again in server-wide `who` searches by people who share no
    /// room with you (IRC user mode `+i`).
    Invisible {
        /// Hidden.
        on: bool,
    },
    /// End someone's session (server operators only).
    Kill {
        /// Who.
        nick: String,
        /// Shown to them and to their rooms.
        reason: String,
        /// Request id.
        req: Option<RequestId>,
    },
    /// Hand this event back to the session, in order after its earlier commands: front doors
    /// send their own answers (IRC numerics, PONG) this way so that they never overtake the
    /// hub's answers to commands sent before.
    Echo {
        /// The event to deliver.
        event: Box<crate::event::Event>,
    },
    /// Leave the server. Front doors send this on `/quit` and when the connection ends.
    Quit {
        /// Shown to the rooms.
        reason: Option<String>,
    },
}

impl Command {
    /// A plain message as the simple front doors send it: no `/me`, no notice, no tags, no
    /// client or request id. Doors set the fields they have on the result.
    pub fn say(target: Target, text: String) -> Self {
        Command::Say { target, text, action: false, notice: false, tags: None, cid: None, req: None }
    }

    /// The same for an action (`/me waves`).
    pub fn me(target: Target, text: String) -> Self {
        Command::Say { target, text, action: true, notice: false, tags: None, cid: None, req: None }
    }
}

/// Shared nick text; cloned into every event that names a user.
pub type Name = Arc<str>;

/// One change to a room's settings or to a member's standing: the protocol-neutral form of
/// IRC channel modes, also reachable from text mode (`/mode`, `/op`, `/ban`) and native frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomChange {
    /// Only operators may set the topic.
    TopicLock(bool),
    /// Only members may send to the room.
    NoExternal(bool),
    /// Only operators and voiced members may speak.
    Moderated(bool),
    /// Joining needs an invitation.
    InviteOnly(bool),
    /// The room is not listed to non-members and its members are not shown to them.
    Secret(bool),
    /// Joining needs this key (`None`: no key).
    Key(Option<String>),
    /// At most this many members (`None`: no limit).
    Limit(Option<u32>),
    /// Add or remove a ban mask (`nick!user@host` with `*` and `?` wildcards).
    Ban {
        /// The mask.
        mask: String,
        /// True to add.
        on: bool,
    },
    /// Grant or take room operator standing.
    Operator {
        /// Who.
        nick: String,
        /// True to grant.
        on: bool,
    },
    /// Grant or take voice (may speak in a moderated room).
    Voice {
        /// Who.
        nick: String,
        /// True to grant.
        on: bool,
    },
}
