//! The password checker: argon2id hashing and verification, with the store reads and writes
//! that go with them, run on tokio's blocking pool so that the hub never spends a hash's tens
//! of milliseconds on its own task.
//!
//! At most [`MAX_CHECKS`] run at once (each holds 19 MiB of argon2 memory and a core), and
//! at most [`MAX_QUEUED`] wait behind them; beyond that a request is refused at once
//! (`AccountsBusy`), so a burst of logins costs bounded memory and never stalls delivery.
//! Each answer comes back to the hub as a [`Checked`], which the hub applies in its own turn.
//!
//! The hashing itself runs on [`MAX_CHECKS`] threads of the lowest scheduling priority: on a
//! busy machine (or a server pinned to one core) a burst of logins then takes the CPU the
//! chat leaves over, rather than a share of the hub's. The blocking-pool task waits for its
//! hash without using the CPU; it is kept so that tokio sees the work in flight (paused test
//! time does not jump past a login being checked).
//!
//! Resume tokens (`crate::resume`), SCRAM's credential reads and proof checks (two HMACs) and
//! client certificates need no hash, only a store read or write: they run in a lane of their
//! own ([`MAX_QUICK`] at once, [`MAX_QUICK_QUEUED`] waiting), so that a burst
//! of password logins does not hold up the clients resuming after a restart, nor the other
//! way round.

use super::SessionId;
use crate::authenticate::AuthAnswer;
use crate::limits::MAX_CERTIFICATES;
use crate::password::{Password, hash_password, needs_rehash, password_secrets, verify_password};
use crate::resume::{MAX_TOKENS_PER_ACCOUNT, ResumeToken, TOKEN_IDLE_EXPIRY_MS, TokenDigest, TokenRecord};
use crate::scram::ScramCredential;
use crate::store::{AccountRecord, Store, StoreError};
use crate::vocab::Name;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Password checks running at once.
pub(crate) const MAX_CHECKS: usize = 2;
/// Password checks waiting for a free checker.
pub(crate) const MAX_QUEUED: usize = 64;
/// Token requests (store reads and writes, no hash) running at once.
pub(crate) const MAX_QUICK: usize = 4;
/// Token requests waiting: a restarted server sees every client resume at once, and each
/// waiting one costs about a hundred bytes.
pub(crate) const MAX_QUICK_QUEUED: usize = 4096;

/// What to do with a password or a resume token.
pub(crate) enum Job {
    /// Register `name` with `password`.
    Register { folded: String, name: String, password: Password },
    /// Check `password` against the account `folded`.
    Login { folded: String, password: Password },
    /// Check `old` against the account, then store the hash of `new` and revoke the
    /// account's resume tokens.
    Passwd { folded: String, old: Password, new: Password },
    /// Read the account's SCRAM credential (no hashing: a store read).
    ScramCredential { folded: String },
    /// Check a SCRAM proof of `auth_message` against the account's credential.
    ScramProof { folded: String, auth_message: String, proof: Vec<u8> },
    /// Find the account a client certificate is registered to.
    Certificate { fingerprint: String },
    /// Change or list an account's certificates (store work only).
    Certificates { folded: String, change: crate::vocab::CertificateChange },
    /// Log in with a resume token.
    Resume { digest: TokenDigest },
    /// Issue a resume token for the account, revoking the session's previous one.
    IssueToken { folded: String, replaces: Option<TokenDigest> },
    /// Revoke the session's token (it logs out of `account`).
    Revoke { digest: TokenDigest, account: Name },
}

impl Job {
    /// The folded account name the job concerns.
    fn folded(&self) -> &str {
        match self {
            Job::Register { folded, .. }
            | Job::Login { folded, .. }
            | Job::Passwd { folded, .. }
            | Job::ScramCredential { folded }
            | Job::ScramProof { folded, .. }
            | Job::Certificates { folded, .. }
            | Job::IssueToken { folded, .. } => folded,
            Job::Certificate { .. } | Job::Resume { .. } | Job::Revoke { .. } => "",
        }
    }

    /// True for the jobs that hash no password (resume tokens, SCRAM, certificates): quick
    /// store work, in a lane of their own, so that they never wait behind argon2.
    fn quick(&self) -> bool {
        matches!(
            self,
            Job::Resume { .. }
                | Job::IssueToken { .. }
                | Job::Revoke { .. }
                | Job::ScramCredential { .. }
                | Job::ScramProof { .. }
                | Job::Certificate { .. }
                | Job::Certificates { .. }
        )
    }
}

