//! What the hubs of a cluster tell each other, as typed values: the server's cluster codec
//! turns them into bus payloads and back (the core knows no wire format), and carries them
//! over the [`Bus`](crate::bus::Bus).
//!
//! The store is the record and the bus the fast path: a room message travels once it is
//! committed with the id the store gave it, and a hub that misses one (the bus lost it, or it
//! started late) finds the gap in the ids and reads the message back from the store.

use crate::event::ChatMessage;
use crate::vocab::{Name, RoomChange, SessionKind};

/// A hub's place in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// This node's name, unique in the cluster: what the others know its events by.
    pub node: String,
    /// How long a hub waits for a missing room message to arrive over the bus before it reads
    /// it from the store.
    pub gap_wait: std::time::Duration,
    /// How often the node tells the store it is alive.
    pub heartbeat: std::time::Duration,
    /// How long a node may stay silent in the store before the others take it for gone and
    /// show its users as quit.
    pub silence: std::time::Duration,
}

impl ClusterOptions {
    /// A node named `node` with the default timings: a missing message waits 250 ms for the
    /// bus; a heartbeat every 5 s; a node silent for 20 s is gone (its users are shown as quit
    /// within 25 s of its end).
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            gap_wait: std::time::Duration::from_millis(250),
            heartbeat: std::time::Duration::from_secs(5),
            silence: std::time::Duration::from_secs(20),
        }
    }
}

/// One event from one node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NodeEvent {
    /// The node it comes from.
    pub node: String,
    /// What happened there.
    pub event: ClusterEvent,
}

/// What one node tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ClusterEvent {
    /// A room message, committed with its id (or, for an ephemeral room, counted without
    /// being stored).
    RoomMessage(RoomMessage),
    /// A private message to a session of another node.
    Private(PrivateMessage),
    /// A server operator ended a session of another node.
    Kill {
        /// The session's node.
        node: Name,
        /// The session there.
        session: u64,
        /// What everyone is told.
        reason: Box<str>,
    },
    /// An account's owner takes its nickname back from a guest of another node: that node
    /// renames its session.
    Reclaim {
        /// The guest's node.
        node: Name,
        /// The guest's session there.
        session: u64,
        /// The nickname, folded.
        nick: Name,
    },
    /// The sending node is stopping: its sessions quit with this reason.
    Goodbye {
        /// What their neighbours are told.
        reason: Box<str>,
    },
    /// The answer to a `Hello`: the sending node is there (its sessions follow).
    Welcome,
    /// A node started (or lost sight of the others): every node tells it its sessions again.
    Hello,
    /// A session logged in on the sending node (or is told again after a `Hello`).
    SessionUp(RemoteSession),
    /// A session of the sending node left; everyone who shared a room with it is told why.
    SessionDown {
        /// Its id on its node.
        session: u64,
        /// What its neighbours are told.
        reason: Box<str>,
    },
    /// A session of the sending node did something the others must show: the sending node
    /// checked it was allowed, and the others carry it out as it did.
    Act {
        /// Its id on its node.
        session: u64,
        /// What it did.
        act: Act,
    },
}

/// A session of another node, as the others show it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RemoteSession {
    /// Its id on its node.
    pub session: u64,
    /// Its nickname.
    pub nick: Name,
    /// Its `user@host` (cloaked as its node shows it).
    pub ident: Name,
    /// Its real name.
    pub realname: Name,
    /// The door it came through.
    pub kind: SessionKind,
    /// The account it is logged in to.
    pub account: Option<Name>,
    /// Its away message.
    pub away: Option<Name>,
    /// Marked as a bot.
    pub bot: bool,
    /// Its rooms (by name), when told again after a `Hello`.
    pub rooms: Vec<Name>,
    /// A server operator (absent from what older nodes send: not one).
    #[cfg_attr(feature = "serde", serde(default))]
    pub server_op: bool,
}

