//! The native protocol's error code for each refusal of the hub: the one table that decides
//! what programs match on. The message beside the code is the refusal's own wording.

use natter_core::Refusal;
use natter_proto::native::ErrorCode;

/// The stable code a native client receives for `refusal`.
pub(crate) fn error_code(refusal: &Refusal) -> ErrorCode {
    match refusal {
        Refusal::BadPassword | Refusal::BadOperatorPassword => ErrorCode::BadPassword,
        Refusal::TooManyAttempts { .. } => ErrorCode::TooManyAttempts,
        Refusal::InvalidNick { .. } | Refusal::CannotIgnoreSelf => ErrorCode::InvalidNick,
        Refusal::InvalidRealname { .. } => ErrorCode::Other,
        Refusal::NickInUse { .. } | Refusal::NickLookalike { .. } => ErrorCode::NickInUse,
        Refusal::NickReserved { .. } => ErrorCode::InvalidNick,
        Refusal::InvalidRoom { .. } => ErrorCode::InvalidRoom,
        Refusal::NoSuchRoom { .. } => ErrorCode::NoSuchRoom,
        Refusal::NotInRoom { .. } | Refusal::SecretRoom { .. } => ErrorCode::NotInRoom,
        Refusal::NoSuchNick { .. } | Refusal::NoSuchRecipient { .. } | Refusal::NotIgnoring { .. } => {
            ErrorCode::NoSuchNick
        }
        Refusal::UserNotInRoom { .. } => ErrorCode::UserNotInRoom,
        Refusal::AlreadyInRoom { .. } => ErrorCode::AlreadyInRoom,
        Refusal::EmptyMessage | Refusal::EmptyAnnouncement => ErrorCode::EmptyMessage,
        Refusal::CannotSend { .. } => ErrorCode::CannotSend,
        Refusal::InviteOnly { .. } => ErrorCode::InviteOnly,
        Refusal::Banned { .. } => ErrorCode::Banned,
        Refusal::BadKey { .. } => ErrorCode::BadKey,
        Refusal::RoomFull { .. } => ErrorCode::RoomFull,
        Refusal::InvalidKey { .. } | Refusal::BanListFull { .. } | Refusal::IgnoreListFull { .. } => {
            ErrorCode::Other
        }
        Refusal::NotRoomOperator { .. } | Refusal::NotServerOperator { .. } | Refusal::NoOperators => {
            ErrorCode::NotOperator
        }
        Refusal::NotStored { .. } | Refusal::HistoryUnavailable { .. } => ErrorCode::StoreFailed,
        Refusal::LineTooLong { .. } => ErrorCode::TooLong,
        Refusal::RateLimited { .. } => ErrorCode::RateLimited,
        Refusal::TooManyPending { .. } => ErrorCode::Busy,
        Refusal::NotRegistered => ErrorCode::NotRegistered,
        Refusal::AccountExists { .. } => ErrorCode::AccountExists,
        Refusal::AlreadyLoggedIn { .. } => ErrorCode::AlreadyLoggedIn,
        Refusal::BadCredentials => ErrorCode::BadCredentials,
        Refusal::BadToken => ErrorCode::BadResumeToken,
        Refusal::NotLoggedIn => ErrorCode::NotLoggedIn,
        Refusal::WeakPassword { .. } => ErrorCode::WeakPassword,
        Refusal::TooManyCertificates { .. } => ErrorCode::Other,
        Refusal::AccountPending | Refusal::AccountsBusy => ErrorCode::Busy,
        Refusal::TooManyRegistrations { .. } => ErrorCode::TooManyAttempts,
        Refusal::AccountsUnavailable { .. } => ErrorCode::StoreFailed,
        Refusal::NickRegistered { .. } => ErrorCode::NickRegistered,
        Refusal::MailboxFull { .. } => ErrorCode::MailboxFull,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::refusal::{RoomAction, ServerAction, Silenced, Throttled};

    /// Code by code, with the wording each refusal had when the hub still wrote it (the
    /// native wire must not change when the core changes its vocabulary).
    #[test]
    fn every_refusal_has_its_code_and_wording() {
        let room = || "#r".into();
        let nick = || "ann".into();
        let cases: Vec<(Refusal, ErrorCode, &str)> = vec![
            (
                Refusal::BadPassword,
                ErrorCode::BadPassword,
                "this server needs a password; give the right one",
            ),
            (
                Refusal::InvalidNick { nick: nick(), problem: "a nickname cannot be empty".into() },
                ErrorCode::InvalidNick,
                "a nickname cannot be empty",
            ),
            (
                Refusal::NickInUse { nick: nick() },
                ErrorCode::NickInUse,
                "the nickname ann is taken; choose another",
            ),
            (
                Refusal::NickReserved { nick: "NickServ".into() },
                ErrorCode::InvalidNick,
                "the nickname NickServ is reserved for the server and its services; choose another",
            ),
            (Refusal::InvalidRoom { room: room(), problem: "bad".into() }, ErrorCode::InvalidRoom, "bad"),
            (Refusal::NoSuchRoom { room: room() }, ErrorCode::NoSuchRoom, "no room #r; /join #r creates it"),
            (Refusal::NotInRoom { room: room() }, ErrorCode::NotInRoom, "you are not in #r; /join #r first"),
            (Refusal::SecretRoom { room: room() }, ErrorCode::NotInRoom, "you are not in #r"),
            (Refusal::NoSuchNick { nick: nick() }, ErrorCode::NoSuchNick, "ann is not online"),
            (
                Refusal::NoSuchRecipient { nick: nick() },
                ErrorCode::NoSuchNick,
                "ann is not online; /ls lists who is",
            ),
            (
                Refusal::UserNotInRoom { nick: nick(), room: room() },
                ErrorCode::UserNotInRoom,
                "ann is not in #r",
            ),
            (
                Refusal::AlreadyInRoom { nick: nick(), room: room() },
                ErrorCode::AlreadyInRoom,
                "ann is already in #r",
            ),
            (Refusal::EmptyMessage, ErrorCode::EmptyMessage, "message is empty; type some text"),
            (Refusal::EmptyAnnouncement, ErrorCode::EmptyMessage, "wallops is empty; type some text"),
            (
                Refusal::CannotSend { room: room(), why: Silenced::Banned },
                ErrorCode::CannotSend,
                "you are banned from #r: your messages are not delivered",
            ),
            (
                Refusal::CannotSend { room: room(), why: Silenced::Moderated },
                ErrorCode::CannotSend,
                "#r is moderated: only its operators and voiced members may speak",
            ),
            (
                Refusal::InviteOnly { room: room() },
                ErrorCode::InviteOnly,
                "#r is invite-only: ask an operator to invite you",
            ),
            (Refusal::Banned { room: room() }, ErrorCode::Banned, "you are banned from #r"),
            (Refusal::BadKey { room: room() }, ErrorCode::BadKey, "#r needs the right key to join"),
            (Refusal::RoomFull { room: room(), limit: 3 }, ErrorCode::RoomFull, "#r is full (3 members)"),
            (
                Refusal::InvalidKey { room: room() },
                ErrorCode::Other,
                "invalid key: 1 to 23 characters, no spaces or commas",
            ),
            (Refusal::BanListFull { room: room() }, ErrorCode::Other, "ban list of #r is full (100)"),
            (
                Refusal::IgnoreListFull { limit: 256 },
                ErrorCode::Other,
                "you already ignore 256 users, the most there can be; /unignore someone first",
            ),
            (
                Refusal::NotRoomOperator { room: room(), action: RoomAction::SetTopic },
                ErrorCode::NotOperator,
                "the topic of #r is locked: only its operators can change it",
            ),
            (
                Refusal::NotRoomOperator { room: room(), action: RoomAction::ChangeSettings },
                ErrorCode::NotOperator,
                "only an operator of #r can change that",
            ),
            (
                Refusal::NotRoomOperator { room: room(), action: RoomAction::Kick },
                ErrorCode::NotOperator,
                "only an operator of #r can remove people",
            ),
            (
                Refusal::NotRoomOperator { room: room(), action: RoomAction::Invite },
                ErrorCode::NotOperator,
                "#r is invite-only: only its operators can invite",
            ),
            (
                Refusal::NotServerOperator { action: ServerAction::Kill },
                ErrorCode::NotOperator,
                "only server operators can kill",
            ),
            (
                Refusal::NotServerOperator { action: ServerAction::Announce },
                ErrorCode::NotOperator,
                "only server operators can send wallops",
            ),
            (Refusal::NoOperators, ErrorCode::NotOperator, "this server has no operators configured"),
            (Refusal::BadOperatorPassword, ErrorCode::BadPassword, "wrong operator name or password"),
            (
                Refusal::TooManyAttempts { wait_secs: 8, by: Throttled::Address },
                ErrorCode::TooManyAttempts,
                "too many wrong passwords from your address; try again in 8 s",
            ),
            (
                Refusal::TooManyAttempts { wait_secs: 241, by: Throttled::Operator },
                ErrorCode::TooManyAttempts,
                "too many wrong passwords for this operator; try again in 5 min",
            ),
            (Refusal::CannotIgnoreSelf, ErrorCode::InvalidNick, "you cannot ignore yourself"),
            (Refusal::NotIgnoring { nick: nick() }, ErrorCode::NoSuchNick, "you are not ignoring ann"),
            (
                Refusal::NotStored { problem: "disk full".into() },
                ErrorCode::StoreFailed,
                "your message was delivered to those online but not stored (disk full)",
            ),
            (
                Refusal::HistoryUnavailable { problem: "disk full".into() },
                ErrorCode::StoreFailed,
                "history unavailable: disk full",
            ),
            (
                Refusal::LineTooLong { max: 10 },
                ErrorCode::TooLong,
                "line too long: at most 10 bytes per line; it was dropped",
            ),
            (
                Refusal::RateLimited { per_second: 5 },
                ErrorCode::RateLimited,
                "slow down: at most 5 messages per second; this message was not sent; keep flooding and you will be disconnected",
            ),
            (Refusal::NotRegistered, ErrorCode::NotRegistered, "log in first"),
            (
                Refusal::AccountExists { name: nick() },
                ErrorCode::AccountExists,
                "ann is already registered; /login ann PASSWORD if it is yours",
            ),
            (
                Refusal::AlreadyLoggedIn { account: nick() },
                ErrorCode::AlreadyLoggedIn,
                "you are already logged in as ann; /logout first",
            ),
            (Refusal::BadCredentials, ErrorCode::BadCredentials, "wrong account name or password"),
            (
                Refusal::BadToken,
                ErrorCode::BadResumeToken,
                "your saved login is no longer valid (logged out, password changed, or expired); /login NICK PASSWORD again",
            ),
            (
                Refusal::NotLoggedIn,
                ErrorCode::NotLoggedIn,
                "you are not logged in; /login NICK PASSWORD first",
            ),
            (
                Refusal::WeakPassword { problem: natter_core::password::PasswordProblem::TooShort },
                ErrorCode::WeakPassword,
                "the password is too short: use at least 8 characters",
            ),
            (
                Refusal::AccountsBusy,
                ErrorCode::Busy,
                "the server is checking many passwords right now; try again in a few seconds",
            ),
            (
                Refusal::AccountPending,
                ErrorCode::Busy,
                "busy: your previous account request is still being checked; wait for its answer",
            ),
            (
                Refusal::AccountsUnavailable { problem: "disk full".into() },
                ErrorCode::StoreFailed,
                "accounts unavailable: disk full",
            ),
            (
                Refusal::NickRegistered { nick: nick(), account: nick() },
                ErrorCode::NickRegistered,
                "the nickname ann is registered; /login ann PASSWORD if it is yours, or choose another",
            ),
            (
                Refusal::NickRegistered { nick: "аnn".into(), account: nick() },
                ErrorCode::NickRegistered,
                "the nickname аnn looks like the registered nickname ann; choose another",
            ),
            (
                Refusal::MailboxFull { nick: "Bob".into(), messages: 100, bytes: 65536 },
                ErrorCode::MailboxFull,
                "Bob is offline and their mailbox is full (100 messages or 64 KiB wait for them); try again \
                 after they log in",
            ),
            (
                Refusal::TooManyRegistrations { wait_secs: 1800 },
                ErrorCode::TooManyAttempts,
                "too many accounts registered from your address lately; try again in 30 min",
            ),
            (
                Refusal::TooManyAttempts { wait_secs: 3, by: Throttled::Account },
                ErrorCode::TooManyAttempts,
                "too many wrong passwords for this account; try again in 3 s",
            ),
            (
                Refusal::TooManyPending { limit: 4 },
                ErrorCode::Busy,
                "busy: 4 history pages you asked for are still on their way; wait for them, then ask again",
            ),
        ];
        for (refusal, code, wording) in cases {
            assert_eq!(error_code(&refusal), code, "{refusal:?}");
            assert_eq!(refusal.to_string(), wording, "{refusal:?}");
        }
    }
}
