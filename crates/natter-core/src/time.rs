//! Wall-clock timestamps as the core records them.

/// Milliseconds since the Unix epoch: the timestamp of every message and event.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
