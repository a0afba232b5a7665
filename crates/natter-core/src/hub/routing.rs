//! What goes to one session of another node: a private message, a server operator's kill. It
//! travels to every node; the session's own node carries it out.

use super::{Hub, SessionId};
use crate::cluster::{ClusterEvent, PrivateMessage};
use crate::event::{ChatMessage, Event};
use crate::vocab::Name;
use natter_proto::names::fold;
use std::sync::Arc;

impl Hub {
    /// Sends `message` to the session of another node that `mirror` stands for.
    pub(super) fn send_to_node(&mut self, mirror: SessionId, sender_key: &Name, message: &ChatMessage) {
        let Some((node, session)) = self.mirrored(mirror) else { return };
        let Some(cluster) = &self.cluster else { return };
        cluster.publish(ClusterEvent::Private(PrivateMessage {
            to_node: node,
            to_session: session,
            to: message.to.clone().unwrap_or_default(),
            from: message.from.clone(),
            from_key: sender_key.clone(),
            ident: message.ident.clone(),
            account: message.account.clone(),
            text: message.text.clone(),
            action: message.action,
            notice: message.notice,
            bot: message.bot,
            meta: message.meta.clone(),
            uid: message.uid,
            ts: message.ts,
        }));
    }

    /// A private message from another node: delivered when its recipient is a session of this
    /// one that still has the nickname it was sent to.
    pub(super) fn on_private(&mut self, m: PrivateMessage) {
        let Some(cluster) = &self.cluster else { return };
        if *m.to_node != *cluster.options().node {
            return;
        }
        let id = SessionId(m.to_session);
        let Some(s) = self.sessions.get(&id) else { return };
        if s.mirror || *s.folded != *fold(&m.to) || s.blocks(&m.from_key, false) {
            return;
        }
        let message = Arc::new(ChatMessage {
            room: None,
            from: m.from,
            ident: m.ident,
            account: m.account,
            to: Some(s.nick.clone()),
            text: m.text,
            action: m.action,
            bot: m.bot,
            notice: m.notice,
            meta: m.meta,
            mid: None,
            uid: m.uid,
            ts: m.ts,
        });
        self.tally.received += 1;
        self.tally.delivered += 1;
        self.reply(id, Event::Message(message));
    }

    /// Asks the node of the session `mirror` stands for to end it; that node then tells
    /// everyone it left.
    pub(super) fn kill_on_node(&mut self, mirror: SessionId, reason: &str) {
        let Some((node, session)) = self.mirrored(mirror) else { return };
        let Some(cluster) = &self.cluster else { return };
        cluster.publish(ClusterEvent::Kill { node, session, reason: reason.into() });
    }

    /// Asks the node of the guest `mirror` stands for to rename it: an account's owner here
    /// takes its nickname `nick` back.
    pub(super) fn reclaim_on_node(&mut self, mirror: SessionId, nick: &Name) {
        let Some((node, session)) = self.mirrored(mirror) else { return };
        let Some(cluster) = &mut self.cluster else { return };
        let folded: Name = fold(nick).into();
        cluster.reclaiming.insert(folded.clone(), 0);
        cluster.publish(ClusterEvent::Reclaim { node, session, nick: folded });
    }

    /// An account's owner on another node takes its nickname back from a session of this one.
    pub(super) fn on_reclaim(&mut self, node: &str, session: u64, nick: &str) {
        let Some(cluster) = &self.cluster else { return };
        if node != cluster.options().node {
            return;
        }
        let id = SessionId(session);
        let Some(s) = self.sessions.get(&id) else { return };
        if s.mirror || *s.folded != *nick {
            return;
        }
        let held = s.nick.clone();
        self.rename_to_guest(id, &held);
    }

    /// A server operator of another node ended a session of this one.
    pub(super) fn on_kill(&mut self, node: &str, session: u64, reason: &str) {
        let Some(cluster) = &self.cluster else { return };
        if node != cluster.options().node {
            return;
        }
        let id = SessionId(session);
        if self.sessions.get(&id).is_some_and(|s| !s.mirror) {
            tracing::info!(nick = %self.sessions[&id].nick, "killed by an operator of another node");
            self.metrics.disconnected(crate::metrics::Disconnect::Killed);
            self.remove_session(id, reason, false);
        }
    }
}
