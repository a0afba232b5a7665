//! The hub in a cluster: room messages numbered by the shared store and delivered in that
//! order on every node.
//!
//! A room message sent here is committed first, and the store gives it the room's next id in
//! the same transaction. Then it is acknowledged to its sender, told to the other nodes over
//! the bus, and delivered here in id order. Messages from other nodes come in over the bus and
//! join the same order. When an id is missing (the bus lost it, or it is late), what came after
//! it waits up to [`ClusterOptions::gap_wait`]; then the hub reads the missing messages from
//! the store. What the store does not have (an ephemeral room's messages, which are counted
//! but kept nowhere) is given up, and delivery goes on.

use super::cids::{CidTarget, Scope};
use super::messages::{Said, Sent};
use super::{Hub, PendingMessage, SessionId};
use crate::cluster::{ClusterEvent, ClusterOptions, NodeEvent, RoomMessage};
use crate::event::ChatMessage;
use crate::request::Req;
use crate::store::{HistoryQuery, StoredMessage, Write};
use crate::vocab::Name;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Messages a room may hold back behind a gap; past this, the hub stops waiting and reads the
/// gap from the store at once.
const MAX_WAITING: usize = 4096;
/// Most messages one read of a gap asks the store for.
const REFILL_PAGE: u32 = 500;
/// How long a room stays quiet after a message before the store is asked once whether anything
/// came after: a gap is seen when a later message arrives, and the last messages of a burst
/// that the bus lost have none after them.
const QUIET_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// What a room message sent here needs once the store has given it an id.
pub(crate) struct Numbering {
    /// The room's folded name.
    room: String,
    /// The sender's folded nick.
    sender_key: Name,
    /// Whose client id it carries, and the id as stored.
    scope: Scope,
    stored_cid: Option<String>,
    /// Counted, not stored.
    ephemeral: bool,
}

/// A message waiting for its turn in a room's order.
struct Queued {
    message: Arc<ChatMessage>,
    /// The local sender (not delivered back to it), if it was sent here.
    sender: Option<SessionId>,
    sender_key: Name,
}

/// One room's place in the cluster-wide order, on this node.
#[derive(Default)]
struct Sequence {
    /// The highest id delivered here; everything before it was delivered or given up.
    /// `None` while the room's last id is being read from the store (a room that appeared
    /// here after the start, perhaps with a history made on other nodes): messages wait
    /// until then, and those the read covers are left to joiners' replays.
    delivered: Option<u64>,
    /// Messages that arrived ahead of a gap, by id.
    waiting: BTreeMap<u64, Queued>,
    /// Since when the first gap has been waiting.
    gap_since: Option<Instant>,
    /// A read of the gap from the store is under way.
    refilling: bool,
    /// When this room last had a message, until the store was asked what came after it
    /// ([`QUIET_SWEEP`]).
    heard: Option<Instant>,
}

impl Cluster {
    /// Where work off the hub answers it.
    pub fn replies(&self) -> mpsc::UnboundedSender<Reply> {
        self.refills.clone()
    }

    /// The cluster's settings.
    pub fn options(&self) -> &ClusterOptions {
        &self.options
    }
}

/// The hub's cluster state (boxed in the hub: single servers have none).
pub(crate) struct Cluster {
    options: ClusterOptions,
    /// Events for the other nodes, to the server's bus task.
    out: mpsc::UnboundedSender<NodeEvent>,
    sequences: FxHashMap<String, Sequence>,
    /// Rooms with a gap.
    gaps: FxHashSet<String>,
    /// Rooms that had a message and have not been swept since.
    heard: FxHashSet<String>,
    /// Where gap reads come back.
    refills: mpsc::UnboundedSender<Reply>,
    /// The sessions of the other nodes.
    pub(super) mirrors: super::mirrors::Mirrors,
    /// True while another node's act is carried out (`Hub::applying_remote`).
    pub(super) applying: bool,
    /// The thread that claims nicknames and keeps the heartbeat in the store.
    pub(super) claims: super::claims::Claims,
    /// When this node last said hello.
    pub(super) last_hello: Option<tokio::time::Instant>,
    /// Nicknames (folded) their owners take back from another node's guest, with how many
    /// times their claim was tried: a lost claim is tried again while the guest lets go.
    pub(super) reclaiming: FxHashMap<Name, u8>,
    /// The nodes that said hello or answered one, since this node started: what others say
    /// is dropped (and this node says hello, so that a node it missed introduces itself).
    pub(super) known: FxHashSet<Name>,
}

