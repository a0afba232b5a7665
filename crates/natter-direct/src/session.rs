//! The cryptographic core, pure (no I/O): SPAKE2 on the one-time code, a Noise handshake
//! keyed by the SPAKE2 result, and the encrypted session that follows.
//!
//! Flow (the listener is SPAKE2 side A and the Noise initiator; see `docs/direct.md`):
//!
//! ```text
//! connector -> listener : Pake(B)
//! listener  -> connector: Pake(A), Noise(-> psk, e)     [payload sealed under the PSK]
//! connector -> listener : Noise(<- e, ee)
//! ```
//!
//! The SPAKE2 key is the Noise `psk`, and the prologue binds both SPAKE2 messages. With a
//! wrong code the connector cannot open the listener's first Noise message: that is the key
//! confirmation, and it happens before any chat text is sent. Transport messages carry an
//! explicit 64-bit nonce (snow's stateless transport) so that UDP may reorder them; a replay
//! window rejects any nonce seen before.

use std::sync::Arc;

use snow::{Builder, HandshakeState, StatelessTransportState};
use spake2::{Ed25519Group, Identity, Password, Spake2};

use crate::code::Code;
use crate::words::WORDS;

/// The Noise protocol: no static keys (the PSK authenticates), fresh ephemerals each time.
pub const NOISE_PARAMS: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";
/// Version label mixed into the Noise prologue, so other versions never interoperate silently.
const PROLOGUE_LABEL: &[u8] = b"natter-direct/1";
const ID_LISTENER: &[u8] = b"natter-direct listener";
const ID_CONNECTOR: &[u8] = b"natter-direct connector";
/// Authentication tag added by ChaChaPoly to each message.
pub const TAG_LEN: usize = 16;
/// Explicit nonce carried in front of each sealed message.
pub const NONCE_LEN: usize = 8;
/// Largest plaintext one sealed message may carry (Noise messages are at most 65535 bytes).
pub const MAX_PLAINTEXT: usize = 65_535 - TAG_LEN;
/// Length of a SPAKE2 message on Ed25519 (side byte + point).
pub const PAKE_MSG_LEN: usize = 33;
/// How many recent nonces the UDP replay window remembers.
pub const REPLAY_WINDOW: u64 = 2048;

/// One handshake message, independent of how a transport frames it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsMsg {
    /// A SPAKE2 message.
    Pake(Vec<u8>),
    /// A Noise handshake message.
    Noise(Vec<u8>),
}

/// What the caller must do after feeding the handshake a message.
pub enum Step {
    /// Send these messages, then wait for more.
    Send(Vec<HsMsg>),
    /// Nothing to send yet; wait for the next message.
    Wait,
    /// The handshake is complete: send these last messages, then use the session.
    Done {
        /// Final messages for the peer (may be empty).
        send: Vec<HsMsg>,
        /// The established session.
        session: Box<Session>,
    },
}

