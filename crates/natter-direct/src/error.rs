//! Errors of natter direct, worded for the person at the keyboard: what went wrong and what
//! to do about it.

use std::io;

use crate::code::CodeError;
use crate::frame::FrameError;
use crate::session::{HandshakeError, SessionError};

/// Everything that can end a `natter direct` session early.
#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    /// The code typed is not a valid code.
    #[error("{0}")]
    Code(#[from] CodeError),
    /// The handshake failed (wrong code, tampering, incompatible peer).
    #[error("{0}")]
    Handshake(#[from] HandshakeError),
    /// The other side reported that the codes did not match.
    #[error(
        "wrong code: the other side says the codes do not match; the code is now used up, \
         so ask for a new one (the listener must run `natter direct listen` again)"
    )]
    PeerRejectedCode,
    /// The listener already served its one peer.
    #[error("the listener is busy or its code was already used; ask for a new code")]
    Busy,
    /// The other side does not speak our protocol.
    #[error("the other side aborted the handshake (protocol error or different natter version)")]
    PeerProtocol,
    /// A message failed authentication or was replayed on an ordered (TCP) link.
    #[error("{0}; closing the connection, as it is not safe to continue")]
    Session(#[from] SessionError),
    /// The peer sent bytes that do not form valid packets.
    #[error("the other side sent invalid data ({0}); closing the connection")]
    Frame(#[from] FrameError),
    /// The reliable UDP layer detected a protocol violation.
    #[error("the other side broke the reliable UDP protocol ({0}); closing")]
    Reliable(#[from] crate::reliable::ArqError),
    /// The handshake did not finish in time.
    #[error("the handshake timed out after {0} s: check the address, the port and any firewall")]
    HandshakeTimeout(u64),
    /// The connection closed during the handshake.
    #[error(
        "the other side closed the connection during the handshake (wrong address, or the code was already used)"
    )]
    ClosedDuringHandshake,
    /// The connection broke during the chat.
    #[error("the connection to the other side was lost: {0}")]
    Lost(String),
    /// The peer stopped acknowledging UDP datagrams.
    #[error(
        "the other side stopped answering (nothing acknowledged for {0} s); it is gone or the path is blocked"
    )]
    Unreachable(u64),
    /// The address given cannot be used.
    #[error("cannot use address '{0}': {1}")]
    Address(String, String),
    /// The user gave up with Ctrl+C before the chat started.
    #[error("interrupted before the chat started")]
    Interrupted,
    /// Any other socket error.
    #[error("network error: {0}")]
    Io(#[from] io::Error),
}
