//! The hub's limits: the same for every front door (IRC only announces them), so that what
//! one client sets is whole for all.

/// Longest away message kept, in bytes (IRC `AWAYLEN`, which counts octets).
pub const MAX_AWAY_BYTES: usize = 200;
/// Client certificates an account's owner may register for SASL EXTERNAL (`NickServ CERT
/// ADD`): each is a row in the store, so their number is bounded.
pub const MAX_CERTIFICATES: usize = 16;
/// Longest real name a session may change to, in bytes (IRC `SETNAME`).
pub const MAX_REALNAME_BYTES: usize = 200;
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
/// History pages one session may have asked for and not received yet: each may be big, so a
/// client asking faster than it reads is refused rather than making the server hold them.
pub(crate) const MAX_PAGES_PER_SESSION: usize = 4;
/// History pages read from the store at once, for all sessions together; more wait their turn.
pub(crate) const MAX_PAGE_READS: usize = 8;
/// Most bytes of messages in one history page: a page of the longest messages is cut short
/// (and says more remain) instead of holding megabytes per request.
pub(crate) const MAX_PAGE_BYTES: usize = 256 * 1024;
/// Most bytes of messages replayed when joining a room: the newest that fit; the rest is a
/// history request away.
pub(crate) const MAX_REPLAY_BYTES: usize = 64 * 1024;
/// Users one session may ignore: each `ignore` answers with the whole list, so the list must
/// stay short enough to send (IRC servers cap their SILENCE lists the same way).
pub(crate) const MAX_IGNORES: usize = 256;
/// Nicks one session may watch (IRC `MONITOR`, advertised as `MONITOR=100`): each costs a
/// little memory and a lookup when that nick comes or goes.
pub const MAX_WATCHES: usize = 100;
/// Most nicks in one page of `who` (and its default): a room or server of tens of thousands
/// is listed a page at a time, each page costing its size, however big the server.
pub const MAX_WHO_PAGE: u32 = 1000;
/// Most messages waiting in one account's mailbox (sent while nobody was logged in to it):
/// all of them are delivered at once at the next login, so the cap is also that login's bound.
pub const MAX_MAILBOX_MESSAGES: u32 = 100;
/// Most bytes of text waiting in one account's mailbox.
pub const MAX_MAILBOX_BYTES: u32 = 64 * 1024;
