//! Turning SQLite's errors into [`StoreError`]s that tell the operator what to do.

use natter_core::StoreError;
use rusqlite::ErrorCode;

/// What an operator can do about an SQLite error, when we know.
fn hint(e: &rusqlite::Error) -> Option<&'static str> {
    Some(match e.sqlite_error_code()? {
        ErrorCode::CannotOpen => {
            "check that the directory exists and that this user may create and write files in it \
             (SQLite also needs to create the `-wal` and `-shm` files beside the database)"
        }
        ErrorCode::PermissionDenied | ErrorCode::ReadOnly => {
            "the database or its directory is not writable by this user: fix the permissions or \
             choose another --db path"
        }
        ErrorCode::NotADatabase => NOT_A_DATABASE,
        ErrorCode::DatabaseCorrupt => DAMAGED,
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            "another process holds a lock on the database for too long: is another natter \
             server using the same file?"
        }
        ErrorCode::DiskFull => "the disk is full: free some space",
        ErrorCode::SystemIoFailure => "the operating system reported an I/O error: check the disk",
        ErrorCode::FileLockingProtocolFailed => {
            "file locking failed: SQLite in WAL mode needs a local filesystem, not a network one"
        }
        _ => return None,
    })
}

/// What to do with a file that is not natter's database, or no longer a readable one.
pub(crate) const MOVE_ASIDE: &str = "move it aside or choose another --db path";

const NOT_A_DATABASE: &str =
    "this file is not an SQLite database (or it is encrypted): move it aside or choose another --db path";

const DAMAGED: &str = "the database file is damaged: restore it from a backup, or move it aside or choose \
     another --db path (the sqlite3 tool's .recover command may save its messages)";

pub(crate) fn describe(e: &rusqlite::Error) -> String {
    match hint(e) {
        Some(h) => format!("{e}; {h}"),
        None => e.to_string(),
    }
}

/// True when SQLite says the file is not a database or a damaged one: nothing natter can do
/// with it but refuse to start, saying so.
pub(crate) fn unreadable(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt))
}

/// An error while opening, checking, migrating or loading the database at `path`. A file that
/// is not a database or a damaged one gets a sentence of its own rather than SQLite's words
/// followed by ours.
pub(crate) fn open_error(path: &str, e: &rusqlite::Error) -> StoreError {
    let reason = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => NOT_A_DATABASE.to_string(),
        Some(ErrorCode::DatabaseCorrupt) => DAMAGED.to_string(),
        _ => describe(e),
    };
    StoreError::Open { path: path.to_owned(), reason }
}

/// An error while loading the rooms at start-up: a damaged file is named like at opening,
/// anything else says what failed.
pub(crate) fn load_error(path: &str, e: &rusqlite::Error) -> StoreError {
    if unreadable(e) {
        return open_error(path, e);
    }
    StoreError::Open { path: path.to_owned(), reason: format!("cannot load the rooms: {}", describe(e)) }
}

/// An error while reading or writing; `what` says which operation failed.
pub(crate) fn io_error(what: &str, e: &rusqlite::Error) -> StoreError {
    StoreError::Io(format!("{what}: {}", describe(e)))
}
