//! Fuzz target: `pixelparty_protocol::fuzzing::server_decode`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pixelparty_protocol::fuzzing::server_decode(data));
