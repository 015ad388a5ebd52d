//! Fuzz target: `pixelparty_protocol::fuzzing::client_decode`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pixelparty_protocol::fuzzing::client_decode(data));