/// Why a handshake failed. The messages are shown to users as they are.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// The two sides used different codes (or an attacker guessed and failed).
    #[error(
        "wrong code: the two sides did not use the same code (or someone else tried to guess it); \
         the code is now used up, so start again with `natter direct listen` and a new code"
    )]
    WrongCode,
    /// A message did not parse or did not authenticate although the code matched.
    #[error("the peer's handshake is invalid ({0}): it is not natter direct, or it was tampered with")]
    Malformed(&'static str),
    /// A message arrived that the protocol does not allow at this point.
    #[error("unexpected handshake message ({0}); the peer does not speak this version of natter direct")]
    Unexpected(&'static str),
    /// The Noise library refused an operation (should not happen with valid parameters).
    #[error("Noise handshake failed: {0}")]
    Noise(String),
}

fn noise_err(e: snow::Error) -> HandshakeError {
    HandshakeError::Noise(e.to_string())
}

enum State {
    ListenerStart { spake: Spake2<Ed25519Group>, msg_a: Vec<u8> },
    ListenerAwaitNoise2 { hs: Box<HandshakeState> },
    ConnectorAwaitPake { spake: Spake2<Ed25519Group>, msg_b: Vec<u8>, early_noise: Option<Vec<u8>> },
    ConnectorAwaitNoise1 { hs: Box<HandshakeState> },
    Over,
}

/// The handshake state machine of one side; pure, so it can be tested without sockets.
pub struct Handshake {
    state: State,
}

impl Handshake {
    /// Starts the listener's side; it waits for the connector's first message.
    pub fn listener(code: &Code) -> Self {
        let (spake, msg_a) = Spake2::<Ed25519Group>::start_a(
            &Password::new(code.password()),
            &Identity::new(ID_LISTENER),
            &Identity::new(ID_CONNECTOR),
        );
        Self { state: State::ListenerStart { spake, msg_a } }
    }

    /// Starts the connector's side; returns the message to send first.
    pub fn connector(code: &Code) -> (Self, HsMsg) {
        let (spake, msg_b) = Spake2::<Ed25519Group>::start_b(
            &Password::new(code.password()),
            &Identity::new(ID_LISTENER),
            &Identity::new(ID_CONNECTOR),
        );
        let first = HsMsg::Pake(msg_b.clone());
        (Self { state: State::ConnectorAwaitPake { spake, msg_b, early_noise: None } }, first)
    }

    /// Feeds one message from the peer. An out-of-turn message ([`HandshakeError::Unexpected`])
    /// changes nothing; after any other error the handshake is over for good.
    pub fn on_message(&mut self, msg: HsMsg) -> Result<Step, HandshakeError> {
        let state = std::mem::replace(&mut self.state, State::Over);
        match (state, msg) {
            (State::ListenerStart { spake, msg_a }, HsMsg::Pake(msg_b)) => {
                let psk = finish_pake(spake, &msg_b)?;
                let mut hs = build(&psk, &msg_a, &msg_b, true)?;
                let mut buf = vec![0u8; 256];
                let n = hs.write_message(&[], &mut buf).map_err(noise_err)?;
                buf.truncate(n);
                self.state = State::ListenerAwaitNoise2 { hs: Box::new(hs) };
                Ok(Step::Send(vec![HsMsg::Pake(msg_a), HsMsg::Noise(buf)]))
            }
            (State::ListenerAwaitNoise2 { mut hs }, HsMsg::Noise(n2)) => {
                let mut payload = vec![0u8; n2.len()];
                hs.read_message(&n2, &mut payload)
                    .map_err(|_| HandshakeError::Malformed("second Noise message does not authenticate"))?;
                Ok(Step::Done { send: Vec::new(), session: Box::new(Session::from_handshake(*hs)?) })
            }
            (State::ConnectorAwaitPake { spake, msg_b, early_noise }, HsMsg::Pake(msg_a)) => {
                let psk = finish_pake(spake, &msg_a)?;
                let hs = build(&psk, &msg_a, &msg_b, false)?;
                self.state = State::ConnectorAwaitNoise1 { hs: Box::new(hs) };
                match early_noise {
                    Some(n1) => self.on_message(HsMsg::Noise(n1)),
                    None => Ok(Step::Wait),
                }
            }
            (State::ConnectorAwaitPake { spake, msg_b, early_noise: None }, HsMsg::Noise(n1)) => {
                // Datagrams may arrive out of order: keep the Noise message until Pake(A).
                self.state = State::ConnectorAwaitPake { spake, msg_b, early_noise: Some(n1) };
                Ok(Step::Wait)
            }
            (State::ConnectorAwaitNoise1 { mut hs }, HsMsg::Noise(n1)) => {
                let mut payload = vec![0u8; n1.len()];
                match hs.read_message(&n1, &mut payload) {
                    Ok(_) => {}
                    Err(snow::Error::Decrypt) => return Err(HandshakeError::WrongCode),
                    Err(_) => return Err(HandshakeError::Malformed("first Noise message")),
                }
                let mut buf = vec![0u8; 256];
                let n = hs.write_message(&[], &mut buf).map_err(noise_err)?;
                buf.truncate(n);
                Ok(Step::Done {
                    send: vec![HsMsg::Noise(buf)],
                    session: Box::new(Session::from_handshake(*hs)?),
                })
            }
            // Out-of-turn messages (e.g. datagram duplicates) leave the state as it was.
            (state, HsMsg::Pake(_)) => {
                self.state = state;
                Err(HandshakeError::Unexpected("PAKE message"))
            }
            (state, HsMsg::Noise(_)) => {
                self.state = state;
                Err(HandshakeError::Unexpected("Noise message"))
            }
        }
    }
}

fn finish_pake(spake: Spake2<Ed25519Group>, peer_msg: &[u8]) -> Result<[u8; 32], HandshakeError> {
    if peer_msg.len() != PAKE_MSG_LEN {
        return Err(HandshakeError::Malformed("PAKE message has the wrong length"));
    }
    let key = spake.finish(peer_msg).map_err(|_| HandshakeError::Malformed("PAKE message"))?;
    key.try_into().map_err(|_| HandshakeError::Malformed("PAKE key length"))
}

fn build(
    psk: &[u8; 32],
    msg_a: &[u8],
    msg_b: &[u8],
    initiator: bool,
) -> Result<HandshakeState, HandshakeError> {
    let params = NOISE_PARAMS.parse().map_err(noise_err)?;
    let mut prologue = PROLOGUE_LABEL.to_vec();
    prologue.extend_from_slice(msg_a);
    prologue.extend_from_slice(msg_b);
    let builder =
        Builder::new(params).psk(0, psk).map_err(noise_err)?.prologue(&prologue).map_err(noise_err)?;
    if initiator { builder.build_initiator() } else { builder.build_responder() }.map_err(noise_err)
}

/// Turns a handshake hash into the short authentication string both users compare.
///
/// Four words (32 bits): a man in the middle who learned the code would have to make two
/// independent handshakes agree on them, which happens once in four billion tries.
pub fn sas_from_hash(hash: &[u8]) -> String {
    hash.iter().take(4).map(|&b| WORDS[b as usize]).collect::<Vec<_>>().join(" ")
}

/// Why an incoming sealed message was rejected, or an outgoing one could not be sealed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    /// The message is too short to hold a nonce and a tag.
    #[error("a message from the peer is truncated; the connection was tampered with or is broken")]
    Truncated,
    /// Authentication failed: the bytes were changed or forged.
    #[error("a message failed authentication: it was tampered with or forged, and was rejected")]
    Tampered,
    /// The nonce was already used or is too old: a replay.
    #[error("a replayed message (seen before) was rejected")]
    Replayed,
    /// On an ordered transport (TCP), a message went missing in between: a deletion.
    #[error("a message is missing in the sequence: the connection was tampered with")]
    Gap,
    /// The plaintext exceeds what one Noise message can carry.
    #[error("message too large to encrypt ({0} bytes, at most {MAX_PLAINTEXT})")]
    TooLarge(usize),
    /// 2^64 messages were sent; never happens in practice.
    #[error("the session has used up its nonces; reconnect")]
    Exhausted,
}