/// What a session of another node did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Act {
    /// Joined a room.
    Join {
        /// The room's name.
        room: Name,
    },
    /// Left a room.
    Part {
        /// The room's name.
        room: Name,
        /// Its parting words.
        reason: Option<Box<str>>,
    },
    /// Took another nickname.
    Nick {
        /// The new one.
        nick: Name,
    },
    /// Set a room's topic.
    Topic {
        /// The room's name.
        room: Name,
        /// The topic (empty: cleared).
        topic: Box<str>,
    },
    /// Changed a room's settings or standings.
    Mode {
        /// The room's name.
        room: Name,
        /// The changes that took effect there.
        changes: Vec<RoomChange>,
    },
    /// Put someone out of a room.
    Kick {
        /// The room's name.
        room: Name,
        /// Who.
        nick: Name,
        /// Why.
        reason: Option<Box<str>>,
    },
    /// Set or cleared its away message.
    Away {
        /// The message (`None`: back).
        text: Option<Box<str>>,
    },
    /// Logged in to an account, or out (`None`).
    Account {
        /// The account's name.
        account: Option<Name>,
    },
    /// Invited someone into a room.
    Invite {
        /// The room's name.
        room: Name,
        /// Whom.
        nick: Name,
    },
    /// Changed its real name.
    Realname {
        /// The new one.
        realname: Name,
    },
    /// Marked itself a bot, or no longer.
    Bot {
        /// Marked.
        on: bool,
    },
    /// A server operator's announcement to everyone who hears them.
    Announce {
        /// What it says.
        text: Box<str>,
    },
    /// Became a server operator: questions for the operators (`ask_operators`) reach it too.
    Oper,
    /// Asked the server operators a question: they are told when it leaves, though they share
    /// no room with it.
    AskedOperators,
}

/// A private message to a session of another node, told to every node: only that one
/// delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PrivateMessage {
    /// The recipient's node.
    pub to_node: Name,
    /// The recipient's session there.
    pub to_session: u64,
    /// The recipient's nickname as addressed (a session that changed it since does not
    /// receive it: the sender's node gave the id of whoever held that nickname).
    pub to: Name,
    /// The sender's nickname.
    pub from: Name,
    /// The sender's nickname, folded.
    pub from_key: Name,
    /// The sender's `user@host`.
    pub ident: Name,
    /// The sender's account.
    pub account: Option<Name>,
    /// Text.
    pub text: Box<str>,
    /// `/me`.
    pub action: bool,
    /// A notice.
    pub notice: bool,
    /// The sender is a bot.
    pub bot: bool,
    /// Client-only tags.
    pub meta: Option<Name>,
    /// Its unique id.
    pub uid: u64,
    /// Milliseconds since the epoch.
    pub ts: u64,
}

/// A room message as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RoomMessage {
    /// The room's folded name.
    pub room: String,
    /// The room's name as displayed.
    pub room_name: Name,
    /// Its id in the room (from the store).
    pub mid: u64,
    /// Milliseconds since the epoch.
    pub ts: u64,
    /// The sender's nickname.
    pub from: Name,
    /// The sender's nickname, folded (ignore lists hold folded nicks).
    pub from_key: Name,
    /// The sender's `user@host`.
    pub ident: Name,
    /// The sender's account, when logged in.
    pub account: Option<Name>,
    /// Text.
    pub text: Box<str>,
    /// `/me`.
    pub action: bool,
    /// A notice.
    pub notice: bool,
    /// The sender is a bot.
    pub bot: bool,
    /// Kept nowhere (an ephemeral room): a hub that misses it cannot read it back.
    pub ephemeral: bool,
    /// The client id it was sent with, as stored (scoped to the sending client): a client
    /// that moves to another node and resends it is recognised there.
    pub cid: Option<String>,
    /// Client-only tags (IRC `+name=value`), relayed as the sender gave them.
    pub meta: Option<Name>,
}

impl RoomMessage {
    /// What the other nodes are told of `message`, sent to room `room` (folded) by the session
    /// whose folded nick is `from_key`, with id `mid` (0: relayed, not ordered).
    pub fn of(
        message: &ChatMessage,
        room: &str,
        from_key: &Name,
        mid: u64,
        ephemeral: bool,
        cid: Option<String>,
    ) -> Self {
        RoomMessage {
            room: room.to_owned(),
            room_name: message.room.clone().unwrap_or_default(),
            mid,
            ts: message.ts,
            from: message.from.clone(),
            from_key: from_key.clone(),
            ident: message.ident.clone(),
            account: message.account.clone(),
            text: message.text.clone(),
            action: message.action,
            notice: message.notice,
            bot: message.bot,
            ephemeral,
            cid,
            meta: message.meta.clone(),
        }
    }

    /// The message as this node's sessions receive it; `uid` is its live id when it has no
    /// stored one (ephemeral or relayed).
    pub fn into_chat(self, uid: u64) -> ChatMessage {
        let stored = !self.ephemeral && self.mid != 0;
        ChatMessage {
            room: Some(self.room_name),
            from: self.from,
            ident: self.ident,
            account: self.account,
            to: None,
            text: self.text,
            action: self.action,
            bot: self.bot,
            notice: self.notice,
            meta: self.meta,
            mid: stored.then_some(self.mid),
            uid: if stored { 0 } else { uid },
            ts: self.ts,
        }
    }
}
