//! natter's durable message stores.
//!
//! `natter-core` only knows the [`Store`](natter_core::Store) trait, so that the hub can be tested
//! against an in-memory store and so that the choice of database stays out of the chat logic.
//! This crate holds the real implementations, so that the heavy database dependencies (a bundled
//! SQLite build) are paid for by the binary only, not by every crate that uses the core.
//!
//! [`SqliteStore`] is the embedded default: one file, no server to run, and the promise that an
//! acknowledged message survives `kill -9` of the server.

#![warn(missing_docs)]

mod error;
mod rules;
mod schema;
mod sqlite;

pub use schema::SCHEMA_VERSION;
pub use sqlite::{Durability, SqliteStore};
