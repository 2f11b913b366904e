//! Arbitrary bytes as an HTTP upgrade request: routing by path, the query split and the
//! header checks must refuse or accept, never panic, and an accepted request's ranges
//! must lie in its head (see `roost::fuzzing::handshake_check`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    roost::fuzzing::handshake_check(data);
});
