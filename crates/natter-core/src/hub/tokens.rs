//! Resume tokens (`crate::resume`): logging in again without the password.
//!
//! A session logged in to an account asks for a token (`IssueToken`); its client keeps it and
//! gives it at its next login (`Registration::resume`), which logs that session in to the
//! account right after its welcome. The store reads and writes run in the checkers' quick
//! lane (`verifier.rs`), off the hub's task, and their answers take their place among the
//! session's answers like a password check's. A token that logs in to nothing counts against
//! the address in the login throttle, like a wrong password.

use super::passwords::Kind;
use super::verifier::Job;
use super::{Hub, SessionId};
use crate::event::{AccountChange, Event};
use crate::refusal::Refusal;
use crate::request::Req;
use crate::resume::{ResumeToken, TokenDigest};
use crate::store::AccountRecord;
use crate::throttle::Key;
use crate::vocab::Name;
use natter_proto::names::fold;
use std::net::IpAddr;
use tokio::time::Instant;

impl Hub {
    /// A session that just logged in gave a resume token: its account is looked up off the
    /// hub's task, and nick protection waits for the answer (a refused token starts it then).
    /// Returns true when the token was refused at once: the caller starts nick protection
    /// once the session's login is done, where a refusal after the lookup starts it too.
    pub(super) fn resume_account(
        &mut self,
        id: SessionId,
        token: ResumeToken,
        from: Option<IpAddr>,
        req: Req,
    ) -> bool {
        let now = Instant::now();
        let keys: Vec<Key<'_>> = from.map(Key::Address).into_iter().collect();
        if let Some(refusal) = self.still_waiting(&keys, now) {
            self.refuse(id, req, refusal);
            return true;
        }
        // Not a token's shape: never issued, refused without a lookup, counted all the same.
        let Some(digest) = token.digest() else {
            self.count_failure(&keys, from, Kind::Token, now);
            self.refuse(id, req, Refusal::BadToken);
            return true;
        };
        self.login_from.insert(id, from);
        !self.submit_check(id, req, Job::Resume { digest })
    }

    /// The lookup of a resume token came back: the session is logged in to its account, or
    /// the token counts as a wrong password. Returns the answer and whether it logged in.
    pub(super) fn on_resumed(
        &mut self,
        id: SessionId,
        req: Req,
        account: Option<AccountRecord>,
        digest: TokenDigest,
        from: Option<IpAddr>,
    ) -> (Event, bool) {
        let Some(record) = account else {
            let now = Instant::now();
            let keys: Vec<Key<'_>> = from.map(Key::Address).into_iter().collect();
            self.count_failure(&keys, from, Kind::Token, now);
            return (Event::Error { req, refusal: Refusal::BadToken }, false);
        };
        self.note_account(&record.folded, &record.name);
        let name: Name = record.name.as_str().into();
        tracing::info!(nick = %self.sessions[&id].nick, account = %name, "logged in to an account with a resume token");
        self.session_tokens.insert(id, digest);
        self.log_in_as(id, name.clone());
        // The nickname may be another account's than the token's: protection decides.
        self.protect_nick(id);
        (Event::Account { req, change: AccountChange::LoggedIn, account: name }, true)
    }

    /// `IssueToken`: a new token for the account the session is logged in as.
    pub(super) fn issue_token(&mut self, id: SessionId, req: Req) {
        let Some(account) = self.logged_in.get(&id) else {
            return self.refuse(id, req, Refusal::NotLoggedIn);
        };
        let folded = fold(account);
        let replaces = self.session_tokens.get(&id).copied();
        self.submit_check(id, req, Job::IssueToken { folded, replaces });
    }

    /// A token was made and stored: the session's from now on (logging out revokes it).
    pub(super) fn on_issued(
        &mut self,
        id: SessionId,
        req: Req,
        issued: Option<(ResumeToken, TokenDigest)>,
    ) -> Event {
        let Some((token, digest)) = issued else {
            let problem = "the server has no randomness to make a token with".into();
            return Event::Error { req, refusal: Refusal::AccountsUnavailable { problem } };
        };
        let Some(account) = self.logged_in.get(&id).cloned() else {
            // Unreachable while the request is pending (logging out waits for it); harmless.
            return Event::Error { req, refusal: Refusal::NotLoggedIn };
        };
        self.session_tokens.insert(id, digest);
        Event::ResumeToken { req, account, token }
    }
}
