//! Arbitrary bytes as a client's frames, arriving in pieces: the reader must complete
//! messages within the limits, with valid UTF-8 text, or fail with a close code, never
//! panic (see `roost::fuzzing::frame_read`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    roost::fuzzing::frame_read(data);
});
