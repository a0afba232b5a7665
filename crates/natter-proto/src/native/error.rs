//! Errors: the stable codes sent back to clients, and why a line is not a client frame.

use serde::{Deserialize, Serialize};

use super::RequestId;

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
    /// Too many requests of this kind waiting for their answers; wait for them first.
    Busy,
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
    /// Over UDP: a datagram without this session's token (from `welcome`), or with another;
    /// it was ignored. Sent at most once per few seconds.
    BadToken,
    /// Too many wrong passwords from your address (or for that operator): wait the time the
    /// message gives before trying again.
    TooManyAttempts,
    /// Registering a name that is already an account.
    AccountExists,
    /// Logging in (or registering) while logged in: `logout` first.
    AlreadyLoggedIn,
    /// Wrong account name or password (one code for both).
    BadCredentials,
    /// A `hello` with `resume` whose token logs in to nothing (logged out, password changed,
    /// account deleted, unused for 90 days, or never issued): log in with the password.
    BadResumeToken,
    /// The request needs you to be logged in to an account.
    NotLoggedIn,
    /// A new password breaks the rules (8 characters to 256 bytes).
    WeakPassword,
    /// The nickname is a registered account's, or looks like one, and you are not logged in
    /// as it.
    NickRegistered,
    /// A private message to a registered account nobody is logged in to, whose mailbox is
    /// full: try again after its owner logged in.
    MailboxFull,
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
            ErrorCode::Busy => "busy",
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
            ErrorCode::BadToken => "bad_token",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::AccountExists => "account_exists",
            ErrorCode::AlreadyLoggedIn => "already_logged_in",
            ErrorCode::BadCredentials => "bad_credentials",
            ErrorCode::BadResumeToken => "bad_resume_token",
            ErrorCode::NotLoggedIn => "not_logged_in",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::NickRegistered => "nick_registered",
            ErrorCode::MailboxFull => "mailbox_full",
            ErrorCode::Other => "other",
        }
    }
}

/// Why a line could not be turned into a [`ClientFrame`](super::ClientFrame).
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
