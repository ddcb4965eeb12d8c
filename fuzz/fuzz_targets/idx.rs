//! The IDX loader of `digits` (raw and gzipped).
//! The property is `tests::fuzz::idx`, which `tests/tests/fuzz_regressions.rs` replays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tests::fuzz::idx(data));
