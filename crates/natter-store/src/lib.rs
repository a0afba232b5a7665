//! natter's durable message stores.
//!
//! `natter-core` only knows the [`Store`](natter_core::Store) trait, so that the hub can be tested
//! against an in-memory store and so that the choice of database stays out of the chat logic.
//! This crate holds the real implementations, so that the heavy database dependencies (a bundled
//! SQLite build, a PostgreSQL client) are paid for by the binary only, not by every crate that
//! uses the core.
//!
//! [`SqliteStore`] is the embedded default: one file, no server to run, and the promise that an
//! acknowledged message survives `kill -9` of the server. [`PostgresStore`] is what several
//! natter nodes share to be one chat server. [`open`] picks one by what `--db` names.

#![warn(missing_docs)]

mod error;
mod postgres;
mod rules;
mod schema;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use postgres::{PG_SCHEMA_VERSION, PostgresStore, is_postgres_url, redact_url};
pub use schema::SCHEMA_VERSION;
pub use sqlite::{Durability, SqliteStore};

use natter_core::{Store, StoreError};
use std::sync::Arc;

/// Opens the store `db` names for a server: a `postgres://` or `postgresql://` URL opens
/// [`PostgresStore`], anything else is an SQLite file path (or `:memory:`), opened with the
/// default durability.
pub fn open(db: &str) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres_url(db) {
        return Ok(Arc::new(PostgresStore::open(db)?));
    }
    Ok(Arc::new(SqliteStore::open(db, Durability::Process)?))
}

/// Opens the store `db` names for an administration command (`natter user`) that may run while
/// servers use it: PostgreSQL is shared by design; an SQLite file is opened beside its server
/// ([`SqliteStore::open_beside_server`]).
pub fn open_beside_server(db: &str) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres_url(db) {
        return Ok(Arc::new(PostgresStore::open(db)?));
    }
    Ok(Arc::new(SqliteStore::open_beside_server(db)?))
}
