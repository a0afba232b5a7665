//! Accounts: registering a nickname, logging in and out, changing a password.
//!
//! The hub decides; the password work (argon2id, and the store reads and writes beside it)
//! runs on the blocking pool through the [`Verifier`](super::verifier::Verifier), and its
//! answer takes its place among the session's answers (the session's output is held behind
//! it, like a history page). Wrong passwords count against the account and the address in the
//! login throttle shared with the server and operator passwords.
//!
//! The hub keeps a table of the registered names (loaded at start, kept up to date by what it
//! registers and by every login's read of the store) for nick protection; the password hash
//! itself is read from the store at every login, so `natter user` can change or delete an
//! account while the server runs.

use super::passwords::Kind;
use super::verifier::{Asker, Checked, Job, Outcome, Queued};
use super::{Hub, SessionId, identity::skeleton_key};
use crate::event::{AccountChange, Event};
use crate::limits::MAX_CERTIFICATES;
use crate::password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, Password, check_new_password};
use crate::refusal::Refusal;
use crate::request::Req;
use crate::store::AccountRecord;
use crate::throttle::Key;
use crate::vocab::Name;
use natter_proto::names::{fold, validate_nick};
use std::net::IpAddr;
use tokio::time::Instant;

impl Hub {
    /// Remembers that `name` is registered (for nick protection).
    pub(super) fn note_account(&mut self, folded: &str, name: &str) {
        self.account_looks.insert(skeleton_key(name), folded.to_string());
        self.accounts.insert(folded.to_string(), name.into());
    }

    /// Forgets a registered name (the store no longer has it: `natter user del`).
    pub(super) fn forget_account(&mut self, folded: &str) {
        if let Some(name) = self.accounts.remove(folded) {
            let look = skeleton_key(&name);
            if self.account_looks.get(&look).is_some_and(|f| f == folded) {
                self.account_looks.remove(&look);
            }
        }
    }

    /// `Register`: the session's nickname becomes an account with this password.
    pub(super) fn register_account(
        &mut self,
        id: SessionId,
        password: Password,
        from: Option<IpAddr>,
        req: Req,
    ) {
        if let Some(account) = self.logged_in.get(&id) {
            return self.refuse(id, req, Refusal::AlreadyLoggedIn { account: account.clone() });
        }
        let session = &self.sessions[&id];
        let (name, folded) = (session.nick.to_string(), session.folded.to_string());
        if let Some(registered) = self.accounts.get(&folded) {
            return self.refuse(id, req, Refusal::AccountExists { name: registered.clone() });
        }
        if let Err(problem) = check_new_password(password.expose()) {
            return self.refuse(id, req, Refusal::WeakPassword { problem });
        }
        if let Err(wait) = self.registrations.take(from, Instant::now()) {
            let wait_secs = wait.as_millis().div_ceil(1000).max(1) as u64;
            return self.refuse(id, req, Refusal::TooManyRegistrations { wait_secs });
        }
        self.submit_check(id, req, Job::Register { folded, name, password });
    }

    /// `Login`: checks the account's password off the hub's task.
    pub(super) fn login_account(
        &mut self,
        id: SessionId,
        name: &str,
        password: Password,
        from: Option<IpAddr>,
        req: Req,
    ) {
        if let Some(account) = self.logged_in.get(&id) {
            return self.refuse(id, req, Refusal::AlreadyLoggedIn { account: account.clone() });
        }
        let folded = fold(name);
        let now = Instant::now();
        let keys = [from.map(Key::Address), Some(Key::Account(&folded))];
        let keys: Vec<Key<'_>> = keys.into_iter().flatten().collect();
        if let Some(refusal) = self.still_waiting(&keys, now) {
            return self.refuse(id, req, refusal);
        }
        // No account can have a password outside the rules, nor a name that is not a nick:
        // such an attempt is wrong without a hash (and counts like any wrong password).
        let impossible = validate_nick(name).is_err()
            || password.expose().len() > MAX_PASSWORD_BYTES
            || password.expose().chars().count() < MIN_PASSWORD_CHARS;
        if impossible {
            let known = self.accounts.get(&folded).cloned();
            self.count_failure(&keys, from, Kind::Account(known.as_deref()), now);
            return self.refuse(id, req, Refusal::BadCredentials);
        }
        self.login_from.insert(id, from);
        self.submit_check(id, req, Job::Login { folded, password });
    }

    /// `Logout`. A session holding a resume token has it revoked first (in the store, off
    /// the hub's task): the answer comes once the token can no longer log anyone in.
    pub(super) fn logout_account(&mut self, id: SessionId, req: Req) {
        let Some(account) = self.logged_in.get(&id).cloned() else {
            return self.refuse(id, req, Refusal::NotLoggedIn);
        };
        if let Some(&digest) = self.session_tokens.get(&id) {
            let job = Job::Revoke { digest, account: account.clone() };
            if let Err(refusal) = self.may_submit(id, &job) {
                return self.refuse(id, req, refusal);
            }
            self.session_tokens.remove(&id);
            self.submit_check(id, req, job);
        } else {
            self.reply(
                id,
                Event::Account { req, change: AccountChange::LoggedOut, account: account.clone() },
            );
        }
        self.logged_in.remove(&id);
        tracing::info!(nick = %self.sessions[&id].nick, account = %account, "logged out of an account");
        self.tell_neighbours_account(id, None);
        // Holding a registered nickname without its account again.
        self.protect_nick(id);
    }

