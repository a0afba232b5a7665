//! Native JSON frames from clients: arbitrary bytes must give a frame or an error, never a
//! panic or runaway allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_proto::native::parse_client_frame;

fuzz_target!(|data: &[u8]| {
    let _ = parse_client_frame(data);
});
