//! Encrypted chat over UDP: the handshake with retransmission, then [`Arq`] packets, each
//! sealed in its own Noise message (fresh nonce per datagram, retransmissions included), so
//! that acknowledgements are authenticated and duplicated datagrams are simply replays.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::chat::{Link, NetEvent, Ui};
use crate::code::Code;
use crate::error::DirectError;
use crate::frame::{AbortReason, AppMsg, PROTOCOL_VERSION, Packet};
use crate::notices::NoticeLimiter;
use crate::reliable::{Arq, Config};
use crate::session::{
    Handshake, HandshakeError, HsMsg, Opener, Ordering, Sealer, Session, SessionError, Step,
};
use crate::{HANDSHAKE_TIMEOUT, LINGER};

/// Handshake flights are resent this often until the next flight arrives.
const HS_RESEND: Duration = Duration::from_millis(250);
/// After both goodbyes, keep acknowledging for this long (our last ACK may be lost).
const TIME_WAIT: Duration = Duration::from_millis(600);
/// At most this many "rejected datagram" notices are shown, so a flood cannot fill the screen.
const MAX_NOTICES: u32 = 3;
/// Largest datagram we accept.
const MAX_DATAGRAM: usize = 65_536;

fn to_hs(p: Packet) -> Option<HsMsg> {
    match p {
        Packet::Pake { version: PROTOCOL_VERSION, msg } => Some(HsMsg::Pake(msg)),
        Packet::Noise(m) => Some(HsMsg::Noise(m)),
        _ => None,
    }
}

async fn send_all(socket: &UdpSocket, flight: &[Vec<u8>]) {
    for d in flight {
        // Sending can fail transiently (ICMP unreachable reported late); retransmission covers it.
        let _ = socket.send(d).await;
    }
}

fn encode_flight(msgs: Vec<HsMsg>) -> Vec<Vec<u8>> {
    msgs.into_iter().map(|m| Packet::from_hs(m).encode()).collect()
}

/// Runs one side's handshake over a connected socket, resending its last flight until the
/// peer's next flight arrives. Returns the session and our final flight (to resend if the
/// peer did not get it).
async fn handshake(
    socket: &UdpSocket,
    hs: &mut Handshake,
    mut flight: Vec<Vec<u8>>,
) -> Result<(Session, Vec<Vec<u8>>), DirectError> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    send_all(socket, &flight).await;
    let mut resend_at = Instant::now() + HS_RESEND;
    loop {
        tokio::select! {
            r = socket.recv(&mut buf) => {
                let Ok(n) = r else { continue };
                let Ok(packet) = Packet::decode(&buf[..n]) else { continue };
                if let Packet::Abort(reason) = packet {
                    return Err(match reason {
                        AbortReason::WrongCode => DirectError::PeerRejectedCode,
                        AbortReason::Busy => DirectError::Busy,
                        AbortReason::Protocol => DirectError::PeerProtocol,
                    });
                }
                let Some(msg) = to_hs(packet) else { continue };
                // Retransmitted copies of a message we already processed are ignored.
                match hs.on_message(msg) {
                    Ok(Step::Send(msgs)) => {
                        flight = encode_flight(msgs);
                        send_all(socket, &flight).await;
                        resend_at = Instant::now() + HS_RESEND;
                    }
                    Ok(Step::Wait) => {}
                    Ok(Step::Done { send, session }) => {
                        let last = encode_flight(send);
                        send_all(socket, &last).await;
                        return Ok((*session, last));
                    }
                    Err(HandshakeError::Unexpected(_)) => {}
                    Err(e) => {
                        let reason = if e == HandshakeError::WrongCode { AbortReason::WrongCode } else { AbortReason::Protocol };
                        // Datagrams get lost: say it a few times.
                        for _ in 0..3 {
                            let _ = socket.send(&Packet::Abort(reason).encode()).await;
                        }
                        return Err(e.into());
                    }
                }
            }
            () = tokio::time::sleep_until(resend_at) => {
                send_all(socket, &flight).await;
                resend_at = Instant::now() + HS_RESEND;
            }
        }
    }
}

/// Waits for the first datagram carrying a well-formed natter direct PAKE message, locks
/// onto its sender and runs the handshake. Stray datagrams before that are ignored as they
/// come (nothing waits, so none can hold the listener up) and do not use the code; neither
/// does a malformed PAKE message, which is refused without an answer. Notices about them
/// are rate-limited.
pub async fn listen(socket: UdpSocket, code: &Code, ui: &Ui) -> Result<(Link, String), DirectError> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut notices = NoticeLimiter::new(Instant::now().into_std());
    let refuse = Packet::Abort(AbortReason::Protocol).encode();
    let (mut hs, flight, from) = loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
        let notice = match Packet::decode(&buf[..n]) {
            Ok(Packet::Pake { version: PROTOCOL_VERSION, msg }) => {
                let mut hs = Handshake::listener(code);
                match hs.on_message(HsMsg::Pake(msg)) {
                    Ok(Step::Send(msgs)) => break (hs, encode_flight(msgs), from),
                    Ok(_) => return Err(HandshakeError::Unexpected("PAKE").into()),
                    Err(_) => {
                        let _ = socket.send_to(&refuse, from).await;
                        format!(
                            "ignored {from}: its handshake message is not valid natter direct; the code is \
                             still unused; still waiting"
                        )
                    }
                }
            }
            Ok(Packet::Pake { version, .. }) => {
                let _ = socket.send_to(&refuse, from).await;
                format!(
                    "ignored {from}: it speaks natter direct version {version}, we speak {PROTOCOL_VERSION}; \
                     still waiting"
                )
            }
            _ => continue,
        };
        if let Some(line) = notices.admit(Instant::now().into_std(), &notice) {
            ui.status(line).await;
        }
    };
    if let Some(line) = notices.summary() {
        ui.status(line).await;
    }
    socket.connect(from).await?;
    ui.status(format!("{from} is connecting; checking the code")).await;
    let (session, _) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&socket, &mut hs, flight))
        .await
        .map_err(|_| DirectError::HandshakeTimeout(HANDSHAKE_TIMEOUT.as_secs()))??;
    let sas = session.sas().to_string();
    Ok((start_link(socket, session, Vec::new()), sas))
}

