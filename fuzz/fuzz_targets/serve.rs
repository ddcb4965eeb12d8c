//! The device's whole request handling (`firmware::serve::Server`, as the firmware runs it,
//! fine-tuning and a data blob included) on an arbitrary byte stream: never a panic, and every
//! reply it sends is one intact frame.
#![no_main]

use digits_core::finetune::MnistTuner;
use digits_core::frame::{Feed, FrameReader, MAX_FRAME};
use firmware::eval::{END_MARK, FLAG_LABELS, Header, NoStopwatch};
use firmware::model::MODEL;
use firmware::serve::{Memory, Meter, Server};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A small labeled blob for `Evaluate`.
fn blob() -> &'static [u8] {
    static BLOB: OnceLock<Vec<u8>> = OnceLock::new();
    BLOB.get_or_init(|| {
        let mut b = Header {
            count: 2,
            flags: FLAG_LABELS,
        }
        .to_bytes()
        .to_vec();
        b.extend(firmware::DIGIT_7);
        b.extend(firmware::DIGIT_1);
        b.extend([7, 1]);
        b.extend(END_MARK);
        b
    })
}

fuzz_target!(|data: &[u8]| {
    let mut tuner = Box::new(MnistTuner::zeroed());
    let mut server = Server::new(
        &MODEL,
        "fuzz",
        &mut tuner,
        blob(),
        Meter::new(NoStopwatch, 0, 0),
    );
    // Requests are framed after a 0x00, as the host sends them; the fuzzer's bytes do the rest.
    for &b in std::iter::once(&0u8).chain(data) {
        if let Some(reply) = server.push(b, Memory::default) {
            if let Some(frame) = reply.frame {
                let mut reader = FrameReader::<MAX_FRAME>::new();
                let frames = frame
                    .iter()
                    .filter(|&&c| matches!(reader.push(c), Feed::Frame(_)))
                    .count();
                assert_eq!(frames, 1, "a reply is one intact frame");
            }
        }
    }
});
