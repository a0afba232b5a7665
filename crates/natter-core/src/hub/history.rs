//! History: pages of a room's stored messages, or of a private conversation of someone
//! logged in to an account, read from the store on the blocking pool so that the hub never
//! waits on the disk.
//!
//! A page still comes in the order of the session's requests: while it is being read,
//! whatever else the session is sent waits behind it ([`Held`]), and the page takes its place
//! in the line when it comes back to the hub.
//!
//! The replay of a room's first join since the start is read the same way: rooms are not read
//! at start, so a big database costs a start little time and memory, and a room nobody joins
//! costs none.

use super::delivery::TOO_SLOW;
use super::state::HeldItem;
use super::{Hub, SessionId, private_to_chat, stored_to_chat};
use crate::event::ChatMessage;
use crate::event::{Event, deliver};
use crate::limits::MAX_REPLAY_BYTES;
use crate::limits::{MAX_PAGE_BYTES, MAX_PAGE_READS, MAX_PAGES_PER_SESSION};
use crate::outbox::Piece;
use crate::refusal::Refusal;
use crate::request::Req;
use crate::store::{HistoryQuery, PrivateTarget, StoreError, StoredMessage, StoredPrivate, account_key};
use crate::vocab::Name;
use natter_proto::names::{fold, is_room_name, validate_nick};
use std::sync::Arc;

/// A page read on the blocking pool, on its way back to the hub.
pub(crate) struct HistoryPage {
    session: SessionId,
    ticket: u64,
    answer: Answer,
}

/// What a read brought back.
enum Answer {
    /// A page of history, ready to go.
    Page(Event),
    /// A first joiner's replay: the room's latest stored messages up to `upto`.
    Replay {
        key: String,
        upto: u64,
        count: usize,
        joined: Box<Event>,
        read: Result<Vec<Arc<ChatMessage>>, StoreError>,
    },
    /// An account's mailbox, read at a login (`mailbox.rs`).
    Mail { key: String, read: Result<Vec<StoredPrivate>, StoreError> },
    /// The private conversations to merge into an answer of active rooms.
    Targets { req: Req, rooms: Vec<(Name, u64)>, limit: u32, read: Result<Vec<PrivateTarget>, StoreError> },
}

impl HistoryPage {
    /// The mailbox `key` read for session `session`, whose output waits behind `ticket`.
    pub(super) fn mail(
        session: SessionId,
        ticket: u64,
        key: String,
        read: Result<Vec<StoredPrivate>, StoreError>,
    ) -> Self {
        Self { session, ticket, answer: Answer::Mail { key, read } }
    }
}

/// Whose messages a page is read from.
enum Source {
    /// The room with this folded name.
    Room(String),
    /// The private conversation of the reader (`mine`, a party key: always an account) with
    /// the party `theirs`.
    Private { mine: String, theirs: String },
}

/// A page to read, waiting for a free reader when [`MAX_PAGE_READS`] are busy.
pub(crate) struct PageRead {
    session: SessionId,
    ticket: u64,
    source: Source,
    name: Name,
    query: HistoryQuery,
    what: Wanted,
}

/// Why a page is read.
enum Wanted {
    /// A history request (`around`: centred on its bound).
    Page { around: bool, req: Req },
    /// The replay of a join (see [`Hub::replay_from_store`]): its `Joined` answer, waiting
    /// for its history.
    Replay { upto: u64, count: usize, joined: Box<Event> },
}

impl Hub {
    /// Answers a history request: at once when there is nothing to read, else from the store
    /// on the blocking pool, in its place among the session's answers.
    pub(super) fn history(
        &mut self,
        id: SessionId,
        room: &str,
        mut query: HistoryQuery,
        around: bool,
        req: Req,
    ) {
        if !is_room_name(room) {
            return self.private_history(id, room, query, around, req);
        }
        let Some(key) = self.find_room(id, room, &req) else { return };
        let r = &self.rooms[&key];
        let name = r.name.clone();
        if r.modes.secret && !r.has_member(id) {
            return self.refuse(id, req, Refusal::SecretRoom { room: name });
        }
        if r.ephemeral {
            return self.reply(id, Event::History { req, room: name, messages: Vec::new(), more: false });
        }
        if self.pages_pending(id) >= MAX_PAGES_PER_SESSION {
            // Each page may be big: a client that asks for pages faster than it reads them
            // must not make the server hold them all.
            return self.refuse(id, req, Refusal::TooManyPending { limit: MAX_PAGES_PER_SESSION as u32 });
        }
        query.limit = query.limit.clamp(1, self.config.max_history_page);
        let ticket = self.hold_for_answer(id);
        let source = Source::Room(key);
        let read = PageRead { session: id, ticket, source, name, query, what: Wanted::Page { around, req } };
        self.read_page(read);
    }

