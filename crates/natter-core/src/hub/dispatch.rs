//! Dispatch: which handler carries out each command. One line per command, so that the
//! whole command set of the core reads at a glance.

use super::messages::Said;
use super::{Hub, SessionId};
use crate::command::Command;
use crate::time::now_ms;
use crate::vocab::SessionKind;

impl Hub {
    /// Carries out one command of a logged-in session; its answers are staged for the end of
    /// the batch.
    pub(super) fn handle(&mut self, id: SessionId, cmd: Command) {
        let Some(session) = self.sessions.get_mut(&id) else { return };
        if session.kind == SessionKind::Udp {
            // A UDP member is only heard through its datagrams: any of them says it is there.
            session.active_ts = now_ms();
        }
        match cmd {
            Command::Say { target, text, action, notice, meta, cid, req } => {
                self.say(id, target, Said { text, action, notice, meta }, cid, req)
            }
            Command::Join { room, key, req } => self.join(id, &room, key, req),
            Command::Part { room, reason, req } => self.part(id, &room, reason, req),
            Command::Nick { nick, req } => self.change_nick(id, &nick, req),
            Command::Topic { room, topic, req } => self.topic(id, &room, topic, req),
            Command::Who { room, detail, page, req } => self.who(id, room.as_deref(), detail, page, req),
            Command::Search { mask, req } => self.search(id, &mask, req),
            Command::Lookup { nicks, req } => self.lookup(id, &nicks, req),
            Command::ServerStats { req } => self.server_stats(id, req),
            Command::Monitor { change, req } => self.monitor(id, change, req),
            Command::Rooms { req } => self.list_rooms(id, req),
            Command::IgnoreAll { on, req } => self.ignore_all(id, on, req),
            Command::Ignore { nick, req } => self.ignore(id, nick, req),
            Command::Unignore { nick, req } => self.unignore(id, &nick, req),
            Command::History { room, query, around, req } => self.history(id, &room, query, around, req),
            Command::ActiveRooms { after_ts, before_ts, limit, req } => {
                self.active_rooms(id, after_ts, before_ts, limit, req)
            }
            Command::SetEphemeral { room, on, req } => self.set_ephemeral(id, &room, on, req),
            Command::Mode { room, changes, req } => self.mode(id, &room, changes, req),
            Command::RoomModes { room, req } => self.room_modes(id, &room, req),
            Command::Bans { room, req } => self.bans(id, &room, req),
            Command::Kick { room, nick, reason, req } => self.kick(id, &room, &nick, reason, req),
            Command::Invite { room, nick, req } => self.invite(id, &room, &nick, req),
            Command::Invites { req } => self.invites(id, req),
            Command::Away { text, req } => self.away(id, text, req),
            Command::Whois { nick, req } => self.whois(id, &nick, req),
            Command::Whowas { nick, count, req } => self.whowas(id, &nick, count, req),
            Command::Register { password, from, req } => self.register_account(id, password, from, req),
            Command::Login { name, password, from, req } => {
                self.login_account(id, &name, password, from, req)
            }
            Command::Logout { req } => self.logout_account(id, req),
            Command::IssueToken { req } => self.issue_token(id, req),
            Command::Passwd { old, new, from, req } => self.change_password(id, old, new, from, req),
            Command::Oper { name, password, from, req } => self.oper(id, &name, &password, from, req),
            Command::Echo { event } => self.reply(id, *event),
            Command::HideFromSearches { on } => self.hide_from_searches(id, on),
            Command::Certificates { change, req } => self.certificates(id, change, req),
            Command::AdoptAccount { account, req } => self.adopt_account(id, account, req),
            Command::SetRealname { realname, req } => self.set_realname(id, &realname, req),
            Command::MarkBot { on } => {
                self.sessions.get_mut(&id).expect("caller checked").bot = on;
                self.tell_nodes(id, crate::cluster::Act::Bot { on });
            }
            Command::Kill { nick, reason, req } => self.kill(id, &nick, &reason, req),
            Command::HearAnnouncements { on } => {
                self.sessions.get_mut(&id).expect("checked above").hears_announcements = on;
            }
            Command::Announce { text, req } => self.announce(id, text, req),
            Command::AskOperators { text, req } => self.ask_operators(id, text, req),
            Command::Quit { reason } => self.remove_session(id, reason.as_deref().unwrap_or("quit"), false),
        }
    }
}
