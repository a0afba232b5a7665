//! The native door over UDP: the same frames, plus the session token that makes a datagram
//! speak for its member.
//!
//! Over UDP the server knows a member by its source address, which anyone can write. So a
//! member that logs in with `hello` gets a session token in its `welcome`, and from then on a
//! datagram speaks for it only if every frame in it carries that token (`"token":"..."`). A
//! frame without it, or with another, is dropped unread: it cannot send, rename or quit. The
//! real member is told (`bad_token`), at most once per [`REFUSAL_INTERVAL`], and a dropped
//! frame is never a strike, or forged datagrams could get the real member disconnected.
//!
//! Sessions that logged in with the chat-room tutorial's `login` get no token (that client
//! could not carry one): like plain-text members, they are only as safe as their address.

use super::render::frame;
use super::{NativeDoor, NativeNote};
use crate::door::{DatagramDoor, Door, Flow, SessionCtx};
use natter_core::{DoorNote, Event, RenderSlot, SessionKind};
use natter_proto::native::{ErrorCode, ServerFrame, frame_token, write_server_frame};
use std::borrow::Cow;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

/// A member is told that frames were dropped for want of its token at most this often.
pub(crate) const REFUSAL_INTERVAL: Duration = Duration::from_secs(5);

/// Native frames for one UDP member, guarded by its session token.
#[derive(Debug)]
pub(crate) struct UdpNativeDoor {
    inner: NativeDoor,
    /// The session token (made by the UDP door, unguessable).
    token: Box<str>,
    /// When the member was last told about a dropped frame.
    last_refusal: Option<Instant>,
}

impl UdpNativeDoor {
    /// A door for a member whose lines are limited to `max_line` bytes and whose session
    /// token, once it logs in, is `token`.
    pub fn new(max_line: usize, token: &str) -> Self {
        Self { inner: NativeDoor::new(max_line), token: token.into(), last_refusal: None }
    }

    /// True when `claimed` is the session token, compared in constant time.
    fn is_token(&self, claimed: &str) -> bool {
        bool::from(self.token.as_bytes().ct_eq(claimed.as_bytes()))
    }

    /// True once the member has logged in with `hello`: its datagrams must carry the token.
    fn guarded(&self, ctx: &SessionCtx) -> bool {
        ctx.session.is_some() && !self.inner.tutorial
    }

    /// Tells the member (not too often) that a datagram was dropped, and why.
    fn refuse(&mut self, ctx: &mut SessionCtx, code: ErrorCode, message: String) {
        let now = Instant::now();
        if self.last_refusal.is_some_and(|last| now.duration_since(last) < REFUSAL_INTERVAL) {
            return;
        }
        self.last_refusal = Some(now);
        // Not a strike: whoever wrote the member's address as the source may have sent it.
        let _ = ctx.note(DoorNote::new(NativeNote::Error { id: None, code, message }));
    }
}

impl DatagramDoor for UdpNativeDoor {
    fn screen(&mut self, line: &[u8], ctx: &mut SessionCtx) -> bool {
        if !self.guarded(ctx) || frame_token(line).is_some_and(|claimed| self.is_token(&claimed)) {
            return true;
        }
        self.refuse(
            ctx,
            ErrorCode::BadToken,
            "frame dropped: over UDP every frame must carry \"token\" with the value from your welcome"
                .into(),
        );
        false
    }

    fn on_too_long_datagram(&mut self, ctx: &mut SessionCtx, max: usize) -> Flow {
        if !self.guarded(ctx) {
            return self.inner.on_too_long(ctx, max);
        }
        // Too long to read its token: it may not be the member's, so it is no strike.
        self.refuse(ctx, ErrorCode::TooLong, format!("datagram dropped: longer than {max} bytes"));
        Flow::Continue
    }
}

impl Door for UdpNativeDoor {
    const KIND: SessionKind = NativeDoor::KIND;

    fn cache_slot(event: &Event) -> Option<RenderSlot> {
        NativeDoor::cache_slot(event)
    }

    fn slot(&self, event: &Event) -> Option<RenderSlot> {
        self.inner.slot(event)
    }

    fn render(&mut self, event: &Event, out: &mut Vec<u8>) {
        if !matches!(event, Event::Welcome { .. }) || self.inner.tutorial {
            return self.inner.render(event, out);
        }
        let mut welcome = frame(event);
        if let ServerFrame::Welcome { max_line, token, .. } = &mut welcome {
            *max_line = Some(self.inner.max_line as usize);
            *token = Some(Cow::Borrowed(&self.token));
        }
        write_server_frame(&welcome, out);
    }

    fn observe(&mut self, event: &Event) {
        self.inner.observe(event);
    }

    async fn on_line(&mut self, line: &[u8], ctx: &mut SessionCtx) -> Flow {
        self.inner.on_line(line, ctx).await
    }

    fn on_too_long(&mut self, ctx: &mut SessionCtx, max: usize) -> Flow {
        self.on_too_long_datagram(ctx, max)
    }
}
