//! Standing kept across sessions: which entries of a room's kept operators (`Room::op_nicks`)
//! are a session's, and giving a session that logs in the standing its account has.
//!
//! An operator logged in to an account is kept as `~account` (folded; `~` is never part of a
//! nickname): the account holds the standing, under whatever nickname. An operator who was
//! not logged in is kept by folded nickname, as before accounts: whoever holds the nick holds
//! it, except a registered nickname, which only its account's owner does.

use super::{Hub, SessionId};
use crate::event::Event;
use crate::time::now_ms;
use crate::vocab::RoomChange;
use natter_proto::names::fold;

/// Who runs the room's operator changes made on an account's behalf (IRC clients know it).
const ROOM_SERVICE: &str = "ChanServ";

/// What a session's standing is kept under, and which kept entries are its own.
pub(super) struct Standing {
    /// What a room keeps when the session is made operator: `~account` or the folded nick.
    pub key: String,
    /// The folded account name, when logged in.
    pub account: Option<String>,
    /// The folded nick, when it may claim a standing kept by nick.
    nick: Option<String>,
}

impl Standing {
    /// True when one of the kept operator entries is this session's.
    pub fn holds(&self, kept: &[String]) -> bool {
        kept.iter().any(|k| self.is_one_of_mine(k))
    }

    /// True when the kept entry `k` is this session's.
    pub fn is_one_of_mine(&self, k: &str) -> bool {
        match k.strip_prefix('~') {
            Some(account) => self.account.as_deref() == Some(account),
            None => self.nick.as_deref() == Some(k),
        }
    }
}

impl Hub {
    /// The session's standing keys.
    pub(super) fn standing(&self, id: SessionId) -> Standing {
        let folded_nick: &str = &self.sessions[&id].folded;
        let account = self.logged_in.get(&id).map(|a| fold(a));
        // A registered nickname claims what is kept under it only for its owner.
        let nick_is_mine =
            !self.accounts.contains_key(folded_nick) || account.as_deref() == Some(folded_nick);
        let key = match &account {
            Some(a) => format!("~{a}"),
            None => folded_nick.to_string(),
        };
        Standing { key, account, nick: nick_is_mine.then(|| folded_nick.to_string()) }
    }

    /// The session just logged in: in the rooms it is in that keep its account as operator,
    /// it is operator again, and the room is told (as a change by `ChanServ`); in the rooms
    /// where it is operator, its standing is kept by account from now on instead of by nick.
    pub(super) fn restore_standing(&mut self, id: SessionId) {
        let standing = self.standing(id);
        let Some(session) = self.sessions.get(&id) else { return };
        let nick = session.nick.to_string();
        let rooms = session.rooms.clone();
        for key in rooms {
            let Some(room) = self.rooms.get_mut(&*key) else { continue };
            let kept = standing.holds(&room.op_nicks);
            let is_operator = room.operators.contains(&id);
            if !kept && !is_operator {
                continue;
            }
            if room.op_nicks.iter().any(|k| *k != standing.key && standing.is_one_of_mine(k))
                || (is_operator && !room.op_nicks.contains(&standing.key))
            {
                room.op_nicks.retain(|k| !standing.is_one_of_mine(k));
                room.op_nicks.push(standing.key.clone());
                self.save_room(&key);
            }
            let room = self.rooms.get_mut(&*key).expect("checked above");
            if is_operator {
                continue;
            }
            room.operators.insert(id);
            let event = Event::RoomChanged {
                room: room.name.clone(),
                by: ROOM_SERVICE.into(),
                ident: "ChanServ@services.natter".into(),
                changes: vec![RoomChange::Operator { nick: nick.clone(), on: true }],
                ts: now_ms(),
            };
            let members = room.members().to_vec();
            self.broadcast(members, event);
        }
    }
}
