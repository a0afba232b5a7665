//! The sessions of other nodes, as this node shows them: each is a session of this hub (a
//! "mirror") with an outbox that takes nothing, so that room members, `who`, `whois`, nick
//! uniqueness, bans and operator standing all see the whole cluster through the code that
//! serves a single server.
//!
//! A node tells the others what its own sessions do once it has checked that they may
//! ([`Act`]); the others carry the act out for the mirror without checking again (the mirror
//! is trusted like the console) and without storing anything (the acting node stored it).
//! What their local users see is what a single server would show them.

use super::{Hub, SessionId};
use crate::cluster::{Act, ClusterEvent, RemoteSession};
use crate::outbox::Outbox;
use crate::vocab::Name;
use natter_proto::names::fold;
use rustc_hash::FxHashMap;

/// Sessions of other nodes waiting for a nickname this node still gives to one of its own
/// (the store decides which keeps it; the loser is renamed and the mirror made then). Bounded:
/// beyond, the oldest is dropped.
const MAX_WAITING_MIRRORS: usize = 1024;

/// The mirrors of one hub.
#[derive(Default)]
pub(crate) struct Mirrors {
    /// (node, its session id) -> the mirror here.
    by_remote: FxHashMap<(Name, u64), SessionId>,
    /// The mirror here -> (node, its session id).
    by_local: FxHashMap<SessionId, (Name, u64)>,
    /// Sessions of other nodes whose nickname is held here, oldest first.
    waiting: Vec<(Name, RemoteSession)>,
}

impl Mirrors {
    /// The nodes that have sessions mirrored here (or waiting to be).
    pub fn nodes(&self) -> impl Iterator<Item = Name> + '_ {
        self.by_remote.keys().map(|(n, _)| n.clone()).chain(self.waiting.iter().map(|(n, _)| n.clone()))
    }

    /// True when `id` is the mirror of another node's session.
    pub fn is_mirror(&self, id: SessionId) -> bool {
        self.by_local.contains_key(&id)
    }
}

