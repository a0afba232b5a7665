//! The storage boundary: what the core needs from a store, and nothing about how it stores.
//!
//! Methods are blocking: the core calls [`Store::commit`] from its own group-commit thread and
//! the read methods from tokio's blocking pool, so a store never runs on the async hot path.
//! SQLite (embedded, the default) and PostgreSQL (clusters) implement it in `natter-store`.

pub use crate::resume::{TokenDigest, TokenRecord};

/// A stored chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The room's case-folded name (see `natter_proto::names::fold`).
    pub room: String,
    /// Server id, increasing per room.
    pub mid: u64,
    /// Milliseconds since the epoch.
    pub ts: u64,
    /// Sender's nickname when sent.
    pub nick: String,
    /// Case-folded sender nick.
    pub sender_key: String,
    /// Client message id scoped to the client that sent it (`digest:cid`, the digest standing
    /// for the client's secret), so that a resend after a restart is recognised as that
    /// client's alone; `None` when there was no id or no client secret to scope it by.
    pub cid: Option<String>,
    /// Text.
    pub text: String,
    /// True for `/me`.
    pub action: bool,
    /// True for a notice.
    pub notice: bool,
}

/// A room's durable settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// The case-folded room name: rooms are identified by it (the room's password, when it
    /// has one, is its `key` mode instead).
    pub folded: String,
    /// Room name as displayed (first creator's spelling).
    pub name: String,
    /// Topic, empty when unset.
    pub topic: String,
    /// Who set the topic.
    pub topic_by: Option<String>,
    /// True: store no messages for this room.
    pub ephemeral: bool,
    /// Creation time, ms since the epoch.
    pub created_ts: u64,
    /// Who runs the room and its settings, kept across restarts and reconnects.
    pub rules: RoomRules,
}

/// What a room keeps about who runs it: without it, a restart (or its operators reconnecting)
/// would leave a room nobody but a server operator can moderate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomRules {
    /// Who is operator of the room when they join (its founder first): a folded nickname
    /// (for operators who were not logged in: whoever holds the nick holds the standing,
    /// unless the nick is a registered account's), or `~` and a folded account name (for
    /// operators logged in to an account: the account holds it, under any nickname).
    pub operators: Vec<String>,
    /// The folded name of the registered account that created the room, when it was created
    /// by someone logged in.
    pub founder: Option<String>,
    /// Its settings.
    pub modes: crate::event::RoomModes,
    /// Its bans, oldest first.
    pub bans: Vec<crate::event::BanInfo>,
}

/// One write of a group commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Append a message. Stores keep what they are given: resent client ids are recognised by
    /// the hub (over a window of recent messages, reloaded at startup), not by an index over all
    /// of history, which would make every write slower as history grows.
    Message(StoredMessage),
    /// Create or update a room.
    Room(RoomRecord),
    /// Forget the room with this folded name, if it has no stored message (the hub forgets
    /// rooms that were made and left without anything worth keeping).
    ForgetRoom(String),
    /// Append a private message (to someone logged in to an account, or from someone who is,
    /// or to an account nobody is logged in to: then it waits in that account's mailbox).
    Private(StoredPrivate),
    /// The messages waiting in `to_key`'s mailbox up to id `upto` (included) were delivered:
    /// they are never delivered again, also after a restart.
    Delivered {
        /// The recipient's party key (see [`StoredPrivate::to_key`]).
        to_key: String,
        /// The last id delivered.
        upto: u64,
    },
    /// Take the next message id of the room with this folded name and store nothing: a
    /// message to an ephemeral room in a cluster, ordered among the room's messages like any
    /// other but kept nowhere. Only [`Store::commit_numbered`] gives it a meaning; a plain
    /// commit ignores it.
    CountOnly(String),
}