/// What comes back to the hub from the cluster's work on the blocking pool.
pub(crate) enum Reply {
    /// A read of a room's messages.
    Refill(Refill),
    /// What the claims thread found.
    Claims(super::claims::News),
    /// Time to claim this session's nickname again (its owner takes it back from another
    /// node, whose guest has not let go of it yet).
    ClaimAgain(SessionId),
}

/// Messages read from the store: to fill a room's gap, or (`start`) the room's newest, where
/// its order starts on this node.
pub(crate) struct Refill {
    room: String,
    start: bool,
    /// The read's end (exclusive), for a gap's read.
    upto: Option<u64>,
    messages: Result<Vec<StoredMessage>, String>,
}

impl Cluster {
    /// A hub's cluster state; events for the other nodes go to `out`, gap reads come back on
    /// `refills`.
    pub fn new(
        options: ClusterOptions,
        out: mpsc::UnboundedSender<NodeEvent>,
        refills: mpsc::UnboundedSender<Reply>,
        claims: super::claims::Claims,
    ) -> Self {
        Self {
            claims,
            last_hello: None,
            reclaiming: FxHashMap::default(),
            known: FxHashSet::default(),
            options,
            out,
            sequences: FxHashMap::default(),
            gaps: FxHashSet::default(),
            heard: FxHashSet::default(),
            refills,
            mirrors: Default::default(),
            applying: false,
        }
    }

    /// Starts room `room`'s order after `last_mid` (a room loaded at start).
    pub fn start_room(&mut self, room: &str, last_mid: u64) {
        self.sequences.entry(room.to_owned()).or_default().delivered = Some(last_mid);
    }

    /// Forgets room `room`'s order (nobody here is in it any more).
    pub fn forget_room(&mut self, room: &str) {
        self.sequences.remove(room);
        self.gaps.remove(room);
        self.heard.remove(room);
    }

    /// How long a gap waits for the bus.
    pub fn gap_wait(&self) -> std::time::Duration {
        self.options.gap_wait
    }

    /// True when some room waits for a missing message.
    pub fn has_gaps(&self) -> bool {
        !self.gaps.is_empty() || !self.heard.is_empty()
    }

    /// Tells the other nodes `event`.
    pub(super) fn publish(&self, event: ClusterEvent) {
        // The bus task outlives the hub; if it is gone, the store still has everything.
        let _ = self.out.send(NodeEvent { node: self.options.node.clone(), event });
    }
}

impl Hub {
    /// The id a private message is stored with: in a cluster the store numbers them (the
    /// nodes share one sequence), so none is given.
    pub(super) fn stored_private_mid(&self, mid: u64) -> u64 {
        if self.cluster.is_some() { 0 } else { mid }
    }

    /// Room `room` (folded) appeared here after the start: its order starts after its newest
    /// stored message, read now; what comes meanwhile waits.
    pub(super) fn begin_room(&mut self, room: &str) {
        let Some(cluster) = &mut self.cluster else { return };
        if cluster.sequences.contains_key(room) {
            return;
        }
        cluster.sequences.insert(room.to_owned(), Sequence::default());
        self.read_room(room, HistoryQuery { limit: 1, ..HistoryQuery::default() }, true);
    }