/// How strictly incoming nonces must follow each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// Exactly 0, 1, 2, ...: for TCP, where any other nonce means tampering.
    Strict,
    /// Any order within a sliding window, each nonce once: for UDP.
    Window,
}

/// Remembers which recent nonces were received (a sliding bitmap, as in IPsec/WireGuard).
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// One past the highest nonce accepted so far.
    next: u64,
    bits: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self { next: 0, bits: [0; (REPLAY_WINDOW / 64) as usize] }
    }
}

impl ReplayWindow {
    fn slot(n: u64) -> (usize, u64) {
        let i = n % REPLAY_WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Checks a nonce without recording it (record only after authentication succeeds).
    pub fn check(&self, n: u64) -> Result<(), SessionError> {
        if n >= self.next {
            return Ok(());
        }
        if self.next - n > REPLAY_WINDOW {
            return Err(SessionError::Replayed);
        }
        let (w, bit) = Self::slot(n);
        if self.bits[w] & bit != 0 { Err(SessionError::Replayed) } else { Ok(()) }
    }

    /// Records an authenticated nonce.
    pub fn mark(&mut self, n: u64) {
        if n >= self.next {
            let advance = n - self.next + 1;
            if advance >= REPLAY_WINDOW {
                self.bits = [0; (REPLAY_WINDOW / 64) as usize];
            } else {
                for m in self.next..=n {
                    let (w, bit) = Self::slot(m);
                    self.bits[w] &= !bit;
                }
            }
            self.next = n + 1;
        }
        let (w, bit) = Self::slot(n);
        self.bits[w] |= bit;
    }
}

/// An established encrypted session: seals outgoing and opens incoming messages.
///
/// It can be [`split`](Session::split) so that a writer task seals while a reader task
/// opens, without locks: the stateless transport needs no mutation, only the counters do.
pub struct Session {
    sealer: Sealer,
    opener: Opener,
    sas: String,
}

/// The sending half of a session: owns the outgoing nonce counter.
pub struct Sealer {
    transport: Arc<StatelessTransportState>,
    next_nonce: u64,
}

/// The receiving half of a session: owns the replay window.
pub struct Opener {
    transport: Arc<StatelessTransportState>,
    ordering: Ordering,
    replay: ReplayWindow,
}

impl Session {
    fn from_handshake(hs: HandshakeState) -> Result<Self, HandshakeError> {
        let sas = sas_from_hash(hs.get_handshake_hash());
        let transport = Arc::new(hs.into_stateless_transport_mode().map_err(noise_err)?);
        Ok(Self {
            sealer: Sealer { transport: transport.clone(), next_nonce: 0 },
            opener: Opener { transport, ordering: Ordering::Strict, replay: ReplayWindow::default() },
            sas,
        })
    }

