//! What a step keeps per sample between its phases, and the output layer's scratch.

use crate::Dense;

/// Per-sample values of a batch, one row per sample: phase 1 fills them, phase 2 reads them.
/// The slices are the caller's, at least as long as the batch.
#[derive(Debug)]
pub struct SampleRows<'s, const HIDDEN: usize, const OUT: usize> {
    /// Hidden pre-activations.
    pub pre: &'s mut [[f32; HIDDEN]],
    /// Hidden activations (after ReLU).
    pub hidden: &'s mut [[f32; HIDDEN]],
    /// Gradient of the sample's loss with respect to the hidden pre-activations.
    pub dpre: &'s mut [[f32; HIDDEN]],
    /// Gradient of the sample's loss with respect to the logits.
    pub dz: &'s mut [[f32; OUT]],
    /// The sample's cross-entropy.
    pub loss: &'s mut [f32],
    /// Whether its largest logit is its label.
    pub correct: &'s mut [bool],
}

impl<'s, const HIDDEN: usize, const OUT: usize> SampleRows<'s, HIDDEN, OUT> {
    /// The first `n` rows and the rest.
    pub fn split_at(self, n: usize) -> (Self, Self) {
        let (q0, q1) = self.pre.split_at_mut(n);
        let (h0, h1) = self.hidden.split_at_mut(n);
        let (p0, p1) = self.dpre.split_at_mut(n);
        let (z0, z1) = self.dz.split_at_mut(n);
        let (l0, l1) = self.loss.split_at_mut(n);
        let (c0, c1) = self.correct.split_at_mut(n);
        (
            Self {
                pre: q0,
                hidden: h0,
                dpre: p0,
                dz: z0,
                loss: l0,
                correct: c0,
            },
            Self {
                pre: q1,
                hidden: h1,
                dpre: p1,
                dz: z1,
                loss: l1,
                correct: c1,
            },
        )
    }

    /// The same rows, borrowed for a shorter time.
    pub fn reborrow(&mut self) -> SampleRows<'_, HIDDEN, OUT> {
        SampleRows {
            pre: self.pre,
            hidden: self.hidden,
            dpre: self.dpre,
            dz: self.dz,
            loss: self.loss,
            correct: self.correct,
        }
    }

    /// Summed loss and count of correct samples, in sample order.
    pub fn stats(&self) -> StepStats {
        StepStats {
            loss_sum: self.loss.iter().map(|&l| l as f64).sum(),
            correct: self.correct.iter().filter(|&&c| c).count(),
        }
    }
}

/// The output layer transposed (`[OUT][HIDDEN]`: the backward pass's sums then run along
/// contiguous rows of `HIDDEN`, which vectorize), and room for its gradient. Allocate it
/// zeroed (`bytemuck::Zeroable`).
#[derive(Clone, Debug, bytemuck::Zeroable)]
pub struct OutputScratch<const HIDDEN: usize, const OUT: usize> {
    /// `w2t[k][j] = W2[j][k]`.
    pub(super) w2t: [[f32; HIDDEN]; OUT],
    /// `sum_n dz[n][k] h[n][j]`, transposed like `w2t`.
    pub(super) grad_w2t: [[f32; HIDDEN]; OUT],
    /// The gradient in the layer's own layout (summed, unscaled).
    pub(super) grad: Dense<HIDDEN, OUT, f32>,
}

impl<const HIDDEN: usize, const OUT: usize> OutputScratch<HIDDEN, OUT> {
    /// Copies `layer`'s weights into `w2t`: before phase 1.
    pub(super) fn transpose(&mut self, layer: &Dense<HIDDEN, OUT, f32>) {
        for (j, row) in layer.w.iter().enumerate() {
            for (k, &w) in row.iter().enumerate() {
                self.w2t[k][j] = w;
            }
        }
    }
}

/// What a step saw: summed loss and correctly classified samples (by the model before the step).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    /// Sum of the samples' cross-entropies.
    pub loss_sum: f64,
    /// Samples whose largest logit is their label.
    pub correct: usize,
}