    /// A history request with a nickname: the reader's conversation with that nickname's
    /// party, when the reader is logged in to an account (only the two parties can ask for a
    /// conversation, since the reader is always one of them); empty for guests, whose
    /// private messages are not stored.
    fn private_history(
        &mut self,
        id: SessionId,
        nick: &str,
        mut query: HistoryQuery,
        around: bool,
        req: Req,
    ) {
        if let Err(e) = validate_nick(nick) {
            let refusal = Refusal::InvalidNick { nick: nick.into(), problem: e.to_string().into() };
            return self.refuse(id, req, refusal);
        }
        let name = Name::from(nick);
        let Some(account) = self.logged_in.get(&id) else {
            return self.reply(id, Event::History { req, room: name, messages: Vec::new(), more: false });
        };
        let mine = account_key(&fold(account));
        if self.pages_pending(id) >= MAX_PAGES_PER_SESSION {
            return self.refuse(id, req, Refusal::TooManyPending { limit: MAX_PAGES_PER_SESSION as u32 });
        }
        let theirs = self.party_key_of_nick(nick);
        query.limit = query.limit.clamp(1, self.config.max_history_page);
        let ticket = self.hold_for_answer(id);
        let source = Source::Private { mine, theirs };
        self.read_page(PageRead {
            session: id,
            ticket,
            source,
            name,
            query,
            what: Wanted::Page { around, req },
        });
    }

    /// Answers a request for active rooms (`rooms`, already chosen) of a session logged in to
    /// an account once its private conversations active in `(after, before)` are read from
    /// the store, merged in by time (IRC `CHATHISTORY TARGETS` lists both).
    pub(super) fn add_private_targets(
        &mut self,
        id: SessionId,
        rooms: Vec<(Name, u64)>,
        (after_ts, before_ts): (u64, u64),
        limit: u32,
        req: Req,
    ) {
        if self.pages_pending(id) >= MAX_PAGES_PER_SESSION {
            return self.refuse(id, req, Refusal::TooManyPending { limit: MAX_PAGES_PER_SESSION as u32 });
        }
        let party = self.party_key(id);
        let ticket = self.hold_for_answer(id);
        let (store, pages) = (self.store.clone(), self.pages.clone());
        tokio::task::spawn_blocking(move || {
            let read = store.private_targets(&party, after_ts, before_ts, limit);
            let answer = Answer::Targets { req, rooms, limit, read };
            // No receiver: the hub has stopped.
            let _ = pages.send(HistoryPage { session: id, ticket, answer });
        });
    }

    /// Answers the join of a room not read since the start once its latest stored messages
    /// (up to `upto`, at most `count`) are read: meanwhile what the joiner is sent waits
    /// behind its `joined`, which keeps the order a warm room's join has.
    pub(super) fn replay_from_store(
        &mut self,
        id: SessionId,
        key: String,
        upto: u64,
        count: usize,
        joined: Event,
    ) {
        let name = self.rooms[&key].name.clone();
        let query = HistoryQuery {
            before: upto.checked_add(1),
            limit: u32::try_from(count).unwrap_or(u32::MAX),
            ..HistoryQuery::default()
        };
        let ticket = self.hold_for_answer(id);
        let what = Wanted::Replay { upto, count, joined: Box::new(joined) };
        self.read_page(PageRead { session: id, ticket, source: Source::Room(key), name, query, what });
    }

    /// Starts a read, or queues it while every reader is busy.
    fn read_page(&mut self, read: PageRead) {
        if self.page_reads < MAX_PAGE_READS {
            self.start_page_read(read);
        } else {
            // Every reader is busy: the request waits its turn, its place among the answers
            // already held (history pages: at most MAX_PAGES_PER_SESSION per session; replays:
            // one per join, which the command budget paces).
            self.page_queue.push_back(read);
        }
    }

    /// History pages asked for by `id` and not delivered yet.
    fn pages_pending(&self, id: SessionId) -> usize {
        let Some(held) = self.sessions.get(&id).and_then(|s| s.rare()?.held.as_ref()) else { return 0 };
        held.queue.iter().filter(|i| matches!(i, HeldItem::Waiting(_))).count()
    }

