//! Server frames: what the server sends to clients, with the records they carry (messages,
//! rooms, users, bans, room settings).

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use super::{ErrorCode, RequestId, RoomChangeFrame, is_false};

/// What an `account` frame reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountChangeFrame {
    /// Your nickname is now an account, and you are logged in as it.
    Registered,
    /// You are logged in as the account.
    LoggedIn,
    /// You logged out.
    LoggedOut,
    /// The account's password changed.
    PasswordChanged,
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
    /// The address behind a cloaked `ident` (`user_info` only, for server operators and
    /// oneself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_host: Option<Cow<'a, str>>,
    /// The account the user is logged in as (`user_info` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Cow<'a, str>>,
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
        /// Over UDP only: the session token every later datagram must carry (`"token"`), so
        /// that a datagram forged with this client's address cannot speak for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Cow<'a, str>>,
    },
    /// Over UDP only, the answer to a first datagram from an address the server has not seen:
    /// send it again with this `token` to show that the address is yours (it receives what
    /// the server sends). Until then the server sends that address almost nothing, so that
    /// a forged source address cannot turn the server into an amplifier.
    Verify {
        /// The address token: a few characters, valid for 5 to 10 minutes.
        token: Cow<'a, str>,
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
        /// For a private message to a registered account nobody is logged in to: it waits in
        /// the account's mailbox and is delivered at its next login.
        #[serde(default, skip_serializing_if = "is_false")]
        offline: bool,
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
        /// Nicknames in the room, sorted, you included; in a big room only the first ones
        /// (then `count` says how many there are, and `who` pages through them).
        members: Vec<Cow<'a, str>>,
        /// How many members the room has, when `members` lists only the first of them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
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
        /// Nicknames, sorted: one page of the list.
        nicks: Vec<Cow<'a, str>>,
        /// With `detail`: each user described, same order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        users: Vec<UserFrame<'a>>,
        /// True when the list goes on after this page (ask again with `after`: the last nick).
        #[serde(default, skip_serializing_if = "is_false")]
        more: bool,
        /// How many the whole list holds, when this answer is not all of it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
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
        changes: Vec<RoomChangeFrame>,
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
    /// Your account changed: the answer to `register`, `login` (or `hello` with `account`),
    /// `logout` and `passwd`.
    Account {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// What happened.
        change: AccountChangeFrame,
        /// The account, as registered.
        account: Cow<'a, str>,
    },
    /// The answer to `resume_token`: a token that logs you in to `account` again (`hello`
    /// with `resume`). Keep it like a password: whoever has it can log in as you until you
    /// log out, change the password, or leave it unused for 90 days.
    ResumeToken {
        /// Echo of the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// The account, as registered.
        account: Cow<'a, str>,
        /// The token: 43 characters of URL-safe base64.
        token: Cow<'a, str>,
    },
    /// Your nickname is a registered account's and you are not logged in as it: log in
    /// within `grace_secs` seconds or be renamed to a guest name (`grace_secs` 0: the server
    /// lets you keep it until its owner reclaims it).
    NickProtected {
        /// The nickname.
        nick: Cow<'a, str>,
        /// Seconds left to log in; 0 when there is no deadline.
        grace_secs: u64,
    },
    /// The server is closing this session; the reason says why.
    Bye {
        /// Why the session ends.
        reason: Cow<'a, str>,
    },
}
