//! The server's side of a cluster: the codec of what nodes tell each other, the bridge that
//! carries the hub's events over the bus, and the bus over NATS.

pub mod bridge;
pub mod codec;
pub mod nats;
