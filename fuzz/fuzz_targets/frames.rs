//! The frame reader (COBS + CRC-32 + size bound) and both message decoders.
//! The property is `tests::fuzz::frames`, which `tests/tests/fuzz_regressions.rs` replays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tests::fuzz::frames(data));
