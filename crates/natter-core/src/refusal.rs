//! Every way the hub (or a front door, for what it checks itself) can refuse a request, with
//! the names and limits involved as fields.
//!
//! Doors map a refusal to their wire in one table each (a native error code, an IRC numeric,
//! a text line): none of them reads the English below, which is only the default wording for
//! people (`Display`), so rewording it can never change what a program receives.

use crate::limits::{MAX_BANS, MAX_KEY_CHARS};
use crate::vocab::Name;
use std::fmt;

/// Which room action needs a room operator: each words its refusal differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomAction {
    /// Setting the topic of a topic-locked room.
    SetTopic,
    /// Changing room settings or someone's standing.
    ChangeSettings,
    /// Removing someone.
    Kick,
    /// Inviting someone into an invite-only room.
    Invite,
}

/// Which server-wide action needs a server operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerAction {
    /// Ending someone's session.
    Kill,
    /// Sending an announcement to everyone who hears them.
    Announce,
}

/// Why a room does not take a member's message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silenced {
    /// The sender matches a ban.
    Banned,
    /// The room is moderated and the sender has no voice.
    Moderated,
}

/// Whose wrong passwords hold a login or `Oper` back (see [`Refusal::TooManyAttempts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// The address the attempt came from.
    Address,
    /// The server operator name it named.
    Operator,
    /// The account it named.
    Account,
}

