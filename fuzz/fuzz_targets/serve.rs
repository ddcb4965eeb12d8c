//! The device's whole request handling, fine-tuning included, with correctly framed requests.
//! The property is `tests::fuzz::serve`, which `tests/tests/fuzz_regressions.rs` replays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tests::fuzz::serve(data));
