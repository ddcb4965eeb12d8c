//! A second opinion on "is there a digit?": a small network trained to tell MNIST's digits from
//! things that are not (Fashion-MNIST's training clothes, generated letters, shapes, scribbles).
//!
//! It looks at the same 28x28 picture as the classifier but knows nothing of the classifier, so
//! every model (f32 or int8) shares it. Its file is a model file (`784-HIDDEN-2`, with magic,
//! version and checksum) written by `digits bench --mode not-a-digit --train-detector FILE`.
//! Training moves the "not a digit" bias so that a probability of one half is the line
//! chosen on held-out digits: [`Limits::max_unlike`](crate::verdict::Limits::max_unlike) is
//! one half.

use crate::mlp::Mlp;
use crate::model_file::{self, ModelFileError};
use crate::pixels::normalize;
use crate::softmax::softmax;

/// Hidden units of the detector.
pub const HIDDEN: usize = 32;
/// Its two classes.
pub const CLASSES: usize = 2;
/// The class of digits.
pub const DIGIT: u8 = 0;
/// The class of everything else.
pub const NOT_A_DIGIT: u8 = 1;

/// The detector's network: 784 pixels, [`HIDDEN`] units, digit or not.
pub type DetectorNet = Mlp<784, HIDDEN, CLASSES>;

/// The trained detector.
#[derive(Clone, Debug, PartialEq)]
pub struct Detector {
    /// Its network.
    pub net: DetectorNet,
}

impl Detector {
    /// Reads a detector file (a model file of a `784-32-2` network).
    pub fn decode(bytes: &[u8]) -> Result<Self, ModelFileError> {
        let mut net = DetectorNet::zeros();
        model_file::decode(bytes)?.load_into(&mut net)?;
        Ok(Detector { net })
    }

    /// The probability that `pixels` (the classifier's 28x28 picture) is not a digit.
    pub fn unlikeness(&self, pixels: &[u8; 784]) -> f32 {
        let mut x = [0.0f32; 784];
        normalize(pixels, &mut x);
        let mut p = [0.0f32; CLASSES];
        softmax(&self.net.logits(&x), &mut p);
        p[usize::from(NOT_A_DIGIT)]
    }
}