/// A refused request: what was wrong, with what it concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The server password was missing or wrong at login.
    BadPassword,
    /// Too many wrong passwords: no attempt is even checked before the wait is over, so that
    /// a password cannot be guessed at line speed.
    TooManyAttempts {
        /// Seconds to wait (at least 1).
        wait_secs: u64,
        /// Whose wrong passwords these were.
        by: Throttled,
    },
    /// A nickname breaks the naming rules; `problem` says which.
    InvalidNick {
        /// The nickname as given.
        nick: Name,
        /// The rule it breaks.
        problem: Name,
    },
    /// A new real name is empty or longer than `max` bytes.
    InvalidRealname {
        /// The most bytes allowed.
        max: usize,
    },
    /// Someone else uses that nickname.
    NickInUse {
        /// The nickname as given.
        nick: Name,
    },
    /// The nickname belongs to the server or a service users trust.
    NickReserved {
        /// The nickname as given.
        nick: Name,
    },
    /// The nickname looks like the nickname of someone online (Unicode look-alikes).
    NickLookalike {
        /// The nickname as given.
        nick: Name,
        /// Whose nickname it looks like.
        like: Name,
    },
    /// A room name breaks the naming rules.
    InvalidRoom {
        /// The name as given.
        room: Name,
        /// The rule it breaks.
        problem: Name,
    },
    /// No room by that name.
    NoSuchRoom {
        /// The name as given.
        room: Name,
    },
    /// The request needs the session to be in the room.
    NotInRoom {
        /// The room.
        room: Name,
    },
    /// A secret room's contents are for its members only.
    SecretRoom {
        /// The room.
        room: Name,
    },
    /// Nobody online by that nickname.
    NoSuchNick {
        /// The nickname as given.
        nick: Name,
    },
    /// A private message to nobody online.
    NoSuchRecipient {
        /// The nickname as given.
        nick: Name,
    },
    /// A private message to a registered account nobody is logged in to, whose mailbox
    /// already holds as much as it may.
    MailboxFull {
        /// The account's name, as the sender gave it.
        nick: Name,
        /// Most messages a mailbox holds.
        messages: u32,
        /// Most bytes of text a mailbox holds.
        bytes: u32,
    },
    /// The named user is not in the room.
    UserNotInRoom {
        /// The user.
        nick: Name,
        /// The room.
        room: Name,
    },
    /// The invited user is already in the room.
    AlreadyInRoom {
        /// The user.
        nick: Name,
        /// The room.
        room: Name,
    },
    /// A message with no text.
    EmptyMessage,
    /// An announcement with no text.
    EmptyAnnouncement,
    /// The room does not take this member's messages now.
    CannotSend {
        /// The room.
        room: Name,
        /// Why not.
        why: Silenced,
    },
    /// Joining needs an invitation.
    InviteOnly {
        /// The room.
        room: Name,
    },
    /// The session matches one of the room's bans.
    Banned {
        /// The room.
        room: Name,
    },
    /// Joining needs the room's key.
    BadKey {
        /// The room.
        room: Name,
    },
    /// The room has as many members as its limit allows.
    RoomFull {
        /// The room.
        room: Name,
        /// Its member limit.
        limit: u32,
    },
    /// A room key (password) that cannot be used (empty, too long, spaces or commas).
    InvalidKey {
        /// The room.
        room: Name,
    },
    /// The room's ban list is full.
    BanListFull {
        /// The room.
        room: Name,
    },
    /// A room operator's action by someone who is not one.
    NotRoomOperator {
        /// The room.
        room: Name,
        /// What was tried.
        action: RoomAction,
    },
    /// A server operator's action by someone who is not one.
    NotServerOperator {
        /// What was tried.
        action: ServerAction,
    },
    /// `Oper` on a server with no operators configured.
    NoOperators,
    /// `Oper` with a wrong name or password.
    BadOperatorPassword,
    /// Ignoring oneself.
    CannotIgnoreSelf,
    /// Unignoring someone not ignored.
    NotIgnoring {
        /// The nickname as given.
        nick: Name,
    },
    /// A room message was delivered to those online but the store failed to keep it.
    NotStored {
        /// The store's error.
        problem: Name,
    },
    /// The store could not answer a history request.
    HistoryUnavailable {
        /// The store's error.
        problem: Name,
    },
    /// A line or frame longer than the limit (checked by the front door).
    LineTooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// A message over the session's rate (checked by the front door).
    RateLimited {
        /// Messages allowed per second.
        per_second: u32,
    },
    /// A request before logging in (checked by the front door).
    NotRegistered,
    /// The session already ignores as many users as it may.
    IgnoreListFull {
        /// How many it may ignore.
        limit: u32,
    },
    /// Too many requests of this kind are still waiting for their answers (history pages).
    TooManyPending {
        /// How many may wait at once.
        limit: u32,
    },
    /// Registering a name that is already an account.
    AccountExists {
        /// The name.
        name: Name,
    },
    /// A login, or registering, by a session already logged in.
    AlreadyLoggedIn {
        /// The account it is logged in as.
        account: Name,
    },
    /// A wrong account name or password: one refusal for both, so that it does not tell
    /// which names are registered.
    BadCredentials,
    /// A resume token that logs in to nothing: never issued, revoked (logged out, password
    /// changed, account deleted), expired, or not shaped like a token.
    BadToken,
    /// Logging out or changing a password without being logged in.
    NotLoggedIn,
    /// The account has as many client certificates as it may (`MAX_CERTIFICATES`).
    TooManyCertificates {
        /// The cap.
        max: usize,
    },
    /// A new password that breaks the rules.
    WeakPassword {
        /// Which rule.
        problem: crate::password::PasswordProblem,
    },
    /// The session's previous account request (a password being checked) has no answer yet.
    AccountPending,
    /// The server is checking as many passwords as it queues: a burst of logins must not
    /// pin its memory or CPU, so the rest are refused until it catches up.
    AccountsBusy,
    /// Too many accounts registered from this address lately: registering costs the server
    /// storage for good, so an address may register only a few an hour.
    TooManyRegistrations {
        /// Seconds until the next registration is taken (at least 1).
        wait_secs: u64,
    },
    /// The store could not read or write an account.
    AccountsUnavailable {
        /// The store's error.
        problem: Name,
    },
    /// The nickname is a registered account's, or looks like one (Unicode look-alikes), and
    /// the session is not logged in as that account.
    NickRegistered {
        /// The nickname as given.
        nick: Name,
        /// The registered name it is or looks like.
        account: Name,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BadPassword => f.write_str("this server needs a password; give the right one"),
            Refusal::TooManyAttempts { wait_secs, by } => {
                let whose = match by {
                    Throttled::Address => "from your address",
                    Throttled::Operator => "for this operator",
                    Throttled::Account => "for this account",
                };
                write!(f, "too many wrong passwords {whose}; try again in {}", Wait(*wait_secs))
            }
            Refusal::InvalidNick { problem, .. } | Refusal::InvalidRoom { problem, .. } => {
                f.write_str(problem)
            }
            Refusal::InvalidRealname { max } => {
                write!(f, "a real name must not be empty, and at most {max} bytes")
            }
            Refusal::NickInUse { nick } => write!(f, "the nickname {nick} is taken; choose another"),
            Refusal::NickReserved { nick } => {
                write!(f, "the nickname {nick} is reserved for the server and its services; choose another")
            }
            Refusal::NickLookalike { nick, like } => {
                write!(f, "the nickname {nick} looks like {like}, who is online; choose another")
            }
            Refusal::NoSuchRoom { room } => write!(f, "no room {room}; /join {room} creates it"),
            Refusal::NotInRoom { room } => write!(f, "you are not in {room}; /join {room} first"),
            Refusal::SecretRoom { room } => write!(f, "you are not in {room}"),
            Refusal::NoSuchNick { nick } => write!(f, "{nick} is not online"),
            Refusal::NoSuchRecipient { nick } => write!(f, "{nick} is not online; /ls lists who is"),
            Refusal::MailboxFull { nick, messages, bytes } => write!(
                f,
                "{nick} is offline and their mailbox is full ({messages} messages or {} KiB wait for \
                 them); try again after they log in",
                bytes / 1024
            ),
            Refusal::UserNotInRoom { nick, room } => write!(f, "{nick} is not in {room}"),
            Refusal::AlreadyInRoom { nick, room } => write!(f, "{nick} is already in {room}"),
            Refusal::EmptyMessage => f.write_str("message is empty; type some text"),
            Refusal::EmptyAnnouncement => f.write_str("wallops is empty; type some text"),
            Refusal::CannotSend { room, why: Silenced::Banned } => {
                write!(f, "you are banned from {room}: your messages are not delivered")
            }
            Refusal::CannotSend { room, why: Silenced::Moderated } => {
                write!(f, "{room} is moderated: only its operators and voiced members may speak")
            }
            Refusal::InviteOnly { room } => write!(f, "{room} is invite-only: ask an operator to invite you"),
            Refusal::Banned { room } => write!(f, "you are banned from {room}"),
            Refusal::BadKey { room } => write!(f, "{room} needs the right key to join"),
            Refusal::RoomFull { room, limit } => write!(f, "{room} is full ({limit} members)"),
            Refusal::InvalidKey { .. } => {
                write!(f, "invalid key: 1 to {MAX_KEY_CHARS} characters, no spaces or commas")
            }
            Refusal::BanListFull { room } => write!(f, "ban list of {room} is full ({MAX_BANS})"),
            Refusal::NotRoomOperator { room, action } => match action {
                RoomAction::SetTopic => {
                    write!(f, "the topic of {room} is locked: only its operators can change it")
                }
                RoomAction::ChangeSettings => write!(f, "only an operator of {room} can change that"),
                RoomAction::Kick => write!(f, "only an operator of {room} can remove people"),
                RoomAction::Invite => write!(f, "{room} is invite-only: only its operators can invite"),
            },
            Refusal::NotServerOperator { action: ServerAction::Kill } => {
                f.write_str("only server operators can kill")
            }
            Refusal::NotServerOperator { action: ServerAction::Announce } => {
                f.write_str("only server operators can send wallops")
            }
            Refusal::NoOperators => f.write_str("this server has no operators configured"),
            Refusal::BadOperatorPassword => f.write_str("wrong operator name or password"),
            Refusal::CannotIgnoreSelf => f.write_str("you cannot ignore yourself"),
            Refusal::NotIgnoring { nick } => write!(f, "you are not ignoring {nick}"),
            Refusal::NotStored { problem } => {
                write!(f, "your message was delivered to those online but not stored ({problem})")
            }
            Refusal::HistoryUnavailable { problem } => write!(f, "history unavailable: {problem}"),
            Refusal::LineTooLong { max } => {
                write!(f, "line too long: at most {max} bytes per line; it was dropped")
            }
            Refusal::RateLimited { per_second } => write!(
                f,
                "slow down: at most {per_second} messages per second; this message was not sent; keep flooding and you will be disconnected"
            ),
            Refusal::NotRegistered => f.write_str("log in first"),
            Refusal::IgnoreListFull { limit } => {
                write!(f, "you already ignore {limit} users, the most there can be; /unignore someone first")
            }
            Refusal::AccountExists { name } => {
                write!(f, "{name} is already registered; /login {name} PASSWORD if it is yours")
            }
            Refusal::AlreadyLoggedIn { account } => {
                write!(f, "you are already logged in as {account}; /logout first")
            }
            Refusal::BadCredentials => f.write_str("wrong account name or password"),
            Refusal::BadToken => f.write_str(
                "your saved login is no longer valid (logged out, password changed, or expired); \
                 /login NICK PASSWORD again",
            ),
            Refusal::NotLoggedIn => f.write_str("you are not logged in; /login NICK PASSWORD first"),
            Refusal::WeakPassword { problem } => write!(f, "{problem}"),
            Refusal::TooManyCertificates { max } => {
                write!(
                    f,
                    "your account has {max} certificates already, the most it may have; remove one first"
                )
            }
            Refusal::AccountPending => {
                f.write_str("busy: your previous account request is still being checked; wait for its answer")
            }
            Refusal::AccountsBusy => {
                f.write_str("the server is checking many passwords right now; try again in a few seconds")
            }
            Refusal::AccountsUnavailable { problem } => write!(f, "accounts unavailable: {problem}"),
            Refusal::TooManyRegistrations { wait_secs } => write!(
                f,
                "too many accounts registered from your address lately; try again in {}",
                Wait(*wait_secs)
            ),
            Refusal::NickRegistered { nick, account } if **nick == **account => write!(
                f,
                "the nickname {nick} is registered; /login {nick} PASSWORD if it is yours, or choose another"
            ),
            Refusal::NickRegistered { nick, account } => {
                write!(f, "the nickname {nick} looks like the registered nickname {account}; choose another")
            }
            Refusal::TooManyPending { limit } => write!(
                f,
                "busy: {limit} history pages you asked for are still on their way; wait for them, then ask again"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// A wait as people say it: seconds up to two minutes, then whole minutes (rounded up).
struct Wait(u64);

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            s @ 0..120 => write!(f, "{} s", s.max(1)),
            s => write!(f, "{} min", s.div_ceil(60)),
        }
    }
}
