//! Ignoring: a session may hold back every room message (ignore mode) or everything from
//! chosen users; the checks themselves run in fan-out (`Session::blocks`).

use super::{Hub, SessionId};
use crate::event::Event;
use crate::limits::MAX_IGNORES;
use crate::refusal::Refusal;
use crate::request::Req;
use crate::vocab::Name;
use natter_proto::names::{fold, validate_nick};

impl Hub {
    /// Sets (`Some`) or toggles (`None`) ignore mode, and says which it is now.
    pub(super) fn ignore_all(&mut self, id: SessionId, on: Option<bool>, req: Req) {
        let session = self.sessions.get_mut(&id).expect("caller checked");
        session.ignore_all = on.unwrap_or(!session.ignore_all);
        let on = session.ignore_all;
        self.reply(id, Event::IgnoreMode { req, on });
    }

    fn ignoring(&self, id: SessionId) -> Vec<Name> {
        let mut nicks: Vec<Name> =
            self.sessions[&id].rare().map(|r| r.ignoring.values().cloned().collect()).unwrap_or_default();
        nicks.sort_unstable();
        nicks
    }

    pub(super) fn ignore(&mut self, id: SessionId, nick: Option<String>, req: Req) {
        if let Some(nick) = nick {
            if let Err(e) = validate_nick(&nick) {
                let (nick, problem) = (nick.as_str().into(), e.to_string().into());
                return self.refuse(id, req, Refusal::InvalidNick { nick, problem });
            }
            let key = fold(&nick);
            let session = self.sessions.get_mut(&id).expect("caller checked");
            if *key == *session.folded {
                return self.refuse(id, req, Refusal::CannotIgnoreSelf);
            }
            let ignoring = &mut session.rare_mut().ignoring;
            if ignoring.len() >= MAX_IGNORES && !ignoring.contains_key(&key) {
                return self.refuse(id, req, Refusal::IgnoreListFull { limit: MAX_IGNORES as u32 });
            }
            ignoring.insert(key, nick.as_str().into());
        }
        let nicks = self.ignoring(id);
        self.reply(id, Event::Ignoring { req, nicks });
    }

    pub(super) fn unignore(&mut self, id: SessionId, nick: &str, req: Req) {
        let session = self.sessions.get_mut(&id).expect("caller checked");
        if session.rare_mut_if_any().and_then(|r| r.ignoring.remove(&fold(nick))).is_none() {
            return self.refuse(id, req, Refusal::NotIgnoring { nick: nick.into() });
        }
        let nicks = self.ignoring(id);
        self.reply(id, Event::Ignoring { req, nicks });
    }
}
