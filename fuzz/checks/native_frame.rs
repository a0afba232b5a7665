//! The `native_frame` target's check, shared with the corpus replay in `cargo test`: native
//! JSON frames from clients; arbitrary bytes must give a frame or an error, never a panic or
//! runaway allocation.

/// Panics when parsing `data` does.
pub fn check(data: &[u8]) {
    let _ = natter_proto::native::parse_client_frame(data);
}
