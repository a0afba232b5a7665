//! natter's chat core: who is online, which rooms exist, who receives what.
//!
//! The core knows no sockets and no wire format. Front doors turn bytes into [`Command`]s and
//! hand them to the [`Hub`](hub::HubHandle); the hub answers by pushing [`Event`]s into each
//! session's bounded [`Outbox`]; each front door renders events to its own bytes, once per
//! protocol (see [`event::RenderCache`]). Storage sits behind the [`Store`] trait, written in
//! batches by a group-commit thread so that storage never sits on the fanout path.

pub mod command;
pub mod event;
pub mod hub;
pub mod memory_store;
pub mod outbox;
mod persist;
pub mod store;
pub mod time;

pub use command::{Command, Registration, SessionKind, Target};
pub use event::{ChatMessage, Delivery, Event, RenderCache};
pub use hub::{HubConfig, HubHandle, Registered};
pub use natter_proto::native::{ErrorCode, RequestId};
pub use outbox::{CloseReason, Outbox, OutboxItems, Piece};
pub use store::{Store, StoreError};
