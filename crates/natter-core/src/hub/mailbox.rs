//! Offline private messages: a private message to a registered account nobody is logged in
//! to waits in the account's mailbox (in the store), and is delivered at the account's next
//! login, with its original time, once.
//!
//! Also the party keys private messages are stored under (`StoredPrivate`): the account for
//! someone logged in, the nickname for a guest.

use super::history::HistoryPage;
use super::messages::{Said, Sent};
use super::{Hub, PendingMessage, SessionId, private_to_chat};
use crate::event::{ChatMessage, Event};
use crate::limits::{MAX_MAILBOX_BYTES, MAX_MAILBOX_MESSAGES};
use crate::refusal::Refusal;
use crate::request::Req;
use crate::store::{StoreError, StoredPrivate, Write, account_key};
use natter_proto::names::fold;
use std::sync::Arc;

/// What waits in one mailbox: the hub caps both (see `MAX_MAILBOX_*`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Size {
    pub count: u32,
    pub bytes: u64,
}

impl Hub {
    /// The key `id`'s private messages are stored under: `~account` when logged in to one,
    /// else its folded nickname.
    pub(super) fn party_key(&self, id: SessionId) -> String {
        match self.logged_in.get(&id) {
            Some(account) => account_key(&fold(account)),
            None => self.sessions[&id].folded.to_string(),
        }
    }

    /// The party a nickname names, for reading a conversation: the account of that name when
    /// registered, else whoever holds the nickname now (its account, if logged in to one).
    pub(super) fn party_key_of_nick(&self, nick: &str) -> String {
        let folded = fold(nick);
        if self.accounts.contains_key(&folded) {
            return account_key(&folded);
        }
        match self.everyone.get(folded.as_str()) {
            Some(&sid) => self.party_key(sid),
            None => folded,
        }
    }

    /// A session logged in to the registered account `folded`, when its owner is online
    /// under another nickname.
    pub(super) fn account_session(&self, folded: &str) -> Option<SessionId> {
        if !self.accounts.contains_key(folded) {
            return None;
        }
        self.logged_in.iter().find(|(_, account)| fold(account) == folded).map(|(&id, _)| id)
    }

    /// Stores a private message to the registered account `nick` nobody is logged in to: it
    /// is acknowledged (saying so) once stored, and delivered at the account's next login.
    pub(super) fn mail(&mut self, id: SessionId, nick: &str, said: Said, sent: Sent, req: Req) {
        let Said { text, action, notice, .. } = said;
        let Sent { from, ident, account, bot, cid, scope, ts } = sent;
        let to_key = account_key(&fold(nick));
        let size = self.mailboxes.get(&to_key).copied().unwrap_or_default();
        if size.count >= MAX_MAILBOX_MESSAGES || size.bytes + text.len() as u64 > u64::from(MAX_MAILBOX_BYTES)
        {
            let refusal = Refusal::MailboxFull {
                nick: nick.into(),
                messages: MAX_MAILBOX_MESSAGES,
                bytes: MAX_MAILBOX_BYTES,
            };
            return self.refuse(id, req, refusal);
        }
        self.private_mid += 1;
        let mid = self.private_mid;
        let message = Arc::new(ChatMessage {
            room: None,
            from,
            ident,
            account,
            to: Some(nick.into()),
            text: text.into(),
            action,
            bot,
            notice,
            meta: None,
            mid: Some(mid),
            uid: 0,
            ts,
        });
        let cid_key = cid.as_ref().map(|cid| {
            self.cids.insert(scope, super::cids::CidTarget::new(false, &fold(nick)), cid, Some(mid), ts)
        });
        self.persister.write(Write::Private(StoredPrivate {
            mid: self.stored_private_mid(mid),
            ts,
            from_key: self.party_key(id),
            nick: message.from.to_string(),
            to_key: to_key.clone(),
            to_nick: nick.to_string(),
            text: message.text.to_string(),
            action,
            notice,
            undelivered: true,
        }));
        let entry = self.mailboxes.entry(to_key).or_default();
        entry.count += 1;
        entry.bytes += message.text.len() as u64;
        let cid = cid.map(Into::into);
        self.pending.push_back(Some(PendingMessage {
            sender: id,
            message,
            req,
            cid,
            away: None,
            offline: true,
            numbering: None,
            cid_key,
            resent: false,
        }));
    }

    /// `id` just logged in to `account`: what waits in its mailbox is read, and delivered
    /// after the login's answer.
    pub(super) fn deliver_mail(&mut self, id: SessionId, account: &str) {
        let key = account_key(&fold(account));
        // In a cluster, other nodes may have put mail there: the store is asked each time.
        let may_have_mail = self.cluster.is_some() || self.mailboxes.contains_key(&key);
        if !may_have_mail || self.mail_reading.contains(&key) {
            return;
        }
        self.mail_reading.insert(key.clone());
        let ticket = self.hold_for_answer(id);
        let (store, pages) = (self.store.clone(), self.pages.clone());
        tokio::task::spawn_blocking(move || {
            let read = store.mailbox(&key, MAX_MAILBOX_MESSAGES);
            // No receiver: the hub has stopped.
            let _ = pages.send(HistoryPage::mail(id, ticket, key, read));
        });
    }

    /// A mailbox was read: its messages go to the session that logged in (addressed to its
    /// nickname now, with their original time), and are marked delivered in the store.
    pub(super) fn on_mail(
        &mut self,
        id: SessionId,
        ticket: u64,
        key: String,
        read: Result<Vec<StoredPrivate>, StoreError>,
    ) {
        self.mail_reading.remove(&key);
        let Some(session) = self.sessions.get(&id) else { return };
        let me = session.nick.clone();
        let events = match read {
            Ok(mail) => {
                if let Some(last) = mail.last() {
                    self.persister.write(Write::Delivered { to_key: key.clone(), upto: last.mid });
                    self.pending.push_back(None);
                }
                if mail.len() < MAX_MAILBOX_MESSAGES as usize {
                    // Everything there was (retention or `natter user del` may have deleted
                    // some since the hub counted them).
                    self.mailboxes.remove(&key);
                } else {
                    let bytes: u64 = mail.iter().map(|m| m.text.len() as u64).sum();
                    let size = self.mailboxes.entry(key.clone()).or_default();
                    size.count = size.count.saturating_sub(mail.len() as u32);
                    size.bytes = size.bytes.saturating_sub(bytes);
                    if size.count == 0 {
                        self.mailboxes.remove(&key);
                    }
                }
                tracing::info!(account = %key, messages = mail.len(), "delivered an offline mailbox");
                mail.iter()
                    .map(|m| {
                        let mut message = private_to_chat(m);
                        message.to = Some(me.clone());
                        Event::Message(Arc::new(message))
                    })
                    .collect()
            }
            Err(e) => {
                // They stay in the store, for the next login.
                tracing::warn!(account = %key, error = %e, "cannot read an offline mailbox");
                Vec::new()
            }
        };
        self.answer_held_all(id, ticket, events);
    }
}
