//! Fuzz target: `pixelparty_gateway::fuzzing::ws_reader`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pixelparty_gateway::fuzzing::ws_reader(data));
