#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| polyrelay::fuzzing::gemini_stream(data));
