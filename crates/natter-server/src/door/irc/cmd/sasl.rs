//! `AUTHENTICATE`: IRCv3 SASL, with PLAIN, SCRAM-SHA-256 and EXTERNAL.
//!
//! The door carries the exchange (the 400-byte chunks, the mechanisms' messages, parsed in
//! `natter_proto::sasl`); the hub decides whether a credential is right
//! ([`HubHandle::authenticate`](natter_core::HubHandle::authenticate)), under the login
//! throttle. The account it answers is handed over at registration, so the session starts
//! logged in; after registration (IRCv3 SASL 3.2 re-authentication) the hub logs the session
//! in, or switches it to the account. Numerics: 900 logged in, 903 success, 904 failure, 905 too long, 906 aborted,
//! 907 already logged in, 908 the mechanisms.

use super::super::IrcDoor;
use super::super::requests::Op;
use crate::door::{Flow, SessionCtx};
use natter_core::authenticate::{Authenticated, Authentication, Credential};
use natter_core::password::Password;
use natter_core::{Command, Refusal};
use natter_proto::irc;
use natter_proto::names::fold;
use natter_proto::sasl::{self, Chunks, SaslError, ScramFirst};

/// The mechanisms offered over a connection without a client certificate.
pub(in super::super) const MECHANISMS: &str = "PLAIN,SCRAM-SHA-256";
/// The mechanisms offered over TLS with a client certificate.
pub(in super::super) const MECHANISMS_WITH_CERT: &str = "PLAIN,SCRAM-SHA-256,EXTERNAL";

/// The mechanisms offered to this connection (EXTERNAL only with a client certificate).
pub(in super::super) fn mechanisms(sasl: Option<&Sasl>) -> &'static str {
    match sasl.and_then(|s| s.certificate.as_ref()) {
        Some(_) => MECHANISMS_WITH_CERT,
        None => MECHANISMS,
    }
}

/// Exchanges one connection may start: each may cost the server a store read or a password
/// hash, and wrong passwords are throttled, but aborted or abandoned exchanges are not; past
/// this the connection is closed.
const MAX_EXCHANGES: u8 = 20;

/// Bytes of randomness the server adds to a SCRAM nonce.
const NONCE_BYTES: usize = 18;

/// Where a connection's SASL exchange stands (boxed in the door: most connections never
/// authenticate this way).
#[derive(Debug, Default)]
pub(in super::super) struct Sasl {
    chunks: Chunks,
    step: Step,
    /// The account logged in to, handed over at registration.
    pub account: Option<Authenticated>,
    /// The fingerprint of the TLS client certificate the peer presented (EXTERNAL).
    pub certificate: Option<Box<str>>,
    /// Exchanges started on this connection.
    exchanges: u8,
}

#[derive(Debug, Default)]
enum Step {
    /// No exchange: the next `AUTHENTICATE` names a mechanism.
    #[default]
    Idle,
    /// PLAIN: waiting for the one message.
    Plain,
    /// EXTERNAL: waiting for the (empty) authorization identity.
    External,
    /// SCRAM: waiting for the client-first message.
    ScramFirst,
    /// SCRAM: waiting for the client-final message.
    ScramFinal { first: ScramFirst, server_first: String, nonce: String },
    /// SCRAM: the server's signature was sent; waiting for the client's empty answer.
    ScramDone(Authenticated),
}

impl Sasl {
    fn reset(&mut self) {
        self.chunks.clear();
        self.step = Step::Idle;
    }

    /// True while an exchange is under way.
    pub fn in_progress(&self) -> bool {
        !matches!(self.step, Step::Idle)
    }
}

impl IrcDoor {
    /// `AUTHENTICATE <mechanism | data | * >`.
    pub(super) async fn authenticate(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(arg) = m.param(0).filter(|a| !a.is_empty()) else {
            return self.need_more(ctx, "AUTHENTICATE");
        };
        let sasl = self.sasl.get_or_insert_with(Default::default);
        if arg == "*" {
            sasl.reset();
            return self.reply().numeric("906", &["SASL authentication aborted"]).send(ctx);
        }
        if arg.len() > sasl::CHUNK {
            sasl.reset();
            return self.bad(ctx, "905", &["SASL message too long"]);
        }
        if !sasl.in_progress() {
            return self.start_mechanism(arg, ctx);
        }
        match sasl.chunks.push(arg) {
            Ok(None) => Flow::Continue,
            Ok(Some(message)) => self.sasl_message(message, ctx).await,
            Err(SaslError::TooLong) => {
                sasl.reset();
                self.bad(ctx, "905", &["SASL message too long"])
            }
            Err(e) => self.sasl_failed(ctx, &e.to_string()),
        }
    }

