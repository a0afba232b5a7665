//! Reliable, ordered delivery of messages over datagrams (an ARQ), pure: no sockets, no
//! clock of its own. The caller feeds received packets and the current time, and sends what
//! [`Arq::poll_transmit`] returns; so the whole layer is tested deterministically.
//!
//! - Each message is split into fragments of at most [`Config::fragment`] bytes; each
//!   fragment has its own 32-bit sequence number and the last one carries an END flag.
//! - The receiver delivers fragments strictly in sequence order, drops duplicates, buffers
//!   out-of-order fragments inside the window, and acknowledges with the next expected
//!   sequence number plus a 64-bit selective-acknowledgement bitmap.
//! - The sender keeps at most [`Config::window`] fragments in flight and retransmits each
//!   after a timeout estimated from the round-trip time (RFC 6298 style, Karn's rule), with
//!   exponential backoff; it declares the peer gone after [`Config::give_up`] without progress.
//!
//! Over the secure channel every ARQ packet is sealed in its own Noise message with a fresh
//! nonce, so acknowledgements and sequence numbers are authenticated too.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

const P_DATA: u8 = 1;
const P_ACK: u8 = 2;
const FLAG_END: u8 = 1;
const DATA_HEADER: usize = 1 + 4 + 1;
const ACK_LEN: usize = 1 + 4 + 8;

/// Tuning of the reliable layer.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest fragment payload; keeps datagrams under common path MTUs.
    pub fragment: usize,
    /// Largest number of unacknowledged fragments in flight (and the receive window).
    pub window: u32,
    /// Retransmission timeout before any round-trip time was measured.
    pub rto_initial: Duration,
    /// Lower bound of the retransmission timeout.
    pub rto_min: Duration,
    /// Upper bound of the retransmission timeout (after backoff).
    pub rto_max: Duration,
    /// How long without any acknowledgement progress before the peer is considered gone.
    pub give_up: Duration,
    /// Largest message accepted for sending or reassembly.
    pub max_message: usize,
    /// Largest number of fragments queued behind the window.
    pub max_queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            fragment: 1100,
            window: 256,
            rto_initial: Duration::from_millis(300),
            rto_min: Duration::from_millis(100),
            rto_max: Duration::from_secs(2),
            give_up: Duration::from_secs(30),
            max_message: 64 * 1024,
            max_queue: 4096,
        }
    }
}

/// A packet or message the reliable layer refuses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArqError {
    /// The packet does not parse.
    #[error("malformed reliable-layer packet")]
    Malformed,
    /// A message (sent or being reassembled) exceeds the limit.
    #[error("message too large ({0} bytes)")]
    TooLarge(usize),
    /// Four billion fragments were sent in one session.
    #[error("sequence numbers exhausted; reconnect")]
    Exhausted,
}

struct Outstanding {
    packet: Vec<u8>,
    first_sent: Instant,
    last_sent: Instant,
    retries: u32,
}

/// One endpoint of the reliable layer.
pub struct Arq {
    cfg: Config,
    // Sending side.
    next_seq: u32,
    queue: VecDeque<(u32, Vec<u8>)>,
    unacked: BTreeMap<u32, Outstanding>,
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    last_progress: Instant,
    // Receiving side.
    next_expected: u32,
    out_of_order: BTreeMap<u32, (u8, Vec<u8>)>,
    assembling: Vec<u8>,
    delivered: VecDeque<Vec<u8>>,
    ack_due: bool,
}

impl Arq {
    /// Creates an endpoint; `now` starts the liveness clock.
    pub fn new(cfg: Config, now: Instant) -> Self {
        let rto = cfg.rto_initial;
        Self {
            cfg,
            next_seq: 0,
            queue: VecDeque::new(),
            unacked: BTreeMap::new(),
            srtt: None,
            rttvar: Duration::ZERO,
            rto,
            last_progress: now,
            next_expected: 0,
            out_of_order: BTreeMap::new(),
            assembling: Vec::new(),
            delivered: VecDeque::new(),
            ack_due: false,
        }
    }

    /// True when another message can be queued without exceeding the queue bound.
    pub fn can_accept(&self) -> bool {
        self.queue.len() < self.cfg.max_queue
    }

