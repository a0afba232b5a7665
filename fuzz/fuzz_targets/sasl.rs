//! libFuzzer entry for the `sasl` check (`fuzz/checks/sasl.rs`, which the corpus replay in
//! `cargo test` shares).
#![no_main]

#[path = "../checks/sasl.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
