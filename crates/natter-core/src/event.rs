//! What the hub tells sessions, and the cache that lets each protocol render a shared event
//! only once however many recipients it has.

use crate::refusal::Refusal;
use crate::request::{DoorNote, Req};
use crate::vocab::{Name, RoomChange, SessionKind};
use std::sync::{Arc, OnceLock};

/// A chat message, as delivered live and as kept in history.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// Room, or `None` for a private message.
    pub room: Option<Name>,
    /// Sender's nickname.
    pub from: Name,
    /// Sender's `user@host` (for IRC prefixes); history loaded from the store has the nick's
    /// placeholder.
    pub ident: Name,
    /// The account the sender was logged in to when it sent the message (IRC `account-tag`);
    /// `None` for guests and for history read from the store.
    pub account: Option<Name>,
    /// Recipient of a private message.
    pub to: Option<Name>,
    /// Message text.
    pub text: Box<str>,
    /// True for `/me`.
    pub action: bool,
    /// The sender marked itself as a bot (IRC `bot` tag).
    pub bot: bool,
    /// True for a notice: a message that must never draw an automatic reply (bots, away
    /// answers); IRC shows it as `NOTICE`, text mode marks it.
    pub notice: bool,
    /// Metadata the sender's client attached for other clients (IRC client-only tags:
    /// `+name=value`, escaped, `;`-separated), relayed to recipients that understand it; a
    /// message with metadata and no text is a metadata-only message (a typing notice).
    pub meta: Option<Name>,
    /// Server id, when stored: per room for a room message; for a private message, one
    /// server-wide sequence (increasing within each conversation).
    pub mid: Option<u64>,
    /// Id of a live message that has no stored id (private, ephemeral, tag-only), unique in
    /// this server's lifetime and across restarts; 0 for history.
    pub uid: u64,
    /// Milliseconds since the epoch.
    pub ts: u64,
}

impl ChatMessage {
    /// A server-side id for this message that is unique on the server and stable across
    /// restarts: `<room hash>-<id>` for a stored room message (the same string live and in
    /// history, so a client can page from it), `p<id>` for a stored private message,
    /// `u<hex>` otherwise. [`parse_stable_id`] and [`parse_private_id`] reverse the first two.
    pub fn stable_id(&self) -> String {
        match (&self.room, self.mid) {
            (Some(room), Some(mid)) => room_stable_id(&natter_proto::names::fold(room), mid),
            (None, Some(mid)) => format!("p{mid}"),
            _ => format!("u{:x}", self.uid),
        }
    }
}

/// The stable id of stored message `mid` of the room whose case-folded name is `room_folded`.
pub fn room_stable_id(room_folded: &str, mid: u64) -> String {
    format!("{:08x}-{mid}", room_hash(room_folded))
}

/// The stored id named by a stable id, when it is a stored message of the room whose folded name is
/// `room_folded`; `None` for any other string (a live-only id, another room's id, garbage).
pub fn parse_stable_id(room_folded: &str, msgid: &str) -> Option<u64> {
    let (hash, mid) = msgid.split_once('-')?;
    if hash.len() != 8 || u32::from_str_radix(hash, 16).ok()? != room_hash(room_folded) {
        return None;
    }
    mid.parse().ok().filter(|&m| m > 0)
}

/// The stored id named by the stable id of a stored private message (`p<id>`); `None` for
/// any other string.
pub fn parse_private_id(msgid: &str) -> Option<u64> {
    let digits = msgid.strip_prefix('p')?;
    if digits.starts_with('+') {
        return None;
    }
    digits.parse().ok().filter(|&m| m > 0)
}

/// FNV-1a of a room's folded name, folded to 32 bits: stable across versions and platforms (unlike the
/// std hasher), so stable ids stay valid across restarts and upgrades.
fn room_hash(room_folded: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in room_folded.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

/// A room as listed by `/rooms`.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomSummary {
    /// Room name.
    pub name: Name,
    /// Members online.
    pub members: u32,
    /// Topic, empty when unset.
    pub topic: Name,
    /// True when nothing is stored.
    pub ephemeral: bool,
}