/// A stored private message. Its two parties are named by their party keys: `~` and the
/// folded account name for someone logged in to an account (the account, under any nickname,
/// is the party), else the folded nickname (a guest: whoever holds the nick). A conversation
/// is the pair of keys, whichever way the message went ([`conversation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPrivate {
    /// Server id: one increasing sequence for every private message on the server, so ids
    /// increase within each conversation and page like a room's (with gaps).
    pub mid: u64,
    /// Milliseconds since the epoch.
    pub ts: u64,
    /// The sender's party key.
    pub from_key: String,
    /// The sender's nickname when sent.
    pub nick: String,
    /// The recipient's party key.
    pub to_key: String,
    /// The recipient's nickname as the sender addressed it.
    pub to_nick: String,
    /// Text.
    pub text: String,
    /// True for `/me`.
    pub action: bool,
    /// True for a notice.
    pub notice: bool,
    /// True while it waits in the recipient's mailbox (sent while no session was logged in
    /// to the recipient's account), until a [`Write::Delivered`] covers it.
    pub undelivered: bool,
}

/// The party key of someone logged in to the account whose folded name is `folded_account`.
pub fn account_key(folded_account: &str) -> String {
    format!("~{folded_account}")
}

/// The stored key of the conversation between two parties: the pair of their keys, lower
/// first, so that both directions are one conversation.
pub fn conversation<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    if a <= b { (a, b) } else { (b, a) }
}

/// A private conversation with recent messages ([`Store::private_targets`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateTarget {
    /// The other party's key.
    pub other_key: String,
    /// The other party's nickname in the latest message.
    pub nick: String,
    /// The latest message's time (ms).
    pub ts: u64,
}

/// How much waits in one account's mailbox: the hub caps both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSize {
    /// The recipient's party key.
    pub to_key: String,
    /// Messages waiting.
    pub count: u32,
    /// Bytes of their text.
    pub bytes: u64,
}

/// A page query, as in the native `history` frame and IRCv3 `CHATHISTORY`: bounds by id
/// and by time (all exclusive, all optional, combined), and which end of the matching
/// messages the page takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only ids below.
    pub before: Option<u64>,
    /// Only ids above.
    pub after: Option<u64>,
    /// Only messages sent before this time (ms since the epoch).
    pub before_ts: Option<u64>,
    /// Only messages sent after this time (ms since the epoch).
    pub after_ts: Option<u64>,
    /// At most this many.
    pub limit: u32,
    /// Take the oldest matching messages. Without it the page is the newest ones, except
    /// when only lower bounds (`after`, `after_ts`) are given: then it pages forwards.
    pub oldest: bool,
}

impl HistoryQuery {
    /// True when the page is taken from the oldest end of the matching messages.
    pub fn forwards(&self) -> bool {
        self.oldest
            || ((self.after.is_some() || self.after_ts.is_some())
                && self.before.is_none()
                && self.before_ts.is_none())
    }

    /// Whether a message with this id and time is within the bounds.
    pub fn admits(&self, mid: u64, ts: u64) -> bool {
        self.before.is_none_or(|b| mid < b)
            && self.after.is_none_or(|a| mid > a)
            && self.before_ts.is_none_or(|b| ts < b)
            && self.after_ts.is_none_or(|a| ts > a)
    }
}

/// A stored room with what the hub needs at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRoom {
    /// Settings.
    pub record: RoomRecord,
    /// Highest message id used so far (0 for none).
    pub last_mid: u64,
    /// The latest messages, oldest first, for replay on join.
    pub recent: Vec<StoredMessage>,
}

/// A registered account: a name someone owns, with the argon2id hash of its password.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The name case-folded (`natter_proto::names::fold`): accounts are identified by it, so
    /// `Alice` and `alice` are one account.
    pub folded: String,
    /// The name as registered (its owner's spelling).
    pub name: String,
    /// The password's argon2id hash as a PHC string (`$argon2id$v=19$m=...`): salt and
    /// parameters travel with the hash, so parameters can be raised later without breaking
    /// older accounts.
    pub hash: String,
    /// When it was registered, ms since the epoch.
    pub created_ts: u64,
    /// When its owner last logged in, ms since the epoch (`None`: never).
    pub last_login_ts: Option<u64>,
    /// The SCRAM-SHA-256 credential of the same password, in its stored form
    /// ([`crate::scram::ScramCredential::to_stored`]); `None` for an account made before SCRAM,
    /// until its owner next logs in with the password.
    pub scram: Option<String>,
}

