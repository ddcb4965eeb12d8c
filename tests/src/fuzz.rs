//! The property each fuzz target checks (`fuzz/fuzz_targets/`), on any bytes: never a panic,
//! and what is accepted is well formed. The targets are one-line calls of these functions, and
//! `tests/tests/fuzz_regressions.rs` replays the committed corpora through the same functions
//! on stable Rust, in CI.
//!
//! Where a checksum guards a decoder (the model file's CRC-32, a frame's), the input is also
//! tried with a correct checksum, so that random bytes reach the decoding behind it.

use digits_core::blob::{Blob, Contents};
use digits_core::compact::MAX_WIDTH;
use digits_core::compact_file::{AnyModelFile, decode_any};
use digits_core::finetune::MnistTuner;
use digits_core::frame::{self, Feed, FrameReader, FrameWriter, MAX_FRAME};
use digits_core::model_file::{self, Precision};
use digits_core::protocol::{Response, decode_request};
use digits_core::update::{RamFlash, Slots};
use digits_core::{MnistMlp, MnistQuant};
use firmware::eval::NoStopwatch;
use firmware::serve::{Memory, Meter, Server};
use host::data::{IMAGE_PIXELS, read_idx_images, read_idx_labels};
use host::evaluate::preprocess::{load_gray, to_mnist};
use std::path::PathBuf;
use std::sync::OnceLock;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A model file as it is, and with its last four bytes replaced by the right CRC-32: a file
/// that decodes loads into a model of its precision or is refused, never into the other; a
/// loaded model's weights are finite (f32) or valid codes (int8), and it runs; a compact
/// network (version 2) passes its checks and runs.
pub fn model_file(data: &[u8]) {
    check_model_file(data);
    if let Some(content_len) = data.len().checked_sub(4) {
        let mut sealed = data.to_vec();
        let crc = CRC.checksum(&data[..content_len]);
        sealed[content_len..].copy_from_slice(&crc.to_le_bytes());
        check_model_file(&sealed);
    }
}

fn check_model_file(data: &[u8]) {
    // A compact network (format version 2) decodes only as one, checked, and runs.
    if let Ok(AnyModelFile::Compact(c)) = decode_any(data) {
        assert_eq!(c.model.check(), Ok(()));
        assert_eq!(
            model_file::decode(data).unwrap_err(),
            model_file::ModelFileError::CompactModel
        );
        let mut logits = [0.0f32; MAX_WIDTH];
        c.model.logits_of_image(&[255; 784], &mut logits);
        return;
    }
    let Ok(file) = model_file::decode(data) else {
        return;
    };
    match file.precision {
        Precision::F32 => {
            let mut m: Box<MnistMlp> = Box::new(MnistMlp::zeros());
            if file.load_into(&mut *m).is_ok() {
                assert!(m.hidden.w.as_flattened().iter().all(|v| v.is_finite()));
                let _ = m.logits_from_pixels(&[255; 784]);
            }
            assert!(
                file.load_int8_into(&mut *Box::new(MnistQuant::zeroed()))
                    .is_err()
            );
        }
        Precision::Int8 => {
            let mut q = Box::new(MnistQuant::zeroed());
            if file.load_int8_into(&mut *q).is_ok() {
                assert!(q.w1.as_flattened().iter().all(|&c| c != -128));
                let _ = q.logits(&[255; 784]);
            }
            assert!(
                file.load_into(&mut *Box::new(MnistMlp::<f32>::zeros()))
                    .is_err()
            );
        }
    }
}

/// A byte stream through the frame reader (COBS, CRC-32, size bound): every frame it yields
/// fits the bound, and both message decoders take it, or refuse it, without a panic. The
/// decoders also get the raw bytes, as if they were a frame's payload.
pub fn frames(data: &[u8]) {
    let mut reader = FrameReader::<MAX_FRAME>::new();
    for &b in data {
        if let Feed::Frame(payload) = reader.push(b) {
            assert!(payload.len() <= MAX_FRAME);
            let _ = decode_request(payload);
            let _ = frame::decode::<Response<'_>>(payload);
        }
    }
    let _ = decode_request(data);
    let _ = frame::decode::<Response<'_>>(data);
}

/// A small labeled blob for `Evaluate`.
fn blob() -> &'static [u8] {
    static BLOB: OnceLock<Vec<u8>> = OnceLock::new();
    BLOB.get_or_init(|| {
        let contents = Contents {
            images: &[&[firmware::DIGIT_7, firmware::DIGIT_1]],
            labels: Some(&[&[7, 1]]),
            print_logits: false,
        };
        let mut b = Vec::new();
        contents
            .write(|piece| b.extend_from_slice(piece))
            .expect("a valid blob");
        b
    })
}

