//! natter's chat core: who is online, which rooms exist, who receives what.
//!
//! The core knows no sockets and no wire format. Front doors turn bytes into [`Command`]s and
//! hand them to the [`Hub`](hub::HubHandle); the hub answers by pushing [`Event`]s into each
//! session's bounded [`Outbox`]; each front door renders events to its own bytes, once per
//! protocol (see [`event::RenderCache`]). Storage sits behind the [`Store`] trait, written in
//! batches by a group-commit thread so that storage never sits on the fanout path.

pub mod authenticate;
pub mod bus;
pub mod cluster;
pub mod command;
pub mod event;
pub mod hub;
mod limits;
pub mod memory_store;
pub mod metrics;
pub mod outbox;
pub mod password;
mod persist;
pub mod refusal;
mod registration_limit;
pub mod request;
pub mod resume;
pub mod scram;
mod secret;
pub mod store;
pub mod throttle;
pub mod time;
pub mod vocab;

pub use command::{Command, Registration};
pub use event::{ChatMessage, Delivery, Event, RenderCache, RenderSlot};
pub use hub::{HubConfig, HubHandle, Registered};
pub use outbox::{Bell, CloseReason, NextBatch, Outbox, Piece};
pub use refusal::Refusal;
pub use request::{DoorNote, Req, RequestToken};
pub use store::{Store, StoreError};
pub use vocab::{Name, RoomChange, SessionKind, Target};
