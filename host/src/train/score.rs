//! Loss and accuracy of a network on a split: the one scoring loop behind the plain and the
//! compact `evaluate`.

use digits_core::loss::cross_entropy;
use digits_core::softmax::argmax;
use rayon::prelude::*;
use serde::Serialize;

use crate::data::Split;

/// Images per parallel share: the shares are summed in a fixed order, so the score does not
/// depend on the thread count.
const SHARE: usize = 500;

/// Loss and accuracy of a model on a set of images.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Score {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
}

impl Score {
    /// Scores the network whose logits of an image `logits` gives on all of `split`, in
    /// parallel.
    pub fn of(split: &Split, logits: impl Fn(&[u8; 784]) -> [f32; 10] + Sync) -> Score {
        let parts: Vec<(f64, usize)> = split
            .images
            .par_chunks(SHARE)
            .zip(split.labels.par_chunks(SHARE))
            .map(|(images, labels)| {
                let (mut loss, mut correct) = (0.0f64, 0);
                for (img, &label) in images.iter().zip(labels) {
                    let z = logits(img);
                    loss += cross_entropy(&z, label as usize) as f64;
                    correct += usize::from(argmax(&z) == label as usize);
                }
                (loss, correct)
            })
            .collect();
        let n = split.labels.len().max(1) as f64;
        Score {
            loss: parts.iter().map(|p| p.0).sum::<f64>() / n,
            accuracy: parts.iter().map(|p| p.1).sum::<usize>() as f64 / n,
        }
    }
}