impl Hub {
    /// True when `id` is a session of another node.
    pub(super) fn is_mirror(&self, id: SessionId) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.mirrors.is_mirror(id))
    }

    /// Tells the other nodes what session `id` did, when it is one of this node's own.
    pub(super) fn tell_nodes(&self, id: SessionId, act: Act) {
        let Some(cluster) = &self.cluster else { return };
        if cluster.mirrors.is_mirror(id) {
            return;
        }
        cluster.publish(ClusterEvent::Act { session: id.0, act });
    }

    /// Tells the other nodes that session `id` (one of this node's own) is here.
    pub(super) fn tell_session_up(&self, id: SessionId) {
        let Some(cluster) = &self.cluster else { return };
        if cluster.mirrors.is_mirror(id) {
            return;
        }
        let Some(s) = self.sessions.get(&id) else { return };
        let rooms = s.rooms.iter().filter_map(|k| self.rooms.get(&**k)).map(|r| r.name.clone()).collect();
        cluster.publish(ClusterEvent::SessionUp(RemoteSession {
            session: id.0,
            nick: s.nick.clone(),
            ident: s.ident.clone(),
            realname: s.realname.clone(),
            kind: s.kind,
            account: self.logged_in.get(&id).cloned(),
            away: s.away().cloned(),
            bot: s.bot,
            rooms,
            server_op: s.server_op,
        }));
    }

    /// Tells the other nodes that session `id` (one of this node's own) left.
    pub(super) fn tell_session_down(&self, id: SessionId, reason: &str) {
        let Some(cluster) = &self.cluster else { return };
        if cluster.mirrors.is_mirror(id) {
            return;
        }
        cluster.publish(ClusterEvent::SessionDown { session: id.0, reason: reason.into() });
    }

    /// Tells the other nodes every session of this one again.
    pub(super) fn tell_own_sessions(&mut self) {
        let own: Vec<SessionId> =
            self.sessions.iter().map(|(id, _)| id).filter(|id| !self.is_mirror(*id)).collect();
        for id in own {
            self.tell_session_up(id);
        }
    }

    /// A session of node `node` is there: its mirror is made (or, told again, brought up to
    /// date).
    pub(super) fn on_session_up(&mut self, node: Name, remote: RemoteSession) {
        let Some(cluster) = &mut self.cluster else { return };
        if let Some(&mirror) = cluster.mirrors.by_remote.get(&(node.clone(), remote.session)) {
            self.applying(|hub| {
                hub.change_nick(mirror, &remote.nick, None);
                for room in &remote.rooms {
                    hub.join(mirror, room, None, None);
                }
            });
            if remote.server_op {
                self.make_operator(mirror);
            }
            return;
        }
        if let Err(e) = natter_proto::names::validate_nick(&remote.nick) {
            tracing::warn!(node = %node, error = %e, "another node told of a session with a nickname that cannot be one; ignored");
            return;
        }
        let key: Name = fold(&remote.nick).into();
        if self.everyone.contains_key(&key) {
            // Held here: whoever lost the nickname in the store is renamed, and then the
            // mirror is made.
            let waiting = &mut cluster.mirrors.waiting;
            waiting.retain(|(n, r)| !(*n == node && r.session == remote.session));
            if waiting.len() >= MAX_WAITING_MIRRORS {
                waiting.remove(0);
            }
            waiting.push((node, remote));
            return;
        }
        self.make_mirror(node, remote);
    }

    fn make_mirror(&mut self, node: Name, remote: RemoteSession) {
        // An outbox that is closed takes every delivery and keeps none.
        let outbox = Outbox::new(1);
        outbox.close("a session of another node", true);
        let mirror = self.add_session(super::identity::NewSession {
            nick: remote.nick.as_ref(),
            ident: remote.ident.as_ref(),
            real_host: None,
            realname: remote.realname.as_ref(),
            kind: remote.kind,
            outbox,
            mirror: true,
        });
        if let Some(cluster) = &mut self.cluster {
            cluster.mirrors.by_remote.insert((node.clone(), remote.session), mirror);
            cluster.mirrors.by_local.insert(mirror, (node, remote.session));
        }
        if let Some(account) = remote.account {
            self.logged_in.insert(mirror, account);
        }
        if let Some(s) = self.sessions.get_mut(&mirror) {
            if remote.away.is_some() || s.away().is_some() {
                s.rare_mut().away = remote.away;
            }
            s.bot = remote.bot;
        }
        if remote.server_op {
            self.make_operator(mirror);
        }
        self.watched_online(mirror);
        self.applying(|hub| {
            for room in &remote.rooms {
                hub.join(mirror, room, None, None);
            }
        });
    }

    /// A session of node `node` left.
    pub(super) fn on_session_down(&mut self, node: Name, session: u64, reason: &str) {
        let Some(cluster) = &mut self.cluster else { return };
        cluster.mirrors.waiting.retain(|(n, r)| !(*n == node && r.session == session));
        let Some(mirror) = cluster.mirrors.by_remote.remove(&(node, session)) else { return };
        cluster.mirrors.by_local.remove(&mirror);
        self.applying(|hub| hub.remove_session(mirror, reason, true));
        self.make_waiting_mirrors();
    }

    /// A session of node `node` did something.
    pub(super) fn on_act(&mut self, node: Name, session: u64, act: Act) {
        let Some(cluster) = &mut self.cluster else { return };
        let Some(&mirror) = cluster.mirrors.by_remote.get(&(node.clone(), session)) else {
            // Waiting for its nickname: what it joins and what it is called goes with it.
            match cluster.mirrors.waiting.iter_mut().find(|(n, r)| *n == node && r.session == session) {
                Some((_, r)) => match act {
                    Act::Join { room } => r.rooms.push(room),
                    Act::Part { room, .. } => r.rooms.retain(|k| fold(k) != fold(&room)),
                    Act::Nick { nick } => r.nick = nick,
                    _ => {}
                },
                // A session never heard of: this node lost sight of that one's (the bus lost
                // its news), and asks every node to tell its sessions again.
                None => self.say_hello(),
            }
            self.make_waiting_mirrors();
            return;
        };
        self.applying(|hub| match act {
            Act::Join { room } => hub.join(mirror, &room, None, None),
            Act::Part { room, reason } => hub.part(mirror, &room, reason.map(String::from), None),
            Act::Nick { nick } => {
                if hub.everyone.get(fold(&nick).as_str()).is_some_and(|&holder| holder != mirror) {
                    // Held here by a session whose claim lost: the mirror waits for it.
                    hub.demote_mirror(mirror, nick);
                } else {
                    hub.change_nick(mirror, &nick, None);
                }
            }
            Act::Topic { room, topic } => hub.topic(mirror, &room, Some(topic.into()), None),
            Act::Mode { room, changes } => hub.mode(mirror, &room, changes, None),
            Act::Kick { room, nick, reason } => {
                hub.kick(mirror, &room, &nick, reason.map(String::from), None)
            }
            Act::Away { text } => hub.away(mirror, text.map(String::from), None),
            Act::Account { account } => {
                match &account {
                    Some(account) => hub.logged_in.insert(mirror, account.clone()),
                    None => hub.logged_in.remove(&mirror),
                };
                hub.tell_neighbours_account(mirror, account);
            }
            Act::Invite { room, nick } => hub.invite(mirror, &room, &nick, None),
            Act::Announce { text } => hub.announce(mirror, text.into(), None),
            Act::Realname { realname } => hub.set_realname(mirror, &realname, None),
            Act::Bot { on } => {
                if let Some(s) = hub.sessions.get_mut(&mirror) {
                    s.bot = on;
                }
            }
            Act::Oper => hub.make_operator(mirror),
            Act::AskedOperators => {
                if let Some(s) = hub.sessions.get_mut(&mirror) {
                    s.asked_operators = true;
                }
            }
        });
        self.make_waiting_mirrors();
    }

    /// A mirror whose new nickname is held here: it quits here and waits for the nickname.
    fn demote_mirror(&mut self, mirror: SessionId, nick: Name) {
        let Some(cluster) = &mut self.cluster else { return };
        let Some((node, session)) = cluster.mirrors.by_local.remove(&mirror) else { return };
        cluster.mirrors.by_remote.remove(&(node.clone(), session));
        let Some(s) = self.sessions.get(&mirror) else { return };
        let remote = RemoteSession {
            session,
            nick,
            ident: s.ident.clone(),
            realname: s.realname.clone(),
            kind: s.kind,
            account: self.logged_in.get(&mirror).cloned(),
            away: s.away().cloned(),
            bot: s.bot,
            rooms: s.rooms.iter().filter_map(|k| self.rooms.get(&**k)).map(|r| r.name.clone()).collect(),
            server_op: s.server_op,
        };
        self.remove_session(mirror, "changing nickname on another node", true);
        if let Some(cluster) = &mut self.cluster {
            cluster.mirrors.waiting.push((node, remote));
        }
    }

    /// The node and session that mirror `id` stands for.
    pub(super) fn mirrored(&self, id: SessionId) -> Option<(Name, u64)> {
        self.cluster.as_ref()?.mirrors.by_local.get(&id).cloned()
    }

    /// Forgets that `id` mirrors another node's session (it is being removed).
    pub(super) fn forget_mirror(&mut self, id: SessionId) {
        let Some(cluster) = &mut self.cluster else { return };
        if let Some(remote) = cluster.mirrors.by_local.remove(&id) {
            cluster.mirrors.by_remote.remove(&remote);
        }
    }

    /// Makes the waiting mirrors whose nickname is free now.
    pub(super) fn make_waiting_mirrors(&mut self) {
        loop {
            let Some(cluster) = &mut self.cluster else { return };
            let nicks = &self.everyone;
            let Some(at) =
                cluster.mirrors.waiting.iter().position(|(_, r)| !nicks.contains_key(fold(&r.nick).as_str()))
            else {
                return;
            };
            let (node, remote) = cluster.mirrors.waiting.remove(at);
            self.make_mirror(node, remote);
        }
    }

    /// Every mirror of node `node` quits (the node is gone).
    pub(super) fn forget_mirrors_of(&mut self, node: &str, reason: &str) {
        let Some(cluster) = &mut self.cluster else { return };
        cluster.mirrors.waiting.retain(|(n, _)| &**n != node);
        let gone: Vec<(Name, u64)> =
            cluster.mirrors.by_remote.keys().filter(|(n, _)| &**n == node).cloned().collect();
        for (n, session) in gone {
            self.on_session_down(n, session, reason);
        }
    }

    /// Runs `apply` as another node's act: nothing it changes is stored or told on from here.
    fn applying(&mut self, apply: impl FnOnce(&mut Hub)) {
        if let Some(cluster) = &mut self.cluster {
            cluster.applying = true;
        }
        apply(self);
        if let Some(cluster) = &mut self.cluster {
            cluster.applying = false;
        }
    }

    /// True while another node's act is carried out: the room settings it changes were stored
    /// by that node.
    pub(super) fn applying_remote(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.applying)
    }
}
