//! Identity: who a session is. Logging in, changing nickname, going away, becoming a server
//! operator, and leaving the server (by quitting, being too slow, or being killed).

use super::state::Session;
use super::{Hub, RegisterError, Registered, SessionId};
use crate::cluster::Act;
use crate::command::Registration;
use crate::event::{Delivery, Event, PastUser};
use crate::limits::{MAX_AWAY_BYTES, MAX_REALNAME_BYTES, WHOWAS_KEEP};
use crate::outbox::Piece;
use crate::refusal::{Refusal, ServerAction};
use crate::request::Req;
use crate::secret::client_digest;
use crate::time::now_ms;
use crate::vocab::{Name, SessionKind};
use natter_proto::names::{fold, skeleton, validate_nick};
use natter_proto::text::clip_bytes;
use std::hash::BuildHasher;
use std::net::IpAddr;
use thin_vec::ThinVec;

impl Hub {
    pub(super) fn register(&mut self, reg: Registration) -> Result<Registered, RegisterError> {
        self.check_server_password(reg.password.as_deref(), reg.addr).map_err(RegisterError)?;
        if let Err(e) = validate_nick(&reg.nick) {
            let (nick, problem) = (reg.nick.as_str().into(), e.to_string().into());
            return Err(RegisterError(Refusal::InvalidNick { nick, problem }));
        }
        let key: Name = fold(&reg.nick).into();
        let look = skeleton_key(&reg.nick);
        // A reserved name, or anything that looks like one.
        if self.reserved.contains(&look) {
            return Err(RegisterError(Refusal::NickReserved { nick: reg.nick.as_str().into() }));
        }
        // Logged in before registering (SASL): the account's own nickname is taken back from
        // a session that holds it without being logged in to it, as `Nick` does.
        let account = reg.account.as_ref().map(|a| a.account().clone());
        let owns_nick = account.as_deref().is_some_and(|a| fold(a) == *key);
        if let Some(&holder) = self.everyone.get(&key) {
            let holder_is_owner = self.logged_in.get(&holder).is_some_and(|a| fold(a) == *key);
            let reclaim = owns_nick
                && !holder_is_owner
                && self.config.nick_protection != super::NickProtection::Off
                && self.accounts.contains_key(&*key);
            if !reclaim {
                return Err(RegisterError(Refusal::NickInUse { nick: reg.nick.as_str().into() }));
            }
            let held = self.sessions[&holder].nick.clone();
            self.rename_to_guest(holder, &held);
        }
        if let Some(like) = self.look_alike(look, None) {
            return Err(RegisterError(Refusal::NickLookalike { nick: reg.nick.as_str().into(), like }));
        }
        let owns_look = account.as_deref().is_some_and(|a| skeleton_key(a) == look);
        if !owns_look {
            self.refuse_lookalike_of_account(None, &reg.nick).map_err(RegisterError)?;
        }
        let nick: Name = reg.nick.as_str().into();
        let id = self.add_session(NewSession {
            nick: &reg.nick,
            ident: &reg.ident,
            real_host: reg.real_host.as_deref(),
            realname: &reg.realname,
            kind: reg.kind,
            outbox: reg.outbox,
            mirror: false,
        });
        if let Some(secret) = &reg.client_secret {
            self.clients.insert(id, client_digest(secret));
        }
        match &reg.real_host {
            Some(real) => {
                tracing::info!(nick = %nick, kind = ?reg.kind, ident = %reg.ident, address = %real, "logged in")
            }
            None => tracing::info!(nick = %nick, kind = ?reg.kind, ident = %reg.ident, "logged in"),
        }
        if let Some(account) = account {
            tracing::info!(nick = %nick, account = %account, "logged in to an account at registration");
            self.logged_in.insert(id, account);
        }
        self.tell_session_up(id);
        let resume_req = reg.resume.is_some().then(|| reg.req.clone());
        self.reply(id, Event::Welcome { req: reg.req, nick: nick.clone() });
        self.watched_online(id);
        let protect_after_join = match (reg.resume, resume_req) {
            (Some(token), Some(req)) => self.resume_account(id, token, reg.addr, req),
            _ => {
                self.protect_nick(id);
                false
            }
        };
        if reg.lobby {
            let lobby = self.config.lobby.clone();
            self.join(id, &lobby, None, None);
        }
        if let Some(account) = self.logged_in.get(&id).cloned() {
            // Logged in at registration (IRC SASL): what waits in the account's mailbox comes
            // after the welcome, as after any other login.
            self.deliver_mail(id, &account);
        }
        // A token refused at once: told where a refusal after the lookup is told.
        if protect_after_join {
            self.protect_nick(id);
        }
        Ok(Registered { session: id, nick: reg.nick })
    }