/// A room's settings, as reported to anyone who asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomModes {
    /// Only operators may set the topic.
    pub topic_lock: bool,
    /// Only members may send to the room.
    pub no_external: bool,
    /// Only operators and voiced members may speak.
    pub moderated: bool,
    /// Joining needs an invitation.
    pub invite_only: bool,
    /// Hidden from non-members.
    pub secret: bool,
    /// Key needed to join.
    pub key: Option<Name>,
    /// Most members allowed.
    pub limit: Option<u32>,
}

/// One entry of a room's ban list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanInfo {
    /// The mask.
    pub mask: Name,
    /// Who set it.
    pub by: Name,
    /// When, ms since the epoch.
    pub ts: u64,
}

/// A member as described by a detailed `Who`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Nickname.
    pub nick: Name,
    /// `user@host`.
    pub ident: Name,
    /// Real name, empty when none.
    pub realname: Name,
    /// Room operator (of the room asked about).
    pub op: bool,
    /// Voiced (in the room asked about).
    pub voice: bool,
    /// Away message, when away.
    pub away: Option<Name>,
    /// Server operator (the console).
    pub server_op: bool,
    /// Asked to be hidden from server-wide searches.
    pub hidden: bool,
    /// Shares a room with the asker (or is the asker): being hidden does not hide them then.
    pub shares_room: bool,
    /// The account they are logged in to (IRC WHOX `%a`).
    pub account: Option<Name>,
    /// Seconds since they last sent a message (IRC WHOX `%l`).
    pub idle_secs: u64,
    /// Marked as a bot.
    pub bot: bool,
}

/// Who is on the server, counted as the hub goes (never by walking every session).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Sessions logged in.
    pub users: usize,
    /// Of those, hidden from searches.
    pub hidden: usize,
    /// Of those, server operators.
    pub operators: usize,
    /// Most sessions ever logged in at once since the server started.
    pub peak: usize,
}

/// Someone's standing in one room, for `UserInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomStanding {
    /// Room name.
    pub room: Name,
    /// Room operator.
    pub op: bool,
    /// Voiced.
    pub voice: bool,
}

/// What `Whois` tells about an online user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Nickname.
    pub nick: Name,
    /// `user@host`.
    pub ident: Name,
    /// Real name, empty when none.
    pub realname: Name,
    /// Front door the user came through.
    pub kind: SessionKind,
    /// Rooms the asker may see (secret rooms only when the asker shares them).
    pub rooms: Vec<RoomStanding>,
    /// Away message.
    pub away: Option<Name>,
    /// Logged in at, ms since the epoch.
    pub signon_ts: u64,
    /// Last message sent at (or log-in time), ms since the epoch.
    pub active_ts: u64,
    /// Server operator (the console).
    pub server_op: bool,
    /// The real address behind a cloaked `ident`: given only to server operators and to the
    /// user asking about itself.
    pub real_host: Option<Name>,
    /// Marked as a bot.
    pub bot: bool,
    /// The account the user is logged in as, if any (as registered).
    pub account: Option<Name>,
}

/// A user who has left or changed nickname, for `Whowas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastUser {
    /// The nickname they had.
    pub nick: Name,
    /// `user@host`.
    pub ident: Name,
    /// Real name.
    pub realname: Name,
    /// When they stopped using it, ms since the epoch.
    pub ts: u64,
}

/// What changed about a session's account ([`Event::Account`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    /// The nickname was registered as an account, and the session logged in as it.
    Registered,
    /// The session logged in as the account.
    LoggedIn,
    /// The session logged out of the account.
    LoggedOut,
    /// The account's password was changed.
    PasswordChanged,
}