    /// Reads a page on the blocking pool; it comes back through [`Hub::on_history_page`].
    fn start_page_read(&mut self, read: PageRead) {
        let PageRead { session, ticket, source, name, query, what } = read;
        self.page_reads += 1;
        let store = self.store.clone();
        let pages = self.pages.clone();
        tokio::task::spawn_blocking(move || {
            let answer = match (what, source) {
                (Wanted::Page { around, req }, Source::Room(key)) => {
                    let read = |q| store.history(&key, q);
                    let to_chat = |m: &StoredMessage| stored_to_chat(m, &name);
                    Answer::Page(read_history(read, to_chat, weigh_room, query, around, name.clone(), req))
                }
                (Wanted::Page { around, req }, Source::Private { mine, theirs }) => {
                    let read = |q| store.private_history(&mine, &theirs, q);
                    Answer::Page(read_history(read, private_to_chat, weigh_private, query, around, name, req))
                }
                (Wanted::Replay { upto, count, joined }, source) => {
                    let Source::Room(key) = source else { unreachable!("only rooms are replayed") };
                    let read = store.history(&key, query).map(|(mut rows, _)| {
                        trim_to_bytes(&mut rows, weigh_room, MAX_REPLAY_BYTES, false);
                        rows.iter().map(|m| Arc::new(stored_to_chat(m, &name))).collect()
                    });
                    Answer::Replay { key, upto, count, joined, read }
                }
            };
            // No receiver: the hub has stopped, and the session with it.
            let _ = pages.send(HistoryPage { session, ticket, answer });
        });
    }

    /// A first join's replay came back: the room takes the stored messages it lacked (once),
    /// and the joiner's `joined` gets its history.
    fn on_replay(
        &mut self,
        key: &str,
        upto: u64,
        count: usize,
        mut joined: Event,
        read: Result<Vec<Arc<ChatMessage>>, StoreError>,
    ) -> Event {
        let keep = self.config.history;
        let since = self.kept_since();
        let history = match (self.rooms.get_mut(key), read) {
            (Some(room), Ok(older)) => {
                room.warm_up(older, keep);
                room.replay(upto, count, since)
            }
            (Some(room), Err(e)) => {
                // The room stays cold (the next join tries again); this joiner gets what was
                // said since the start.
                tracing::warn!(room = %room.name, error = %e, "cannot read the room's latest messages");
                room.replay(upto, count, since)
            }
            (None, Ok(older)) => older,
            (None, Err(_)) => Vec::new(),
        };
        if let Event::Joined { history: replay, .. } = &mut joined {
            *replay = history;
        }
        joined
    }

    /// Starts holding what `id` is sent behind an answer to come (a history page, a replay, a
    /// password check): what is staged for it so far goes first. Returns the answer's ticket.
    pub(super) fn hold_for_answer(&mut self, id: SessionId) -> u64 {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let session = self.sessions.get_mut(&id).expect("caller checked");
        let held = session.rare.get_or_insert_with(Box::default).held.get_or_insert_with(Box::default);
        for range in session.staged.drain(..) {
            held.queue.extend(
                self.log[range.start as usize..range.end as usize].iter().cloned().map(HeldItem::Ready),
            );
        }
        held.queue.push_back(HeldItem::Waiting(ticket));
        ticket
    }

    /// A page came back: it takes its place, and everything ready before the next page still
    /// being read goes to the session.
    pub(super) fn on_history_page(&mut self, page: HistoryPage) {
        let HistoryPage { session: id, ticket, answer } = page;
        let event = match answer {
            Answer::Page(event) => event,
            Answer::Replay { key, upto, count, joined, read } => {
                self.on_replay(&key, upto, count, *joined, read)
            }
            // Mailboxes and conversation lists are read beside the history readers (one a
            // login, which the password check paces; one per request, counted among the
            // session's pending pages), not by them.
            Answer::Mail { key, read } => return self.on_mail(id, ticket, key, read),
            Answer::Targets { req, mut rooms, limit, read } => {
                let event = match read {
                    Ok(targets) => {
                        rooms.extend(targets.into_iter().map(|t| (Name::from(t.nick.as_str()), t.ts)));
                        rooms.sort_by_key(|&(_, ts)| ts);
                        rooms.truncate(limit as usize);
                        Event::ActiveRooms { req, rooms }
                    }
                    Err(e) => Event::Error {
                        req,
                        refusal: Refusal::HistoryUnavailable { problem: e.to_string().into() },
                    },
                };
                return self.answer_held(id, ticket, event);
            }
        };
        self.page_reads -= 1;
        // Pages of sessions that left meanwhile are not read at all.
        while let Some(next) = self.page_queue.pop_front() {
            if self.sessions.contains_key(&next.session) {
                self.start_page_read(next);
                break;
            }
        }
        self.answer_held(id, ticket, event);
    }