/// What a job found.
pub(crate) enum Outcome {
    /// Registered (`true`), or the name was taken meanwhile (`false`).
    Registered(bool),
    /// The account as stored when the password was right; `None`: wrong name or password.
    /// `known` says whether the account exists (the hub updates its table of registered
    /// names, which `natter user` may have changed behind its back).
    LoggedIn { account: Option<AccountRecord>, known: bool },
    /// Whether the current password was right (and the new one stored).
    PasswordChanged(bool),
    /// The account's SCRAM credential; `None`: no such account, or none yet.
    Scram(Option<ScramCredential>),
    /// The account and the server's signature when the SCRAM proof was right.
    ScramChecked { account: Option<(AccountRecord, [u8; 32])>, known: bool },
    /// The account a certificate is registered to.
    Certificate(Option<AccountRecord>),
    /// The account has `MAX_CERTIFICATES` already: nothing was added.
    CertificatesFull,
    /// Whether a change of certificates was made, and the account's fingerprints after it.
    Certificates { change: crate::vocab::CertificateChange, done: bool, fingerprints: Vec<String> },
    /// The account a resume token logs in to; `None`: unknown, revoked or expired.
    Resumed { account: Option<AccountRecord>, digest: TokenDigest },
    /// A new token and its digest; `None` when the system had no randomness to give.
    Issued(Option<(ResumeToken, TokenDigest)>),
    /// The session's token is revoked and it logged out of `account`.
    Revoked { account: Name },
    /// The store failed.
    Failed(StoreError),
}

/// Who waits for a job's answer.
pub(crate) enum Asker {
    /// A session: the answer takes its place among the session's held answers.
    Session { session: SessionId, ticket: u64 },
    /// A connection not logged in yet (IRC SASL), waiting on the channel; `from` is its
    /// address, which a wrong password counts against.
    Door { answer: oneshot::Sender<AuthAnswer>, from: Option<IpAddr> },
}

impl Asker {
    /// False once nobody waits for the answer any more.
    fn waits(&self, alive: &impl Fn(SessionId) -> bool) -> bool {
        match self {
            Asker::Session { session, .. } => alive(*session),
            Asker::Door { answer, .. } => !answer.is_closed(),
        }
    }
}

/// A job's answer, on its way back to the hub.
pub(crate) struct Checked {
    pub asker: Asker,
    pub req: crate::request::Req,
    /// The folded account name the job concerned.
    pub folded: String,
    pub outcome: Outcome,
    /// It ran in the quick lane (no hash).
    pub quick: bool,
}

/// A job waiting for a checker.
pub(crate) struct Queued {
    pub asker: Asker,
    pub req: crate::request::Req,
    pub job: Job,
}

/// Jobs of one kind: how many run, and who waits.
struct Lane {
    running: usize,
    queue: VecDeque<Queued>,
    max_running: usize,
    max_queued: usize,
}

impl Lane {
    fn new(max_running: usize, max_queued: usize) -> Self {
        Self { running: 0, queue: VecDeque::new(), max_running, max_queued }
    }

    fn has_room(&self) -> bool {
        self.running < self.max_running || self.queue.len() < self.max_queued
    }
}

/// The checkers: the hashing lane and the quick lane.
pub(crate) struct Verifier {
    hashing: Lane,
    quick: Lane,
    done: mpsc::UnboundedSender<Checked>,
}

impl Verifier {
    pub fn new(done: mpsc::UnboundedSender<Checked>) -> Self {
        Self {
            hashing: Lane::new(MAX_CHECKS, MAX_QUEUED),
            quick: Lane::new(MAX_QUICK, MAX_QUICK_QUEUED),
            done,
        }
    }

    /// False when the job's lane is full: the caller refuses the request.
    pub fn has_room(&self, job: &Job) -> bool {
        if job.quick() { self.quick.has_room() } else { self.hashing.has_room() }
    }

    /// Starts the job now, or queues it (the caller checked [`Verifier::has_room`]).
    pub fn submit(&mut self, store: &Arc<dyn Store>, queued: Queued) {
        let lane = if queued.job.quick() { &mut self.quick } else { &mut self.hashing };
        if lane.running < lane.max_running {
            lane.running += 1;
            self.start(store, queued);
        } else {
            lane.queue.push_back(queued);
        }
    }

    /// A job of the quick lane (`quick`) or the hashing lane finished: the next waiting one
    /// whose asker still waits starts.
    pub fn finished(&mut self, store: &Arc<dyn Store>, quick: bool, alive: impl Fn(SessionId) -> bool) {
        let lane = if quick { &mut self.quick } else { &mut self.hashing };
        lane.running -= 1;
        while let Some(next) = lane.queue.pop_front() {
            if next.asker.waits(&alive) {
                lane.running += 1;
                self.start(store, next);
                break;
            }
        }
    }