/// Everything the hub can tell a session. Events that name a request carry its id (`req`).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Logged in as `nick`.
    Welcome {
        /// Echo of the registration's request id.
        req: Req,
        /// The nickname in use.
        nick: Name,
    },
    /// Someone's message.
    Message(Arc<ChatMessage>),
    /// Your message was accepted (and stored, for stored rooms).
    Ack {
        /// Request id.
        req: Req,
        /// Client message id.
        cid: Option<Box<str>>,
        /// The message as everyone else sees it (IRC echo-message renders this).
        message: Arc<ChatMessage>,
        /// True when this cid was already accepted before; nothing was sent again.
        duplicate: bool,
        /// For a private message to someone away: their away message.
        away: Option<Name>,
        /// For a private message to a registered account nobody is logged in to: it was
        /// stored in the account's mailbox, to be delivered at its next login.
        offline: bool,
    },
    /// Someone joined a room.
    Join {
        /// Room.
        room: Name,
        /// Who.
        nick: Name,
        /// Their `user@host`.
        ident: Name,
        /// Their away message when they join while away (IRC away-notify tells it at once).
        away: Option<Name>,
        /// The account they are logged in to, if any (IRC extended-join tells it).
        account: Option<Name>,
        /// Their real name (IRC extended-join tells it).
        realname: Name,
        /// When.
        ts: u64,
    },
    /// Someone left a room.
    Part {
        /// Room.
        room: Name,
        /// Who.
        nick: Name,
        /// Their `user@host`.
        ident: Name,
        /// Why.
        reason: Option<Name>,
        /// When.
        ts: u64,
    },
    /// Someone left the server.
    Quit {
        /// Who.
        nick: Name,
        /// Their `user@host`.
        ident: Name,
        /// Why.
        reason: Option<Name>,
        /// When.
        ts: u64,
    },
    /// Someone changed nickname.
    Nick {
        /// Old nickname.
        old: Name,
        /// New nickname.
        new: Name,
        /// Their `user@host`.
        ident: Name,
        /// When.
        ts: u64,
    },
    /// A room's topic (changed, or asked for).
    Topic {
        /// Request id when this answers a query.
        req: Req,
        /// Room.
        room: Name,
        /// Topic, empty when unset.
        topic: Name,
        /// Who set it.
        by: Option<Name>,
        /// True when this reports a change (false: answer to a query).
        changed: bool,
    },
    /// You joined a room.
    Joined {
        /// Request id.
        req: Req,
        /// Room.
        room: Name,
        /// Topic.
        topic: Name,
        /// Hidden from non-members (IRC `+s`).
        secret: bool,
        /// Who set the topic and when (ms since the epoch; 0 when unknown).
        topic_set: Option<(Name, u64)>,
        /// Members sorted by nick: all of them in a room of up to `HubConfig::presence_limit`
        /// (you included), the first that many in a bigger one (`count` says how many there
        /// are; `Who` pages through the rest).
        members: Vec<Name>,
        /// How many members the room has: more than `members` lists when the room is big.
        count: usize,
        /// Each member's `user@host`, in the order of `members` (IRC `userhost-in-names`).
        idents: Vec<Name>,
        /// Operators.
        operators: Vec<Name>,
        /// Voiced members.
        voiced: Vec<Name>,
        /// True when nothing is stored.
        ephemeral: bool,
        /// Recent messages, oldest first.
        history: Vec<Arc<ChatMessage>>,
        /// The account the joiner is logged in to, if any (IRC extended-join repeats it in
        /// the joiner's own `JOIN`).
        account: Option<Name>,
    },
    /// Answer to `Who`.
    Members {
        /// Request id.
        req: Req,
        /// Room, or `None` for the whole server.
        room: Option<Name>,
        /// Nicknames, sorted: one page of the list (see `Command::Who`).
        nicks: Vec<Name>,
        /// With `detail`: one entry per nick, same order; else empty.
        info: Vec<MemberInfo>,
        /// How many the whole list holds (the room's members, everyone online, or every
        /// match of a search): more than `nicks` when this is one page of several.
        count: usize,
        /// True when the list goes on after this page.
        more: bool,
    },
    /// Answer to `Lookup`: the users asked about who are online, in the order asked.
    Users {
        /// Request id.
        req: Req,
        /// One entry per user found (`op`/`voice` are false: no room was asked about).
        users: Vec<MemberInfo>,
    },
    /// Watched users (`Command::Monitor`): those online, as `nick!user@host`, and those
    /// offline, by nick; in answer to adding them or asking their status, and whenever one
    /// comes online or goes offline. `full`: nicks not added because the list is full (it
    /// holds at most [`crate::limits::MAX_WATCHES`]).
    Watched {
        /// Request id.
        req: Req,
        /// `nick!user@host` of each watched user online.
        online: Vec<Name>,
        /// Nicks of watched users offline.
        offline: Vec<Name>,
        /// Nicks not added: the list is full.
        full: Vec<Name>,
    },
    /// Answer to `Monitor` `List`: the nicks watched, as given.
    WatchList {
        /// Request id.
        req: Req,
        /// The nicks.
        nicks: Vec<Name>,
    },
    /// Someone who shares a room with the session logged in to an account (`account`) or out
    /// of one (`None`): IRC's `account-notify`; other doors show nothing.
    AccountOf {
        /// Their nickname.
        nick: Name,
        /// Their `user@host`.
        ident: Name,
        /// The account, or `None` when they logged out.
        account: Option<Name>,
        /// Told because the session watches them (`Monitor`), not because it shares a room.
        watched: bool,
    },
    /// Someone who shares a room with the session (or the session itself, or someone it
    /// watches) changed their real name: IRC's `setname`; other doors show nothing.
    Realname {
        /// Their nickname.
        nick: Name,
        /// Their `user@host`.
        ident: Name,
        /// The new real name.
        realname: Name,
        /// Told because the session watches them (`Monitor`), not because it shares a room.
        watched: bool,
    },
    /// Answer to `ServerStats`.
    ServerStats {
        /// Request id.
        req: Req,
        /// The counts.
        stats: ServerStats,
    },
    /// Answer to `Rooms`.
    Rooms {
        /// Request id.
        req: Req,
        /// Rooms, sorted by name.
        rooms: Vec<RoomSummary>,
    },
    /// Answer to `History`.
    History {
        /// Request id.
        req: Req,
        /// Room (or the nick asked about, for private conversations, which are not stored).
        room: Name,
        /// Messages, oldest first.
        messages: Vec<Arc<ChatMessage>>,
        /// True when more remain in the direction asked.
        more: bool,
    },
    /// Answer to `ActiveRooms`: rooms with their latest message time, oldest first.
    ActiveRooms {
        /// Request id.
        req: Req,
        /// `(room, latest message time)`.
        rooms: Vec<(Name, u64)>,
    },
    /// Your ignore mode.
    IgnoreMode {
        /// Request id.
        req: Req,
        /// True: room messages are held back.
        on: bool,
    },
    /// Who you ignore.
    Ignoring {
        /// Request id.
        req: Req,
        /// Nicknames.
        nicks: Vec<Name>,
    },
    /// A room's settings or someone's standing changed.
    RoomChanged {
        /// Room.
        room: Name,
        /// Who changed it.
        by: Name,
        /// Their `user@host`.
        ident: Name,
        /// What changed, in order (only changes that took effect).
        changes: Vec<RoomChange>,
        /// When.
        ts: u64,
    },
    /// Answer to `RoomModes`.
    RoomModes {
        /// Request id.
        req: Req,
        /// Room.
        room: Name,
        /// Settings.
        modes: RoomModes,
        /// Creation time, ms since the epoch.
        created_ts: u64,
    },
    /// Answer to `Bans`.
    Bans {
        /// Request id.
        req: Req,
        /// Room.
        room: Name,
        /// Bans, oldest first.
        bans: Vec<BanInfo>,
    },
    /// Someone was removed from a room (sent to its members, the removed one included).
    Kick {
        /// Room.
        room: Name,
        /// Who was removed.
        nick: Name,
        /// Who removed them.
        by: Name,
        /// The remover's `user@host`.
        ident: Name,
        /// Why.
        reason: Option<Name>,
        /// When.
        ts: u64,
    },
    /// An invitation: sent to the invited user, and (with the request id) to the inviter.
    Invite {
        /// Request id (inviter's copy).
        req: Req,
        /// Room.
        room: Name,
        /// Who invites.
        from: Name,
        /// The inviter's `user@host`.
        ident: Name,
        /// Who is invited.
        to: Name,
    },
    /// A server operator's announcement (`Command::Announce`), to those who asked for them.
    Announcement {
        /// The operator's nick.
        from: Name,
        /// Their `user@host`.
        ident: Name,
        /// The announcement.
        text: Name,
    },
    /// Answer to `Invites`: the rooms the session is invited into and has not joined yet.
    Invites {
        /// Request id.
        req: Req,
        /// Rooms, sorted.
        rooms: Vec<Name>,
    },
    /// Someone went away or came back: to the user (with the request id) and their neighbours.
    Away {
        /// Request id (own copy).
        req: Req,
        /// Who.
        nick: Name,
        /// Their `user@host`.
        ident: Name,
        /// Away message; `None`: back.
        text: Option<Name>,
        /// Told because the session watches them (`Monitor`), not because it shares a room:
        /// IRC shows it only with `extended-monitor`.
        watched: bool,
    },
    /// Answer to `Whois`.
    UserInfo {
        /// Request id.
        req: Req,
        /// The user.
        user: Box<UserInfo>,
    },
    /// Answer to `Whowas`.
    Whowas {
        /// Request id.
        req: Req,
        /// Nickname asked about.
        nick: Name,
        /// Newest first; empty when nobody used it recently.
        entries: Vec<PastUser>,
    },
    /// The session's account changed (or its password did): the answer to `Register`,
    /// `Login`, `Logout` and `Passwd`.
    Account {
        /// Request id.
        req: Req,
        /// What happened.
        change: AccountChange,
        /// The account concerned.
        account: Name,
    },
    /// Answer to `Certificates`: the account's fingerprints after the change, and whether the
    /// change was made (`false`: the fingerprint was already registered, to this account or
    /// another, or was not registered to it).
    Certificates {
        /// Request id.
        req: Req,
        /// The account.
        account: Name,
        /// What was asked.
        change: crate::vocab::CertificateChange,
        /// Whether it was done.
        done: bool,
        /// The account's fingerprints now.
        fingerprints: Vec<Name>,
    },
    /// A resume token for the account the session is logged in as: the answer to
    /// `IssueToken`. Its client keeps it to log in again without the password.
    ResumeToken {
        /// Request id.
        req: Req,
        /// The account, as registered.
        account: Name,
        /// The token (shown by `Debug` as `ResumeToken(..)`).
        token: crate::resume::ResumeToken,
    },
    /// The session's nickname is a registered account's and it is not logged in as it: under
    /// nick protection it is renamed unless it logs in within `grace_secs`.
    NickProtected {
        /// The nickname.
        nick: Name,
        /// Seconds left to log in; 0 when the nickname may be kept without logging in (the
        /// server's protection is `optional`: only its owner can reclaim it).
        grace_secs: u64,
    },
    /// A notice from the server.
    Notice {
        /// Request id, when answering one.
        req: Req,
        /// Room concerned.
        room: Option<Name>,
        /// Text.
        text: Name,
    },
    /// A request was refused.
    Error {
        /// Request id.
        req: Req,
        /// What was wrong, and what it concerned.
        refusal: Refusal,
    },
    /// A front door's own output, handed back through the hub to keep its order
    /// (`Command::Echo`); only that door reads it.
    Local(DoorNote),
    /// The server ends this session.
    Bye {
        /// Why.
        reason: Name,
    },
}