impl std::fmt::Debug for AccountRecord {
    // The hash is kept out of logs and test output: it is what an offline guesser needs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRecord")
            .field("folded", &self.folded)
            .field("name", &self.name)
            .field("created_ts", &self.created_ts)
            .field("last_login_ts", &self.last_login_ts)
            .finish_non_exhaustive()
    }
}

/// Which of a room's latest messages a start reads ([`Store::load_each_within`]): at most
/// `messages`, and none sent more than `ms` before the room's newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadWindow {
    /// At most this many messages a room.
    pub messages: usize,
    /// None older than this many milliseconds before the room's newest message.
    pub ms: u64,
}

impl LoadWindow {
    /// Drops from `recent` (oldest first) what is outside the window.
    pub fn trim(&self, recent: &mut Vec<StoredMessage>) {
        let Some(newest) = recent.last().map(|m| m.ts) else { return };
        let keep_from = recent.len().saturating_sub(self.messages);
        let in_time =
            recent.iter().position(|m| m.ts.saturating_add(self.ms) >= newest).unwrap_or(recent.len());
        recent.drain(..keep_from.max(in_time));
    }
}

/// A storage failure, with what the operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("cannot open the store at {path}: {reason}")]
    Open {
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
    /// A read or write failed.
    #[error("store operation failed: {0}")]
    Io(String),
}

