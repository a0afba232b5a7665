//! Nick protection, as ergo does it: a registered nickname belongs to its account.
//!
//! - `enforce` (the default): whoever takes a registered nickname without being logged in as
//!   its account is told so, and renamed to a guest name (`Guest12345`) unless it logs in
//!   within the grace time (30 s by default).
//! - `optional`: anyone may use a registered nickname, but its owner, logged in, can reclaim
//!   it: the other session is renamed.
//! - `off`: accounts are only an identity; nicknames are first come, first served.
//!
//! Under `enforce` and `optional`, a nickname that looks like a registered one (Unicode
//! look-alikes: the same TR39 skeleton) is refused to everyone but the account's owner, and a
//! logged-in owner who asks for their nickname gets it back from whoever holds it.
//!
//! Deadlines live beside the sessions, in order; the hub's task sleeps until the earliest.

use super::{Hub, SessionId, identity::skeleton_key};
use crate::event::Event;
use crate::refusal::Refusal;
use crate::vocab::Name;
use natter_proto::names::fold;
use tokio::time::Instant;

/// How registered nicknames are protected (`nick_protection`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NickProtection {
    /// Log in within the grace time or be renamed.
    #[default]
    Enforce,
    /// Anyone may use it; the logged-in owner can reclaim it.
    Optional,
    /// No protection.
    Off,
}

impl Hub {
    /// The registered name `nick` is, or looks like, when the session `me` may not take it:
    /// a look-alike of someone else's account is refused; the name itself is allowed (and
    /// then protected by [`Hub::protect_nick`]).
    pub(super) fn refuse_lookalike_of_account(
        &self,
        me: Option<SessionId>,
        nick: &str,
    ) -> Result<(), Refusal> {
        if self.config.nick_protection == NickProtection::Off || self.account_looks.is_empty() {
            return Ok(());
        }
        let Some(owner) = self.account_looks.get(&skeleton_key(nick)) else { return Ok(()) };
        if *owner == fold(nick) || self.logged_in_as(me, owner) {
            return Ok(());
        }
        let account = self.accounts.get(owner).cloned().unwrap_or_else(|| owner.as_str().into());
        Err(Refusal::NickRegistered { nick: nick.into(), account })
    }

    /// True when session `me` is logged in as the account `folded`.
    fn logged_in_as(&self, me: Option<SessionId>, folded: &str) -> bool {
        me.and_then(|id| self.logged_in.get(&id)).is_some_and(|a| fold(a) == folded)
    }

    /// True when `holder` holds a nickname that `claimant`'s account owns, and protection lets
    /// the owner take it back.
    pub(super) fn may_reclaim(&self, claimant: SessionId, folded_nick: &str) -> bool {
        self.config.nick_protection != NickProtection::Off
            && self.accounts.contains_key(folded_nick)
            && self.logged_in_as(Some(claimant), folded_nick)
    }

    /// The session just took its nickname: when it is a registered one that it is not logged
    /// in as, it is told, and under `enforce` its deadline starts.
    pub(super) fn protect_nick(&mut self, id: SessionId) {
        let mode = self.config.nick_protection;
        if mode == NickProtection::Off {
            return;
        }
        let Some(session) = self.sessions.get(&id) else { return };
        if session.mirror {
            // Its own node protects its nickname.
            return;
        }
        if !self.accounts.contains_key(&*session.folded) || self.logged_in_as(Some(id), &session.folded) {
            self.unprotect(id);
            return;
        }
        let nick = session.nick.clone();
        let grace = self.config.nick_grace;
        let grace_secs = match mode {
            NickProtection::Enforce => {
                let at = Instant::now() + grace;
                if let Some(old) = self.protect_pending.insert(id, at) {
                    self.protect_deadlines.remove(&(old, id));
                }
                self.protect_deadlines.insert((at, id));
                grace.as_secs().max(1)
            }
            _ => 0,
        };
        self.reply(id, Event::NickProtected { nick, grace_secs });
    }

    /// The session no longer needs to log in to keep its nickname.
    pub(super) fn unprotect(&mut self, id: SessionId) {
        if let Some(at) = self.protect_pending.remove(&id) {
            self.protect_deadlines.remove(&(at, id));
        }
    }

    /// The earliest deadline, for the hub's timer.
    pub(super) fn next_protection_deadline(&self) -> Option<Instant> {
        self.protect_deadlines.first().map(|&(at, _)| at)
    }

    /// Renames every session whose deadline has passed and that still holds a registered
    /// nickname it is not logged in as.
    pub(super) fn on_protection_deadlines(&mut self) {
        let now = Instant::now();
        while let Some(&(at, id)) = self.protect_deadlines.first() {
            if at > now {
                break;
            }
            self.protect_deadlines.pop_first();
            self.protect_pending.remove(&id);
            let Some(session) = self.sessions.get(&id) else { continue };
            if !self.accounts.contains_key(&*session.folded) || self.logged_in_as(Some(id), &session.folded) {
                continue;
            }
            let nick = session.nick.clone();
            self.rename_to_guest(id, &nick);
        }
    }

    /// Renames a session that holds a registered nickname to a free guest name, telling it why.
    pub(super) fn rename_to_guest(&mut self, id: SessionId, nick: &Name) {
        if self.sessions.get(&id).is_some_and(|s| s.mirror) {
            // Held on another node: that node renames it (and tells), while the nickname's
            // claim in the store waits for the guest's to go.
            self.reclaim_on_node(id, nick);
        }
        let guest = self.free_guest_name(id);
        tracing::info!(nick = %nick, guest = %guest, "renamed: a registered nickname without its account");
        let text =
            format!("the nickname {nick} is registered and you did not log in as it: you are now {guest}");
        self.reply(id, Event::Notice { req: None, room: None, text: text.into() });
        self.change_nick(id, &guest, None);
    }

    /// A guest name nobody uses: `Guest` and five digits, walking the 90,000 of them in steps
    /// of a prime (which visits each once) from where the last walk stopped.
    pub(super) fn free_guest_name(&mut self, id: SessionId) -> String {
        for _ in 0..90_000 {
            self.next_guest = (self.next_guest + 7_919) % 90_000;
            let name = format!("Guest{}", 10_000 + self.next_guest);
            let folded = fold(&name);
            if !self.everyone.contains_key(folded.as_str()) && !self.accounts.contains_key(&folded) {
                return name;
            }
        }
        // Ninety thousand guests: the session's own number is free (no nick has 20 digits).
        format!("Guest{}", id.0)
    }
}
