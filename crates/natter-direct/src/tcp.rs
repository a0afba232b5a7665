//! Encrypted chat over TCP: handshake frames, then sealed [`AppMsg`]s, one per frame.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::chat::{Link, NetEvent, Ui};
use crate::code::Code;
use crate::error::DirectError;
use crate::frame::{AbortReason, AppMsg, PROTOCOL_VERSION, Packet, StreamDecoder};
use crate::session::{Handshake, HandshakeError, HsMsg, Opener, Sealer, Session, Step};
use crate::{HANDSHAKE_TIMEOUT, LINGER};

/// How long an unknown connection may take to send its first packet.
const FIRST_PACKET_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Waits for the one peer, runs the handshake with it and returns the chat link.
///
/// Connections that do not start with a natter direct PAKE message (port scanners, a stray
/// netcat) are ignored and do not use up the code. Once a peer has sent a PAKE message it has
/// made its one guess: success or failure, the listener stops listening.
pub async fn listen(listener: TcpListener, code: &Code, ui: &Ui) -> Result<(Link, String), DirectError> {
    loop {
        let (stream, addr) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (read, mut writer) = stream.into_split();
        let mut reader = PacketReader::new(read);
        let first = tokio::time::timeout(FIRST_PACKET_TIMEOUT, reader.next()).await;
        let msg = match first {
            Ok(Ok(Some(Packet::Pake { version: PROTOCOL_VERSION, msg }))) => msg,
            Ok(Ok(Some(Packet::Pake { version, .. }))) => {
                let _ = send_packet(&mut writer, &Packet::Abort(AbortReason::Protocol)).await;
                ui.status(format!(
                    "ignored {addr}: it speaks natter direct version {version}, we speak {PROTOCOL_VERSION}"
                ))
                .await;
                continue;
            }
            _ => {
                ui.status(format!(
                    "ignored a connection from {addr} that is not natter direct; still waiting"
                ))
                .await;
                continue;
            }
        };
        drop(listener);
        ui.status(format!("{addr} is connecting; checking the code")).await;
        let mut hs = Handshake::listener(code);
        let session = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            match hs.on_message(HsMsg::Pake(msg))? {
                Step::Send(msgs) => send_flight(&mut writer, msgs).await?,
                _ => return Err(HandshakeError::Unexpected("PAKE").into()),
            }
            drive(&mut hs, &mut reader, &mut writer).await
        })
        .await
        .map_err(|_| DirectError::HandshakeTimeout(HANDSHAKE_TIMEOUT.as_secs()))??;
        let sas = session.sas().to_string();
        return Ok((start_link(session, reader, writer), sas));
    }
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
