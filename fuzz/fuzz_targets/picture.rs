//! `digits predict`'s picture loading (PNG/JPEG) and preprocessing.
//! The property is `tests::fuzz::picture`, which `tests/tests/fuzz_regressions.rs` replays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tests::fuzz::picture(data));
