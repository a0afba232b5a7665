//! The file-descriptor limit. Every connection is a descriptor, and the soft limit a process
//! inherits is 1,024 under most shells and systemd: a server left there turns everyone away
//! after a thousand connections. The hard limit is what the system allows this process
//! (often 524,288 under systemd); the server raises its soft limit to it at start and logs
//! both, so that an operator sees what the server can hold.

/// The limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit inherited.
    pub before: u64,
    /// The soft limit now in force (the hard limit, or what the system caps it at).
    pub now: u64,
}

/// Raises the soft limit on open files to the hard limit. `None` where the system has no
/// such limit (or will not say).
pub fn raise() -> Option<FdLimit> {
    let before = current()?;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => Some(FdLimit { before, now: now.max(before) }),
        Err(e) => {
            tracing::warn!(limit = before, error = %e, "cannot raise the file-descriptor limit");
            Some(FdLimit { before, now: before })
        }
    }
}

/// The soft limit on open files in force, if the system has one.
pub fn current() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::Resource::NOFILE.get().ok().map(|(soft, _hard)| soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the limit and logs the result: once, at the server's start.
pub fn raise_and_log() {
    match raise() {
        Some(FdLimit { before, now }) if now > before => {
            tracing::info!(from = before, to = now, "file-descriptor limit raised to the hard limit")
        }
        Some(FdLimit { now, .. }) => tracing::info!(limit = now, "file-descriptor limit"),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
        let limit = super::raise().unwrap();
        assert!(limit.now >= limit.before);
        // Elsewhere the system may cap it below the hard limit (macOS: kern.maxfilesperproc).
        #[cfg(target_os = "linux")]
        assert_eq!(limit.now, hard, "{limit:?}");
        assert_eq!(super::current(), Some(limit.now));
    }
}
