//! Where each front door keeps its renderings of a shared event in the render cache: one slot
//! per wire variant, declared here together so that no two variants ever share one.

use natter_core::RenderSlot;

/// Native JSON frames.
pub const NATIVE: RenderSlot = RenderSlot::new(0);
/// Text-mode lines (also UDP, which speaks text mode).
pub const TEXT: RenderSlot = RenderSlot::new(1);
/// IRC lines without tags.
pub const IRC_PLAIN: RenderSlot = RenderSlot::new(2);
/// IRC lines with the `server-time` tag only.
pub const IRC_TIME: RenderSlot = RenderSlot::new(3);
/// IRC lines with `message-tags` tags (msgid, client tags) only.
pub const IRC_TAGS: RenderSlot = RenderSlot::new(4);
/// IRC lines with both.
pub const IRC_TIME_TAGS: RenderSlot = RenderSlot::new(5);
/// IRC lines with `message-tags` and the sender's `account` (account-tag).
pub const IRC_ACCOUNT_TAGS: RenderSlot = RenderSlot::new(6);
/// IRC lines with `server-time`, `message-tags` and the sender's `account`.
pub const IRC_TIME_ACCOUNT_TAGS: RenderSlot = RenderSlot::new(7);

/// How many slots the variants above take: each has a twin this far on, for its rendering
/// framed as WebSocket text messages ([`framed`]).
const VARIANTS: usize = 8;

/// The slot of `slot`'s rendering framed as WebSocket text messages: framed once per event,
/// then copied to every WebSocket recipient, as the plain rendering is to TCP recipients.
pub fn framed(slot: RenderSlot) -> RenderSlot {
    RenderSlot::new(slot.index() % VARIANTS + VARIANTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_slot_of_its_own() {
        let all = [
            NATIVE,
            TEXT,
            IRC_PLAIN,
            IRC_TIME,
            IRC_TAGS,
            IRC_TIME_TAGS,
            IRC_ACCOUNT_TAGS,
            IRC_TIME_ACCOUNT_TAGS,
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| a != b), "slot {} is used twice", a.index());
        }
        let framed: Vec<RenderSlot> = all.iter().map(|&slot| super::framed(slot)).collect();
        for (i, a) in framed.iter().enumerate() {
            assert!(
                !all.contains(a) && framed[i + 1..].iter().all(|b| a != b),
                "framed slot {} shared",
                a.index()
            );
        }
    }
}
