//! The words the core and every front door share: names, front-door kinds, message targets
//! and room changes. Kept apart from commands and events so that both can use them without
//! depending on each other.

use std::sync::Arc;

/// Which front door a session came through; shown in logs and used for defaults (for
/// example the console session is a server operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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

impl SessionKind {
    /// Every kind, in [`SessionKind::index`] order: per-door counters are arrays of this size.
    pub const ALL: [SessionKind; 5] =
        [SessionKind::Native, SessionKind::Text, SessionKind::Udp, SessionKind::Irc, SessionKind::Console];

    /// The door's name in one lowercase word: the user part of a session's ident
    /// (`native@host`) and the `door` label of its metrics.
    pub const fn name(self) -> &'static str {
        match self {
            SessionKind::Native => "native",
            SessionKind::Text => "text",
            SessionKind::Udp => "udp",
            SessionKind::Irc => "irc",
            SessionKind::Console => "console",
        }
    }

    /// This kind's place in [`SessionKind::ALL`] (an exhaustive match: a new door cannot be
    /// forgotten here).
    pub const fn index(self) -> usize {
        match self {
            SessionKind::Native => 0,
            SessionKind::Text => 1,
            SessionKind::Udp => 2,
            SessionKind::Irc => 3,
            SessionKind::Console => 4,
        }
    }
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A room, by name (`#lobby`).
    Room(String),
    /// A user, by nickname.
    Nick(String),
}

/// Shared nick text; cloned into every event that names a user.
pub type Name = Arc<str>;

/// One change to a room's settings or to a member's standing: the protocol-neutral form of
/// IRC channel modes, also reachable from text mode (`/mode`, `/op`, `/ban`) and native frames.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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

/// What a `Certificates` command does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateChange {
    /// Register this fingerprint.
    Add(String),
    /// Unregister this fingerprint.
    Remove(String),
    /// List the fingerprints.
    List,
}
