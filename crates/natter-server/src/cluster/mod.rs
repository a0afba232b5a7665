//! The server's side of a cluster: the codec of what nodes tell each other, and the bridge
//! that carries the hub's events over the bus.

pub mod bridge;
pub mod codec;