    /// The first `AUTHENTICATE`: the mechanism.
    fn start_mechanism(&mut self, mechanism: &str, ctx: &mut SessionCtx) -> Flow {
        let sasl = self.sasl.as_mut().expect("caller made it");
        let has_cert = sasl.certificate.is_some();
        if sasl.account.is_some() {
            return self.reply().numeric("907", &["You have already authenticated using SASL"]).send(ctx);
        }
        sasl.exchanges = sasl.exchanges.saturating_add(1);
        if sasl.exchanges > MAX_EXCHANGES {
            return ctx.close(natter_core::metrics::Disconnect::BadInput, "too many SASL attempts");
        }
        sasl.step = match mechanism.to_ascii_uppercase().as_str() {
            "PLAIN" => Step::Plain,
            "SCRAM-SHA-256" => Step::ScramFirst,
            "EXTERNAL" if has_cert => Step::External,
            _ => {
                let offered = mechanisms(Some(sasl));
                return self
                    .reply()
                    .numeric("908", &[offered, "are available SASL mechanisms"])
                    .numeric("904", &["SASL authentication failed"])
                    .send(ctx);
            }
        };
        self.reply().line("AUTHENTICATE", &["+"]).send(ctx)
    }

    /// One whole message of the exchange.
    async fn sasl_message(&mut self, message: Vec<u8>, ctx: &mut SessionCtx) -> Flow {
        let sasl = self.sasl.as_mut().expect("caller made it");
        match std::mem::take(&mut sasl.step) {
            Step::Idle => Flow::Continue,
            Step::Plain => {
                let plain = match sasl::parse_plain(&message) {
                    Ok(p) => p,
                    Err(e) => return self.sasl_failed(ctx, &e.to_string()),
                };
                // natter has no authorization identities: one may only act as oneself.
                if !plain.authzid.is_empty() && fold(&plain.authzid) != fold(&plain.authcid) {
                    return self.sasl_failed(ctx, "you may only log in as yourself");
                }
                let password = Password::new(plain.password);
                self.check_credential(Credential::Password { name: plain.authcid, password }, ctx).await
            }
            Step::External => {
                let sasl = self.sasl.as_ref().expect("made");
                let Some(fingerprint) = sasl.certificate.as_deref().map(str::to_string) else {
                    return self.sasl_failed(ctx, "no client certificate");
                };
                // The authorization identity, when given, must be the account the certificate
                // is registered to (checked once it is known).
                let wanted = String::from_utf8(message).unwrap_or_default();
                let flow = self.check_credential(Credential::Certificate { fingerprint }, ctx).await;
                let wrong_identity = !wanted.is_empty()
                    && self
                        .sasl
                        .as_ref()
                        .and_then(|s| s.account.as_ref())
                        .is_some_and(|a| fold(a.account()) != fold(&wanted));
                if wrong_identity {
                    self.sasl.as_mut().expect("made").account = None;
                    return self.sasl_failed(ctx, "the certificate is not registered to that account");
                }
                flow
            }
            Step::ScramFirst => {
                let first = match sasl::parse_scram_first(&message) {
                    Ok(f) => f,
                    Err(e) => return self.sasl_failed(ctx, &e.to_string()),
                };
                let credential = Credential::ScramStart { name: first.name.clone() };
                let answer = ctx.hub.authenticate(credential, Some(ctx.peer.ip())).await;
                let (salt, iterations) = match answer {
                    Ok(Ok(Authentication::ScramSalt { salt, iterations })) => (salt, iterations),
                    Ok(Ok(Authentication::LoggedIn(_))) => return self.sasl_failed(ctx, "unexpected answer"),
                    Ok(Err(refusal)) => return self.sasl_refused(ctx, &refusal),
                    Err(_) => return Flow::Close("the server is shutting down".into()),
                };
                let mut random = [0u8; NONCE_BYTES];
                if getrandom::fill(&mut random).is_err() {
                    return self.sasl_failed(ctx, "the server cannot draw a nonce");
                }
                let nonce = sasl::scram_nonce(&first.nonce, &random);
                let server_first = sasl::scram_server_first(&nonce, &salt, iterations);
                let chunks = sasl::to_chunks(server_first.as_bytes());
                self.sasl.as_mut().expect("made").step = Step::ScramFinal { first, server_first, nonce };
                let mut reply = self.reply();
                for chunk in &chunks {
                    reply.line("AUTHENTICATE", &[chunk]);
                }
                reply.send(ctx)
            }
            Step::ScramFinal { first, server_first, nonce } => {
                let last = match sasl::parse_scram_final(&message, &first.gs2_header, &nonce) {
                    Ok(l) => l,
                    Err(e) => return self.sasl_failed(ctx, &e.to_string()),
                };
                let auth_message = sasl::scram_auth_message(&first, &server_first, &last);
                let credential = Credential::ScramProof { name: first.name, auth_message, proof: last.proof };
                if let Flow::Close(reason) = charge(ctx) {
                    return Flow::Close(reason);
                }
                match ctx.hub.authenticate(credential, Some(ctx.peer.ip())).await {
                    Ok(Ok(Authentication::LoggedIn(auth))) => {
                        let Some(signature) = auth.server_signature() else {
                            return self.sasl_failed(ctx, "unexpected answer");
                        };
                        let chunks = sasl::to_chunks(sasl::scram_server_final(signature).as_bytes());
                        self.sasl.as_mut().expect("made").step = Step::ScramDone(auth);
                        let mut reply = self.reply();
                        for chunk in &chunks {
                            reply.line("AUTHENTICATE", &[chunk]);
                        }
                        reply.send(ctx)
                    }
                    Ok(Ok(Authentication::ScramSalt { .. })) => self.sasl_failed(ctx, "unexpected answer"),
                    Ok(Err(refusal)) => self.sasl_refused(ctx, &refusal),
                    Err(_) => Flow::Close("the server is shutting down".into()),
                }
            }
            // The client checked our signature and answers with an empty message.
            Step::ScramDone(auth) => self.sasl_succeeded(auth, ctx).await,
        }
    }