    /// Chooses how incoming nonces are checked (the default is [`Ordering::Strict`]).
    pub fn set_ordering(&mut self, ordering: Ordering) {
        self.opener.ordering = ordering;
    }

    /// The short authentication string; both sides show the same words when no one is in
    /// the middle.
    pub fn sas(&self) -> &str {
        &self.sas
    }

    /// See [`Sealer::seal`].
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, SessionError> {
        self.sealer.seal(plaintext)
    }

    /// See [`Opener::open`].
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>, SessionError> {
        self.opener.open(sealed)
    }

    /// Splits into independent sending and receiving halves.
    pub fn split(self) -> (Sealer, Opener) {
        (self.sealer, self.opener)
    }
}

impl Sealer {
    /// Encrypts and authenticates one message: `nonce (8 bytes, big endian) || ciphertext`.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, SessionError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(SessionError::TooLarge(plaintext.len()));
        }
        let nonce = self.next_nonce;
        self.next_nonce = nonce.checked_add(1).filter(|&n| n < u64::MAX).ok_or(SessionError::Exhausted)?;
        let mut out = vec![0u8; NONCE_LEN + plaintext.len() + TAG_LEN];
        out[..NONCE_LEN].copy_from_slice(&nonce.to_be_bytes());
        let n = self
            .transport
            .write_message(nonce, plaintext, &mut out[NONCE_LEN..])
            .map_err(|_| SessionError::TooLarge(plaintext.len()))?;
        out.truncate(NONCE_LEN + n);
        Ok(out)
    }
}

