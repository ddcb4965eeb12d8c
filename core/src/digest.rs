//! The digests host and device compare: FNV-1a (64-bit) over the parameters of a model and over
//! logits, each number as its little-endian bytes.
//!
//! The device reports them (the `eval` report, `Info`, `Trained`, `Evaluated`) and the host
//! computes the same from its own side, so a single `u64` says whether 407,080 bytes of
//! parameters, or the logits of 10,000 images, are the same bit for bit. Not a cryptographic
//! hash: it tells two sequences of numbers apart, not an adversary's.

use crate::params::Params;
use crate::{Dense, MnistMlp, MnistQuant};

/// FNV-1a (64-bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Fnv64 {
    /// The empty digest (FNV offset basis).
    pub const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Adds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Adds the bits of `values`, each as 4 little-endian bytes.
    pub fn write_f32s(&mut self, values: &[f32]) {
        for v in values {
            self.write(&v.to_bits().to_le_bytes());
        }
    }

    /// The digest so far.
    pub const fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

/// FNV-1a over every parameter of `model`, tensor by tensor (`W1`, `b1`, `W2`, `b2`): the
/// digest of the f32 model file's tensor bytes.
pub fn params_digest(model: &MnistMlp) -> u64 {
    let mut h = Fnv64::new();
    for k in 0..model.tensor_count() {
        h.write_f32s(model.tensor(k).data);
    }
    h.finish()
}

/// FNV-1a over the int8 model's tensors in model-file order (`W1`, `b1`, `m1`, `shift1`, `W2`,
/// `b2`, `out_scale`, `hidden_scale`), each value's little-endian bytes: the digest of the
/// file's tensor bytes.
pub fn int8_digest(q: &MnistQuant) -> u64 {
    let mut h = Fnv64::new();
    for &c in q.w1.as_flattened() {
        h.write(&[c as u8]);
    }
    for v in q.b1.iter().chain(&q.m1).chain(&q.shift1) {
        h.write(&v.to_le_bytes());
    }
    for &c in q.w2.as_flattened() {
        h.write(&[c as u8]);
    }
    for v in &q.b2 {
        h.write(&v.to_le_bytes());
    }
    h.write_f32s(&q.out_scale);
    h.write_f32s(&[q.hidden_scale]);
    h.finish()
}

/// FNV-1a over the output layer `layer` (`W2`, then `b2`), as [`params_digest`] reads them:
/// what fine-tuning changes, reported after every step.
pub fn output_digest(layer: &Dense<128, 10, f32>) -> u64 {
    let mut h = Fnv64::new();
    for k in 0..layer.tensor_count() {
        h.write_f32s(layer.tensor(k).data);
    }
    h.finish()
}

/// FNV-1a over a compact network's tensor bytes in model-file order (codes, biases, rescale of
/// each layer): the digest of its file's tensors.
pub fn compact_digest(model: &crate::compact::Compact<'_>) -> u64 {
    let mut h = Fnv64::new();
    for l in &model.layers {
        h.write(l.codes);
        h.write(l.bias);
        h.write(l.rescale);
    }
    h.finish()
}
