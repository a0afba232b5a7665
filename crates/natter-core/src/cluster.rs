//! What the hubs of a cluster tell each other, as typed values: the server's cluster codec
//! turns them into bus payloads and back (the core knows no wire format), and carries them
//! over the [`Bus`](crate::bus::Bus).
//!
//! The store is the record and the bus the fast path: a room message travels once it is
//! committed with the id the store gave it, and a hub that misses one (the bus lost it, or it
//! started late) finds the gap in the ids and reads the message back from the store.

use crate::vocab::Name;

/// A hub's place in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// This node's name, unique in the cluster: what the others know its events by.
    pub node: String,
    /// How long a hub waits for a missing room message to arrive over the bus before it reads
    /// it from the store.
    pub gap_wait: std::time::Duration,
}

impl ClusterOptions {
    /// A node named `node`, with the default wait for a missing message.
    pub fn new(node: impl Into<String>) -> Self {
        Self { node: node.into(), gap_wait: std::time::Duration::from_millis(250) }
    }
}

/// One event from one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    /// The node it comes from.
    pub node: String,
    /// What happened there.
    pub event: ClusterEvent,
}

/// What one node tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// A room message, committed with its id (or, for an ephemeral room, counted without
    /// being stored).
    RoomMessage(RoomMessage),
}

/// A room message as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
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