impl Opener {
    /// Authenticates, decrypts and replay-checks one sealed message.
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>, SessionError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(SessionError::Truncated);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = u64::from_be_bytes(nonce.try_into().map_err(|_| SessionError::Truncated)?);
        self.replay.check(nonce)?;
        let mut plain = vec![0u8; ct.len()];
        let n = self.transport.read_message(nonce, ct, &mut plain).map_err(|_| SessionError::Tampered)?;
        plain.truncate(n);
        // Judge the order only once the nonce is authentic, so forgeries cannot raise alarms.
        if self.ordering == Ordering::Strict && nonce != self.replay.next {
            return Err(SessionError::Gap);
        }
        self.replay.mark(nonce);
        Ok(plain)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs a complete in-memory handshake and returns (listener, connector) sessions.
    pub(crate) fn pair(
        listener_code: &str,
        connector_code: &str,
    ) -> Result<(Session, Session), HandshakeError> {
        let mut l = Handshake::listener(&Code::parse(listener_code).unwrap());
        let (mut c, first) = Handshake::connector(&Code::parse(connector_code).unwrap());
        let Step::Send(flight) = l.on_message(first)? else { panic!("listener must answer") };
        let mut done = None;
        for m in flight {
            if let Step::Done { send, session } = c.on_message(m)? {
                done = Some((send, session));
            }
        }
        let (send, cs) = done.expect("connector done");
        let mut ls = None;
        for m in send {
            if let Step::Done { session, .. } = l.on_message(m)? {
                ls = Some(session);
            }
        }
        Ok((*ls.expect("listener done"), *cs))
    }

    #[test]
    fn same_code_gives_working_session_and_equal_sas() {
        let (mut l, mut c) = pair("7-orbit-lantern", "7 ORBIT lantern").unwrap();
        assert_eq!(l.sas(), c.sas());
        assert_eq!(l.sas().split(' ').count(), 4);
        let m = c.seal(b"hello").unwrap();
        assert_eq!(l.open(&m).unwrap(), b"hello");
        let m = l.seal(b"back").unwrap();
        assert_eq!(c.open(&m).unwrap(), b"back");
    }

    #[test]
    fn different_handshakes_give_different_sas() {
        let (a, _) = pair("7-orbit-lantern", "7-orbit-lantern").unwrap();
        let (b, _) = pair("7-orbit-lantern", "7-orbit-lantern").unwrap();
        assert_ne!(a.sas(), b.sas());
    }

    #[test]
    fn wrong_code_fails_loudly_before_any_data() {
        assert_eq!(pair("7-orbit-lantern", "8-orbit-lantern").err(), Some(HandshakeError::WrongCode));
        assert_eq!(pair("7-orbit-lantern", "7-orbit-maple").err(), Some(HandshakeError::WrongCode));
    }

    #[test]
    fn noise_before_pake_is_buffered_for_reordered_datagrams() {
        let code = Code::parse("3-apple-zebra").unwrap();
        let mut l = Handshake::listener(&code);
        let (mut c, first) = Handshake::connector(&code);
        let Step::Send(mut flight) = l.on_message(first).unwrap() else { panic!() };
        flight.reverse();
        assert!(matches!(c.on_message(flight.remove(0)).unwrap(), Step::Wait));
        let Step::Done { send, .. } = c.on_message(flight.remove(0)).unwrap() else { panic!() };
        assert!(matches!(l.on_message(send[0].clone()).unwrap(), Step::Done { .. }));
    }

    #[test]
    fn duplicated_handshake_datagrams_do_not_break_the_handshake() {
        let code = Code::parse("3-apple-zebra").unwrap();
        let mut l = Handshake::listener(&code);
        let (mut c, first) = Handshake::connector(&code);
        let Step::Send(flight) = l.on_message(first.clone()).unwrap() else { panic!() };
        assert!(matches!(l.on_message(first), Err(HandshakeError::Unexpected(_))));
        assert!(matches!(c.on_message(flight[0].clone()).unwrap(), Step::Wait));
        assert!(matches!(c.on_message(flight[0].clone()), Err(HandshakeError::Unexpected(_))));
        let Step::Done { send, .. } = c.on_message(flight[1].clone()).unwrap() else { panic!() };
        assert!(matches!(l.on_message(send[0].clone()).unwrap(), Step::Done { .. }));
    }

    #[test]
    fn unexpected_and_malformed_handshake_messages_are_errors() {
        let code = Code::parse("3-apple-zebra").unwrap();
        let mut l = Handshake::listener(&code);
        assert!(matches!(l.on_message(HsMsg::Noise(vec![1, 2])), Err(HandshakeError::Unexpected(_))));
        let mut l = Handshake::listener(&code);
        assert!(matches!(l.on_message(HsMsg::Pake(vec![0x42; 5])), Err(HandshakeError::Malformed(_))));
        let mut l = Handshake::listener(&code);
        // Right length, wrong side byte.
        assert!(matches!(l.on_message(HsMsg::Pake(vec![0x41; 33])), Err(HandshakeError::Malformed(_))));
    }

