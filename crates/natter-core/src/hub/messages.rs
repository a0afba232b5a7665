//! Messages: a room or private message from a session, fanned out to its recipients at once
//! and acknowledged to its sender once stored; server operators' announcements.

use super::cids::{CidTarget, Scope};
use super::delivery::stage;
use super::{Hub, PendingMessage, SessionId};
use crate::event::{ChatMessage, Event, deliver};
use crate::persist::Committed;
use crate::refusal::{Refusal, ServerAction};
use crate::request::Req;
use crate::store::{StoredMessage, StoredPrivate, Write};
use crate::time::now_ms;
use crate::vocab::{Name, SessionKind, Target};
use natter_proto::names::fold;
use std::sync::Arc;

/// Who sent a message being stored, and when.
pub(super) struct Sent {
    pub from: Name,
    pub ident: Name,
    pub account: Option<Name>,
    pub bot: bool,
    pub cid: Option<String>,
    pub scope: Scope,
    pub ts: u64,
}

/// A resend of a message the store refused, to store again ([`Hub::store_again`]).
struct Resend {
    message: Arc<ChatMessage>,
    sender_key: Name,
    scope: Scope,
    cid: String,
    req: Req,
}

/// What a `Say` carries besides its target.
pub(super) struct Said {
    pub text: String,
    pub action: bool,
    pub notice: bool,
    pub meta: Option<String>,
}

/// Ids of live messages without a stored id: seeded from the clock (shifted past any count a
/// server reaches in a millisecond) so that ids stay unique across restarts.
static LIVE_IDS: std::sync::LazyLock<std::sync::atomic::AtomicU64> =
    std::sync::LazyLock::new(|| std::sync::atomic::AtomicU64::new(now_ms() << 16));