/// How many renderings of one event a [`RenderCache`] can hold. The front doors divide the
/// slots among their wire variants (see [`RenderSlot`]); the core only bounds their number.
pub const RENDER_SLOTS: usize = 16;

/// One wire variant's place in a [`RenderCache`], declared by the front door that renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderSlot(u8);

impl RenderSlot {
    /// Slot `index`; fails to compile when used in a `const` beyond [`RENDER_SLOTS`].
    pub const fn new(index: usize) -> Self {
        assert!(index < RENDER_SLOTS, "render slot out of range: raise RENDER_SLOTS");
        Self(index as u8)
    }

    /// Its index in the cache.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// How many of the slots live in the cache itself; the others (the rare variants: IRC
/// `account-tag`) in a box made when one is first used. Every envelope carries the cache, and
/// with all slots inline an envelope would pass its allocator size class (see the test).
const INLINE_SLOTS: usize = 6;

/// Per-event cache of rendered bytes, one slot per wire variant: the first recipient of a
/// variant renders, every other recipient reuses the bytes.
#[derive(Debug, Default)]
pub struct RenderCache {
    slots: [OnceLock<bytes::Bytes>; INLINE_SLOTS],
    more: OnceLock<Box<[OnceLock<bytes::Bytes>; RENDER_SLOTS - INLINE_SLOTS]>>,
}

impl RenderCache {
    /// The bytes for `slot`, when rendered already.
    pub fn get(&self, slot: RenderSlot) -> Option<&bytes::Bytes> {
        match slot.index().checked_sub(INLINE_SLOTS) {
            None => self.slots[slot.index()].get(),
            Some(i) => self.more.get()?[i].get(),
        }
    }