    /// An answer the session's output was held behind (see [`Hub::hold_for_answer`]) came:
    /// it takes its place, and everything ready before the next one still awaited goes out.
    pub(super) fn answer_held(&mut self, id: SessionId, ticket: u64, event: Event) {
        self.answer_held_all(id, ticket, vec![event]);
    }

    /// Like [`Hub::answer_held`], with any number of events (none: the place is given up).
    pub(super) fn answer_held_all(&mut self, id: SessionId, ticket: u64, events: Vec<Event>) {
        let Some(session) = self.sessions.get_mut(&id) else { return };
        let Some(rare) = session.rare_mut_if_any() else { return };
        let Some(held) = rare.held.as_mut() else { return };
        if let Some(at) = held.queue.iter().position(|i| matches!(i, HeldItem::Waiting(t) if *t == ticket)) {
            held.queue.remove(at);
            for (i, event) in events.into_iter().enumerate() {
                held.queue.insert(at + i, HeldItem::Ready(deliver(event)));
            }
        }
        let ready = held.release();
        if held.queue.is_empty() {
            rare.held = None;
        }
        if ready.is_empty() {
            return;
        }
        let len = ready.len() as u32;
        if session.outbox.push_pieces(&mut vec![Piece::new(ready.into(), 0..len)]).is_err() {
            self.metrics.disconnected(crate::metrics::Disconnect::SlowReader);
            self.remove_session(id, TOO_SLOW, true);
        }
    }
}

/// Reads one page of history (on the blocking pool) with `read` and makes it the answer.
fn read_history<T>(
    read: impl Fn(HistoryQuery) -> Result<(Vec<T>, bool), StoreError>,
    to_chat: impl Fn(&T) -> ChatMessage,
    weigh: fn(&T) -> usize,
    query: HistoryQuery,
    around: bool,
    name: Name,
    req: Req,
) -> Event {
    let forwards = query.forwards() && !around;
    let page = if around { history_around(&read, query) } else { read(query) };
    match page {
        Ok((mut rows, mut more)) => {
            more |= trim_to_bytes(&mut rows, weigh, MAX_PAGE_BYTES, forwards);
            let messages = rows.iter().map(|m| Arc::new(to_chat(m))).collect();
            Event::History { req, room: name, messages, more }
        }
        Err(e) => {
            Event::Error { req, refusal: Refusal::HistoryUnavailable { problem: e.to_string().into() } }
        }
    }
}

/// What a room message weighs in a page.
fn weigh_room(m: &StoredMessage) -> usize {
    m.text.len() + m.nick.len() + m.sender_key.len() + 64
}

/// What a private message weighs in a page.
fn weigh_private(m: &StoredPrivate) -> usize {
    m.text.len() + m.nick.len() + m.from_key.len() + m.to_nick.len() + 64
}

/// Drops messages from the far end of a page (the oldest of a backward page, the newest of a
/// forward one) until it weighs at most `max_bytes`, always keeping one message. True when
/// some were dropped: the client pages on from the ones it got.
fn trim_to_bytes<T>(rows: &mut Vec<T>, weigh: fn(&T) -> usize, max_bytes: usize, forwards: bool) -> bool {
    let mut total = 0;
    let keep = if forwards {
        rows.iter()
            .take_while(|m| {
                total += weigh(m);
                total <= max_bytes
            })
            .count()
    } else {
        rows.iter()
            .rev()
            .take_while(|m| {
                total += weigh(m);
                total <= max_bytes
            })
            .count()
    }
    .max(1)
    .min(rows.len());
    let dropped = rows.len() - keep;
    if forwards {
        rows.truncate(keep);
    } else {
        rows.drain(..dropped);
    }
    dropped > 0
}

/// A page centred on `query.before` (id) or `query.before_ts` (time), both included: the
/// older half (with the centre) and the newer half, oldest first.
fn history_around<T>(
    read: &impl Fn(HistoryQuery) -> Result<(Vec<T>, bool), StoreError>,
    query: HistoryQuery,
) -> Result<(Vec<T>, bool), StoreError> {
    let newer_count = query.limit / 2;
    let older = HistoryQuery {
        before: query.before.map(|b| b.saturating_add(1)),
        before_ts: query.before_ts.map(|t| t.saturating_add(1)),
        limit: query.limit - newer_count,
        ..HistoryQuery::default()
    };
    let (mut page, more_older) = read(older)?;
    if newer_count > 0 {
        let newer = HistoryQuery {
            after: query.before,
            after_ts: query.before_ts,
            limit: newer_count,
            ..HistoryQuery::default()
        };
        let (rest, more_newer) = read(newer)?;
        page.extend(rest);
        return Ok((page, more_older || more_newer));
    }
    Ok((page, more_older))
}
