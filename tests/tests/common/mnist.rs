//! The MNIST test set (found by testkit) and the committed model, read on the host side of the
//! comparisons with code independent of the device's.

use digits_core::blob::IMAGE_LEN;
use digits_core::model_file;
use digits_core::softmax::argmax;
use digits_core::{MnistMlp, MnistQuant, Params};
use std::fs;
use testkit::Labeled;

/// FNV-1a (64-bit), written out here rather than taken from `digits_core::digest`, which the
/// device reports with, so that the host side of every comparison is independent of the
/// device code.
pub fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h = (*h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
}
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The full MNIST test split (10,000 images), or `None` when it is not here: then the tests of
/// `what` skip by testkit's rule (and fail under `CI=true`).
pub fn full_test_set(what: &str) -> Option<Labeled> {
    testkit::full_mnist(what)?;
    Some(testkit::test_digits(10_000))
}

/// The model the firmware embedded (`firmware::model::SOURCE`), decoded by `digits-core`.
pub fn model_from_file() -> Box<MnistMlp> {
    let path = firmware::model::SOURCE;
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file = model_file::decode(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut model = Box::new(MnistMlp::zeros());
    file.load_into(&mut *model)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    model
}

/// FNV-1a over every parameter, tensor by tensor (as the device reports it).
pub fn params_fnv(model: &MnistMlp) -> u64 {
    let mut h = FNV_START;
    for k in 0..model.tensor_count() {
        for v in model.tensor(k).data {
            fnv1a(&mut h, &v.to_bits().to_le_bytes());
        }
    }
    h
}

/// The int8 model the firmware embedded (`firmware::model::int8::SOURCE`), decoded by
/// `digits-core`, and the FNV-1a digest of its tensors as stored (what the device reports).
pub fn int8_model_from_file() -> (Box<MnistQuant>, u64) {
    let path = firmware::model::int8::SOURCE;
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file = model_file::decode(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut q = Box::new(MnistQuant::zeroed());
    file.load_int8_into(&mut *q)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut digest = FNV_START;
    for t in &file.tensors {
        fnv1a(&mut digest, t.bytes);
    }
    (q, digest)
}

/// The host's int8 results for a set of images, as the device reports its own.
pub struct Int8Logits {
    /// Each image's logits, as [`super::eval::hex`] prints them.
    pub hex: Vec<String>,
    /// FNV-1a over every logit's bits, in order.
    pub digest: u64,
    /// Images whose largest logit is their label.
    pub correct: usize,
}

/// Classifies `images` with `q` on the host.
pub fn int8_logits(q: &MnistQuant, images: &[[u8; IMAGE_LEN]], labels: &[u8]) -> Int8Logits {
    let mut out = Int8Logits {
        hex: Vec::with_capacity(images.len()),
        digest: FNV_START,
        correct: 0,
    };
    for (pixels, &y) in images.iter().zip(labels) {
        let z = q.logits(pixels);
        for v in z {
            fnv1a(&mut out.digest, &v.to_bits().to_le_bytes());
        }
        out.hex.push(super::eval::hex(&z));
        out.correct += usize::from(argmax(&z) == y as usize);
    }
    out
}