    /// A room message sent here, in a cluster: committed first (the store gives its id),
    /// delivered and told to the other nodes after (`numbered`).
    pub(super) fn say_in_cluster(
        &mut self,
        id: SessionId,
        key: String,
        sender_key: Name,
        said: Said,
        sent: Sent,
        req: Req,
    ) {
        let Said { text, action, notice, meta } = said;
        let Sent { from, ident, account, bot, cid, scope, ts } = sent;
        let room = &self.rooms[&key];
        let ephemeral = room.ephemeral;
        let message = Arc::new(ChatMessage {
            room: Some(room.name.clone()),
            from,
            ident,
            account,
            to: None,
            text: text.into(),
            action,
            bot,
            notice,
            meta: meta.map(|m| m.as_str().into()),
            mid: None,
            uid: 0,
            ts,
        });
        if let Some(cid) = &cid {
            // Known at once, so that a resend before the commit is not stored twice.
            self.cids.insert(scope, CidTarget::Room(&key), cid, None, ts);
        }
        let stored_cid = cid.as_deref().and_then(|c| scope.stored(c));
        self.persister.write(if ephemeral {
            Write::CountOnly(key.clone())
        } else {
            Write::Message(StoredMessage {
                room: key.clone(),
                mid: 0,
                ts,
                nick: message.from.to_string(),
                sender_key: sender_key.to_string(),
                cid: stored_cid.clone(),
                text: message.text.to_string(),
                action,
                notice,
            })
        });
        let numbering = Numbering { room: key, sender_key, scope, stored_cid, ephemeral };
        self.pending.push_back(Some(PendingMessage {
            sender: id,
            message,
            req,
            cid: cid.map(Into::into),
            away: None,
            offline: false,
            numbering: Some(Box::new(numbering)),
            cid_key: None,
            resent: false,
        }));
    }

    /// A room message sent here was not stored (it went nowhere): its client id is forgotten,
    /// so that the client's resend is taken as new, not acknowledged as a duplicate.
    pub(super) fn unnumbered(&mut self, pending: &PendingMessage) {
        if let (Some(numbering), Some(cid)) = (&pending.numbering, &pending.cid) {
            self.cids.forget(numbering.scope, CidTarget::Room(&numbering.room), cid);
        }
    }

    /// A room message sent here got its id `mid`: acknowledged, told to the other nodes, and
    /// delivered here in its turn.
    pub(super) fn numbered(&mut self, mut pending: PendingMessage, mid: u64) {
        let Some(numbering) = pending.numbering.take() else { return };
        let Numbering { room, sender_key, scope, stored_cid, ephemeral } = *numbering;
        let mut message = (*pending.message).clone();
        message.mid = (!ephemeral).then_some(mid);
        message.uid = if ephemeral { super::messages::next_uid() } else { 0 };
        let message = Arc::new(message);
        if let Some(cid) = &pending.cid {
            self.cids.insert(scope, CidTarget::Room(&room), cid, message.mid, message.ts);
        }
        if let Some(cluster) = &self.cluster {
            let told = RoomMessage::of(&message, &room, &sender_key, mid, ephemeral, stored_cid);
            cluster.publish(ClusterEvent::RoomMessage(told));
        }
        let sender = pending.sender;
        pending.message = message.clone();
        self.ack(pending, false);
        self.sequence(&room, mid, Queued { message, sender: Some(sender), sender_key });
    }