    /// Puts a new session in the tables (nick, look-alike keys, counts): a session that
    /// logged in here, or the mirror of another node's.
    pub(super) fn add_session(&mut self, new: NewSession<'_>) -> SessionId {
        let key: Name = fold(new.nick).into();
        let look = skeleton_key(new.nick);
        let session = Session {
            nick: shared_when_folded(new.nick, &key),
            folded: key.clone(),
            ident: new.ident.into(),
            kind: new.kind,
            outbox: new.outbox,
            rooms: ThinVec::new(),
            ignore_all: false,
            staged: ThinVec::new(),
            realname: if new.realname.is_empty() { self.no_name.clone() } else { new.realname.into() },
            server_op: new.kind == SessionKind::Console,
            signon_ts: now_ms(),
            active_ts: now_ms(),
            hidden: false,
            bot: false,
            hears_announcements: false,
            asked_operators: false,
            mirror: new.mirror,
            rare: None,
        };
        self.stats.users += 1;
        if !new.mirror {
            self.metrics.session_changed(session.kind, true);
        }
        self.stats.operators += usize::from(session.server_op);
        self.stats.peak = self.stats.peak.max(self.stats.users);
        let id = self.sessions.insert(Box::new(session));
        if let Some(host) = new.real_host {
            self.real_hosts.insert(id, host.into());
        }
        self.everyone.insert(&key, id);
        self.skeletons.insert(look, id);
        self.claim_nick(id);
        id
    }

    pub(super) fn change_nick(&mut self, id: SessionId, nick: &str, req: Req) {
        if let Err(e) = validate_nick(nick) {
            let (nick, problem) = (nick.into(), e.to_string().into());
            return self.refuse(id, req, Refusal::InvalidNick { nick, problem });
        }
        let key: Name = fold(nick).into();
        let look = skeleton_key(nick);
        if self.reserved.contains(&look) {
            return self.refuse(id, req, Refusal::NickReserved { nick: nick.into() });
        }
        if let Err(refusal) = self.refuse_lookalike_of_account(Some(id), nick) {
            return self.refuse(id, req, refusal);
        }
        if let Some(&holder) = self.everyone.get(&key)
            && holder != id
        {
            if !self.may_reclaim(id, &key) {
                return self.refuse(id, req, Refusal::NickInUse { nick: nick.into() });
            }
            // The account's owner takes its nickname back.
            let held = self.sessions[&holder].nick.clone();
            self.rename_to_guest(holder, &held);
        }
        if let Some(like) = self.look_alike(look, Some(id)) {
            return self.refuse(id, req, Refusal::NickLookalike { nick: nick.into(), like });
        }
        let session = self.sessions.get_mut(&id).expect("caller checked");
        if *session.nick == *nick {
            return;
        }
        let old = std::mem::replace(&mut session.nick, shared_when_folded(nick, &key));
        let old_key = std::mem::replace(&mut session.folded, key.clone());
        let ident = session.ident.clone();
        let realname = session.realname.clone();
        self.everyone.remove(&old_key, id);
        self.everyone.insert(&key, id);
        for room in &session.rooms {
            if let Some(r) = self.rooms.get_mut(&**room) {
                r.roster.rename(&old_key, &key, id);
            }
        }
        if old_key != key {
            self.release_nick(id, &old_key, self.sessions[&id].mirror);
            self.claim_nick(id);
        }
        self.skeletons.remove(&skeleton_key(&old));
        self.skeletons.insert(look, id);
        self.remember_past(&old, &ident, &realname);
        self.recheck_bans(id);
        let recipients = self.neighbours(id);
        if old_key != self.sessions[&id].folded {
            // A change of case is the same nick to its watchers: nothing to tell.
            self.watched_offline(&old_key, &old);
            self.watched_online(id);
        }
        self.broadcast(recipients, Event::Nick { old, new: nick.into(), ident, ts: now_ms() });
        self.tell_nodes(id, Act::Nick { nick: nick.into() });
        self.make_waiting_mirrors();
        self.protect_nick(id);
    }

