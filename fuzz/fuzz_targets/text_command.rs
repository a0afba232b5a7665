//! Lines typed in text mode, the terminal client and UDP: decoded like peer bytes, then parsed
//! as a slash command or a message; must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_proto::command::parse_input;
use natter_proto::decode::decode_text;

fuzz_target!(|data: &[u8]| {
    let _ = parse_input(&decode_text(data));
});
