//! The model-file decoders (version 1: f32, int8; version 2: compact networks), behind the
//! checksum too.
//! The property is `tests::fuzz::model_file`, which `tests/tests/fuzz_regressions.rs` replays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tests::fuzz::model_file(data));