    /// `Passwd`: checks the current password, then stores the new one's hash.
    pub(super) fn change_password(
        &mut self,
        id: SessionId,
        old: Password,
        new: Password,
        from: Option<IpAddr>,
        req: Req,
    ) {
        let Some(account) = self.logged_in.get(&id).cloned() else {
            return self.refuse(id, req, Refusal::NotLoggedIn);
        };
        let folded = fold(&account);
        let now = Instant::now();
        let keys = [from.map(Key::Address), Some(Key::Account(&folded))];
        let keys: Vec<Key<'_>> = keys.into_iter().flatten().collect();
        if let Some(refusal) = self.still_waiting(&keys, now) {
            return self.refuse(id, req, refusal);
        }
        if let Err(problem) = check_new_password(new.expose()) {
            return self.refuse(id, req, Refusal::WeakPassword { problem });
        }
        self.login_from.insert(id, from);
        self.submit_check(id, req, Job::Passwd { folded, old, new });
    }

    /// `Certificates`: the logged-in account's client certificates, changed or listed in the
    /// store off the hub's task.
    pub(super) fn certificates(&mut self, id: SessionId, change: crate::vocab::CertificateChange, req: Req) {
        let Some(account) = self.logged_in.get(&id) else {
            return self.refuse(id, req, Refusal::NotLoggedIn);
        };
        let folded = fold(account);
        self.submit_check(id, req, Job::Certificates { folded, change });
    }

    /// Why the checkers would refuse `job` now: the session already waits for one, or the
    /// job's queue is full.
    pub(super) fn may_submit(&self, id: SessionId, job: &Job) -> Result<(), Refusal> {
        if self.checking.contains_key(&id) {
            return Err(Refusal::AccountPending);
        }
        if !self.verifier.has_room(job) {
            return Err(Refusal::AccountsBusy);
        }
        Ok(())
    }

    /// Hands a job to the checkers, holding the session's later answers behind it; refused
    /// (and `false`) when the session already waits for one or the checkers' queue is full.
    pub(super) fn submit_check(&mut self, id: SessionId, req: Req, job: Job) -> bool {
        if let Err(refusal) = self.may_submit(id, &job) {
            self.login_from.remove(&id);
            self.refuse(id, req, refusal);
            return false;
        }
        let ticket = self.hold_for_answer(id);
        self.checking.insert(id, ticket);
        self.verifier.submit(&self.store, Queued { asker: Asker::Session { session: id, ticket }, req, job });
        true
    }

    /// A checker's answer: the hub applies it and answers the session in its place.
    pub(super) fn on_checked(&mut self, checked: Checked) {
        let sessions = &self.sessions;
        self.verifier.finished(&self.store, checked.quick, |s| sessions.contains_key(&s));
        let Checked { asker, req, folded, outcome, .. } = checked;
        let (id, ticket) = match asker {
            Asker::Session { session, ticket } => (session, ticket),
            Asker::Door { answer, from } => return self.on_door_checked(answer, from, &folded, outcome),
        };
        self.checking.remove(&id);
        let from = self.login_from.remove(&id).flatten();
        if !self.sessions.contains_key(&id) {
            return;
        }
        let event = match outcome {
            Outcome::Registered(true) => {
                let name = self.sessions[&id].nick.clone();
                self.note_account(&folded, &name);
                tracing::info!(account = %name, "registered an account");
                self.log_in_as(id, name.clone());
                Event::Account { req, change: AccountChange::Registered, account: name }
            }
            Outcome::Registered(false) => {
                let name = self.sessions[&id].nick.clone();
                self.note_account(&folded, &name);
                Event::Error { req, refusal: Refusal::AccountExists { name } }
            }
            Outcome::LoggedIn { account: Some(record), .. } => {
                self.note_account(&record.folded, &record.name);
                self.throttle.forgive(Key::Account(&record.folded));
                let name: Name = record.name.as_str().into();
                tracing::info!(nick = %self.sessions[&id].nick, account = %name, "logged in to an account");
                self.log_in_as(id, name.clone());
                Event::Account { req, change: AccountChange::LoggedIn, account: name }
            }
            Outcome::LoggedIn { account: None, known } => {
                if !known {
                    self.forget_account(&folded);
                }
                self.wrong_password(&folded, known, from);
                Event::Error { req, refusal: Refusal::BadCredentials }
            }
            Outcome::PasswordChanged(true) => {
                // Every token of the account is revoked, this session's among them.
                self.session_tokens.remove(&id);
                let account = self.logged_in.get(&id).cloned().unwrap_or_else(|| folded.as_str().into());
                tracing::info!(account = %account, "changed an account's password");
                Event::Account { req, change: AccountChange::PasswordChanged, account }
            }
            Outcome::PasswordChanged(false) => {
                self.wrong_password(&folded, true, from);
                Event::Error { req, refusal: Refusal::BadCredentials }
            }
            Outcome::Resumed { account, digest } => {
                let (event, resumed) = self.on_resumed(id, req, account, digest, from);
                self.answer_held(id, ticket, event);
                if !resumed {
                    // Holding a registered nickname without its account: told now.
                    self.protect_nick(id);
                }
                return;
            }
            Outcome::Issued(issued) => self.on_issued(id, req, issued),
            Outcome::Revoked { account } => Event::Account { req, change: AccountChange::LoggedOut, account },
            Outcome::Failed(e) => {
                tracing::error!(error = %e, "an account request failed in the store");
                Event::Error { req, refusal: Refusal::AccountsUnavailable { problem: e.to_string().into() } }
            }
            Outcome::CertificatesFull => {
                Event::Error { req, refusal: Refusal::TooManyCertificates { max: MAX_CERTIFICATES } }
            }
            Outcome::Certificates { change, done, fingerprints } => {
                let account = self.logged_in.get(&id).cloned().unwrap_or_else(|| folded.as_str().into());
                let fingerprints = fingerprints.into_iter().map(Name::from).collect();
                Event::Certificates { req, account, change, done, fingerprints }
            }
            // Asked only by doors before registration (`authenticate.rs`).
            Outcome::Scram(_) | Outcome::ScramChecked { .. } | Outcome::Certificate(_) => return,
        };
        self.answer_held(id, ticket, event);
    }