    /// Returns the bytes for `slot`, rendering them with `render` on first use.
    pub fn get_or_render(&self, slot: RenderSlot, render: impl FnOnce() -> bytes::Bytes) -> &bytes::Bytes {
        match slot.index().checked_sub(INLINE_SLOTS) {
            None => self.slots[slot.index()].get_or_init(render),
            Some(i) => self.more.get_or_init(Default::default)[i].get_or_init(render),
        }
    }
}

/// An event on its way to one or many sessions: shared, never copied per recipient.
#[derive(Debug)]
pub struct Envelope {
    /// The event.
    pub event: Event,
    /// Its renderings.
    pub cache: RenderCache,
    /// About how many bytes the event takes on a wire ([`Event::weight`]), counted once so
    /// that outboxes can be bounded in bytes without walking events per recipient.
    pub weight: u32,
}

/// A handle to an [`Envelope`], cheap to clone into many outboxes.
pub type Delivery = Arc<Envelope>;

/// Wraps an event for delivery.
pub fn deliver(event: Event) -> Delivery {
    let weight = event.weight();
    Arc::new(Envelope { event, cache: RenderCache::default(), weight })
}

/// What one entry of a list costs on a wire besides its text: separators, a line's
/// prefix and numeric, a JSON object's keys.
const ENTRY_OVERHEAD: usize = 48;
/// What any event costs besides the text it carries.
const EVENT_OVERHEAD: usize = 64;

fn names_weight<'a>(names: impl IntoIterator<Item = &'a Name>) -> usize {
    names.into_iter().map(|n| n.len() + 4).sum()
}

