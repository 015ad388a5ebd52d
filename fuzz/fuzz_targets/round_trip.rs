//! Fuzz target: `pixelparty_protocol::fuzzing::round_trip`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pixelparty_protocol::fuzzing::round_trip(data));
