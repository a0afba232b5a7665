//! libFuzzer entry for the `server_session` check (`fuzz/checks/server_session.rs`, which the
//! corpus replay in `cargo test` shares).
#![no_main]

#[path = "../checks/server_session.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