pub(super) fn next_uid() -> u64 {
    LIVE_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Hub {
    pub(super) fn say(&mut self, id: SessionId, target: Target, said: Said, cid: Option<String>, req: Req) {
        let Said { text, action, notice, meta } = said;
        self.tally.received += 1;
        let meta: Option<Name> = meta.filter(|t| !t.is_empty()).map(|t| t.as_str().into());
        // A metadata-only message (typing notices) is relayed, never stored.
        let meta_only = meta.is_some() && text.is_empty();
        if text.trim().is_empty() && !meta_only {
            return self.refuse(id, req, Refusal::EmptyMessage);
        }
        let ts = now_ms();
        let session = self.sessions.get_mut(&id).expect("caller checked");
        session.active_ts = ts;
        let (sender_key, from, ident) = (session.folded.clone(), session.nick.clone(), session.ident.clone());
        let bot = session.bot;
        let account = self.logged_in.get(&id).cloned();
        // Client ids belong to the identity that sent them, and are unique per target.
        let scope = match cid {
            Some(_) => Scope::of(id, &self.clients),
            None => Scope::Session(id),
        };
        let folded = cid.is_some().then(|| match &target {
            Target::Room(name) | Target::Nick(name) => fold(name),
        });
        let to_room = matches!(target, Target::Room(_));
        if let (Some(given), Some(folded)) = (&cid, &folded)
            && let Some(seen) = self.cids.get(scope, CidTarget::new(to_room, folded), given)
        {
            let (mid, first_ts) = (seen.mid, seen.ts);
            let room = match &target {
                Target::Room(r) => self.rooms.get(&fold(r)).map(|r| r.name.clone()),
                Target::Nick(_) => None,
            };
            let to = match &target {
                Target::Nick(n) => Some(Name::from(n.as_str())),
                Target::Room(_) => None,
            };
            let message = Arc::new(ChatMessage {
                room,
                from,
                ident,
                account,
                to,
                text: text.into(),
                action,
                bot,
                notice,
                meta,
                mid,
                uid: next_uid(),
                ts: first_ts,
            });
            if seen.unstored
                && to_room
                && mid.is_some()
                && message.room.is_some()
                && self.rooms.get(folded.as_str()).is_some_and(|r| !r.ephemeral)
            {
                let resend = Resend { message, sender_key, scope, cid: given.clone(), req };
                return self.store_again(id, folded, resend);
            }
            return self.reply(
                id,
                Event::Ack {
                    req,
                    cid: cid.map(Into::into),
                    message,
                    duplicate: true,
                    away: None,
                    offline: false,
                },
            );
        }
        match target {
            Target::Nick(nick) => {
                let folded_nick = fold(&nick);
                let to_id = match self.everyone.get(folded_nick.as_str()) {
                    Some(&to_id) => to_id,
                    None => match self.account_session(&folded_nick) {
                        // The account's owner is online under another nickname.
                        Some(to_id) => to_id,
                        None if !meta_only && self.accounts.contains_key(&folded_nick) => {
                            let said = Said { text, action, notice, meta: None };
                            let sent = Sent { from, ident, account, bot, cid, scope, ts };
                            return self.mail(id, &nick, said, sent, req);
                        }
                        None => {
                            return self.refuse(
                                id,
                                req,
                                Refusal::NoSuchRecipient { nick: nick.as_str().into() },
                            );
                        }
                    },
                };
                let to_nick = self.sessions[&to_id].nick.clone();
                let blocked = self.sessions[&to_id].blocks(&sender_key, false);
                // Kept when a party is logged in to an account (guests' talk stays off disk),
                // unless the recipient ignores the sender: its history must not show it either.
                let kept = !meta_only
                    && !blocked
                    && (self.logged_in.contains_key(&id) || self.logged_in.contains_key(&to_id));
                let mid = kept.then(|| {
                    self.private_mid += 1;
                    self.private_mid
                });
                // In a cluster the store numbers private messages when it stores them: a live
                // one goes by its unique id.
                let live_mid = if self.cluster.is_some() { None } else { mid };
                let message = Arc::new(ChatMessage {
                    room: None,
                    from,
                    ident,
                    account,
                    to: Some(to_nick),
                    text: text.into(),
                    action,
                    bot,
                    notice,
                    meta,
                    mid: live_mid,
                    uid: if live_mid.is_some() { 0 } else { next_uid() },
                    ts,
                });
                let cid_key = match (&cid, &folded) {
                    (Some(cid), Some(folded)) => {
                        Some(self.cids.insert(scope, CidTarget::new(to_room, folded), cid, mid, ts))
                    }
                    _ => None,
                };
                let recipient = &self.sessions[&to_id];
                // A notice never draws an automatic answer, the away message included.
                let away = if notice { None } else { recipient.away().cloned() };
                // UDP has no connection to lose: a member who vanished stays until it expires.
                let quiet_for = ts.saturating_sub(recipient.active_ts);
                let maybe_gone = (recipient.kind == SessionKind::Udp
                    && quiet_for >= self.config.udp_quiet.as_millis() as u64)
                    .then(|| recipient.nick.clone());
                if !blocked {
                    self.tally.delivered += 1;
                    if self.sessions[&to_id].mirror {
                        self.send_to_node(to_id, &sender_key, &message);
                    } else {
                        self.reply(to_id, Event::Message(message.clone()));
                    }
                }
                let cid: Option<Box<str>> = cid.map(Into::into);
                if let Some(mid) = mid {
                    // Acknowledged once stored, like a room message.
                    self.persister.write(Write::Private(StoredPrivate {
                        mid: self.stored_private_mid(mid),
                        ts,
                        from_key: self.party_key(id),
                        nick: message.from.to_string(),
                        to_key: self.party_key(to_id),
                        to_nick: message.to.as_deref().unwrap_or_default().to_string(),
                        text: message.text.to_string(),
                        action,
                        notice,
                        undelivered: false,
                    }));
                    let pending = PendingMessage {
                        sender: id,
                        message,
                        req,
                        cid,
                        away,
                        offline: false,
                        numbering: None,
                        cid_key,
                        resent: false,
                    };
                    self.pending.push_back(Some(pending));
                } else {
                    self.reply(id, Event::Ack { req, cid, message, duplicate: false, away, offline: false });
                }
                if let Some(nick) = maybe_gone {
                    let minutes = quiet_for / 60_000;
                    let text = format!(
                        "{nick} takes part over UDP and was last heard from {} ago: they may be gone, \
                         and UDP does not tell",
                        if minutes == 0 {
                            format!("{} seconds", quiet_for / 1000)
                        } else {
                            format!("{minutes} minutes")
                        }
                    );
                    self.reply(id, Event::Notice { req: None, room: None, text: text.into() });
                }
            }
            Target::Room(room) => {
                let Some(key) = self.sendable_room(id, &room, &req) else { return };
                if self.cluster.is_some() && !meta_only {
                    let said = Said { text, action, notice, meta: meta.map(|m| m.to_string()) };
                    let sent = Sent { from, ident, account, bot, cid, scope, ts };
                    return self.say_in_cluster(id, key, sender_key, said, sent, req);
                }
                let room = self.rooms.get_mut(&key).expect("checked");
                let stored = !room.ephemeral && !meta_only;
                let mid = stored.then(|| {
                    room.last_mid += 1;
                    room.last_mid
                });
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
                    meta,
                    mid,
                    uid: if stored { 0 } else { next_uid() },
                    ts,
                });
                let cid_key = match (&cid, &folded) {
                    (Some(cid), Some(folded)) => {
                        Some(self.cids.insert(scope, CidTarget::new(to_room, folded), cid, mid, ts))
                    }
                    _ => None,
                };
                // Deliver now, acknowledge once stored: room order stays the hub's order, and
                // the sender's ack still means "durable".
                self.fan_out(id, &sender_key, &key, message.clone());
                if meta_only {
                    // Typing notices and the like: relayed at once on every node, unordered.
                    self.relay_to_nodes(&key, &sender_key, &message);
                }
                let pending = PendingMessage {
                    sender: id,
                    message,
                    req,
                    cid: cid.map(Into::into),
                    away: None,
                    offline: false,
                    numbering: None,
                    cid_key,
                    resent: false,
                };
                if stored {
                    let m = &pending.message;
                    self.persister.write(Write::Message(StoredMessage {
                        room: key,
                        mid: m.mid.unwrap_or_default(),
                        ts,
                        nick: m.from.to_string(),
                        sender_key: sender_key.to_string(),
                        cid: pending.cid.as_deref().and_then(|cid| scope.stored(cid)),
                        text: m.text.to_string(),
                        action,
                        notice,
                    }));
                    self.pending.push_back(Some(pending));
                } else {
                    self.ack(pending, false);
                }
            }
        }
    }

    /// Delivers a room message to the members, except its sender and those ignoring it, and
    /// keeps it for replay on join.
    pub(super) fn fan_out(
        &mut self,
        sender: SessionId,
        sender_key: &str,
        key: &str,
        message: Arc<ChatMessage>,
    ) {
        let keep = self.config.history;
        let entry = self.log_entry(deliver(Event::Message(message.clone())));
        let Some(room) = self.rooms.get_mut(key) else { return };
        if message.mid.is_some() {
            room.remember(message, keep);
        }
        let mut delivered = 0;
        for &sid in room.members() {
            if sid == sender {
                continue;
            }
            let Some(s) = self.sessions.get_mut(&sid) else { continue };
            if s.blocks(sender_key, true) {
                continue;
            }
            stage(&mut self.dirty, sid, s, entry);
            delivered += 1;
        }
        self.tally.delivered += delivered;
    }

    pub(super) fn ack(&mut self, pending: PendingMessage, duplicate: bool) {
        let PendingMessage { sender, message, req, cid, away, offline, .. } = pending;
        self.reply(sender, Event::Ack { req, cid, message, duplicate, away, offline });
    }

    pub(super) fn on_committed(&mut self, committed: Committed) {
        let Committed { count, result } = committed;
        for i in 0..count {
            let Some(entry) = self.pending.pop_front() else { break };
            let Some(pending) = entry else { continue };
            match &result {
                Ok(ids) if pending.numbering.is_some() => match ids.get(i).copied().flatten() {
                    Some(mid) => self.numbered(pending, mid),
                    None => {
                        self.unnumbered(&pending);
                        let problem = "the store gave the message no id".into();
                        self.refuse(pending.sender, pending.req, Refusal::NotStored { problem })
                    }
                },
                Ok(_) => {
                    let duplicate = pending.resent;
                    self.ack(pending, duplicate)
                }
                Err(e) => {
                    self.unnumbered(&pending);
                    self.not_stored(&pending);
                    let problem = e.to_string().into();
                    self.refuse(pending.sender, pending.req, Refusal::NotStored { problem })
                }
            }
        }
    }

    /// A message of this server the store refused (single server; a cluster's message is
    /// `unnumbered`): a room message was delivered already, so its resend is stored, not
    /// delivered again; a private one's resend is new (an offline recipient's mailbox never
    /// got it; an online recipient sees it again).
    fn not_stored(&mut self, pending: &PendingMessage) {
        if let (Some(key), None) = (pending.cid_key, &pending.numbering) {
            let room = pending.message.room.is_some() && pending.message.mid.is_some();
            self.cids.not_stored(key, room);
        }
    }

    /// Stores again a room message that was delivered but refused by the store (its `cid`
    /// is [`Seen::unstored`]): `resend` carries its first id and time, under which it is
    /// stored now, and acknowledged as a duplicate once stored (it is not delivered again).
    fn store_again(&mut self, id: SessionId, key: &str, resend: Resend) {
        let Resend { mut message, sender_key, scope, cid, req } = resend;
        let m = Arc::make_mut(&mut message);
        // A stored message goes by its id.
        m.uid = 0;
        // On its way to the store: a further resend meanwhile is an ordinary duplicate, not a
        // second write of the same id (which would fail the whole group commit). Should this
        // write fail too, the commit's answer marks it unstored again.
        let cid_key = Some(self.cids.insert(scope, CidTarget::Room(key), &cid, m.mid, m.ts));
        self.persister.write(Write::Message(StoredMessage {
            room: key.to_string(),
            mid: m.mid.unwrap_or_default(),
            ts: m.ts,
            nick: m.from.to_string(),
            sender_key: sender_key.to_string(),
            cid: scope.stored(&cid),
            text: m.text.to_string(),
            action: m.action,
            notice: m.notice,
        }));
        let pending = PendingMessage {
            sender: id,
            message,
            req,
            cid: Some(cid.into()),
            away: None,
            offline: false,
            numbering: None,
            cid_key,
            resent: true,
        };
        self.pending.push_back(Some(pending));
    }

    pub(super) fn announce(&mut self, id: SessionId, text: String, req: Req) {
        let sender = &self.sessions[&id];
        // (Another node's operator: that node checked.)
        if !sender.server_op && !sender.mirror {
            return self.refuse(id, req, Refusal::NotServerOperator { action: ServerAction::Announce });
        }
        if text.trim().is_empty() {
            return self.refuse(id, req, Refusal::EmptyAnnouncement);
        }
        self.tell_nodes(id, crate::cluster::Act::Announce { text: text.as_str().into() });
        let sender = &self.sessions[&id];
        let event =
            Event::Announcement { from: sender.nick.clone(), ident: sender.ident.clone(), text: text.into() };
        let recipients: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|&(sid, s)| sid == id || s.hears_announcements)
            .map(|(sid, _)| sid)
            .collect();
        self.broadcast(recipients, event);
    }
}