    /// Asks the hub about a credential that ends the exchange.
    async fn check_credential(&mut self, credential: Credential, ctx: &mut SessionCtx) -> Flow {
        if let Flow::Close(reason) = charge(ctx) {
            return Flow::Close(reason);
        }
        match ctx.hub.authenticate(credential, Some(ctx.peer.ip())).await {
            Ok(Ok(Authentication::LoggedIn(auth))) => self.sasl_succeeded(auth, ctx).await,
            Ok(Ok(Authentication::ScramSalt { .. })) => self.sasl_failed(ctx, "unexpected answer"),
            Ok(Err(refusal)) => self.sasl_refused(ctx, &refusal),
            Err(_) => Flow::Close("the server is shutting down".into()),
        }
    }

    /// 900 and 903. Before registration the account waits for it; after, the hub logs the
    /// session in (or switches it to this account) and answers the 900 itself.
    async fn sasl_succeeded(&mut self, auth: Authenticated, ctx: &mut SessionCtx) -> Flow {
        let account = auth.account().to_string();
        let sasl = self.sasl.as_mut().expect("made");
        sasl.reset();
        if ctx.session.is_some() {
            let flow = ctx.command(Command::AdoptAccount { account: auth, req: Op::Sasl.token() }).await;
            if flow != Flow::Continue {
                return flow;
            }
            return self.reply().numeric("903", &["SASL authentication successful"]).send(ctx);
        }
        sasl.account = Some(auth);
        let me = self.me().to_string();
        let user = self.registering.as_ref().and_then(|r| r.user.as_deref()).unwrap_or("*");
        let full = format!("{me}!{user}@*");
        self.reply()
            .numeric("900", &[&full, &account, &format!("You are now logged in as {account}")])
            .numeric("903", &["SASL authentication successful"])
            .send(ctx)
    }

    /// 904 after a refusal from the hub; a throttled client is told how long to wait.
    fn sasl_refused(&mut self, ctx: &mut SessionCtx, refusal: &Refusal) -> Flow {
        match refusal {
            Refusal::BadCredentials => self.sasl_failed(ctx, "wrong account name or password"),
            other => self.sasl_failed(ctx, &other.to_string()),
        }
    }

    /// 904, with the reason in a NOTICE first (the numeric's text is fixed by convention);
    /// counts as bad input.
    fn sasl_failed(&mut self, ctx: &mut SessionCtx, why: &str) -> Flow {
        if let Some(sasl) = self.sasl.as_mut() {
            sasl.reset();
        }
        tracing::debug!(peer = %ctx.peer, why, "SASL login failed");
        let me = self.me().to_string();
        let mut reply = self.reply();
        reply.line("NOTICE", &[&me, &format!("SASL: {why}")]);
        reply.numeric("904", &["SASL authentication failed"]);
        if ctx.strikes.hit() {
            return ctx.close(natter_core::metrics::Disconnect::BadInput, "too many invalid commands");
        }
        reply.send(ctx)
    }

    /// Registration (`CAP END`, or `NICK`/`USER` without negotiation) while an exchange is
    /// under way aborts it (906), as IRCv3 SASL says.
    pub(super) fn abort_sasl_for_registration(&mut self, ctx: &mut SessionCtx) -> Flow {
        match self.sasl.as_mut() {
            Some(sasl) if sasl.in_progress() => {
                sasl.reset();
                self.reply().numeric("906", &["SASL authentication aborted"]).send(ctx)
            }
            _ => Flow::Continue,
        }
    }
}

/// What a logged-in session's SASL login costs of its command budget: a password check, like
/// `NickServ IDENTIFY` (before registration the registration deadline and the throttle bound it).
fn charge(ctx: &mut SessionCtx) -> Flow {
    match ctx.session {
        Some(_) => ctx.charge(LOGIN_COST),
        None => Flow::Continue,
    }
}

/// The budget cost of a login checked after registration (a hub `Login` costs the same).
const LOGIN_COST: u32 = 20;