    fn start(&mut self, store: &Arc<dyn Store>, queued: Queued) {
        let store = store.clone();
        let done = self.done.clone();
        let Queued { asker, req, job } = queued;
        let quick = job.quick();
        tokio::task::spawn_blocking(move || {
            let folded = job.folded().to_string();
            let outcome = if quick {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&*store, job).1)).ok()
            } else {
                hashers().run(move || run(&*store, job).1)
            };
            let outcome = outcome.unwrap_or_else(|| {
                Outcome::Failed(StoreError::Io("the account request failed unexpectedly".into()))
            });
            // No receiver: the hub has stopped.
            let _ = done.send(Checked { asker, req, folded, outcome, quick });
        });
    }
}

/// The threads that hash, at the lowest priority; started at the first login.
struct Hashers {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>>,
}

impl Hashers {
    fn start() -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..MAX_CHECKS {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("natter-hash-{i}")).spawn(move || {
                // Best effort: where the system refuses, hashing runs at normal priority.
                if let Err(e) =
                    thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
                {
                    tracing::debug!(error = ?e, "password hashing runs at normal priority");
                }
                loop {
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Self { jobs: std::sync::Mutex::new(jobs) }
    }

    /// Runs `work` on a hashing thread and waits for its result (on the calling thread when
    /// no hashing thread is there); `None` when it panicked.
    fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (done, result) = std::sync::mpsc::sync_channel(1);
        let job: Box<dyn FnOnce() + Send> = Box::new(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).ok();
            let _ = done.send(out);
        });
        let sent = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job);
        if let Err(std::sync::mpsc::SendError(job)) = sent {
            job();
        }
        result.recv().ok().flatten()
    }
}

fn hashers() -> &'static Hashers {
    static HASHERS: std::sync::OnceLock<Hashers> = std::sync::OnceLock::new();
    HASHERS.get_or_init(Hashers::start)
}

