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
        ErrorCode::NotADatabase => {
            "this file is not an SQLite database (or it is encrypted or badly damaged): move it \
             aside or choose another --db path"
        }
        ErrorCode::DatabaseCorrupt => {
            "the database file is damaged: restore it from a backup, or try `sqlite3 FILE .recover`"
        }
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

pub(crate) fn describe(e: &rusqlite::Error) -> String {
    match hint(e) {
        Some(h) => format!("{e}; {h}"),
        None => e.to_string(),
    }
}

/// An error while opening or migrating the database at `path`.
pub(crate) fn open_error(path: &str, e: &rusqlite::Error) -> StoreError {
    StoreError::Open { path: path.to_owned(), reason: describe(e) }
}

/// An error while reading or writing; `what` says which operation failed.
pub(crate) fn io_error(what: &str, e: &rusqlite::Error) -> StoreError {
    StoreError::Io(format!("{what}: {}", describe(e)))
}
