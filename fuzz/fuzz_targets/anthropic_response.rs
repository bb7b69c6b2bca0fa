#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| polyrelay::fuzzing::anthropic_response(data));