fn message_weight(m: &ChatMessage) -> usize {
    m.text.len() + m.from.len() + m.ident.len() + m.meta.as_ref().map_or(0, |t| t.len()) + ENTRY_OVERHEAD
}

impl Event {
    /// About how many bytes this event takes on the largest of the wires (a little more than
    /// its text): what a session's outbox counts against its byte budget, so that a slow
    /// reader of big messages is cut as soon as one of many small ones would be. An
    /// estimate, never walked per recipient: computed once when the event is wrapped.
    pub fn weight(&self) -> u32 {
        let bytes = EVENT_OVERHEAD
            + match self {
                Event::Message(m) => message_weight(m),
                // What most wires send back is an id; the sender's own acknowledgements come
                // at its message rate, so counting the text (which IRC's echo-message repeats)
                // would cut a fast typist of long messages, not a slow reader.
                Event::Ack { cid, .. } => cid.as_ref().map_or(0, |c| c.len()),
                Event::Joined { members, idents, history, topic, .. } => {
                    topic.len()
                        + names_weight(members)
                        + names_weight(idents)
                        + history.iter().map(|m| message_weight(m)).sum::<usize>()
                }
                Event::History { messages, .. } => messages.iter().map(|m| message_weight(m)).sum(),
                Event::Members { nicks, info, .. } => {
                    names_weight(nicks)
                        + info
                            .iter()
                            .map(|i| i.ident.len() + i.realname.len() + ENTRY_OVERHEAD)
                            .sum::<usize>()
                }
                Event::Users { users, .. } => users
                    .iter()
                    .map(|i| i.nick.len() + i.ident.len() + i.realname.len() + ENTRY_OVERHEAD)
                    .sum(),
                Event::Rooms { rooms, .. } => {
                    rooms.iter().map(|r| r.name.len() + r.topic.len() + ENTRY_OVERHEAD).sum()
                }
                Event::ActiveRooms { rooms, .. } => rooms.iter().map(|(r, _)| r.len() + ENTRY_OVERHEAD).sum(),
                Event::Ignoring { nicks, .. } | Event::WatchList { nicks, .. } => names_weight(nicks),
                Event::AccountOf { nick, ident, account, .. } => {
                    nick.len() + ident.len() + account.as_ref().map_or(1, |a| a.len())
                }
                Event::Realname { nick, ident, realname, .. } => nick.len() + ident.len() + realname.len(),
                Event::Watched { online, offline, full, .. } => {
                    names_weight(online) + names_weight(offline) + names_weight(full)
                }
                Event::Invites { rooms, .. } => names_weight(rooms),
                Event::Certificates { fingerprints, .. } => names_weight(fingerprints),
                Event::Bans { bans, .. } => {
                    bans.iter().map(|b| b.mask.len() + b.by.len() + ENTRY_OVERHEAD).sum()
                }
                Event::Whowas { entries, .. } => entries
                    .iter()
                    .map(|e| e.nick.len() + e.ident.len() + e.realname.len() + ENTRY_OVERHEAD)
                    .sum(),
                Event::UserInfo { user, .. } => {
                    user.realname.len() + user.rooms.iter().map(|r| r.room.len() + 4).sum::<usize>()
                }
                Event::RoomChanged { changes, .. } => changes.len() * ENTRY_OVERHEAD,
                Event::Topic { topic, .. } => topic.len(),
                Event::Notice { text, .. } | Event::Announcement { text, .. } => text.len(),
                Event::Part { reason, .. } | Event::Quit { reason, .. } | Event::Kick { reason, .. } => {
                    reason.as_ref().map_or(0, |r| r.len())
                }
                Event::Away { text, .. } => text.as_ref().map_or(0, |t| t.len()),
                _ => 0,
            };
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An envelope with its `Arc`'s two counts fits 512 bytes, a size class of the allocators
    /// natter runs on (mimalloc, the system's): past it every event delivered costs the next
    /// class, 640 bytes, and so does every connection's share of a join storm.
    #[test]
    fn an_envelope_fits_its_allocator_size_class() {
        let size = std::mem::size_of::<Envelope>() + 16;
        assert!(size <= 512, "{size}");
    }

    #[test]
    fn every_slot_keeps_its_own_bytes_inline_or_not() {
        let cache = RenderCache::default();
        assert!((0..RENDER_SLOTS).all(|i| cache.get(RenderSlot::new(i)).is_none()));
        for i in 0..RENDER_SLOTS {
            let bytes = cache.get_or_render(RenderSlot::new(i), || bytes::Bytes::from(vec![i as u8]));
            assert_eq!(&bytes[..], &[i as u8]);
        }
        for i in 0..RENDER_SLOTS {
            let again = cache.get_or_render(RenderSlot::new(i), || unreachable!("rendered once"));
            assert_eq!(cache.get(RenderSlot::new(i)), Some(again));
            assert_eq!(&again[..], &[i as u8]);
        }
    }
}
