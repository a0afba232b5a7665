//! The native protocol: one JSON object per line, each with a `type`.
//!
//! Designed for programs (the terminal client, the web page, bots): every request may carry an
//! `id` that the answer or error echoes, errors carry a stable [`ErrorCode`], and messages
//! carry a client id (`cid`) so that a resend after a reconnect is recognised and never
//! doubled. `docs/protocol.md` shows every frame with an example.
//!
//! The same types serve both ends: the server parses [`ClientFrame`] and writes
//! [`ServerFrame`]; clients do the reverse. Server frames borrow (`Cow`) so the server can
//! serialize straight from its own data without copying.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A request identifier chosen by the client and echoed in the matching answer or error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A numeric id, e.g. `"id": 7`.
    Num(i64),
    /// A string id, e.g. `"id": "join-1"`.
    Text(String),
}

/// Frames a client sends to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame of a session: protocol version and the nickname to log in with.
    Hello {
        /// Protocol version the client speaks; see [`crate::PROTOCOL_VERSION`].
        #[serde(default = "default_version")]
        v: u32,
        /// Requested nickname.
        nick: String,
        /// Server password, when the server requires one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// Request id echoed in `welcome` or `error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// A message to a room (`room`) or privately to a user (`to`).
    Send {
        /// Target room, e.g. `#lobby`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Target nickname for a private message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// Message text.
        text: String,
        /// True for an action (`/me waves`).
        #[serde(default, skip_serializing_if = "is_false")]
        action: bool,
        /// True for a notice: a message no program may answer automatically (bots, away
        /// replies); IRC users see it as `NOTICE`.
        #[serde(default, skip_serializing_if = "is_false")]
        notice: bool,
        /// Client-chosen message id; the server drops a second message with the same `cid`
        /// from the same nick and acknowledges it with the first one's server id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cid: Option<String>,
        /// Request id echoed in `ack` or `error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Join (or create) a room.
    Join {
        /// Room name, e.g. `#rust`.
        room: String,
        /// The room's key, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Leave a room.
    Part {
        /// Room name.
        room: String,
        /// Optional reason shown to the room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Change nickname.
    Nick {
        /// The new nickname.
        nick: String,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Show (no `topic`) or set a room's topic.
    Topic {
        /// Room name.
        room: String,
        /// New topic; absent to query.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// List who is online: in one room, or on the whole server when `room` is absent.
    Who {
        /// Room name, or absent for the whole server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Also describe each user (`users` in the answer).
        #[serde(default, skip_serializing_if = "is_false")]
        detail: bool,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// List the rooms.
    Rooms {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Turn ignore mode (no room messages, private messages still arrive) on, off, or toggle it
    /// when `on` is absent.
    IgnoreAll {
        /// Desired mode; absent toggles.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on: Option<bool>,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Block every message from one user; answered by `ignoring`, the list of ignored users.
    Ignore {
        /// Nickname to ignore; empty (or absent) only asks for the list.
        #[serde(default)]
        nick: String,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Stop ignoring a user.
    Unignore {
        /// Nickname to stop ignoring.
        nick: String,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Fetch stored messages of a room, newest last. With `before`, messages with smaller ids;
    /// with `after`, messages with larger ids; with neither, the latest.
    History {
        /// Room name.
        room: String,
        /// Only messages with a server id below this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        /// Only messages with a server id above this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        /// At most this many messages (the server caps it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Make a room ephemeral (nothing stored) or persistent again; room operators only.
    Ephemeral {
        /// Room name.
        room: String,
        /// True: store nothing from now on.
        on: bool,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Change a room's settings or members' standing (operators only); with no `changes`,
    /// asks for the settings (answered by `room_modes`).
    Mode {
        /// Room name.
        room: String,
        /// Changes, applied in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changes: Vec<ModeChange>,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Ask for a room's ban list (answered by `bans`).
    Bans {
        /// Room name.
        room: String,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Remove someone from a room (operators only).
    Kick {
        /// Room name.
        room: String,
        /// Who.
        nick: String,
        /// Shown to the room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Invite someone into a room (past invite-only and bans, once).
    Invite {
        /// Room name.
        room: String,
        /// Who.
        nick: String,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Mark yourself away with a message, or back when `text` is absent or empty.
    Away {
        /// Away message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Describe an online user (answered by `user_info`).
    Whois {
        /// Nickname.
        nick: String,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Who recently used a nickname (answered by `whowas`).
    Whowas {
        /// Nickname.
        nick: String,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Liveness and lag check; answered by `pong`.
    Ping {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Leave the server.
    Quit {
        /// Optional reason shown to the rooms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Tutorial compatibility: `{"type":"login","msg":"nick"}` is a `hello`.
    Login {
        /// The nickname.
        msg: String,
    },
    /// Tutorial compatibility: a message to the lobby.
    Broadcast {
        /// Message text.
        msg: String,
    },
    /// Tutorial compatibility: a private message.
    Sendto {
        /// Recipient.
        nickname: String,
        /// Message text.
        msg: String,
    },
    /// Tutorial compatibility: the command summary, answered with a `notice`.
    Help {},
    /// Tutorial compatibility: who is online, answered with `members`.
    Ls {},
}

fn default_version() -> u32 {
    crate::PROTOCOL_VERSION
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One change in a `mode` frame (and in the server's `mode` announcement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ModeChange {
    /// Only operators may set the topic.
    TopicLock {
        /// On or off.
        on: bool,
    },
    /// Only members may send to the room.
    NoExternal {
        /// On or off.
        on: bool,
    },
    /// Only operators and voiced members may speak.
    Moderated {
        /// On or off.
        on: bool,
    },
    /// Joining needs an invitation.
    InviteOnly {
        /// On or off.
        on: bool,
    },
    /// Not listed to non-members.
    Secret {
        /// On or off.
        on: bool,
    },
    /// Joining needs this key; absent removes it.
    Key {
        /// The key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// At most this many members; absent removes the limit.
    Limit {
        /// The limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Add (`on`) or remove a ban mask (`nick!user@host`, `*` and `?` wildcards).
    Ban {
        /// The mask.
        mask: String,
        /// True to add.
        on: bool,
    },
    /// Grant or take operator standing.
    Op {
        /// Who.
        nick: String,
        /// True to grant.
        on: bool,
    },
    /// Grant or take voice.
    Voice {
        /// Who.
        nick: String,
        /// True to grant.
        on: bool,
    },
}

/// A room's settings in a `room_modes` frame.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModesFrame<'a> {
    /// Only operators may set the topic.
    #[serde(default, skip_serializing_if = "is_false")]
    pub topic_lock: bool,
    /// Only members may send.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_external: bool,
    /// Only operators and voiced members may speak.
    #[serde(default, skip_serializing_if = "is_false")]
    pub moderated: bool,
    /// Joining needs an invitation.
    #[serde(default, skip_serializing_if = "is_false")]
    pub invite_only: bool,
    /// Hidden from non-members.
    #[serde(default, skip_serializing_if = "is_false")]
    pub secret: bool,
    /// Key needed to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Cow<'a, str>>,
    /// Most members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A ban in a `bans` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanFrame<'a> {
    /// The mask.
    pub mask: Cow<'a, str>,
    /// Who set it.
    pub by: Cow<'a, str>,
    /// When, ms since the epoch.
    pub ts: u64,
}

/// A user as described by `who` with `detail`, `user_info` and `whowas`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFrame<'a> {
    /// Nickname.
    pub nick: Cow<'a, str>,
    /// `user@host`.
    pub ident: Cow<'a, str>,
    /// Real name, when given.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub realname: Cow<'a, str>,
    /// Room operator (of the room asked about).
    #[serde(default, skip_serializing_if = "is_false")]
    pub op: bool,
    /// Voiced (in the room asked about).
    #[serde(default, skip_serializing_if = "is_false")]
    pub voice: bool,
    /// Away message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<Cow<'a, str>>,
    /// Rooms (`user_info`), operators prefixed with `@`, voiced with `+`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<Cow<'a, str>>,
    /// Logged in at (`user_info`), or gone at (`whowas`), ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
}

/// A chat message as the server shows it: in live events, in acks' echoes and in history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageFrame<'a> {
    /// Room the message was sent to; absent for a private message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<Cow<'a, str>>,
    /// Sender's nickname.
    pub from: Cow<'a, str>,
    /// Recipient's nickname, for a private message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Cow<'a, str>>,
    /// Message text.
    pub text: Cow<'a, str>,
    /// True for an action (`/me`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub action: bool,
    /// True for a notice: never answer it automatically.
    #[serde(default, skip_serializing_if = "is_false")]
    pub notice: bool,
    /// Server id, increasing per room; absent for private messages and ephemeral rooms'
    /// messages, which are not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<u64>,
    /// Server timestamp, milliseconds since the Unix epoch.
    pub ts: u64,
}

/// A room in a `rooms` listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo<'a> {
    /// Room name.
    pub name: Cow<'a, str>,
    /// Number of members online.
    pub members: u32,
    /// Topic, empty when unset.
    #[serde(default)]
    pub topic: Cow<'a, str>,
    /// True when the room stores nothing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ephemeral: bool,
}

/// Frames the server sends to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// Login succeeded. Followed by a `joined` frame for `#lobby` with its recent history.
    Welcome {
        /// Protocol version the server speaks.
        v: u32,
        /// The nickname in use (as registered).
        nick: Cow<'a, str>,
        /// Server name and version, e.g. `natter 0.1.0`.
        server: Cow<'a, str>,
        /// The longest line the server accepts, in bytes (terminator excluded): a client
        /// refuses a longer frame itself, since the server's `too_long` answer cannot carry
        /// the id of a line it did not read. Absent from servers that predate it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_line: Option<usize>,
        /// Echo of the hello's request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// A chat message (room or private) from someone else.
    Message(MessageFrame<'a>),
    /// The sender's own message was accepted (and, for stored rooms, stored durably).
    Ack {
        /// Echo of the send's request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Echo of the send's client message id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cid: Option<Cow<'a, str>>,
        /// Server id of the stored message (absent when not stored).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mid: Option<u64>,
        /// Room of the message, absent for private messages.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<Cow<'a, str>>,
        /// Server timestamp of the message.
        ts: u64,
        /// True when this `cid` had already been accepted: nothing was sent again.
        #[serde(default, skip_serializing_if = "is_false")]
        duplicate: bool,
        /// For a private message to someone away: their away message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        away: Option<Cow<'a, str>>,
    },
    /// Someone (possibly you, on another join path) joined a room.
    Join {
        /// Room name.
        room: Cow<'a, str>,
        /// Who joined.
        nick: Cow<'a, str>,
        /// When, ms since the epoch.
        ts: u64,
    },
    /// Someone left a room.
    Part {
        /// Room name.
        room: Cow<'a, str>,
        /// Who left.
        nick: Cow<'a, str>,
        /// Their reason, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Cow<'a, str>>,
        /// When, ms since the epoch.
        ts: u64,
    },
    /// Someone left the server (sent once to each session sharing a room with them).
    Quit {
        /// Who quit.
        nick: Cow<'a, str>,
        /// Why: their message, or what the server saw (connection lost, flood...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Cow<'a, str>>,
        /// When, ms since the epoch.
        ts: u64,
    },
    /// Someone changed nickname (possibly you).
    Nick {
        /// Previous nickname.
        old: Cow<'a, str>,
        /// New nickname.
        new: Cow<'a, str>,
        /// When, ms since the epoch.
        ts: u64,
    },
    /// A room's topic, on change or on request.
    Topic {
        /// Echo of the request id when this answers a `topic` query.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Room name.
        room: Cow<'a, str>,
        /// The topic; empty when unset.
        topic: Cow<'a, str>,
        /// Who set it, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Cow<'a, str>>,
    },
    /// You are now in a room: its topic, members and recent history.
    Joined {
        /// Echo of the join's request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Room name.
        room: Cow<'a, str>,
        /// Topic, empty when unset.
        topic: Cow<'a, str>,
        /// Nicknames in the room, you included.
        members: Vec<Cow<'a, str>>,
        /// True when the room stores nothing.
        #[serde(default, skip_serializing_if = "is_false")]
        ephemeral: bool,
        /// Room operators' nicknames.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        operators: Vec<Cow<'a, str>>,
        /// Voiced members' nicknames.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        voiced: Vec<Cow<'a, str>>,
        /// The latest messages, oldest first.
        history: Vec<MessageFrame<'a>>,
    },
    /// Answer to `who`.
    Members {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// The room, or absent for the whole server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<Cow<'a, str>>,
        /// Nicknames, sorted.
        nicks: Vec<Cow<'a, str>>,
        /// With `detail`: each user described, same order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        users: Vec<UserFrame<'a>>,
    },
    /// Answer to `rooms`.
    Rooms {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// The rooms, sorted by name.
        rooms: Vec<RoomInfo<'a>>,
    },
    /// Answer to `history`.
    History {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Room name.
        room: Cow<'a, str>,
        /// Messages, oldest first.
        messages: Vec<MessageFrame<'a>>,
        /// True when older (for `before`/latest) or newer (for `after`) messages remain.
        more: bool,
    },
    /// Your ignore mode changed (answer to `ignore_all`).
    IgnoreMode {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// True: room messages are not delivered to you; private messages still are.
        on: bool,
    },
    /// The users you ignore (answer to `ignore`/`unignore`).
    Ignoring {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Nicknames you ignore.
        nicks: Vec<Cow<'a, str>>,
    },
    /// A room's settings or members' standing changed.
    Mode {
        /// Room name.
        room: Cow<'a, str>,
        /// Who changed it.
        by: Cow<'a, str>,
        /// What changed.
        changes: Vec<ModeChange>,
        /// When, ms since the epoch.
        ts: u64,
    },
    /// Answer to `mode` without changes.
    RoomModes {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Room name.
        room: Cow<'a, str>,
        /// Settings.
        modes: ModesFrame<'a>,
        /// Creation time, ms since the epoch.
        created_ts: u64,
    },
    /// Answer to `bans`.
    Bans {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Room name.
        room: Cow<'a, str>,
        /// Bans, oldest first.
        bans: Vec<BanFrame<'a>>,
    },
    /// Someone was removed from a room (you, when `nick` is yours).
    Kick {
        /// Room name.
        room: Cow<'a, str>,
        /// Who was removed.
        nick: Cow<'a, str>,
        /// Who removed them.
        by: Cow<'a, str>,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<Cow<'a, str>>,
        /// When, ms since the epoch.
        ts: u64,
    },
    /// An invitation: to you (`to` is you), or the confirmation of yours (with `id`).
    Invite {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Room name.
        room: Cow<'a, str>,
        /// Who invites.
        from: Cow<'a, str>,
        /// Who is invited.
        to: Cow<'a, str>,
    },
    /// Someone (you, with `id`) went away (`text`) or came back (no `text`).
    Away {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Who.
        nick: Cow<'a, str>,
        /// Away message; absent: back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<Cow<'a, str>>,
    },
    /// Answer to `whois`.
    UserInfo {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// The user.
        user: UserFrame<'a>,
    },
    /// Answer to `whowas`: newest first, empty when nobody used the nick recently.
    Whowas {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Nickname asked about.
        nick: Cow<'a, str>,
        /// Past users.
        users: Vec<UserFrame<'a>>,
    },
    /// A message from the server itself (help text, room mode changes, warnings).
    Notice {
        /// Echo of the request id when this answers one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Room the notice concerns, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<Cow<'a, str>>,
        /// Human-readable text.
        text: Cow<'a, str>,
    },
    /// A request failed; the session continues.
    Error {
        /// Echo of the failed request's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Stable machine-readable code.
        code: ErrorCode,
        /// What was wrong and what to do.
        message: Cow<'a, str>,
    },
    /// Answer to `ping`.
    Pong {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// The server is closing this session; the reason says why.
    Bye {
        /// Why the session ends.
        reason: Cow<'a, str>,
    },
}

/// Stable error codes; programs match on these, people read the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not valid JSON (or not an object).
    InvalidJson,
    /// The frame's `type` is not one this server knows.
    UnknownType,
    /// The frame lacks a field or has a field of the wrong kind.
    BadFrame,
    /// The line exceeded the maximum frame size.
    TooLong,
    /// The text is not valid UTF-8.
    InvalidUtf8,
    /// The request needs a logged-in session (send `hello` first).
    NotRegistered,
    /// `hello` was sent twice.
    AlreadyRegistered,
    /// The nickname breaks the naming rules.
    InvalidNick,
    /// Someone else uses that nickname.
    NickInUse,
    /// The room name breaks the naming rules.
    InvalidRoom,
    /// No such room.
    NoSuchRoom,
    /// No user with that nickname is online.
    NoSuchNick,
    /// You are not in that room.
    NotInRoom,
    /// Only a room operator may do that.
    NotOperator,
    /// Message text is empty.
    EmptyMessage,
    /// Too many messages too fast; slow down.
    RateLimited,
    /// The protocol version is not supported.
    UnsupportedVersion,
    /// The store failed; the request may be retried.
    StoreFailed,
    /// The room does not take your message now (moderated, or you are banned).
    CannotSend,
    /// You are banned from that room.
    Banned,
    /// That room needs an invitation.
    InviteOnly,
    /// Wrong or missing room key.
    BadKey,
    /// The room is full.
    RoomFull,
    /// The user you named is not in that room.
    UserNotInRoom,
    /// The user you invited is already in that room.
    AlreadyInRoom,
    /// Wrong or missing server password.
    BadPassword,
    /// Anything else: the message explains.
    Other,
}

impl ErrorCode {
    /// The wire name, e.g. `nick_in_use`, for rendering in text protocols.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::TooLong => "too_long",
            ErrorCode::InvalidUtf8 => "invalid_utf8",
            ErrorCode::NotRegistered => "not_registered",
            ErrorCode::AlreadyRegistered => "already_registered",
            ErrorCode::InvalidNick => "invalid_nick",
            ErrorCode::NickInUse => "nick_in_use",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::NoSuchRoom => "no_such_room",
            ErrorCode::NoSuchNick => "no_such_nick",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::NotOperator => "not_operator",
            ErrorCode::EmptyMessage => "empty_message",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::StoreFailed => "store_failed",
            ErrorCode::CannotSend => "cannot_send",
            ErrorCode::Banned => "banned",
            ErrorCode::InviteOnly => "invite_only",
            ErrorCode::BadKey => "bad_key",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::UserNotInRoom => "user_not_in_room",
            ErrorCode::AlreadyInRoom => "already_in_room",
            ErrorCode::BadPassword => "bad_password",
            ErrorCode::Other => "other",
        }
    }
}

/// Why a line could not be turned into a [`ClientFrame`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FrameError {
    /// The code to send back.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// The request id, when it could still be read from the broken frame.
    pub id: Option<RequestId>,
}

/// How a `send` frame written by a serializer starts.
const SEND_PREFIX: &[u8] = br#"{"type":"send","#;

/// Parses one line (without its newline) into a client frame, with a precise error code for
/// each way it can be wrong.
pub fn parse_client_frame(line: &[u8]) -> Result<ClientFrame, FrameError> {
    // Messages are most of the traffic, and serde reads an internally tagged enum by buffering
    // the whole object first: a plain `send` frame is read by hand instead.
    if line.starts_with(SEND_PREFIX)
        && let Some(frame) = crate::native_send::parse_send(line)
    {
        return Ok(frame);
    }
    match serde_json::from_slice::<ClientFrame>(line) {
        Ok(frame) => Ok(frame),
        Err(err) => Err(classify(line, err)),
    }
}

/// Parses one line from the server into a frame (used by clients).
pub fn parse_server_frame(line: &[u8]) -> Result<ServerFrame<'static>, FrameError> {
    serde_json::from_slice::<ServerFrame<'static>>(line).map_err(|err| FrameError {
        code: ErrorCode::BadFrame,
        message: format!("unreadable frame from server: {err}"),
        id: None,
    })
}

fn classify(line: &[u8], err: serde_json::Error) -> FrameError {
    if std::str::from_utf8(line).is_err() {
        return FrameError {
            code: ErrorCode::InvalidUtf8,
            message: "frames must be UTF-8 JSON".into(),
            id: None,
        };
    }
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice::<serde_json::Value>(line) else {
        return FrameError {
            code: ErrorCode::InvalidJson,
            message: format!("not a JSON object ({err}); send one JSON object per line"),
            id: None,
        };
    };
    let id = object.get("id").and_then(|v| RequestId::deserialize(v).ok());
    match object.get("type") {
        Some(serde_json::Value::String(kind)) if !is_client_frame_type(kind) => FrameError {
            code: ErrorCode::UnknownType,
            message: format!("unknown frame type {kind:?}; see docs/protocol.md for the frame types"),
            id,
        },
        None => FrameError { code: ErrorCode::BadFrame, message: "frame has no \"type\" field".into(), id },
        _ => FrameError { code: ErrorCode::BadFrame, message: format!("malformed frame: {err}"), id },
    }
}

/// True when `kind` names a client frame type. Asks serde with the tag alone, so that an
/// unknown variant further inside the frame (a `mode` change, say) does not count.
fn is_client_frame_type(kind: &str) -> bool {
    match serde_json::from_value::<ClientFrame>(serde_json::json!({ "type": kind })) {
        Ok(_) => true,
        Err(err) => !err.to_string().starts_with("unknown variant"),
    }
}

/// Serializes a server frame as one line (with the trailing newline) onto `out`.
///
/// Messages and acknowledgements, nearly all of the traffic, are written by hand, byte for
/// byte what serde writes (a property test holds them to it): serde's way through an
/// internally tagged enum costs several times more, once per message.
pub fn write_server_frame(frame: &ServerFrame<'_>, out: &mut Vec<u8>) {
    match frame {
        ServerFrame::Message(m) => write_message(m, out),
        ServerFrame::Ack { id, cid, mid, room, ts, duplicate, away } => {
            out.extend_from_slice(br#"{"type":"ack""#);
            match id {
                Some(RequestId::Num(n)) => number_field(out, "id", *n),
                Some(RequestId::Text(t)) => json_field(out, "id", t),
                None => {}
            }
            if let Some(cid) = cid {
                json_field(out, "cid", cid);
            }
            if let Some(mid) = mid {
                number_field(out, "mid", *mid);
            }
            if let Some(room) = room {
                json_field(out, "room", room);
            }
            number_field(out, "ts", *ts);
            if *duplicate {
                out.extend_from_slice(br#","duplicate":true"#);
            }
            if let Some(away) = away {
                json_field(out, "away", away);
            }
            out.push(b'}');
        }
        // Serializing our own types into a Vec cannot fail.
        _ => serde_json::to_writer(&mut *out, frame).expect("server frames always serialize"),
    }
    out.push(b'\n');
}

fn write_message(m: &MessageFrame<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"type":"message""#);
    if let Some(room) = &m.room {
        json_field(out, "room", room);
    }
    json_field(out, "from", &m.from);
    if let Some(to) = &m.to {
        json_field(out, "to", to);
    }
    json_field(out, "text", &m.text);
    if m.action {
        out.extend_from_slice(br#","action":true"#);
    }
    if m.notice {
        out.extend_from_slice(br#","notice":true"#);
    }
    if let Some(mid) = m.mid {
        number_field(out, "mid", mid);
    }
    number_field(out, "ts", m.ts);
    out.push(b'}');
}

/// `,"key":value` for a number.
fn number_field(out: &mut Vec<u8>, key: &str, value: impl itoa::Integer) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// `,"key":"value"` for a string (`key` needs no escaping).
fn json_field(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    json_string(out, value);
}

/// A JSON string, escaped as serde_json escapes it: quote, backslash and control characters
/// (short forms where JSON has them, else `\u00xx`); everything else as is.
fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most text needs no escaping: one pass without early exit (which the compiler turns
    // into wide compares) settles it.
    let plain = !bytes.iter().fold(false, |any, &b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if plain {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Serializes a client frame as one line (with the trailing newline).
pub fn client_frame_line(frame: &ClientFrame) -> Vec<u8> {
    let mut out = serde_json::to_vec(frame).expect("client frames always serialize");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_fast_path_reads_what_the_general_path_reads() {
        let lines: &[&str] = &[
            r##"{"type":"send","room":"#lobby","text":"hi"}"##,
            r##"{"type":"send","to":"bob","text":"psst \u00e9\n","action":true,"notice":true,"cid":"c-1","id":7}"##,
            r##"{"type":"send","room":"#a","text":"x","id":"req","extra":[1,{"a":null}]}"##,
            r##"{"type":"send","text":"no target"}"##,
        ];
        for line in lines {
            let general = serde_json::from_slice::<ClientFrame>(line.as_bytes()).unwrap();
            assert_eq!(parse_client_frame(line.as_bytes()).unwrap(), general, "{line}");
        }
        // Refusals come from the general path, with its codes.
        for (line, code) in [
            (r##"{"type":"send","room":"#a"}"##, ErrorCode::BadFrame),
            (r##"{"type":"send","room":"#a","text":5,"id":3}"##, ErrorCode::BadFrame),
            (r##"{"type":"send","text":"a","text":"b"}"##, ErrorCode::BadFrame),
            (r##"{"type":"send","text":"open"##, ErrorCode::InvalidJson),
        ] {
            assert_eq!(parse_client_frame(line.as_bytes()).unwrap_err().code, code, "{line}");
        }
        assert_eq!(
            parse_client_frame(br##"{"type":"send","room":"#a","text":5,"id":3}"##).unwrap_err().id,
            Some(RequestId::Num(3))
        );
    }

    #[test]
    fn parses_hello_and_send() {
        assert_eq!(
            parse_client_frame(br#"{"type":"hello","nick":"ann","id":1}"#).unwrap(),
            ClientFrame::Hello { v: 1, nick: "ann".into(), password: None, id: Some(RequestId::Num(1)) }
        );
        let f = parse_client_frame(br##"{"type":"send","room":"#lobby","text":"hi","cid":"c1"}"##).unwrap();
        assert!(
            matches!(f, ClientFrame::Send { ref room, cid: Some(_), .. } if room.as_deref() == Some("#lobby"))
        );
    }

    #[test]
    fn tutorial_frames_parse() {
        assert_eq!(
            parse_client_frame(br#"{"type":"login","msg":"bob"}"#).unwrap(),
            ClientFrame::Login { msg: "bob".into() }
        );
        assert_eq!(parse_client_frame(br#"{"type":"ls"}"#).unwrap(), ClientFrame::Ls {});
    }

    #[test]
    fn errors_are_classified() {
        assert_eq!(parse_client_frame(b"{nope").unwrap_err().code, ErrorCode::InvalidJson);
        assert_eq!(parse_client_frame(b"[1,2]").unwrap_err().code, ErrorCode::InvalidJson);
        let e = parse_client_frame(br#"{"type":"dance","id":"x"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownType);
        assert_eq!(e.id, Some(RequestId::Text("x".into())));
        assert_eq!(parse_client_frame(br#"{"type":"join","id":3}"#).unwrap_err().code, ErrorCode::BadFrame);
        assert_eq!(parse_client_frame(br#"{"nick":"a"}"#).unwrap_err().code, ErrorCode::BadFrame);
        assert_eq!(parse_client_frame(b"{\"type\":\"\xff\"}").unwrap_err().code, ErrorCode::InvalidUtf8);
        // An unknown value inside a known frame is a bad frame, not an unknown frame type.
        let e = parse_client_frame(br##"{"type":"mode","room":"#a","changes":[{"mode":"dance"}],"id":4}"##)
            .unwrap_err();
        assert_eq!((e.code, &e.id), (ErrorCode::BadFrame, &Some(RequestId::Num(4))), "{e:?}");
        assert!(e.message.contains("dance"), "{e:?}");
        let e =
            parse_client_frame(br##"{"type":"mode","room":"#a","changes":[{"mode":"mode"}]}"##).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadFrame, "{e:?}");
    }

    #[test]
    fn server_frames_round_trip() {
        let frame = ServerFrame::Message(MessageFrame {
            room: Some("#lobby".into()),
            from: "ann".into(),
            to: None,
            text: "hello \"there\"".into(),
            action: false,
            notice: false,
            mid: Some(4),
            ts: 1_700_000_000_000,
        });
        let mut out = Vec::new();
        write_server_frame(&frame, &mut out);
        assert!(out.ends_with(b"\n"));
        assert_eq!(parse_server_frame(&out[..out.len() - 1]).unwrap(), frame);
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(bytes: Vec<u8>) {
            let _ = parse_client_frame(&bytes);
            let _ = parse_server_frame(&bytes);
        }

        #[test]
        fn send_round_trips(text in ".{0,200}", cid in proptest::option::of("[a-z0-9]{1,8}")) {
            let frame = ClientFrame::Send { room: Some("#r".into()), to: None, text, action: false, notice: false, cid, id: Some(RequestId::Num(9)) };
            let line = client_frame_line(&frame);
            proptest::prop_assert_eq!(parse_client_frame(&line[..line.len()-1]).unwrap(), frame);
        }
    }
}
