//! The Unix-domain socket (`--unix PATH`), for local bots and admin tools: created readable
//! and writable by the owner and group only (0660), a stale file left by a server that died
//! replaced, a live server's socket never taken over, and the file removed at shutdown.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use tokio::net::UnixListener;

/// Who may connect: the owner and the group (connecting needs write permission).
const MODE: u32 = 0o660;

/// Binds the socket at `path`.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // A socket file: stale if nothing answers on it.
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => anyhow::bail!(
                    "another server is listening on the Unix socket {shown}; stop it or choose another path with --unix"
                ),
                Err(_) => std::fs::remove_file(path).map_err(|e| {
                    anyhow::anyhow!("cannot replace the stale Unix socket {shown} ({e}); remove it or choose another --unix")
                })?,
            }
        }
        Ok(_) => anyhow::bail!(
            "{shown} exists and is not a socket; move it aside or choose another path with --unix"
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            anyhow::bail!("cannot use {shown} for the Unix socket ({e}); choose another path with --unix")
        }
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        anyhow::anyhow!("cannot listen on the Unix socket {shown} ({e}); choose another path with --unix")
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(MODE))
        .map_err(|e| anyhow::anyhow!("cannot set the permissions of the Unix socket {shown} ({e})"))?;
    Ok(listener)
}

/// Removes the socket file at shutdown (if it is still ours: a socket file).
pub fn remove(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}