/// The device's whole request handling (`firmware::serve::Server` as the firmware runs it,
/// fine-tuning and a data blob included) on a stream made from `data`, piece by piece: a first
/// byte `b` with its low bit set sends the next `b >> 1` bytes raw; otherwise the next two
/// bytes (little-endian) give the length of a payload sent correctly framed, so that random
/// requests get past the checksum. Every reply is one intact frame.
pub fn serve(data: &[u8]) {
    let mut tuner = Box::new(MnistTuner::zeroed());
    let mut area = firmware::slots::factory_area();
    let slots = Slots::new(
        RamFlash::new(&mut area, firmware::slots::GEOMETRY),
        firmware::slots::SLOTS,
    );
    let mut server = Server::new(
        slots,
        "fuzz",
        &mut tuner,
        Some(Blob::parse(blob()).expect("a valid blob")),
        Meter::new(NoStopwatch, 0, 0),
    );
    let stream = serve_stream(data);
    for &b in &stream {
        if let Some(reply) = server.push(b, Memory::default)
            && let Some(frame) = reply.frame
        {
            let mut reader = FrameReader::<MAX_FRAME>::new();
            let frames = frame
                .iter()
                .filter(|&&c| matches!(reader.push(c), Feed::Frame(_)))
                .count();
            assert_eq!(frames, 1, "a reply is one intact frame");
        }
    }
    // Whatever came, a valid model still runs.
    assert!(server.slots().active().is_some(), "no model runs");
}

/// The byte stream [`serve`] sends for `data`.
pub fn serve_stream(data: &[u8]) -> Vec<u8> {
    let mut frames = FrameWriter::new();
    // Requests are framed after a 0x00, as the host sends them.
    let mut stream = vec![0u8];
    let mut rest = data;
    while let Some((&b, tail)) = rest.split_first() {
        if b & 1 == 1 {
            let n = usize::from(b >> 1).min(tail.len());
            stream.extend_from_slice(&tail[..n]);
            rest = &tail[n..];
        } else {
            let len = match tail {
                [lo, hi, ..] => usize::from(u16::from_le_bytes([*lo, *hi])),
                _ => tail.len(),
            };
            let tail = tail.get(2..).unwrap_or_default();
            let n = len.min(tail.len());
            match frames.encode_payload(&tail[..n]) {
                Ok(framed) => stream.extend_from_slice(framed),
                Err(_) => stream.extend_from_slice(&tail[..n]),
            }
            rest = &tail[n..];
        }
    }
    stream
}

/// The `serve` fuzz input that sends `payload` correctly framed.
pub fn serve_piece(payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("a payload under 64 KiB");
    let mut piece = vec![0u8];
    piece.extend(len.to_le_bytes());
    piece.extend(payload);
    piece
}

/// A file of this thread's own (the loaders read paths), rewritten for every input.
fn scratch(what: &str) -> PathBuf {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("a scratch directory");
    }
    DIR.with(|d| d.path().join(what))
}

/// The IDX loader that `digits` reads MNIST with, on any file contents, raw and gzipped (it
/// tells them by the gzip magic): what it accepts is well formed.
pub fn idx(data: &[u8]) {
    let path = scratch("idx");
    std::fs::write(&path, data).expect("write the scratch file");
    let raw = !data.starts_with(&[0x1f, 0x8b]);
    if let Ok(images) = read_idx_images(&path)
        && raw
    {
        assert_eq!(
            data.len(),
            16 + IMAGE_PIXELS * images.len(),
            "header and pixels"
        );
    }
    if let Ok(labels) = read_idx_labels(&path) {
        assert!(labels.iter().all(|&l| l <= 9), "labels are digits");
        assert!(!raw || data.len() == 8 + labels.len(), "header and labels");
    }
}

/// `digits predict`'s reading and preprocessing of a picture (PNG or JPEG, told by content) on
/// any file contents: never an unbounded allocation (the decoder has limits); what it accepts
/// becomes a 28x28 image.
pub fn picture(data: &[u8]) {
    let path = scratch("picture");
    std::fs::write(&path, data).expect("write the scratch file");
    if let Ok(gray) = load_gray(&path) {
        let _ = to_mnist(&gray);
    }
}
