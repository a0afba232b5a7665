//! The hub's limits: the same for every front door (IRC only announces them), so that what
//! one client sets is whole for all.

/// Longest away message kept, in bytes (IRC `AWAYLEN`, which counts octets).
pub const MAX_AWAY_BYTES: usize = 200;
/// Longest topic kept, in bytes: one limit for every front door (IRC announces it as
/// `TOPICLEN`), so that a topic set by one client is whole for all.
pub const MAX_TOPIC_BYTES: usize = 390;
/// Longest kick reason kept, in bytes (IRC `KICKLEN`).
pub const MAX_KICK_BYTES: usize = 390;
/// Most bans per room.
pub const MAX_BANS: usize = 100;
/// Longest room key (password), in characters.
pub const MAX_KEY_CHARS: usize = 23;
/// Nicknames remembered for `Whowas`.
pub(crate) const WHOWAS_KEEP: usize = 1024;
/// Pending invitations kept per session.
pub(crate) const MAX_INVITES: usize = 64;
/// Most deliveries held behind history pages before the session counts as too slow (a
/// client that floods history requests must not make the hub hold without bound).
pub(crate) const MAX_HELD: usize = 4096;
