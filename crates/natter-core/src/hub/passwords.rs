//! Passwords: the server password at login and the operators' at `Oper`, compared in constant
//! time, behind the login throttle ([`crate::throttle`]), with every wrong one logged (at a
//! bounded rate, never with what was typed).

use super::Hub;
use crate::refusal::{Refusal, Throttled};
use crate::secret::Secret;
use crate::throttle::Key;
use std::net::IpAddr;
use tokio::time::Instant;

/// A configured server operator, kept as digests.
pub(super) struct Operator {
    pub name: String,
    name_secret: Secret,
    password: Secret,
}

impl Operator {
    pub fn new(name: &str, password: &str) -> Self {
        Self { name: name.to_string(), name_secret: Secret::new(name), password: Secret::new(password) }
    }
}

/// Which password was wrong, for the log.
#[derive(Clone, Copy)]
pub(super) enum Kind<'a> {
    Server,
    /// An operator's; the name when it is one of the configured operators (a name that is
    /// not could be a password typed in the wrong field, so it is not logged).
    Operator(Option<&'a str>),
    /// An account's; the name when it is a registered account (a name that is not could be
    /// a password typed in the wrong field, so it is not logged).
    Account(Option<&'a str>),
    /// A resume token (which names no account until it is found).
    Token,
}

impl Hub {
    /// The refusal for the first of `keys` that still waits after its wrong passwords, if
    /// one does: such an attempt is refused unchecked.
    pub(super) fn still_waiting(&self, keys: &[Key<'_>], now: Instant) -> Option<Refusal> {
        self.throttle.longest_wait(keys, now).map(|(key, wait)| too_many(key, wait))
    }

    /// Checks the server password a login gave, when the server has one. A login without a
    /// password is refused without counting (it guessed nothing); a wrong one counts against
    /// its address, and once the address has too many, attempts are refused unchecked until
    /// its wait is over.
    pub(super) fn check_server_password(
        &mut self,
        given: Option<&str>,
        addr: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        let Some(password) = &self.password else { return Ok(()) };
        let Some(given) = given else { return Err(Refusal::BadPassword) };
        let now = Instant::now();
        let keys: Vec<Key<'_>> = addr.map(Key::Address).into_iter().collect();
        if let Some(refusal) = self.still_waiting(&keys, now) {
            return Err(refusal);
        }
        if password.matches(given).into() {
            return Ok(());
        }
        self.count_failure(&keys, addr, Kind::Server, now);
        Err(Refusal::BadPassword)
    }

    /// Checks an operator's name and password (`Oper`): wrong ones count against the address
    /// and the name, each of which then waits; the right one forgives the name.
    pub(super) fn check_operator(
        &mut self,
        name: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        if self.operators.is_empty() {
            return Err(Refusal::NoOperators);
        }
        let now = Instant::now();
        let mut keys: Vec<Key<'_>> = addr.map(Key::Address).into_iter().collect();
        keys.push(Key::Operator(name));
        if let Some(refusal) = self.still_waiting(&keys, now) {
            return Err(refusal);
        }
        // Every operator is compared, whichever matches: the time taken says nothing.
        let mut named = None;
        let mut right = subtle::Choice::from(0);
        for op in &self.operators {
            let is_name = op.name_secret.matches(name);
            right |= is_name & op.password.matches(password);
            if bool::from(is_name) {
                named = Some(op.name.clone());
            }
        }
        if right.into() {
            self.throttle.forgive(Key::Operator(name));
            return Ok(());
        }
        self.count_failure(&keys, addr, Kind::Operator(named.as_deref()), now);
        Err(Refusal::BadOperatorPassword)
    }

    /// Counts a wrong password against each of `keys` and logs it (within the log's budget).
    pub(super) fn count_failure(
        &mut self,
        keys: &[Key<'_>],
        addr: Option<IpAddr>,
        kind: Kind<'_>,
        now: Instant,
    ) {
        let failures = keys.iter().map(|&k| self.throttle.fail(k, now)).max().unwrap_or(0);
        let Some(unlogged) = self.login_log.take(now) else { return };
        if unlogged > 0 {
            tracing::warn!(count = unlogged, "wrong passwords not logged (too many at once)");
        }
        let wait_s = self.throttle.policy().wait_after(failures).as_secs();
        let addr = addr.map_or_else(|| "-".to_string(), |a| a.to_string());
        match kind {
            Kind::Server => {
                tracing::warn!(%addr, kind = "server password", failures, wait_s, "wrong password")
            }
            Kind::Operator(name) => tracing::warn!(
                %addr,
                kind = "operator password",
                operator = name.unwrap_or("(no such operator)"),
                failures,
                wait_s,
                "wrong password"
            ),
            Kind::Token => {
                tracing::warn!(%addr, kind = "resume token", failures, wait_s, "wrong resume token")
            }
            Kind::Account(name) => tracing::warn!(
                %addr,
                kind = "account password",
                account = name.unwrap_or("(no such account)"),
                failures,
                wait_s,
                "wrong password"
            ),
        }
    }
}

/// The refusal for an attempt that came before its wait was over.
fn too_many(key: Key<'_>, wait: std::time::Duration) -> Refusal {
    let by = match key {
        Key::Address(_) => Throttled::Address,
        Key::Operator(_) => Throttled::Operator,
        Key::Account(_) => Throttled::Account,
    };
    // Whole seconds, rounded up: "try again in 0 s" would be refused again.
    let wait_secs = wait.as_millis().div_ceil(1000).max(1) as u64;
    Refusal::TooManyAttempts { wait_secs, by }
}
