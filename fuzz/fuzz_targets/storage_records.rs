//! Fuzz target: `pixelparty_storage::fuzzing::records`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pixelparty_storage::fuzzing::records(data));
