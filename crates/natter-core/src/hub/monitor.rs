//! Watch lists (IRC `MONITOR`): a session names up to [`MAX_WATCHES`] nicks and is told when
//! each comes online or goes offline. The lists live beside the sessions (a session record is
//! at its allocator size class) with an index from each watched nick to its watchers, so a
//! login, a rename or a quit costs one lookup of its nick, never a walk of every list.

use super::{Hub, SessionId};
use crate::command::MonitorChange;
use crate::event::Event;
use crate::limits::MAX_WATCHES;
use crate::request::Req;
use crate::vocab::Name;
use natter_proto::names::{fold, validate_nick};
use rustc_hash::FxHashMap;

/// Every session's watch list, and its index.
#[derive(Default)]
pub(crate) struct Watches {
    /// Each watching session's list: the folded nick and the nick as given.
    lists: FxHashMap<SessionId, Vec<(Name, Name)>>,
    /// Folded nick -> the sessions watching it.
    watchers: FxHashMap<Name, Vec<SessionId>>,
}

/// What adding a nick to a list did.
#[derive(Debug, PartialEq, Eq)]
enum Added {
    /// It is on the list (now or already).
    Listed,
    /// The list is full.
    Full,
}

impl Watches {
    fn add(&mut self, id: SessionId, nick: &Name) -> Added {
        let folded: Name = fold(nick).into();
        let list = self.lists.entry(id).or_default();
        if list.iter().any(|(f, _)| *f == folded) {
            return Added::Listed;
        }
        if list.len() >= MAX_WATCHES {
            return Added::Full;
        }
        list.push((folded.clone(), nick.clone()));
        self.watchers.entry(folded).or_default().push(id);
        Added::Listed
    }

    fn remove(&mut self, id: SessionId, nick: &str) {
        let folded = fold(nick);
        if let Some(list) = self.lists.get_mut(&id) {
            list.retain(|(f, _)| **f != *folded);
            if list.is_empty() {
                self.lists.remove(&id);
            }
        }
        self.unindex(id, &folded);
    }

    /// Forgets everything `id` watches (it cleared its list, or left).
    pub fn clear(&mut self, id: SessionId) {
        for (folded, _) in self.lists.remove(&id).unwrap_or_default() {
            self.unindex(id, &folded);
        }
    }

    fn unindex(&mut self, id: SessionId, folded: &str) {
        if let Some(watchers) = self.watchers.get_mut(folded) {
            watchers.retain(|&w| w != id);
            if watchers.is_empty() {
                self.watchers.remove(folded);
            }
        }
    }

    fn list(&self, id: SessionId) -> &[(Name, Name)] {
        self.lists.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The sessions watching the nick that folds to `folded`.
    fn watching(&self, folded: &str) -> Vec<SessionId> {
        self.watchers.get(folded).cloned().unwrap_or_default()
    }
}

impl Hub {
    /// Changes or reads `id`'s watch list.
    pub(super) fn monitor(&mut self, id: SessionId, change: MonitorChange, req: Req) {
        match change {
            MonitorChange::Add(nicks) => {
                let (mut listed, mut full) = (Vec::new(), Vec::new());
                // Names that cannot be nicks are left out, as other servers do: nobody can
                // ever come online under them.
                for nick in nicks.iter().filter(|n| validate_nick(n).is_ok()) {
                    let nick = Name::from(nick.as_str());
                    match self.watches.add(id, &nick) {
                        Added::Listed => listed.push(nick),
                        Added::Full => full.push(nick),
                    }
                }
                self.tell_status(id, listed, full, req);
            }
            MonitorChange::Remove(nicks) => {
                for nick in &nicks {
                    self.watches.remove(id, nick);
                }
            }
            MonitorChange::Clear => self.watches.clear(id),
            MonitorChange::List => {
                let nicks = self.watches.list(id).iter().map(|(_, given)| given.clone()).collect();
                self.reply(id, Event::WatchList { req, nicks });
            }
            MonitorChange::Status => {
                let nicks = self.watches.list(id).iter().map(|(_, given)| given.clone()).collect();
                self.tell_status(id, nicks, Vec::new(), req);
            }
        }
    }

    /// Tells `id` which of `nicks` are online (with their masks) and which are not.
    fn tell_status(&mut self, id: SessionId, nicks: Vec<Name>, full: Vec<Name>, req: Req) {
        let (mut online, mut offline) = (Vec::new(), Vec::new());
        for nick in nicks {
            match self.everyone.get(fold(&nick).as_str()) {
                Some(&sid) => online.push(self.shown_mask(sid)),
                None => offline.push(nick),
            }
        }
        self.reply(id, Event::Watched { req, online, offline, full });
    }

    /// `nick!user@host` of a session, as others see it.
    fn shown_mask(&self, id: SessionId) -> Name {
        let s = &self.sessions[&id];
        format!("{}!{}", s.nick, s.ident).into()
    }

    /// Who hears of a change of `id`'s presence (away, account, real name): whoever shares a
    /// room with it, and apart from them, whoever watches its nick (IRC `extended-monitor`).
    /// Neither list holds `id` itself.
    pub(super) fn presence_audience(&self, id: SessionId) -> (Vec<SessionId>, Vec<SessionId>) {
        let others: Vec<SessionId> = self.neighbours(id).into_iter().filter(|&s| s != id).collect();
        let mut watchers = self.watches.watching(&self.sessions[&id].folded);
        if watchers.is_empty() {
            return (others, watchers);
        }
        // A set, so that many watchers of a user with many neighbours cost their sum, not
        // their product.
        let told: rustc_hash::FxHashSet<SessionId> = others.iter().copied().collect();
        watchers.retain(|w| *w != id && !told.contains(w) && self.sessions.contains_key(w));
        (others, watchers)
    }

    /// Tells whoever watches `id`'s nick that it is online (it logged in, or took that nick).
    pub(super) fn watched_online(&mut self, id: SessionId) {
        let watchers = self.watches.watching(&self.sessions[&id].folded);
        if watchers.is_empty() {
            return;
        }
        let mask = self.shown_mask(id);
        for watcher in watchers {
            let event = Event::Watched {
                req: None,
                online: vec![mask.clone()],
                offline: Vec::new(),
                full: Vec::new(),
            };
            self.reply(watcher, event);
        }
    }

    /// Tells whoever watches `nick` (folded: `folded`) that it is offline (its session left,
    /// or took another nick).
    pub(super) fn watched_offline(&mut self, folded: &str, nick: &Name) {
        for watcher in self.watches.watching(folded) {
            if self.sessions.contains_key(&watcher) {
                let event = Event::Watched {
                    req: None,
                    online: Vec::new(),
                    offline: vec![nick.clone()],
                    full: Vec::new(),
                };
                self.reply(watcher, event);
            }
        }
    }
}
