//! Client frames: what a client may send to the server, and how a client writes one.

use serde::{Deserialize, Serialize};

use super::{RequestId, is_false};

/// How long a `hello`'s `client_secret` may be, in bytes: long enough that nobody guesses
/// another client's (natter's client sends 32 random hex digits), short enough to cost little.
pub const CLIENT_SECRET_BYTES: std::ops::RangeInclusive<usize> = 16..=128;

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
        /// Log in to this account right after the welcome (with `account_password`): the
        /// answer is an `account` frame, or an `error`, after the `welcome`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// The account's password (see `account`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_password: Option<String>,
        /// Log in to an account right after the welcome with a resume token (from a
        /// `resume_token` answer) instead of a password: the answer is an `account` frame, or
        /// an `error` (`bad_resume_token`: log in with the password again), after `welcome`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        /// A random secret the client picks once and gives at every login: the server
        /// remembers its `cid`s under it, so that a resend after a reconnect is recognised, and
        /// nobody who lacks it can match them. Without one, `cid`s last as long as the session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_secret: Option<String>,
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
    /// List who is online: in one room, or on the whole server when `room` is absent. A page
    /// at a time: a big room or server answers its first nicks and says how many remain.
    Who {
        /// Room name, or absent for the whole server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Also describe each user (`users` in the answer).
        #[serde(default, skip_serializing_if = "is_false")]
        detail: bool,
        /// Start after this nick (the last of the previous page); absent: from the start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        /// Most nicks in the answer (default and maximum 1000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
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
        changes: Vec<RoomChangeFrame>,
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
    /// Register your nickname as an account with this password, and log in as it. Answered
    /// by `account` (`change: "registered"`).
    Register {
        /// At least 8 characters, at most 256 bytes.
        password: String,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Stop being logged in as your account. Answered by `account` (`change: "logged_out"`).
    Logout {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Ask for a resume token for the account you are logged in to, so that your client can
    /// log in again (`hello` with `resume`) without keeping the password. Answered by
    /// `resume_token`; the session's previous token is revoked.
    ResumeToken {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Change your account's password. Answered by `account` (`change: "password_changed"`).
    Passwd {
        /// The current password.
        old: String,
        /// The new password.
        new: String,
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
    /// Log in to a registered account (`name` and `password`; answered by `account` with
    /// `change: "logged_in"`). Before `hello`, the chat-room tutorial's
    /// `{"type":"login","msg":"nick"}` is a `hello` instead (tutorial compatibility).
    Login {
        /// Tutorial compatibility: the nickname to log in with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg: Option<String>,
        /// The account name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The account's password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
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

/// One change in a `mode` frame (and in the server's `mode` announcement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum RoomChangeFrame {
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

/// Serializes a client frame as one line (with the trailing newline).
pub fn client_frame_line(frame: &ClientFrame) -> Vec<u8> {
    let mut out = serde_json::to_vec(frame).expect("client frames always serialize");
    out.push(b'\n');
    out
}
