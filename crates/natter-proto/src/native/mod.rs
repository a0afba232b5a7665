//! The native protocol: one JSON object per line, each with a `type`.
//!
//! Designed for programs (the terminal client, bots, the load generator): every request may carry an
//! `id` that the answer or error echoes, errors carry a stable [`ErrorCode`], and messages
//! carry a client id (`cid`) so that a resend after a reconnect is recognised and never
//! doubled. `docs/protocol.md` shows every frame with an example.
//!
//! The same types serve both ends: the server parses [`ClientFrame`] and writes
//! [`ServerFrame`]; clients do the reverse. Server frames borrow (`Cow`) so the server can
//! serialize straight from its own data without copying.
//!
//! One job per file: [`ClientFrame`] and its parts in `client`, [`ServerFrame`] and the
//! records it carries in `server`, [`ErrorCode`] and [`FrameError`] in `error`, reading a
//! line in `parse`; the hand-written fast paths for the hottest frames sit side by side,
//! `fast_read` (the `send` frame) and `fast_write` (`message` and `ack`), each held to serde's
//! answers by tests (`tests/native_props.rs`); the `token` native frames carry over UDP in
//! `udp_token`.

mod client;
mod error;
mod fast_read;
mod fast_write;
mod parse;
mod request_id;
mod server;
mod udp_token;

pub use client::{CLIENT_SECRET_BYTES, ClientFrame, RoomChangeFrame, client_frame_line};
pub use error::{ErrorCode, FrameError};
pub use fast_write::write_server_frame;
pub use parse::{parse_client_frame, parse_server_frame};
pub use request_id::RequestId;
pub use server::{AccountChangeFrame, BanFrame, MessageFrame, ModesFrame, RoomInfo, ServerFrame, UserFrame};
pub use udp_token::{TOKEN_FIELD, frame_token};

/// serde's `skip_serializing_if` for flags, shared by client and server frames: a `false`
/// flag is left out of the line.
fn is_false(b: &bool) -> bool {
    !*b
}