    #[test]
    fn tampered_ciphertext_is_rejected() {
        let (mut l, mut c) = pair("1-acorn-acorn", "1-acorn-acorn").unwrap();
        let m = c.seal(b"pay 10 euros").unwrap();
        for i in 0..m.len() {
            let mut bad = m.clone();
            bad[i] ^= 0x01;
            let err = l.open(&bad).unwrap_err();
            assert!(matches!(err, SessionError::Tampered | SessionError::Replayed | SessionError::Gap));
        }
        // The genuine message still opens after the forgeries.
        assert_eq!(l.open(&m).unwrap(), b"pay 10 euros");
        assert_eq!(l.open(&m[..10]), Err(SessionError::Truncated));
    }

    #[test]
    fn replay_is_rejected_on_tcp_and_udp() {
        let (mut l, mut c) = pair("1-acorn-acorn", "1-acorn-acorn").unwrap();
        let m0 = c.seal(b"a").unwrap();
        let m1 = c.seal(b"b").unwrap();
        let m2 = c.seal(b"c").unwrap();
        l.open(&m0).unwrap();
        assert_eq!(l.open(&m0), Err(SessionError::Replayed));
        // Strict (TCP): skipping m1 is a deletion.
        assert_eq!(l.open(&m2), Err(SessionError::Gap));
        l.open(&m1).unwrap();
        l.open(&m2).unwrap();

        let (mut l, mut c) = pair("1-acorn-acorn", "1-acorn-acorn").unwrap();
        l.set_ordering(Ordering::Window);
        let msgs: Vec<Vec<u8>> = (0..5).map(|i| c.seal(&[i]).unwrap()).collect();
        for i in [3, 0, 4, 1, 2] {
            assert_eq!(l.open(&msgs[i]).unwrap(), vec![i as u8]);
        }
        for m in &msgs {
            assert_eq!(l.open(m), Err(SessionError::Replayed));
        }
    }

    #[test]
    fn replay_window_forgets_nothing_inside_and_refuses_too_old() {
        let mut w = ReplayWindow::default();
        w.mark(5);
        assert!(w.check(5).is_err());
        assert!(w.check(4).is_ok());
        w.mark(5 + REPLAY_WINDOW + 10);
        assert!(w.check(5).is_err(), "too old");
        assert!(w.check(20 + REPLAY_WINDOW).is_ok());
        w.mark(20 + REPLAY_WINDOW);
        assert!(w.check(20 + REPLAY_WINDOW).is_err());
    }

    #[test]
    fn oversized_plaintext_is_refused() {
        let (_, mut c) = pair("1-acorn-acorn", "1-acorn-acorn").unwrap();
        assert!(c.seal(&vec![0; MAX_PLAINTEXT]).is_ok());
        assert_eq!(c.seal(&vec![0; MAX_PLAINTEXT + 1]), Err(SessionError::TooLarge(MAX_PLAINTEXT + 1)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn opening_random_bytes_never_panics_nor_succeeds(bytes: Vec<u8>) {
            let (mut l, _) = pair("1-acorn-acorn", "1-acorn-acorn").unwrap();
            proptest::prop_assert!(l.open(&bytes).is_err());
        }

        /// The window accepts each nonce at most once, whatever the order.
        #[test]
        fn window_accepts_each_nonce_once(nonces in proptest::collection::vec(0u64..5000, 0..300)) {
            let mut w = ReplayWindow::default();
            let mut seen = std::collections::HashSet::new();
            for n in nonces {
                if w.check(n).is_ok() {
                    proptest::prop_assert!(seen.insert(n), "nonce {} accepted twice", n);
                    w.mark(n);
                }
            }
        }
    }
}
