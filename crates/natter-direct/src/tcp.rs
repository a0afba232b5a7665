//! Encrypted chat over TCP: handshake frames, then sealed [`AppMsg`]s, one per frame.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::chat::{Link, NetEvent, Ui};
use crate::code::Code;
use crate::error::DirectError;
use crate::frame::{AbortReason, AppMsg, Packet, StreamDecoder};
use crate::session::{Handshake, HandshakeError, HsMsg, Opener, Sealer, Session, Step};
use crate::waiting_room::{Candidate, WaitingRoom, WaitingRoomLimits};
use crate::{HANDSHAKE_TIMEOUT, LINGER};

/// Reads packets from a TCP stream through a bounded decoder.
struct PacketReader {
    read: OwnedReadHalf,
    decoder: StreamDecoder,
    buf: Vec<u8>,
}

impl PacketReader {
    fn new(read: OwnedReadHalf) -> Self {
        Self { read, decoder: StreamDecoder::default(), buf: vec![0; 64 * 1024] }
    }

    /// The next packet, or `None` on a clean end of stream.
    async fn next(&mut self) -> Result<Option<Packet>, DirectError> {
        loop {
            if let Some(p) = self.decoder.next_packet()? {
                return Ok(Some(p));
            }
            let n = self.read.read(&mut self.buf).await?;
            if n == 0 {
                if self.decoder.pending() > 0 {
                    return Err(DirectError::Lost("the stream ended in the middle of a message".into()));
                }
                return Ok(None);
            }
            self.decoder.extend(&self.buf[..n]);
        }
    }
}

async fn send_packet(w: &mut OwnedWriteHalf, p: &Packet) -> Result<(), DirectError> {
    w.write_all(&p.encode_stream()?).await?;
    Ok(())
}

async fn send_flight(w: &mut OwnedWriteHalf, msgs: Vec<HsMsg>) -> Result<(), DirectError> {
    for m in msgs {
        send_packet(w, &Packet::from_hs(m)).await?;
    }
    Ok(())
}

fn aborted(reason: AbortReason) -> DirectError {
    match reason {
        AbortReason::WrongCode => DirectError::PeerRejectedCode,
        AbortReason::Busy => DirectError::Busy,
        AbortReason::Protocol => DirectError::PeerProtocol,
    }
}

/// Drives a handshake to completion over an already-started exchange.
async fn drive(
    hs: &mut Handshake,
    reader: &mut PacketReader,
    writer: &mut OwnedWriteHalf,
) -> Result<Session, DirectError> {
    loop {
        let packet = reader.next().await?.ok_or(DirectError::ClosedDuringHandshake)?;
        let msg = match packet {
            Packet::Pake { msg, .. } => HsMsg::Pake(msg),
            Packet::Noise(m) => HsMsg::Noise(m),
            Packet::Abort(r) => return Err(aborted(r)),
            Packet::Data(_) => {
                return Err(HandshakeError::Unexpected("data before the handshake ended").into());
            }
        };
        match hs.on_message(msg) {
            Ok(Step::Send(msgs)) => send_flight(writer, msgs).await?,
            Ok(Step::Wait) => {}
            Ok(Step::Done { send, session }) => {
                send_flight(writer, send).await?;
                return Ok(*session);
            }
            Err(e) => {
                let reason = if e == HandshakeError::WrongCode {
                    AbortReason::WrongCode
                } else {
                    AbortReason::Protocol
                };
                let _ = send_packet(writer, &Packet::Abort(reason)).await;
                return Err(e.into());
            }
        }
    }
}

/// Waits for the one peer, runs the handshake with it and returns the chat link; the
/// waiting room has its default limits.
pub async fn listen(listener: TcpListener, code: &Code, ui: &Ui) -> Result<(Link, String), DirectError> {
    listen_with(listener, code, ui, WaitingRoomLimits::default()).await
}

/// [`listen`] with the waiting room's limits given (tests shorten or lengthen them).
///
/// New connections wait for their first packet side by side (see [`crate::waiting_room`]):
/// idle ones, port scanners and stray netcats are closed and do not use up the code. The
/// first connection to send a well-formed PAKE message is answered, and that answer is its
/// one guess of the code: from then on, success or failure, the listener accepts no one else.
/// A PAKE message that is not well formed is refused without an answer, so it guesses
/// nothing and the code stays unused.
pub async fn listen_with(
    listener: TcpListener,
    code: &Code,
    ui: &Ui,
    limits: WaitingRoomLimits,
) -> Result<(Link, String), DirectError> {
    let mut room = WaitingRoom::new(listener, limits, ui);
    let (candidate, mut hs, flight) = loop {
        let mut candidate = room.next_candidate().await?;
        let mut hs = Handshake::listener(code);
        match hs.on_message(HsMsg::Pake(std::mem::take(&mut candidate.pake))) {
            Ok(Step::Send(flight)) => break (candidate, hs, flight),
            Ok(_) => return Err(HandshakeError::Unexpected("PAKE").into()),
            Err(_) => {
                if let Ok(abort) = Packet::Abort(AbortReason::Protocol).encode_stream() {
                    // Never blocking: nothing else was ever sent on this connection.
                    let _ = candidate.stream.try_write(&abort);
                }
                let addr = candidate.addr;
                room.notice(&format!(
                    "ignored {addr}: its handshake message is not valid natter direct; the code is still \
                     unused; still waiting"
                ))
                .await;
            }
        }
    };
    // The guess is made once the flight is sent: everyone else goes now.
    room.close().await;
    let Candidate { stream, addr, .. } = candidate;
    let _ = stream.set_nodelay(true);
    ui.status(format!("{addr} is connecting; checking the code")).await;
    let (read, mut writer) = stream.into_split();
    let mut reader = PacketReader::new(read);
    let session = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        send_flight(&mut writer, flight).await?;
        drive(&mut hs, &mut reader, &mut writer).await
    })
    .await
    .map_err(|_| DirectError::HandshakeTimeout(HANDSHAKE_TIMEOUT.as_secs()))??;
    let sas = session.sas().to_string();
    Ok((start_link(session, reader, writer), sas))
}