/// Runs the connector's handshake towards `addr` and returns the chat link.
pub async fn connect(addr: SocketAddr, code: &Code) -> Result<(Link, String), DirectError> {
    let local: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    let (mut hs, first) = Handshake::connector(code);
    let (session, last) =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&socket, &mut hs, encode_flight(vec![first])))
            .await
            .map_err(|_| DirectError::HandshakeTimeout(HANDSHAKE_TIMEOUT.as_secs()))??;
    let sas = session.sas().to_string();
    Ok((start_link(socket, session, last), sas))
}

fn start_link(socket: UdpSocket, mut session: Session, last_flight: Vec<Vec<u8>>) -> Link {
    session.set_ordering(Ordering::Window);
    let (sealer, opener) = session.split();
    let (app_tx, app_rx) = mpsc::channel(256);
    let (net_tx, net_rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut ep = Endpoint { socket, sealer, opener, last_flight, notices: 0 };
        let result = ep.run(app_rx, &net_tx).await;
        let _ = net_tx.send(NetEvent::Closed(result)).await;
    });
    Link { tx: app_tx, rx: net_rx, linger: LINGER }
}

struct Endpoint {
    socket: UdpSocket,
    sealer: Sealer,
    opener: Opener,
    /// Our last handshake flight (connector only), resent if the listener repeats its own.
    last_flight: Vec<Vec<u8>>,
    notices: u32,
}

impl Endpoint {
    async fn run(
        &mut self,
        mut app_rx: mpsc::Receiver<AppMsg>,
        net_tx: &mpsc::Sender<NetEvent>,
    ) -> Result<(), DirectError> {
        let cfg = Config::default();
        let give_up = cfg.give_up.as_secs();
        let mut arq = Arq::new(cfg, std::time::Instant::now());
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let (mut local_done, mut peer_done) = (false, false);
        let mut time_wait: Option<Instant> = None;
        loop {
            let now = std::time::Instant::now();
            while let Some(p) = arq.poll_transmit(now) {
                let d = Packet::Data(self.sealer.seal(&p)?).encode();
                let _ = self.socket.send(&d).await;
            }
            while let Some(m) = arq.poll_message() {
                match AppMsg::decode(&m)? {
                    AppMsg::Text(t) => {
                        let _ = net_tx.send(NetEvent::Text(t)).await;
                    }
                    AppMsg::Bye => {
                        peer_done = true;
                        let _ = net_tx.send(NetEvent::PeerLeft).await;
                    }
                }
            }
            if arq.is_dead(now) {
                return Err(DirectError::Unreachable(give_up));
            }
            if local_done && peer_done && arq.is_idle() && time_wait.is_none() {
                time_wait = Some(Instant::now() + TIME_WAIT);
            }
            let retransmit = arq
                .poll_timeout()
                .map(Instant::from_std)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let finish = async {
                match time_wait {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.socket.recv(&mut buf) => {
                    let Ok(n) = r else { continue };
                    self.on_datagram(&buf[..n], &mut arq, net_tx).await?;
                }
                msg = app_rx.recv(), if !local_done && arq.can_accept() => {
                    let msg = msg.unwrap_or(AppMsg::Bye);
                    local_done = msg == AppMsg::Bye;
                    arq.send_message(&msg.encode())?;
                }
                () = tokio::time::sleep_until(retransmit) => {}
                () = finish => return Ok(()),
            }
        }
    }

    async fn on_datagram(
        &mut self,
        d: &[u8],
        arq: &mut Arq,
        net_tx: &mpsc::Sender<NetEvent>,
    ) -> Result<(), DirectError> {
        match Packet::decode(d) {
            Ok(Packet::Data(sealed)) => match self.opener.open(&sealed) {
                Ok(plain) => arq.on_packet(&plain, std::time::Instant::now())?,
                // Duplicated datagrams are normal on UDP; the replay window drops them quietly.
                Err(SessionError::Replayed) => {}
                Err(e) => {
                    self.notices += 1;
                    if self.notices <= MAX_NOTICES {
                        let _ = net_tx.send(NetEvent::Status(format!("rejected a datagram: {e}"))).await;
                    }
                }
            },
            // The listener did not get our last handshake message: repeat it.
            Ok(Packet::Pake { .. } | Packet::Noise(_)) => send_all(&self.socket, &self.last_flight).await,
            _ => {}
        }
        Ok(())
    }
}