    /// Counts a wrong account password against the account and the address; the log names
    /// the account only when it exists (`known`).
    pub(super) fn wrong_password(&mut self, folded: &str, known: bool, from: Option<IpAddr>) {
        let now = Instant::now();
        let keys = [from.map(Key::Address), Some(Key::Account(folded))];
        let keys: Vec<Key<'_>> = keys.into_iter().flatten().collect();
        self.count_failure(&keys, from, Kind::Account(known.then_some(folded)), now);
    }

    /// The session is now logged in as `account`: its nickname, if the account's, is its own,
    /// and what was sent to the account while nobody was logged in to it comes after the
    /// login's answer.
    pub(super) fn log_in_as(&mut self, id: SessionId, account: Name) {
        self.logged_in.insert(id, account.clone());
        self.unprotect(id);
        self.restore_standing(id);
        self.deliver_mail(id, &account);
        self.tell_neighbours_account(id, Some(account));
    }

    /// Tells whoever shares a room with `id` that it logged in to `account` (or out).
    pub(super) fn tell_neighbours_account(&mut self, id: SessionId, account: Option<Name>) {
        self.tell_nodes(id, crate::cluster::Act::Account { account: account.clone() });
        let s = &self.sessions[&id];
        let (nick, ident) = (s.nick.clone(), s.ident.clone());
        let (others, watchers) = self.presence_audience(id);
        let event = |watched| Event::AccountOf {
            nick: nick.clone(),
            ident: ident.clone(),
            account: account.clone(),
            watched,
        };
        self.broadcast(others, event(false));
        self.broadcast(watchers, event(true));
    }

    /// Asks the store, off the hub's task, whether another process changed the accounts, and
    /// for the table of registered names when it did (`HubConfig::account_refresh`).
    pub(super) fn refresh_accounts(&mut self) {
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        let (store, seen, back) = (self.store.clone(), self.accounts_seen, self.refreshed.clone());
        tokio::task::spawn_blocking(move || {
            let read = match store.outside_writes() {
                Ok(version) if version != seen => match store.accounts() {
                    Ok(accounts) => Some((version, accounts)),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the accounts again");
                        None
                    }
                },
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot tell whether the accounts changed");
                    None
                }
            };
            let _ = back.send(read);
        });
    }

    /// The table of registered names, read again: names `natter user` added are protected
    /// from now on (a session holding one is told, and under `enforce` its clock starts), and
    /// names it deleted no longer are.
    pub(super) fn on_account_table(&mut self, read: TableRead) {
        self.refreshing = false;
        let Some((version, accounts)) = read else { return };
        self.accounts_seen = version;
        let before: Vec<String> = self.accounts.keys().cloned().collect();
        self.accounts.clear();
        self.account_looks.clear();
        for account in &accounts {
            self.note_account(&account.folded, &account.name);
        }
        tracing::info!(accounts = accounts.len(), "read the accounts again (changed by another process)");
        let added: Vec<SessionId> = accounts
            .iter()
            .filter(|a| !before.contains(&a.folded))
            .filter_map(|a| self.everyone.get(a.folded.as_str()).copied())
            .collect();
        for id in added {
            self.protect_nick(id);
        }
    }
}

/// What a read of the table of registered names found: `None` when nothing changed (or the
/// store could not say); else the store's new `outside_writes` and every account.
pub(crate) type TableRead = Option<(u64, Vec<AccountRecord>)>;