    /// True when everything sent was acknowledged.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.unacked.is_empty()
    }

    /// Queues one message for reliable delivery.
    pub fn send_message(&mut self, msg: &[u8]) -> Result<(), ArqError> {
        if msg.len() > self.cfg.max_message {
            return Err(ArqError::TooLarge(msg.len()));
        }
        let chunks: Vec<&[u8]> =
            if msg.is_empty() { vec![&[][..]] } else { msg.chunks(self.cfg.fragment).collect() };
        let count = chunks.len();
        if (u32::MAX - self.next_seq) as usize <= count {
            return Err(ArqError::Exhausted);
        }
        for (i, chunk) in chunks.into_iter().enumerate() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let mut p = Vec::with_capacity(DATA_HEADER + chunk.len());
            p.push(P_DATA);
            p.extend_from_slice(&seq.to_be_bytes());
            p.push(if i + 1 == count { FLAG_END } else { 0 });
            p.extend_from_slice(chunk);
            self.queue.push_back((seq, p));
        }
        Ok(())
    }

    fn backoff(&self, retries: u32) -> Duration {
        self.rto.saturating_mul(1 << retries.min(16)).min(self.cfg.rto_max)
    }

    /// Returns the next packet to put on the wire, if any is due at `now`. Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.ack_due {
            self.ack_due = false;
            return Some(self.ack_packet());
        }
        let base = self.unacked.keys().next().copied().or(self.queue.front().map(|(s, _)| *s));
        if let (Some(base), Some(&(seq, _))) = (base, self.queue.front())
            && seq.wrapping_sub(base) < self.cfg.window
        {
            let (seq, packet) = self.queue.pop_front()?;
            if self.unacked.is_empty() {
                self.last_progress = now;
            }
            self.unacked.insert(
                seq,
                Outstanding { packet: packet.clone(), first_sent: now, last_sent: now, retries: 0 },
            );
            return Some(packet);
        }
        let due =
            self.unacked.iter().find(|(_, o)| o.last_sent + self.backoff(o.retries) <= now).map(|(s, _)| *s);
        let o = self.unacked.get_mut(&due?)?;
        o.last_sent = now;
        o.retries += 1;
        Some(o.packet.clone())
    }

    /// When the caller should call [`Arq::poll_transmit`] again at the latest.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.unacked.values().map(|o| o.last_sent + self.backoff(o.retries)).min()
    }

    /// True when fragments have been outstanding for longer than [`Config::give_up`] without
    /// any acknowledgement progress: the peer is gone or the path is dead.
    pub fn is_dead(&self, now: Instant) -> bool {
        !self.unacked.is_empty() && now.saturating_duration_since(self.last_progress) > self.cfg.give_up
    }

    /// Returns the next complete message received in order.
    pub fn poll_message(&mut self) -> Option<Vec<u8>> {
        self.delivered.pop_front()
    }

    fn ack_packet(&self) -> Vec<u8> {
        let mut sack = 0u64;
        for &seq in self.out_of_order.keys() {
            let offset = seq.wrapping_sub(self.next_expected).wrapping_sub(1);
            if offset < 64 {
                sack |= 1 << offset;
            }
        }
        let mut p = Vec::with_capacity(ACK_LEN);
        p.push(P_ACK);
        p.extend_from_slice(&self.next_expected.to_be_bytes());
        p.extend_from_slice(&sack.to_be_bytes());
        p
    }

    /// Feeds one packet received from the peer.
    pub fn on_packet(&mut self, packet: &[u8], now: Instant) -> Result<(), ArqError> {
        match packet.first() {
            Some(&P_DATA) if packet.len() >= DATA_HEADER => {
                let seq = u32::from_be_bytes(packet[1..5].try_into().map_err(|_| ArqError::Malformed)?);
                let flags = packet[5];
                let payload = &packet[DATA_HEADER..];
                if payload.len() > self.cfg.fragment || flags & !FLAG_END != 0 {
                    return Err(ArqError::Malformed);
                }
                self.on_data(seq, flags, payload)
            }
            Some(&P_ACK) if packet.len() == ACK_LEN => {
                let cum = u32::from_be_bytes(packet[1..5].try_into().map_err(|_| ArqError::Malformed)?);
                let sack = u64::from_be_bytes(packet[5..13].try_into().map_err(|_| ArqError::Malformed)?);
                self.on_ack(cum, sack, now);
                Ok(())
            }
            _ => Err(ArqError::Malformed),
        }
    }

    fn on_data(&mut self, seq: u32, flags: u8, payload: &[u8]) -> Result<(), ArqError> {
        // Always acknowledge, even duplicates: our previous acknowledgement may have been lost.
        self.ack_due = true;
        if seq < self.next_expected || seq - self.next_expected >= self.cfg.window {
            return Ok(());
        }
        self.out_of_order.entry(seq).or_insert_with(|| (flags, payload.to_vec()));
        while let Some((flags, payload)) = self.out_of_order.remove(&self.next_expected) {
            self.next_expected += 1;
            if self.assembling.len() + payload.len() > self.cfg.max_message {
                return Err(ArqError::TooLarge(self.assembling.len() + payload.len()));
            }
            self.assembling.extend_from_slice(&payload);
            if flags & FLAG_END != 0 {
                self.delivered.push_back(std::mem::take(&mut self.assembling));
            }
        }
        Ok(())
    }

    fn on_ack(&mut self, cum: u32, sack: u64, now: Instant) {
        let mut acked: Vec<Outstanding> = Vec::new();
        let still = self.unacked.split_off(&cum);
        acked.extend(std::mem::replace(&mut self.unacked, still).into_values());
        for bit in 0..64u32 {
            if sack & (1 << bit) != 0
                && let Some(o) = self.unacked.remove(&cum.wrapping_add(1).wrapping_add(bit))
            {
                acked.push(o);
            }
        }
        if acked.is_empty() {
            return;
        }
        self.last_progress = now;
        // Karn's rule: only fragments sent once give unambiguous round-trip samples.
        if let Some(sample) = acked.iter().filter(|o| o.retries == 0).map(|o| now - o.first_sent).min() {
            self.update_rtt(sample);
        }
    }

    fn update_rtt(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(r);
                self.rttvar = self.rttvar * 3 / 4 + diff / 4;
                self.srtt = Some(srtt * 7 / 8 + r / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        self.rto = (srtt + (self.rttvar * 4).max(Duration::from_millis(10)))
            .clamp(self.cfg.rto_min, self.cfg.rto_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator, so lossy-network tests replay exactly.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    /// Two endpoints over a simulated network that drops, duplicates and reorders.
    fn simulate(
        seed: u64,
        loss: u64,
        msgs_a: &[Vec<u8>],
        msgs_b: &[Vec<u8>],
    ) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut rng = Rng(seed | 1);
        let start = Instant::now();
        let mut now = start;
        let cfg = Config { fragment: 100, window: 32, ..Config::default() };
        let mut a = Arq::new(cfg.clone(), now);
        let mut b = Arq::new(cfg, now);
        for m in msgs_a {
            a.send_message(m).unwrap();
        }
        for m in msgs_b {
            b.send_message(m).unwrap();
        }
        // In-flight packets: (deliver_at, to_b, bytes).
        let mut net: Vec<(Instant, bool, Vec<u8>)> = Vec::new();
        let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
        for _ in 0..200_000 {
            for (ep, to_b) in [(&mut a, true), (&mut b, false)] {
                while let Some(p) = ep.poll_transmit(now) {
                    if rng.chance(loss) {
                        continue;
                    }
                    let copies = if rng.chance(loss) { 2 } else { 1 };
                    for _ in 0..copies {
                        let delay = Duration::from_millis(5 + rng.next() % 40);
                        net.push((now + delay, to_b, p.clone()));
                    }
                }
            }
            now += Duration::from_millis(5);
            let (due, rest): (Vec<_>, Vec<_>) = net.into_iter().partition(|(t, _, _)| *t <= now);
            net = rest;
            for (_, to_b, p) in due {
                if to_b { b.on_packet(&p, now).unwrap() } else { a.on_packet(&p, now).unwrap() }
            }
            while let Some(m) = a.poll_message() {
                got_a.push(m);
            }
            while let Some(m) = b.poll_message() {
                got_b.push(m);
            }
            assert!(!a.is_dead(now) && !b.is_dead(now), "gave up at {:?}", now - start);
            if a.is_idle() && b.is_idle() && got_a.len() == msgs_b.len() && got_b.len() == msgs_a.len() {
                break;
            }
        }
        (got_a, got_b)
    }

    fn messages(n: usize, tag: &str) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("{tag} message {i} {}", "x".repeat(i * 37 % 350)).into_bytes()).collect()
    }

    #[test]
    fn perfect_network_delivers_in_order() {
        let (ma, mb) = (messages(50, "a"), messages(30, "b"));
        let (got_a, got_b) = simulate(1, 0, &ma, &mb);
        assert_eq!(got_b, ma);
        assert_eq!(got_a, mb);
    }

    #[test]
    fn lossy_network_delivers_everything_once_in_order() {
        for seed in 1..20 {
            let (ma, mb) = (messages(80, "a"), messages(80, "b"));
            let (got_a, got_b) = simulate(seed * 7919, 20, &ma, &mb);
            assert_eq!(got_b, ma, "seed {seed}");
            assert_eq!(got_a, mb, "seed {seed}");
        }
    }

    #[test]
    fn large_and_empty_messages_are_fragmented_and_reassembled() {
        let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let ma = vec![big.clone(), Vec::new(), b"after".to_vec()];
        let (_, got_b) = simulate(42, 20, &ma, &[]);
        assert_eq!(got_b, ma);
    }

    #[test]
    fn dead_peer_is_detected() {
        let start = Instant::now();
        let mut a = Arq::new(Config::default(), start);
        a.send_message(b"hello?").unwrap();
        let mut now = start;
        let mut sends = 0;
        while !a.is_dead(now) {
            while a.poll_transmit(now).is_some() {
                sends += 1;
            }
            now = a.poll_timeout().unwrap().max(now + Duration::from_millis(1));
        }
        assert!(sends > 3, "retransmitted with backoff ({sends} sends)");
        assert!(now - start >= Config::default().give_up);
    }

    #[test]
    fn limits_are_enforced() {
        let now = Instant::now();
        let mut a = Arq::new(Config::default(), now);
        assert_eq!(a.send_message(&vec![0; 64 * 1024 + 1]), Err(ArqError::TooLarge(64 * 1024 + 1)));
        let mut b = Arq::new(Config { max_message: 10, fragment: 4, ..Config::default() }, now);
        for seq in 0..3u32 {
            let mut p = vec![P_DATA];
            p.extend_from_slice(&seq.to_be_bytes());
            p.push(0);
            p.extend_from_slice(b"abcd");
            let r = b.on_packet(&p, now);
            if seq == 2 {
                assert_eq!(r, Err(ArqError::TooLarge(12)));
            }
        }
        assert_eq!(b.on_packet(&[P_DATA, 0, 0, 0, 9, 0, 1, 2, 3, 4, 5], now), Err(ArqError::Malformed));
        assert_eq!(b.on_packet(&[P_ACK, 1], now), Err(ArqError::Malformed));
        assert_eq!(b.on_packet(&[], now), Err(ArqError::Malformed));
    }

    #[test]
    fn window_bounds_packets_in_flight() {
        let now = Instant::now();
        let mut a = Arq::new(Config { window: 8, fragment: 10, ..Config::default() }, now);
        a.send_message(&[7; 1000]).unwrap();
        let mut sent = 0;
        while a.poll_transmit(now).is_some() {
            sent += 1;
        }
        assert_eq!(sent, 8);
    }

    proptest::proptest! {
        #[test]
        fn random_packets_never_panic(packets: Vec<Vec<u8>>) {
            let now = Instant::now();
            let mut a = Arq::new(Config::default(), now);
            a.send_message(b"x").unwrap();
            for p in packets {
                let _ = a.on_packet(&p, now);
                while a.poll_transmit(now).is_some() {}
                while a.poll_message().is_some() {}
            }
        }

        #[test]
        fn any_loss_pattern_delivers_once_in_order(seed: u64, loss in 0u64..35, n in 1usize..40) {
            let ma = messages(n, "p");
            let (_, got_b) = simulate(seed, loss, &ma, &[]);
            proptest::prop_assert_eq!(got_b, ma);
        }
    }
}
