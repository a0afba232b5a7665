//! libFuzzer entry for the `irc_line` check (`fuzz/checks/irc_line.rs`, which the corpus replay in
//! `cargo test` shares).
#![no_main]

#[path = "../checks/irc_line.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
