//! Doors over UDP: what a front door does when its peer is an address rather than a
//! connection.

use super::text::TextDoor;
use super::udp_tutorial::UdpTutorialDoor;
use super::{Door, Flow, SessionCtx};

/// What the UDP door needs of a front door beyond [`Door`]: a say in which datagrams speak
/// for the member. A door whose member is known by more than its address (the native door's
/// session token) refuses the others here.
pub(crate) trait DatagramDoor: Door {
    /// Whether `line` speaks for this member; a refused line is dropped unread (the door may
    /// tell the member, not too often).
    fn screen(&mut self, _line: &[u8], _ctx: &mut SessionCtx) -> bool {
        true
    }

    /// A datagram longer than the line limit arrived (only its start was kept).
    fn on_too_long_datagram(&mut self, ctx: &mut SessionCtx, max: usize) -> Flow {
        self.on_too_long(ctx, max)
    }
}

impl DatagramDoor for TextDoor {}
impl DatagramDoor for UdpTutorialDoor {}