/// A message store. Implementations must be safe to call from several threads.
pub trait Store: Send + Sync + 'static {
    /// Hands every room, with its last id and its `recent` latest messages, to `room`, one at
    /// a time: a server with many rooms starts holding one room's messages at a time, not
    /// every room's at once.
    fn load_each(&self, recent: usize, room: &mut dyn FnMut(LoadedRoom)) -> Result<(), StoreError>;

    /// Like [`Store::load_each`], with only the latest messages within `window` of each
    /// room's newest: what a starting server needs to recognise a message resent across its
    /// restart. A room's replay is read when the room is first joined, so a start reads
    /// little of a big database, and holds none of the rooms nobody joins. Stores should
    /// stop reading a room at the window's edge rather than read `window.messages` and trim.
    fn load_each_within(
        &self,
        window: LoadWindow,
        room: &mut dyn FnMut(LoadedRoom),
    ) -> Result<(), StoreError> {
        self.load_each(window.messages, &mut |mut loaded| {
            window.trim(&mut loaded.recent);
            room(loaded);
        })
    }

    /// Every room at once (see [`Store::load_each`]), for tests and tools.
    fn load(&self, recent: usize) -> Result<Vec<LoadedRoom>, StoreError> {
        let mut rooms = Vec::new();
        self.load_each(recent, &mut |room| rooms.push(room))?;
        Ok(rooms)
    }

    /// Applies a batch of writes in one transaction, all or nothing. When this returns `Ok`,
    /// the writes are durable against a crash of the process.
    fn commit(&self, batch: &[Write]) -> Result<(), StoreError>;

    /// Like [`Store::commit`], and numbers messages in the same transaction, so that several
    /// nodes sharing the store agree on one gap-free order per room: every [`Write::Message`]
    /// whose `mid` is 0 gets its room's next id, every [`Write::CountOnly`] takes one, and
    /// every [`Write::Private`] whose `mid` is 0 gets the next id of the one private sequence.
    /// Writes with an id keep it (and the room's counter moves past it). Returns the ids, one
    /// per `Message`, `CountOnly` and `Private` write, in the batch's order.
    ///
    /// Only a store that several nodes can share implements it (PostgreSQL); the default
    /// refuses, and a cluster refuses to start on such a store.
    fn commit_numbered(&self, _batch: &[Write]) -> Result<Vec<u64>, StoreError> {
        Err(not_shared())
    }

    /// Claims the folded nickname `folded` for session `session` of node `node`: `true` when
    /// it is now (or already was) that session's, `false` when another session holds it. The
    /// database decides a race between two nodes, so nicknames are unique across a cluster.
    fn claim_nick(&self, _folded: &str, _node: &str, _session: u64) -> Result<bool, StoreError> {
        Err(not_shared())
    }

    /// Gives up a claim of [`Store::claim_nick`]; nothing when that session does not hold it.
    fn release_nick(&self, _folded: &str, _node: &str, _session: u64) -> Result<(), StoreError> {
        Err(not_shared())
    }

    /// Notes that node `node` is alive at `now` (ms since the epoch): each node calls it
    /// every few seconds.
    fn heartbeat(&self, _node: &str, _now: u64) -> Result<(), StoreError> {
        Err(not_shared())
    }

    /// The nodes whose last heartbeat is older than `seen_before` (ms): the living take over
    /// their sessions' departure (their users quit, their nicknames are freed).
    fn silent_nodes(&self, _seen_before: u64) -> Result<Vec<String>, StoreError> {
        Err(not_shared())
    }

    /// Forgets a node: its heartbeat and every nickname its sessions claimed. A node calls it
    /// for itself when it starts (its sessions of before are gone) and for a node found
    /// silent.
    fn forget_node(&self, _node: &str) -> Result<(), StoreError> {
        Err(not_shared())
    }

    /// Returns one page of a room's messages, oldest first, and whether more remain beyond it
    /// (newer ones when the page was taken forwards, see [`HistoryQuery::forwards`]; older
    /// ones otherwise).
    /// `room` is the room's folded name.
    fn history(&self, room: &str, query: HistoryQuery) -> Result<(Vec<StoredMessage>, bool), StoreError>;

    /// The account whose folded name is `folded`, if registered. Read at every login (not
    /// cached), so that an account added, changed or deleted by `natter user` while the server
    /// runs takes effect at the next login.
    ///
    /// The account methods have defaults for stores that keep no accounts (test doubles): no
    /// account exists, and writing one fails.
    fn account(&self, _folded: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(None)
    }

    /// Every account, ordered by folded name (`natter user list`, and the hub's table of
    /// registered nicks at start).
    fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        Ok(Vec::new())
    }

    /// Registers an account; `false` (and nothing written) when its folded name is taken.
    fn create_account(&self, _account: &AccountRecord) -> Result<bool, StoreError> {
        Err(no_accounts())
    }

    /// Replaces an account's password hash and SCRAM credential (both derived from the new
    /// password); `false` when there is no such account.
    fn set_account_hash(&self, _folded: &str, _hash: &str, _scram: Option<&str>) -> Result<bool, StoreError> {
        Err(no_accounts())
    }

    /// Sets the SCRAM credential of an account made before SCRAM (derived at its owner's next
    /// password login); `false` when there is no such account.
    fn set_account_scram(&self, _folded: &str, _scram: &str) -> Result<bool, StoreError> {
        Err(no_accounts())
    }

    /// The account a TLS client certificate (its SHA-256 fingerprint, in `natter_proto::fingerprint`'s `AA:BB:...` form) is
    /// registered to, for SASL EXTERNAL.
    fn account_by_certificate(&self, _fingerprint: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(None)
    }

    /// Registers a client certificate's fingerprint to an account; `false` when it is already
    /// registered (to this or another account) or the account does not exist.
    fn add_certificate(&self, _folded: &str, _fingerprint: &str, _ts: u64) -> Result<bool, StoreError> {
        Err(no_accounts())
    }

    /// Unregisters a fingerprint from an account; `false` when it was not registered to it.
    fn remove_certificate(&self, _folded: &str, _fingerprint: &str) -> Result<bool, StoreError> {
        Err(no_accounts())
    }

    /// The fingerprints registered to an account, in the order added.
    fn certificates(&self, _folded: &str) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// Records a login of the account at `ts` (ms); nothing when there is no such account.
    fn touch_account(&self, _folded: &str, _ts: u64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Deletes an account, with its resume tokens and its private messages (its mailbox and its
    /// conversations), so that whoever registers the name next cannot read them; `false` when
    /// there was none.
    fn delete_account(&self, _folded: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Keeps a new resume token (`crate::resume`), dropping in the same transaction every
    /// token unused since `expired_before` (ms) and this account's least recently used ones
    /// beyond `keep`.
    fn add_resume_token(
        &self,
        _token: &TokenRecord,
        _keep: usize,
        _expired_before: u64,
    ) -> Result<(), StoreError> {
        Err(no_accounts())
    }

    /// The account a resume token logs in to, when the token is kept, was used since
    /// `expired_before` (ms) and its account still exists; notes `now` as its last use. An
    /// expired token is deleted.
    fn use_resume_token(
        &self,
        _digest: &TokenDigest,
        _now: u64,
        _expired_before: u64,
    ) -> Result<Option<AccountRecord>, StoreError> {
        Ok(None)
    }

    /// Deletes one resume token (logging out); `false` when it was not kept.
    fn revoke_resume_token(&self, _digest: &TokenDigest) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Deletes every resume token of an account (its password changed); how many there were.
    fn revoke_resume_tokens(&self, _folded: &str) -> Result<usize, StoreError> {
        Ok(0)
    }

    /// A number that changes when another process (`natter user`) has written the store:
    /// the hub then reads its table of registered names again. `0` for stores that no other
    /// process writes.
    fn outside_writes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// The highest private message id used so far (0 for none): the hub goes on from it.
    ///
    /// The private message methods have defaults for stores that keep none (test doubles):
    /// nothing is stored, so nothing is found.
    fn last_private_mid(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Every mailbox that holds undelivered messages, with its size (read at start, so that
    /// the hub knows whom to deliver to at login and can cap each mailbox).
    fn mailboxes(&self) -> Result<Vec<MailboxSize>, StoreError> {
        Ok(Vec::new())
    }

    /// The oldest `limit` undelivered messages of `to_key`'s mailbox, oldest first.
    fn mailbox(&self, _to_key: &str, _limit: u32) -> Result<Vec<StoredPrivate>, StoreError> {
        Ok(Vec::new())
    }

    /// One page of the conversation between parties `a` and `b` (either order), like
    /// [`Store::history`] for a room.
    fn private_history(
        &self,
        _a: &str,
        _b: &str,
        _query: HistoryQuery,
    ) -> Result<(Vec<StoredPrivate>, bool), StoreError> {
        Ok((Vec::new(), false))
    }

    /// The conversations of party `party` with a message sent between `after_ts` and
    /// `before_ts` (exclusive): the other party, its nickname in the latest such message, and
    /// that message's time; the `limit` whose latest message is oldest, ordered by that time
    /// (IRC `CHATHISTORY TARGETS`).
    fn private_targets(
        &self,
        _party: &str,
        _after_ts: u64,
        _before_ts: u64,
        _limit: u32,
    ) -> Result<Vec<PrivateTarget>, StoreError> {
        Ok(Vec::new())
    }

    /// Deletes at most `max_rows` room and private messages sent before `before_ts` (ms), and
    /// returns how many it deleted: retention (`history_days`) runs it in small batches on the
    /// commit thread, between commits, so that a big first prune never stalls them. Messages
    /// are taken oldest first in each room (and in the private sequence), stopping at the
    /// first one that is recent enough.
    fn prune(&self, _before_ts: u64, _max_rows: u32) -> Result<u32, StoreError> {
        Ok(0)
    }

    /// Flushes and releases the store at shutdown.
    fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Writes something small and durable and says whether the store took it: readiness
    /// checks (`/readyz`) call it from the commit thread when no commit has succeeded lately.
    /// It must cost a fixed, small amount whatever the database holds (no table scan). The
    /// default, for stores with nothing to check, succeeds.
    fn probe(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// What a store that only one server uses answers to the cluster's methods.
fn not_shared() -> StoreError {
    StoreError::Io("this store cannot be shared by a cluster of nodes: use PostgreSQL".into())
}

/// What a store without accounts answers to a write of one.
fn no_accounts() -> StoreError {
    StoreError::Io("this store keeps no accounts".into())
}
