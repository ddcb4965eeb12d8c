//! The frame reader (COBS + CRC-32 + size bound) and the message decoders on an arbitrary byte
//! stream: never a panic; every frame it yields decodes or is refused with an error.
#![no_main]

use digits_core::frame::{self, Feed, FrameReader, MAX_FRAME};
use digits_core::protocol::{Response, decode_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = FrameReader::<MAX_FRAME>::new();
    for &b in data {
        if let Feed::Frame(payload) = reader.push(b) {
            assert!(payload.len() <= MAX_FRAME);
            let _ = decode_request(payload);
            let _ = frame::decode::<Response<'_>>(payload);
        }
    }
});