    /// Claims `session`'s nickname again after `wait`.
    pub(super) fn claim_again_after(&self, session: SessionId, wait: std::time::Duration) {
        let Some(cluster) = &self.cluster else { return };
        let replies = cluster.replies();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = replies.send(Reply::ClaimAgain(session));
        });
    }

    /// Something the cluster's work on the blocking pool found.
    pub(super) fn on_cluster_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Refill(refill) => self.on_refill(refill),
            Reply::Claims(super::claims::News::Claimed(claimed)) => self.on_claimed(claimed),
            Reply::Claims(super::claims::News::Live(live)) => self.on_live_nodes(&live),
            Reply::ClaimAgain(session) => self.claim_nick(session),
        }
    }

    /// Tells the other nodes a room message that is relayed, never stored nor ordered (a
    /// metadata-only message such as a typing notice): it travels with id 0.
    pub(super) fn relay_to_nodes(&self, room: &str, sender_key: &Name, message: &ChatMessage) {
        let Some(cluster) = &self.cluster else { return };
        cluster.publish(ClusterEvent::RoomMessage(RoomMessage::of(message, room, sender_key, 0, true, None)));
    }

    /// The bus is back after an outage: this node says hello again (presence may have moved
    /// meanwhile), and reads from the store what each of its rooms missed.
    pub(super) fn resync(&mut self) {
        if let Some(cluster) = &mut self.cluster {
            cluster.last_hello = None;
        }
        self.say_hello();
        let rooms: Vec<String> = match &self.cluster {
            Some(cluster) => cluster.sequences.keys().cloned().collect(),
            None => return,
        };
        for room in rooms {
            self.catch_up(&room);
        }
    }

    /// Reads the messages of room `room` after the last one delivered here.
    fn catch_up(&mut self, room: &str) {
        let Some(cluster) = &mut self.cluster else { return };
        let Some(seq) = cluster.sequences.get_mut(room) else { return };
        let Some(after) = seq.delivered else { return };
        if seq.refilling {
            return;
        }
        seq.refilling = true;
        tracing::debug!(room = %room, after, "reading what a room missed from the store");
        let query =
            HistoryQuery { after: Some(after), limit: REFILL_PAGE, oldest: true, ..HistoryQuery::default() };
        self.read_room(room, query, false);
    }

    /// An event from another node.
    pub(super) fn on_node_event(&mut self, event: NodeEvent) {
        let Some(cluster) = &self.cluster else { return };
        if event.node == cluster.options.node {
            // Our own name from elsewhere: two nodes configured with one name.
            tracing::warn!(node = %event.node, "an event from another node with this node's name; ignored");
            return;
        }
        let node: Name = event.node.as_str().into();
        let introduces = matches!(event.event, ClusterEvent::Hello | ClusterEvent::Welcome);
        if !introduces && !cluster.known.contains(&node) {
            tracing::debug!(node = %node, "an event from a node that has not said hello; dropped");
            return self.say_hello();
        }
        match event.event {
            ClusterEvent::RoomMessage(m) => self.on_room_message(m),
            ClusterEvent::Hello => self.on_hello(node),
            ClusterEvent::Welcome => {
                if let Some(cluster) = &mut self.cluster {
                    cluster.known.insert(node);
                }
            }
            ClusterEvent::Goodbye { reason } => {
                self.forget_mirrors_of(&node, &reason);
                if let Some(cluster) = &mut self.cluster {
                    cluster.known.remove(&node);
                }
            }
            ClusterEvent::SessionUp(remote) => self.on_session_up(node, remote),
            ClusterEvent::SessionDown { session, reason } => self.on_session_down(node, session, &reason),
            ClusterEvent::Act { session, act } => self.on_act(node, session, act),
            ClusterEvent::Private(m) => self.on_private(m),
            ClusterEvent::Kill { node, session, reason } => self.on_kill(&node, session, &reason),
            ClusterEvent::Reclaim { node, session, nick } => self.on_reclaim(&node, session, &nick),
        }
    }

    fn on_room_message(&mut self, m: RoomMessage) {
        if m.mid == 0 {
            // Relayed, not ordered: delivered at once.
            if self.rooms.contains_key(&m.room) {
                let (room, from_key) = (m.room.clone(), m.from_key.clone());
                let uid = super::messages::next_uid();
                self.fan_out(SessionId(u64::MAX), &from_key, &room, Arc::new(m.into_chat(uid)));
            }
            return;
        }
        if !self.rooms.contains_key(&m.room) {
            // Nobody here is in it: a join reads its history from the store. Its order starts
            // again from the next message heard after a join.
            if let Some(cluster) = &mut self.cluster {
                cluster.forget_room(&m.room);
            }
            return;
        }
        if let Some(cid) = &m.cid {
            // A client that moves here and resends it is recognised.
            self.cids.load_id(&m.room, cid, m.mid, m.ts);
        }
        let (room, mid, sender_key) = (m.room.clone(), m.mid, m.from_key.clone());
        let uid = if m.ephemeral { super::messages::next_uid() } else { 0 };
        let message = Arc::new(m.into_chat(uid));
        self.sequence(&room, mid, Queued { message, sender: None, sender_key });
    }

    /// Puts message `mid` of room `room` in its place: delivered now if it is next, held if
    /// an earlier one is missing, dropped if already delivered.
    fn sequence(&mut self, room: &str, mid: u64, queued: Queued) {
        let Some(cluster) = &mut self.cluster else { return };
        let Some(seq) = cluster.sequences.get_mut(room) else {
            // Not a room here (any more): nobody to deliver to.
            return;
        };
        // A message of this node's or another's: once the room is quiet, the store is asked
        // what came after (the others' last messages may not have come over the bus).
        seq.heard = Some(Instant::now());
        cluster.heard.insert(room.to_owned());
        if seq.delivered.is_some_and(|delivered| mid <= delivered) {
            return;
        }
        seq.waiting.insert(mid, queued);
        let overfull = seq.waiting.len() > MAX_WAITING;
        self.deliver_in_order(room);
        if overfull {
            self.refill(room);
        }
    }

    /// Delivers room `room`'s waiting messages that are next in order, and notes whether a
    /// gap remains.
    fn deliver_in_order(&mut self, room: &str) {
        loop {
            let Some(cluster) = &mut self.cluster else { return };
            let Some(seq) = cluster.sequences.get_mut(room) else { return };
            let Some(delivered) = seq.delivered else { return };
            let next = delivered + 1;
            let Some(queued) = seq.waiting.remove(&next) else {
                if seq.waiting.is_empty() {
                    seq.gap_since = None;
                    cluster.gaps.remove(room);
                } else if seq.gap_since.is_none() {
                    seq.gap_since = Some(Instant::now());
                    cluster.gaps.insert(room.to_owned());
                }
                return;
            };
            seq.delivered = Some(next);
            self.deliver_room_message(room, queued);
        }
    }

    fn deliver_room_message(&mut self, room: &str, queued: Queued) {
        let Queued { message, sender, sender_key } = queued;
        self.tally.received += u64::from(sender.is_none());
        if let Some(r) = self.rooms.get_mut(room) {
            if let Some(mid) = message.mid {
                r.last_mid = r.last_mid.max(mid);
            }
            // Nobody here can be the sender of a message from elsewhere.
            let sender = sender.unwrap_or(SessionId(u64::MAX));
            self.fan_out(sender, &sender_key, room, message);
        }
    }

    /// Reads `query` of room `room` from the store on the blocking pool; the page comes back
    /// as a [`Refill`] (`start`: where the room's order starts here).
    fn read_room(&self, room: &str, query: HistoryQuery, start: bool) {
        let Some(cluster) = &self.cluster else { return };
        let (store, back, room) = (self.store.clone(), cluster.refills.clone(), room.to_owned());
        tokio::task::spawn_blocking(move || {
            let messages = store.history(&room, query).map(|(page, _)| page).map_err(|e| e.to_string());
            let upto = query.before;
            let _ = back.send(Reply::Refill(Refill { room, start, upto, messages }));
        });
    }

    /// Reads from the store the rooms' gaps that waited long enough.
    pub(super) fn check_gaps(&mut self) {
        self.sweep_quiet_rooms();
        let Some(cluster) = &self.cluster else { return };
        let wait = cluster.options.gap_wait;
        let due: Vec<String> = cluster
            .gaps
            .iter()
            .filter(|room| {
                cluster
                    .sequences
                    .get(*room)
                    .is_some_and(|s| !s.refilling && s.gap_since.is_some_and(|since| since.elapsed() >= wait))
            })
            .cloned()
            .collect();
        for room in due {
            self.refill(&room);
        }
    }

    /// Asks the store once, for each room quiet for [`QUIET_SWEEP`] since its last message,
    /// what came after the last message delivered here.
    fn sweep_quiet_rooms(&mut self) {
        let Some(cluster) = &mut self.cluster else { return };
        let now = Instant::now();
        let mut quiet = Vec::new();
        cluster.heard.retain(|room| {
            let Some(seq) = cluster.sequences.get(room) else { return false };
            // (While a read of a gap runs, the sweep waits for the next look.)
            let due = !seq.refilling && seq.heard.is_none_or(|at| now.duration_since(at) >= QUIET_SWEEP);
            if due {
                quiet.push(room.clone());
            }
            !due
        });
        for room in quiet {
            self.catch_up(&room);
        }
    }

    /// Starts a read of room `room`'s first gap from the store.
    fn refill(&mut self, room: &str) {
        let Some(cluster) = &mut self.cluster else { return };
        let Some(seq) = cluster.sequences.get_mut(room) else { return };
        let Some(&upto) = seq.waiting.keys().next() else { return };
        if seq.refilling || seq.delivered.is_none() {
            return;
        }
        seq.refilling = true;
        let after = seq.delivered.unwrap_or(0);
        tracing::debug!(room = %room, after, upto, "reading a gap in a room's messages from the store");
        let query = HistoryQuery {
            after: Some(after),
            before: Some(upto),
            limit: REFILL_PAGE,
            oldest: true,
            ..HistoryQuery::default()
        };
        self.read_room(room, query, false);
    }

    /// A gap's read came back: what it found is delivered in order; what it did not find
    /// below the gap's end is given up (never stored, or deleted), unless the read failed,
    /// when the gap waits and is read again.
    fn on_refill(&mut self, refill: Refill) {
        let Refill { room, start, upto, messages } = refill;
        let Some(cluster) = &mut self.cluster else { return };
        let Some(seq) = cluster.sequences.get_mut(&room) else { return };
        if start {
            // The newest stored id, or (the store unreadable) the first message waiting: a
            // joiner's replay covers what came before.
            let newest = match messages {
                Ok(page) => page.last().map_or(0, |m| m.mid),
                Err(e) => {
                    tracing::warn!(room = %room, error = %e, "cannot read where a room's messages stand from the store");
                    seq.waiting.keys().next().map_or(0, |first| first - 1)
                }
            };
            // Members who joined here while the read was on its way were shown what this node
            // had (up to the room's last id here), not what the read found: what was stored
            // in between (said elsewhere meanwhile) is delivered to them, from the bus or read
            // from the store, instead of being taken for history they saw.
            let shown = self
                .rooms
                .get(&room)
                .filter(|r| r.members().iter().any(|m| self.sessions.get(m).is_some_and(|s| !s.mirror)));
            let start_after = shown.map_or(newest, |r| r.last_mid.min(newest));
            let Some(seq) = self.cluster.as_mut().and_then(|c| c.sequences.get_mut(&room)) else { return };
            tracing::debug!(room = %room, newest, start_after, waiting = seq.waiting.len(), "a room's order starts here");
            seq.delivered = Some(start_after);
            seq.waiting = seq.waiting.split_off(&(start_after + 1));
            self.deliver_in_order(&room);
            let behind = self.cluster.as_ref().and_then(|c| c.sequences.get(&room)).and_then(|s| s.delivered);
            if behind.is_some_and(|delivered| delivered < newest) {
                // What the bus has not brought (yet) is read from the store.
                self.catch_up(&room);
            }
            return;
        }
        seq.refilling = false;
        let messages = match messages {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(room = %room, error = %e, "cannot read a gap in a room's messages from the store; trying again");
                seq.gap_since = Some(Instant::now());
                return;
            }
        };
        let full_page = messages.len() >= REFILL_PAGE as usize;
        // A full page proves nothing past its last message (the rest of the range was not
        // read).
        let upto = match (full_page, messages.last()) {
            (true, Some(last)) => upto.map(|end| end.min(last.mid + 1)),
            _ => upto,
        };
        tracing::debug!(room = %room, found = messages.len(), "read a room's messages from the store");
        let name = self.rooms.get(&room).map(|r| r.name.clone());
        let Some(name) = name else { return };
        for m in &messages {
            let message = Arc::new(super::stored_to_chat(m, &name));
            let sender_key = Name::from(m.sender_key.as_str());
            if let Some(seq) = self.cluster.as_mut().and_then(|c| c.sequences.get_mut(&room))
                // Delivered meanwhile (the bus brought it while the store was read): a
                // message at or below the mark would wait for ever and hide the next gap.
                && seq.delivered.is_some_and(|d| m.mid > d)
            {
                seq.waiting.entry(m.mid).or_insert(Queued { message, sender: None, sender_key });
            }
        }
        // A gap's read proves which ids below its end the store does not have (every id below
        // a committed one is committed): those are given up, up to the first message found or
        // waiting. A read without an end (a catch-up) proves nothing: what it did not find may
        // have been committed since. (Messages found may have been delivered meanwhile, the bus
        // bringing them late: the proof is of the range read, not of what is now next.)
        if let Some(upto) = upto
            && let Some(seq) = self.cluster.as_mut().and_then(|c| c.sequences.get_mut(&room))
            && let Some(delivered) = seq.delivered
        {
            let next = seq.waiting.keys().next().copied().unwrap_or(upto).min(upto);
            if next > delivered + 1 {
                tracing::debug!(room = %room, from = delivered + 1, to = next - 1, "ids the store does not have: given up");
                seq.delivered = Some(next - 1);
            }
        }
        self.deliver_in_order(&room);
        if full_page {
            // More than one read's worth: the next read at once.
            let waiting = self
                .cluster
                .as_ref()
                .and_then(|c| c.sequences.get(&room))
                .is_some_and(|s| !s.waiting.is_empty());
            if waiting { self.refill(&room) } else { self.catch_up(&room) }
        }
    }
}