/// Connects to a listener, runs the handshake and returns the chat link.
pub async fn connect(addr: SocketAddr, code: &Code) -> Result<(Link, String), DirectError> {
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| DirectError::HandshakeTimeout(HANDSHAKE_TIMEOUT.as_secs()))?
        .map_err(|e| DirectError::Lost(format!("cannot connect to {addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (read, mut writer) = stream.into_split();
    let mut reader = PacketReader::new(read);
    let (mut hs, first) = Handshake::connector(code);
    let session = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        send_flight(&mut writer, vec![first]).await?;
        drive(&mut hs, &mut reader, &mut writer).await
    })
    .await
    .map_err(|_| DirectError::HandshakeTimeout(HANDSHAKE_TIMEOUT.as_secs()))??;
    let sas = session.sas().to_string();
    Ok((start_link(session, reader, writer), sas))
}

/// Starts the reader and writer tasks of an established session.
fn start_link(session: Session, reader: PacketReader, writer: OwnedWriteHalf) -> Link {
    let (sealer, opener) = session.split();
    let (app_tx, app_rx) = mpsc::channel(256);
    let (net_tx, net_rx) = mpsc::channel(256);
    let writer_task = tokio::spawn(write_loop(sealer, app_rx, writer));
    tokio::spawn(async move {
        let result = read_loop(opener, reader, writer_task, &net_tx).await;
        let _ = net_tx.send(NetEvent::Closed(result)).await;
    });
    Link { tx: app_tx, rx: net_rx, linger: LINGER }
}

/// Seals and writes messages until our goodbye; then half-closes the stream.
async fn write_loop(
    mut sealer: Sealer,
    mut app_rx: mpsc::Receiver<AppMsg>,
    mut writer: OwnedWriteHalf,
) -> Result<(), DirectError> {
    loop {
        let msg = app_rx.recv().await.unwrap_or(AppMsg::Bye);
        let bye = msg == AppMsg::Bye;
        send_packet(&mut writer, &Packet::Data(sealer.seal(&msg.encode())?)).await?;
        if bye {
            writer.shutdown().await?;
            return Ok(());
        }
    }
}

/// Opens incoming messages until both sides said goodbye; any forgery ends the link.
async fn read_loop(
    mut opener: Opener,
    mut reader: PacketReader,
    mut writer_task: tokio::task::JoinHandle<Result<(), DirectError>>,
    net_tx: &mpsc::Sender<NetEvent>,
) -> Result<(), DirectError> {
    let mut local_done = false;
    let mut peer_done = false;
    let mut peer_eof = false;
    loop {
        if local_done && peer_done {
            return Ok(());
        }
        tokio::select! {
            r = &mut writer_task, if !local_done => {
                local_done = true;
                match r {
                    Ok(Ok(())) => {}
                    // The peer already left: nothing more can be delivered, which is fine.
                    Ok(Err(_)) if peer_done => {}
                    Ok(Err(e)) => return Err(e),
                    Err(e) => return Err(DirectError::Lost(e.to_string())),
                }
            }
            p = reader.next(), if !peer_eof => match p? {
                Some(Packet::Data(sealed)) => match AppMsg::decode(&opener.open(&sealed)?)? {
                    AppMsg::Text(t) if !peer_done => { let _ = net_tx.send(NetEvent::Text(t)).await; }
                    AppMsg::Text(_) => return Err(DirectError::Lost("message after goodbye".into())),
                    AppMsg::Bye => {
                        peer_done = true;
                        let _ = net_tx.send(NetEvent::PeerLeft).await;
                    }
                },
                Some(_) => return Err(HandshakeError::Unexpected("handshake packet during the chat").into()),
                // The peer half-closed after its goodbye; we may still be sending.
                None if peer_done => peer_eof = true,
                None => return Err(DirectError::Lost("the other side closed the connection without saying goodbye".into())),
            },
        }
    }
}
