//! Logging in before registering (IRC SASL): the hub's side of
//! [`HubHandle::authenticate`](super::HubHandle::authenticate).
//!
//! The same rules as a logged-in session's `Login` apply: the login throttle per address and
//! per account, refusal unchecked while either waits, a wrong password counted against both,
//! the work done by the password checkers off the hub's task. The answer goes back on the
//! door's channel instead of into a session's output.

use super::passwords::Kind;
use super::verifier::{Asker, Job, Outcome, Queued};
use super::{Hub, SessionId};
use crate::authenticate::{AuthAnswer, Authenticated, Authentication, Credential};
use crate::event::{AccountChange, Event};
use crate::password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
use crate::refusal::Refusal;
use crate::request::Req;
use crate::scram::{SCRAM_ITERATIONS, stand_in_salt};
use crate::throttle::Key;
use crate::vocab::Name;
use natter_proto::names::{fold, validate_nick};
use std::net::IpAddr;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Bytes of a SCRAM-SHA-256 proof.
const PROOF_BYTES: usize = 32;

impl Hub {
    /// A credential offered before registering: refused at once when it cannot be right or
    /// its address or account still waits, else handed to the checkers.
    pub(super) fn authenticate(
        &mut self,
        credential: Credential,
        from: Option<IpAddr>,
        answer: oneshot::Sender<AuthAnswer>,
    ) {
        let folded = match &credential {
            Credential::Password { name, .. }
            | Credential::ScramStart { name }
            | Credential::ScramProof { name, .. } => fold(name),
            Credential::Certificate { .. } => String::new(),
        };
        let now = Instant::now();
        let account_key = (!folded.is_empty()).then_some(Key::Account(&folded));
        let keys: Vec<Key<'_>> = [from.map(Key::Address), account_key].into_iter().flatten().collect();
        if let Some(refusal) = self.still_waiting(&keys, now) {
            let _ = answer.send(Err(refusal));
            return;
        }
        let job = match credential {
            Credential::Password { name, password } => {
                // No account has such a name or password: wrong without a hash, and counted.
                let impossible = validate_nick(&name).is_err()
                    || password.expose().len() > MAX_PASSWORD_BYTES
                    || password.expose().chars().count() < MIN_PASSWORD_CHARS;
                if impossible {
                    let known = self.accounts.get(&folded).cloned();
                    self.count_failure(&keys, from, Kind::Account(known.as_deref()), now);
                    let _ = answer.send(Err(Refusal::BadCredentials));
                    return;
                }
                Job::Login { folded, password }
            }
            Credential::ScramStart { name } => {
                if validate_nick(&name).is_err() {
                    let salt = stand_in_salt(&self.scram_key, &folded);
                    let _ = answer.send(Ok(Authentication::ScramSalt { salt, iterations: SCRAM_ITERATIONS }));
                    return;
                }
                Job::ScramCredential { folded }
            }
            Credential::ScramProof { name, auth_message, proof } => {
                if validate_nick(&name).is_err() || proof.len() != PROOF_BYTES {
                    let known = self.accounts.get(&folded).cloned();
                    self.count_failure(&keys, from, Kind::Account(known.as_deref()), now);
                    let _ = answer.send(Err(Refusal::BadCredentials));
                    return;
                }
                Job::ScramProof { folded, auth_message, proof }
            }
            Credential::Certificate { fingerprint } => Job::Certificate { fingerprint },
        };
        if !self.verifier.has_room(&job) {
            let _ = answer.send(Err(Refusal::AccountsBusy));
            return;
        }
        self.verifier.submit(&self.store, Queued { asker: Asker::Door { answer, from }, req: None, job });
    }

    /// A checker's answer to a door: applied to the throttle and the table of registered
    /// names as a session's login is, then sent back.
    pub(super) fn on_door_checked(
        &mut self,
        answer: oneshot::Sender<AuthAnswer>,
        from: Option<IpAddr>,
        folded: &str,
        outcome: Outcome,
    ) {
        let result = match outcome {
            Outcome::LoggedIn { account: Some(record), .. } | Outcome::Certificate(Some(record)) => {
                Ok(self.authenticated(&record.folded, &record.name, None))
            }
            Outcome::ScramChecked { account: Some((record, signature)), .. } => {
                Ok(self.authenticated(&record.folded, &record.name, Some(signature)))
            }
            Outcome::LoggedIn { account: None, known } | Outcome::ScramChecked { account: None, known } => {
                if !known {
                    self.forget_account(folded);
                }
                self.wrong_password(folded, known, from);
                Err(Refusal::BadCredentials)
            }
            // No certificate is registered: nothing was guessed, nothing is counted.
            Outcome::Certificate(None) => Err(Refusal::BadCredentials),
            Outcome::Scram(credential) => Ok(match credential {
                Some(c) => Authentication::ScramSalt { salt: c.salt, iterations: c.iterations },
                None => Authentication::ScramSalt {
                    salt: stand_in_salt(&self.scram_key, folded),
                    iterations: SCRAM_ITERATIONS,
                },
            }),
            Outcome::Failed(e) => {
                tracing::error!(error = %e, "a SASL login failed in the store");
                Err(Refusal::AccountsUnavailable { problem: e.to_string().into() })
            }
            // Jobs only sessions ask for.
            Outcome::Registered(_)
            | Outcome::PasswordChanged(_)
            | Outcome::Certificates { .. }
            | Outcome::CertificatesFull
            | Outcome::Resumed { .. }
            | Outcome::Issued(_)
            | Outcome::Revoked { .. } => Err(Refusal::BadCredentials),
        };
        // The connection may have gone meanwhile: nobody to tell.
        let _ = answer.send(result);
    }

    /// A right credential: the account is known to be registered, its throttle forgiven.
    fn authenticated(&mut self, folded: &str, name: &str, signature: Option<[u8; 32]>) -> Authentication {
        self.note_account(folded, name);
        self.throttle.forgive(Key::Account(folded));
        tracing::info!(account = %name, "authenticated before registering");
        Authentication::LoggedIn(Authenticated::new(Name::from(name), signature))
    }

    /// `AdoptAccount`: a logged-in session's SASL login (re-authentication), to this account
    /// or from another one to it.
    pub(super) fn adopt_account(&mut self, id: SessionId, account: Authenticated, req: Req) {
        let name = account.account().clone();
        if let Some(was) = self.logged_in.get(&id)
            && fold(was) != fold(&name)
        {
            tracing::info!(nick = %self.sessions[&id].nick, from = %was, to = %name, "switched accounts");
        }
        self.log_in_as(id, name.clone());
        self.reply(id, Event::Account { req, change: AccountChange::LoggedIn, account: name });
    }
}
