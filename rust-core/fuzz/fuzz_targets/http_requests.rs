//! Arbitrary bytes as pipelined HTTP requests: the head reader, the head parser and the
//! body reader (by length and chunked) must read, refuse or run out, never panic, and
//! never hand on a body over its limit (see `roost::fuzzing::http_requests`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    roost::fuzzing::http_requests(data);
});