    pub(super) fn away(&mut self, id: SessionId, text: Option<String>, req: Req) {
        let text: Option<Name> = text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| clip_bytes(t, MAX_AWAY_BYTES).into());
        self.tell_nodes(id, Act::Away { text: text.as_deref().map(Into::into) });
        let session = self.sessions.get_mut(&id).expect("caller checked");
        if text.is_some() || session.away().is_some() {
            session.rare_mut().away = text.clone();
        }
        let (nick, ident) = (session.nick.clone(), session.ident.clone());
        let (others, watchers) = self.presence_audience(id);
        let away = |watched| Event::Away {
            req: None,
            nick: nick.clone(),
            ident: ident.clone(),
            text: text.clone(),
            watched,
        };
        self.broadcast(others, away(false));
        self.broadcast(watchers, away(true));
        self.reply(id, Event::Away { req, nick, ident, text, watched: false });
    }

    /// `SetRealname`: the new real name, told to the session itself, to whoever shares a room
    /// with it, and to whoever watches it.
    pub(super) fn set_realname(&mut self, id: SessionId, realname: &str, req: Req) {
        let realname = realname.trim();
        if realname.is_empty() || realname.len() > MAX_REALNAME_BYTES {
            return self.refuse(id, req, Refusal::InvalidRealname { max: MAX_REALNAME_BYTES });
        }
        self.tell_nodes(id, Act::Realname { realname: realname.into() });
        let session = self.sessions.get_mut(&id).expect("caller checked");
        session.realname = realname.into();
        let (nick, ident, realname) = (session.nick.clone(), session.ident.clone(), session.realname.clone());
        let (others, watchers) = self.presence_audience(id);
        let event = |watched| Event::Realname {
            nick: nick.clone(),
            ident: ident.clone(),
            realname: realname.clone(),
            watched,
        };
        self.broadcast(others, event(false));
        self.broadcast(watchers, event(true));
        self.reply(id, event(false));
    }

    pub(super) fn oper(&mut self, id: SessionId, name: &str, password: &str, from: Option<IpAddr>, req: Req) {
        if let Err(refusal) = self.check_operator(name, password, from) {
            return self.refuse(id, req, refusal);
        }
        tracing::info!(nick = %self.sessions[&id].nick, operator = name, "became a server operator");
        self.make_operator(id);
        self.tell_nodes(id, crate::cluster::Act::Oper);
        let text = "you are now a server operator: operator of every room".into();
        self.reply(id, Event::Notice { req, room: None, text });
    }

    /// Session `id` is a server operator from now on (one of this node's, or another node's
    /// that became one there).
    pub(super) fn make_operator(&mut self, id: SessionId) {
        let Some(session) = self.sessions.get_mut(&id) else { return };
        self.stats.operators += usize::from(!session.server_op);
        session.server_op = true;
    }

    /// Keeps a nickname that was given up, for `Whowas`.
    pub(super) fn remember_past(&mut self, nick: &Name, ident: &Name, realname: &Name) {
        if self.whowas.len() >= WHOWAS_KEEP {
            self.whowas.pop_front();
        }
        self.whowas.push_back(PastUser {
            nick: nick.clone(),
            ident: ident.clone(),
            realname: realname.clone(),
            ts: now_ms(),
        });
    }

    /// Takes a session off the server, telling everyone who shared a room with it.
    pub(super) fn remove_session(&mut self, id: SessionId, reason: &str, discard: bool) {
        let mut recipients = self.neighbours(id);
        if self.sessions.get(&id).is_some_and(|s| s.asked_operators) {
            // The operators it asked share no room with it, yet are waiting for its next words.
            let operators: Vec<SessionId> = self
                .sessions
                .iter()
                .filter(|&(sid, s)| s.server_op && !recipients.contains(&sid))
                .map(|(sid, _)| sid)
                .collect();
            recipients.extend(operators);
        }
        if !self.sessions.contains_key(&id) {
            return;
        }
        self.tell_session_down(id, reason);
        self.forget_mirror(id);
        let Some(mut session) = self.sessions.remove(&id) else { return };
        self.release_nick(id, &session.folded, session.mirror);
        self.clients.remove(&id);
        self.real_hosts.remove(&id);
        self.logged_in.remove(&id);
        self.session_tokens.remove(&id);
        self.unprotect(id);
        self.login_from.remove(&id);
        // Never the reason's words: a quit message is something a user wrote.
        tracing::info!(nick = %session.nick, kind = ?session.kind, "logged out");
        self.stats.users -= 1;
        if !session.mirror {
            self.metrics.session_changed(session.kind, false);
        }
        self.stats.hidden -= usize::from(session.hidden);
        self.stats.operators -= usize::from(session.server_op);
        self.everyone.remove(&session.folded, id);
        self.skeletons.remove(&skeleton_key(&session.nick));
        for key in &session.rooms {
            if let Some(room) = self.rooms.get_mut(&**key) {
                room.forget(id, &session.folded);
            }
            self.forget_if_unused(key);
        }
        self.remember_past(&session.nick, &session.ident, &session.realname);
        self.watches.clear(id);
        self.watched_offline(&session.folded, &session.nick);
        if !discard {
            // What was staged or held for it (answers to its last commands) still goes out
            // first; history pages still being read are not waited for.
            let held = session
                .rare_mut_if_any()
                .and_then(|r| r.held.take())
                .map(|mut h| h.release_all())
                .unwrap_or_default();
            let staged =
                session.staged.iter().flat_map(|r| &self.log[r.start as usize..r.end as usize]).cloned();
            let own: Vec<Delivery> = held.into_iter().chain(staged).collect();
            let len = own.len() as u32;
            let _ = session.outbox.push_pieces(&mut vec![Piece::new(own.into(), 0..len)]);
        }
        session.outbox.close(reason, discard);
        let event = Event::Quit {
            nick: session.nick,
            ident: session.ident,
            reason: Some(reason.into()),
            ts: now_ms(),
        };
        self.broadcast(recipients.into_iter().filter(|&m| m != id), event);
        self.make_waiting_mirrors();
    }

    /// The nick of someone else online whose nick looks like one with skeleton key `look`.
    fn look_alike(&self, look: u64, me: Option<SessionId>) -> Option<Name> {
        let owner = *self.skeletons.get(&look)?;
        (Some(owner) != me).then(|| self.sessions.get(&owner).map(|s| s.nick.clone())).flatten()
    }

    /// Hides the session from (or shows it again in) searches by people who share no room
    /// with it.
    pub(super) fn hide_from_searches(&mut self, id: SessionId, on: bool) {
        let session = self.sessions.get_mut(&id).expect("caller checked");
        let was = std::mem::replace(&mut session.hidden, on);
        self.stats.hidden = self.stats.hidden + usize::from(on) - usize::from(was);
    }

    /// Ends another session, as a server operator; `reason` is what everyone is told.
    pub(super) fn kill(&mut self, id: SessionId, nick: &str, reason: &str, req: Req) {
        if !self.sessions[&id].server_op {
            return self.refuse(id, req, Refusal::NotServerOperator { action: ServerAction::Kill });
        }
        let Some(&victim) = self.everyone.get(fold(nick).as_str()) else {
            return self.refuse(id, req, Refusal::NoSuchNick { nick: nick.into() });
        };
        tracing::info!(nick = %self.sessions[&victim].nick, by = %self.sessions[&id].nick, "killed");
        if self.sessions[&victim].mirror {
            // Its own node ends it, and tells everyone.
            return self.kill_on_node(victim, reason);
        }
        self.metrics.disconnected(crate::metrics::Disconnect::Killed);
        self.remove_session(victim, reason, false);
    }
}

/// What a nick looks like, as a key of the hub's look-alike table: a hash of its TR39
/// skeleton (8 bytes a session rather than a string; a collision would only refuse a nick).
pub(super) fn skeleton_key(nick: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(skeleton(nick))
}

/// What [`Hub::add_session`] needs to make a session.
pub(super) struct NewSession<'a> {
    pub nick: &'a str,
    pub ident: &'a str,
    pub real_host: Option<&'a str>,
    pub realname: &'a str,
    pub kind: SessionKind,
    pub outbox: crate::outbox::Outbox,
    /// Another node's session.
    pub mirror: bool,
}

/// The nick as typed: the folded key's own allocation when they are the same (most nicks are
/// typed in lower case), so that a session holds one copy of its name, not two.
fn shared_when_folded(nick: &str, key: &Name) -> Name {
    if **key == *nick { key.clone() } else { nick.into() }
}