/// Does one job (blocking).
fn run(store: &dyn Store, job: Job) -> (String, Outcome) {
    match job {
        Job::Register { folded, name, password } => {
            let outcome = match password_secrets(password.expose()) {
                Ok(secrets) => {
                    let now = crate::time::now_ms();
                    let record = AccountRecord {
                        folded: folded.clone(),
                        name,
                        hash: secrets.hash,
                        created_ts: now,
                        last_login_ts: Some(now),
                        scram: Some(secrets.scram),
                    };
                    store.create_account(&record).map_or_else(Outcome::Failed, Outcome::Registered)
                }
                Err(e) => Outcome::Failed(StoreError::Io(e.to_string())),
            };
            (folded, outcome)
        }
        Job::Login { folded, password } => {
            let outcome = match store.account(&folded) {
                Ok(record) => {
                    let known = record.is_some();
                    let right = verify_password(password.expose(), record.as_ref().map(|r| r.hash.as_str()));
                    let account = record.filter(|_| right);
                    if let Some(a) = &account {
                        // Failing to note the time (or to rehash) does not fail the login.
                        let _ = store.touch_account(&a.folded, crate::time::now_ms());
                        if needs_rehash(&a.hash)
                            && let Ok(hash) = hash_password(password.expose())
                        {
                            let _ = store.set_account_hash(&a.folded, &hash, a.scram.as_deref());
                        }
                        // An account made before SCRAM gets its credential now.
                        if a.scram.is_none()
                            && let Ok(scram) = ScramCredential::new(password.expose())
                        {
                            let _ = store.set_account_scram(&a.folded, &scram.to_stored());
                        }
                    }
                    Outcome::LoggedIn { account, known }
                }
                Err(e) => Outcome::Failed(e),
            };
            (folded, outcome)
        }
        Job::Passwd { folded, old, new } => {
            let outcome = match store.account(&folded) {
                Ok(record) => {
                    if verify_password(old.expose(), record.as_ref().map(|r| r.hash.as_str())) {
                        match password_secrets(new.expose()) {
                            Ok(secrets) => {
                                match store.set_account_hash(&folded, &secrets.hash, Some(&secrets.scram)) {
                                    // Whoever holds a token of the old password's time is out.
                                    Ok(true) => store
                                        .revoke_resume_tokens(&folded)
                                        .map_or_else(Outcome::Failed, |_| Outcome::PasswordChanged(true)),
                                    Ok(false) => Outcome::PasswordChanged(false),
                                    Err(e) => Outcome::Failed(e),
                                }
                            }
                            Err(e) => Outcome::Failed(StoreError::Io(e.to_string())),
                        }
                    } else {
                        Outcome::PasswordChanged(false)
                    }
                }
                Err(e) => Outcome::Failed(e),
            };
            (folded, outcome)
        }
        Job::ScramCredential { folded } => {
            let outcome = match store.account(&folded) {
                Ok(record) => Outcome::Scram(record.and_then(|r| scram_of(&r))),
                Err(e) => Outcome::Failed(e),
            };
            (folded, outcome)
        }
        Job::ScramProof { folded, auth_message, proof } => {
            let outcome = match store.account(&folded) {
                Ok(record) => {
                    let known = record.is_some();
                    let checked = record.and_then(|r| {
                        let signature = scram_of(&r)?.verify(auth_message.as_bytes(), &proof)?;
                        Some((r, signature))
                    });
                    if let Some((a, _)) = &checked {
                        let _ = store.touch_account(&a.folded, crate::time::now_ms());
                    }
                    Outcome::ScramChecked { account: checked, known }
                }
                Err(e) => Outcome::Failed(e),
            };
            (folded, outcome)
        }
        Job::Certificate { fingerprint } => {
            let outcome = match store.account_by_certificate(&fingerprint) {
                Ok(record) => {
                    if let Some(a) = &record {
                        let _ = store.touch_account(&a.folded, crate::time::now_ms());
                    }
                    Outcome::Certificate(record)
                }
                Err(e) => Outcome::Failed(e),
            };
            (String::new(), outcome)
        }
        Job::Certificates { folded, change } => {
            use crate::vocab::CertificateChange;
            let full = match &change {
                CertificateChange::Add(_) => store.certificates(&folded).map(|c| c.len() >= MAX_CERTIFICATES),
                _ => Ok(false),
            };
            if let Ok(true) = full {
                return (folded, Outcome::CertificatesFull);
            }
            let done = match &change {
                CertificateChange::Add(fp) => store.add_certificate(&folded, fp, crate::time::now_ms()),
                CertificateChange::Remove(fp) => store.remove_certificate(&folded, fp),
                CertificateChange::List => Ok(true),
            };
            let outcome = match done.and_then(|done| Ok((done, store.certificates(&folded)?))) {
                Ok((done, fingerprints)) => Outcome::Certificates { change, done, fingerprints },
                Err(e) => Outcome::Failed(e),
            };
            (folded, outcome)
        }
        Job::Resume { digest } => {
            let now = crate::time::now_ms();
            let expired_before = now.saturating_sub(TOKEN_IDLE_EXPIRY_MS);
            let outcome = match store.use_resume_token(&digest, now, expired_before) {
                Ok(account) => {
                    if let Some(a) = &account {
                        let _ = store.touch_account(&a.folded, now);
                    }
                    Outcome::Resumed { account, digest }
                }
                Err(e) => Outcome::Failed(e),
            };
            (String::new(), outcome)
        }
        Job::IssueToken { folded, replaces } => {
            let outcome = issue_token(store, &folded, replaces);
            (folded, outcome)
        }
        Job::Revoke { digest, account } => {
            // The session is logged out whatever the store says: its answer says so, and its
            // client forgets the token. A token the store failed to delete still expires.
            if let Err(e) = store.revoke_resume_token(&digest) {
                tracing::error!(error = %e, account = %account, "cannot revoke a resume token at logout");
            }
            (String::new(), Outcome::Revoked { account })
        }
    }
}

/// Makes a resume token for the account `folded` and stores its digest, revoking `replaces`.
fn issue_token(store: &dyn Store, folded: &str, replaces: Option<TokenDigest>) -> Outcome {
    let Some((token, digest)) = ResumeToken::generate() else { return Outcome::Issued(None) };
    if let Some(old) = replaces
        && let Err(e) = store.revoke_resume_token(&old)
    {
        return Outcome::Failed(e);
    }
    let now = crate::time::now_ms();
    let record = TokenRecord { digest, folded: folded.to_string(), created_ts: now, last_used_ts: now };
    let expired_before = now.saturating_sub(TOKEN_IDLE_EXPIRY_MS);
    match store.add_resume_token(&record, MAX_TOKENS_PER_ACCOUNT, expired_before) {
        Ok(()) => Outcome::Issued(Some((token, digest))),
        Err(e) => Outcome::Failed(e),
    }
}

/// An account's SCRAM credential, when it has a readable one (a damaged one is logged).
fn scram_of(account: &AccountRecord) -> Option<ScramCredential> {
    let stored = account.scram.as_deref()?;
    ScramCredential::from_stored(stored)
        .map_err(
            |e| tracing::error!(account = %account.name, error = %e, "a stored SCRAM credential is damaged"),
        )
        .ok()
}