impl Hub {
    /// A private message to every server operator online: each gets it addressed to itself.
    pub(super) fn ask_operators(&mut self, id: SessionId, text: String, req: Req) {
        self.tally.received += 1;
        if text.trim().is_empty() {
            return self.refuse(id, req, Refusal::EmptyMessage);
        }
        let ts = now_ms();
        let sender = self.sessions.get_mut(&id).expect("caller checked");
        sender.active_ts = ts;
        sender.asked_operators = true;
        let (sender_key, from, ident) = (sender.folded.clone(), sender.nick.clone(), sender.ident.clone());
        let sender_bot = sender.bot;
        let account = self.logged_in.get(&id).cloned();
        let operators: Vec<(SessionId, Name)> = self
            .sessions
            .iter()
            .filter(|&(sid, s)| s.server_op && sid != id)
            .map(|(sid, s)| (sid, s.nick.clone()))
            .collect();
        if operators.is_empty() {
            return self.refuse(id, req, Refusal::NoSuchRecipient { nick: "operator".into() });
        }
        if !self.sessions[&id].mirror && operators.iter().any(|(op, _)| self.sessions[op].mirror) {
            // The operators of other nodes hear when it leaves, as this node's do.
            self.tell_nodes(id, crate::cluster::Act::AskedOperators);
        }
        let text: Box<str> = text.into();
        for (to_id, to_nick) in operators {
            if self.sessions[&to_id].blocks(&sender_key, false) {
                continue;
            }
            let message = Arc::new(ChatMessage {
                room: None,
                from: from.clone(),
                ident: ident.clone(),
                account: account.clone(),
                to: Some(to_nick),
                text: text.clone(),
                action: false,
                bot: sender_bot,
                notice: false,
                meta: None,
                mid: None,
                uid: next_uid(),
                ts,
            });
            self.tally.delivered += 1;
            if self.sessions[&to_id].mirror {
                // An operator on another node: that node delivers it.
                self.send_to_node(to_id, &sender_key, &message);
            } else {
                self.reply(to_id, Event::Message(message));
            }
        }
    }
}
