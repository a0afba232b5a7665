//! libFuzzer entry for the `text_command` check (`fuzz/checks/text_command.rs`, which the corpus replay in
//! `cargo test` shares).
#![no_main]

#[path = "../checks/text_command.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
