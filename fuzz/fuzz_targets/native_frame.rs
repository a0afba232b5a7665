//! libFuzzer entry for the `native_frame` check (`fuzz/checks/native_frame.rs`, which the corpus replay in
//! `cargo test` shares).
#![no_main]

#[path = "../checks/native_frame.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
