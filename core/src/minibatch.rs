//! One SGD step on a whole mini-batch of sparse inputs, gradient and update fused.
//!
//! The same arithmetic as [`Mlp::backprop`] followed by [`Sgd::step`](crate::Sgd::step), in the
//! same order, so the result is bit-identical to them; only the memory traffic differs:
//! - the first layer's forward pass reads only the weight rows of lit pixels
//!   ([`Dense::forward_sparse`]);
//! - the first layer's weight gradient is computed row by row from the batch's pixel columns
//!   ([`Columns`]: for every pixel, the samples where it is lit), in registers, and each row is
//!   updated as soon as its gradient is known: the 400 KB gradient of `W1` is never stored.

use crate::activation::relu_backward;
use crate::loss::cross_entropy_backward;
use crate::optim::SgdStep;
use crate::params::TensorKind;
use crate::softmax::argmax;
use crate::sparse::{PIXEL_TO_INPUT, SparseInput};
use crate::{Dense, Mlp};

/// The batch by pixel: for input `i`, the samples `sample[start[i]..start[i + 1]]` (ascending)
/// have it lit with the values `val[..]` at the same positions. Buffers are the caller's.
#[derive(Debug)]
pub struct Columns<'s> {
    /// `IN + 1` offsets into `sample` and `val`.
    pub start: &'s mut [u32],
    /// Sample indices within the batch, as many as the batch has lit pixels.
    pub sample: &'s mut [u16],
    /// Input values, parallel to `sample`.
    pub val: &'s mut [f32],
}

impl Columns<'_> {
    /// Transposes `samples` (a counting sort by pixel; ascending samples within a pixel).
    /// `start` must have `IN + 1` entries and `sample`/`val` room for every lit pixel.
    pub fn fill(&mut self, samples: &[SparseInput<'_>]) {
        let inputs = self.start.len() - 1;
        self.start.fill(0);
        for s in samples {
            for &i in s.idx {
                self.start[i as usize + 1] += 1;
            }
        }
        for i in 0..inputs {
            self.start[i + 1] += self.start[i];
        }
        // `start[i]` is now where column `i` begins; use it as the write cursor and shift back.
        for (n, s) in samples.iter().enumerate() {
            for (&i, &p) in s.idx.iter().zip(s.pixel) {
                let at = self.start[i as usize] as usize;
                self.sample[at] = n as u16;
                self.val[at] = PIXEL_TO_INPUT[p as usize];
                self.start[i as usize] += 1;
            }
        }
        for i in (1..=inputs).rev() {
            self.start[i] = self.start[i - 1];
        }
        self.start[0] = 0;
    }

    /// The samples and values of input `i`.
    #[inline(always)]
    pub fn column(&self, i: usize) -> (&[u16], &[f32]) {
        let (a, b) = (self.start[i] as usize, self.start[i + 1] as usize);
        (&self.sample[a..b], &self.val[a..b])
    }
}

/// Per-sample intermediate values and the output layer's gradient, reused from step to step.
#[derive(Debug)]
pub struct StepScratch<'s, const HIDDEN: usize, const OUT: usize> {
    /// Hidden activations (after ReLU), one row per sample.
    pub hidden: &'s mut [[f32; HIDDEN]],
    /// Gradient of the loss with respect to the hidden pre-activations, one row per sample.
    pub dpre: &'s mut [[f32; HIDDEN]],
    /// The output layer, transposed, and its gradient.
    pub out: &'s mut OutputScratch<HIDDEN, OUT>,
}

/// The output layer's weights transposed (`[OUT][HIDDEN]`: the backward pass's sums then run
/// along contiguous rows of `HIDDEN`, which vectorize), and its gradient.
#[derive(Clone, Debug)]
pub struct OutputScratch<const HIDDEN: usize, const OUT: usize> {
    /// `w2t[k][j] = W2[j][k]`.
    pub w2t: [[f32; HIDDEN]; OUT],
    /// `sum_n dz[n][k] h[n][j]`, transposed like `w2t`.
    pub grad_w2t: [[f32; HIDDEN]; OUT],
    /// The gradient in the layer's own layout (summed, unscaled).
    pub grad: Dense<HIDDEN, OUT, f32>,
}

impl<const HIDDEN: usize, const OUT: usize> OutputScratch<HIDDEN, OUT> {
    /// All zero.
    pub fn zeros() -> Self {
        Self {
            w2t: [[0.0; HIDDEN]; OUT],
            grad_w2t: [[0.0; HIDDEN]; OUT],
            grad: Dense::zeros(),
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

impl<const IN: usize, const HIDDEN: usize, const OUT: usize> Mlp<IN, HIDDEN, OUT, f32> {
    /// Forward and backward over the batch up to the hidden pre-activations' gradient:
    /// fills `scratch.hidden`, `scratch.dpre` and `scratch.grad_out`, adds the hidden biases'
    /// gradient to `grad_b1`.
    #[inline(always)]
    pub fn batch_backward_to_hidden(
        &self,
        samples: &[SparseInput<'_>],
        labels: &[u8],
        scratch: &mut StepScratch<'_, HIDDEN, OUT>,
        grad_b1: &mut [f32; HIDDEN],
    ) -> StepStats {
        let mut stats = StepStats::default();
        let out = &mut *scratch.out;
        for (j, row) in self.output.w.iter().enumerate() {
            for (k, &w) in row.iter().enumerate() {
                out.w2t[k][j] = w;
            }
        }
        out.grad_w2t = [[0.0; HIDDEN]; OUT];
        out.grad.b = [0.0; OUT];
        for ((x, &label), (h, dpre)) in samples
            .iter()
            .zip(labels)
            .zip(scratch.hidden.iter_mut().zip(scratch.dpre.iter_mut()))
        {
            let mut pre = [0.0; HIDDEN];
            self.hidden.forward_sparse(*x, &mut pre);
            crate::activation::relu_forward(&pre, h);
            let mut z = [0.0; OUT];
            self.output.forward_listed(h, &mut z);
            let mut dz = [0.0; OUT];
            stats.loss_sum += cross_entropy_backward(&z, label as usize, &mut dz) as f64;
            stats.correct += usize::from(argmax(&z) == label as usize);
            // As `Dense::backward_params` and `backward_input`, along rows of HIDDEN: the
            // same products summed in the same order. (`backward_params` skips zero inputs;
            // adding their +-0 products changes nothing, since these sums start at +0 and a
            // sum of floats is -0 only if every term is.)
            let mut dh = [0.0; HIDDEN];
            for ((g, w), &d) in out.grad_w2t.iter_mut().zip(&out.w2t).zip(&dz) {
                for ((g, &hj), (dhj, &wj)) in g.iter_mut().zip(h.iter()).zip(dh.iter_mut().zip(w)) {
                    *g += hj * d;
                    *dhj += wj * d;
                }
            }
            for (g, &d) in out.grad.b.iter_mut().zip(&dz) {
                *g += d;
            }
            relu_backward(&pre, &dh, dpre);
            for (g, &d) in grad_b1.iter_mut().zip(dpre.iter()) {
                *g += d;
            }
        }
        for (k, row) in out.grad_w2t.iter().enumerate() {
            for (j, &g) in row.iter().enumerate() {
                out.grad.w[j][k] = g;
            }
        }
        stats
    }

    /// One SGD step on a batch of sparse inputs: the gradient of the mean cross-entropy, then
    /// `step` applied with `velocity`. Bit-identical to [`Mlp::backprop`] then
    /// [`Sgd::step`](crate::Sgd::step). `columns` must be the batch's [`Columns`].
    ///
    /// Inlined always, so that a caller compiled for wider vector instructions (the host's
    /// runtime dispatch) gets all of it compiled for them.
    #[inline(always)]
    pub fn train_step(
        &mut self,
        velocity: &mut Self,
        step: &SgdStep<f32>,
        samples: &[SparseInput<'_>],
        labels: &[u8],
        columns: &Columns<'_>,
        scratch: &mut StepScratch<'_, HIDDEN, OUT>,
    ) -> StepStats {
        assert_eq!(
            samples.len(),
            labels.len(),
            "batch and label lengths differ"
        );
        assert!(!samples.is_empty(), "empty batch");
        let mut grad_b1 = [0.0f32; HIDDEN];
        let stats = self.batch_backward_to_hidden(samples, labels, scratch, &mut grad_b1);
        let inv = 1.0 / samples.len() as f32;
        self.update_hidden_rows(
            0..IN,
            &mut velocity.hidden.w,
            step,
            inv,
            columns,
            scratch.dpre,
        );
        update_scaled(
            TensorKind::Bias,
            &mut self.hidden.b,
            &mut velocity.hidden.b,
            &grad_b1,
            step,
            inv,
        );
        let g = &scratch.out.grad;
        update_scaled(
            TensorKind::Weight,
            self.output.w.as_flattened_mut(),
            velocity.output.w.as_flattened_mut(),
            g.w.as_flattened(),
            step,
            inv,
        );
        update_scaled(
            TensorKind::Bias,
            &mut self.output.b,
            &mut velocity.output.b,
            &g.b,
            step,
            inv,
        );
        stats
    }

    /// Computes the gradient of the first layer's weight rows `rows` from the batch's columns
    /// and `dpre`, scales it by `inv` and applies `step` to those rows of `W1` and of their
    /// velocity `v_rows` (indexed from `rows.start`).
    #[inline(always)]
    pub fn update_hidden_rows(
        &mut self,
        rows: core::ops::Range<usize>,
        v_rows: &mut [[f32; HIDDEN]],
        step: &SgdStep<f32>,
        inv: f32,
        columns: &Columns<'_>,
        dpre: &[[f32; HIDDEN]],
    ) {
        let start = rows.start;
        for (i, (w, v)) in self.hidden.w[rows].iter_mut().zip(v_rows).enumerate() {
            let (ns, xs) = columns.column(start + i);
            update_row(w, v, ns, xs, dpre, step, inv);
        }
    }
}

/// One row of `W1`: `g = sum_n x_n dpre[n]` over the samples where the row's pixel is lit
/// (ascending, from zero, as [`Dense::backward_params`] accumulates), scaled by `inv`, then the
/// SGD step.
#[inline(always)]
pub fn update_row<const HIDDEN: usize>(
    w: &mut [f32; HIDDEN],
    v: &mut [f32; HIDDEN],
    samples: &[u16],
    xs: &[f32],
    dpre: &[[f32; HIDDEN]],
    step: &SgdStep<f32>,
    inv: f32,
) {
    let mut g = [0.0f32; HIDDEN];
    for (&n, &x) in samples.iter().zip(xs) {
        for (a, &d) in g.iter_mut().zip(&dpre[n as usize]) {
            *a += x * d;
        }
    }
    for a in g.iter_mut() {
        *a *= inv;
    }
    step.apply(TensorKind::Weight, w, v, &g);
}

/// `grad * inv` then the SGD step, through a small stack buffer.
#[inline(always)]
fn update_scaled(
    kind: TensorKind,
    w: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
    step: &SgdStep<f32>,
    inv: f32,
) {
    const CHUNK: usize = 64;
    for ((w, v), g) in w
        .chunks_mut(CHUNK)
        .zip(v.chunks_mut(CHUNK))
        .zip(grad.chunks(CHUNK))
    {
        let mut scaled = [0.0f32; CHUNK];
        for (s, &g) in scaled.iter_mut().zip(g) {
            *s = g * inv;
        }
        step.apply(kind, w, v, &scaled[..g.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::normalize;
    use crate::sparse::sparsify;
    use crate::{MnistMlp, Params, Rng, Sgd};

    extern crate std;
    use std::boxed::Box;
    use std::vec;
    use std::vec::Vec;

    fn random_image(rng: &mut Rng) -> [u8; 784] {
        let mut img = [0u8; 784];
        for p in img.iter_mut() {
            let r = rng.next_u64();
            if r % 5 == 0 {
                *p = (r >> 8) as u8;
            }
        }
        img
    }

    /// Several steps of `train_step` against `backprop` + `Sgd::step` on the dense inputs:
    /// every parameter and velocity bit-identical.
    #[test]
    fn train_step_is_bit_identical_to_backprop_then_sgd() {
        let mut rng = Rng::new(11);
        let sgd = Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
        };
        let mut fast: Box<MnistMlp> = Box::new(MnistMlp::seeded(5));
        let mut fast_v: Box<MnistMlp> = Box::new(MnistMlp::zeros());
        let mut slow = fast.clone();
        let mut slow_v = fast_v.clone();
        let mut grad: Box<MnistMlp> = Box::new(MnistMlp::zeros());
        for batch in [1usize, 7, 64, 33] {
            let images: Vec<[u8; 784]> = (0..batch).map(|_| random_image(&mut rng)).collect();
            let labels: Vec<u8> = (0..batch).map(|_| rng.below(10) as u8).collect();
            // Reference.
            let xs: Vec<[f32; 784]> = images
                .iter()
                .map(|p| {
                    let mut x = [0.0f32; 784];
                    normalize(p, &mut x);
                    x
                })
                .collect();
            let ref_loss = slow.backprop(&xs, &labels, &mut grad);
            sgd.step(&mut *slow, &*grad, &mut *slow_v, 0.05);
            // Fused.
            let mut idx = vec![[0u16; 784]; batch];
            let mut val = vec![[0u8; 784]; batch];
            let lens: Vec<usize> = images
                .iter()
                .zip(idx.iter_mut().zip(val.iter_mut()))
                .map(|(p, (i, v))| sparsify(p, i, v))
                .collect();
            let samples: Vec<SparseInput<'_>> = (0..batch)
                .map(|n| SparseInput {
                    idx: &idx[n][..lens[n]],
                    pixel: &val[n][..lens[n]],
                })
                .collect();
            let total: usize = lens.iter().sum();
            let (mut start, mut sample, mut cval) =
                (vec![0u32; 785], vec![0u16; total], vec![0.0f32; total]);
            let mut columns = Columns {
                start: &mut start,
                sample: &mut sample,
                val: &mut cval,
            };
            columns.fill(&samples);
            let (mut hidden, mut dpre) = (vec![[0.0f32; 128]; batch], vec![[0.0f32; 128]; batch]);
            let mut out = Box::new(OutputScratch::zeros());
            let mut scratch = StepScratch {
                hidden: &mut hidden,
                dpre: &mut dpre,
                out: &mut out,
            };
            let stats = fast.train_step(
                &mut fast_v,
                &sgd.coefficients(0.05),
                &samples,
                &labels,
                &columns,
                &mut scratch,
            );
            let mean = (stats.loss_sum / batch as f64) as f32;
            assert!(
                (mean - ref_loss).abs() <= 1e-5 * ref_loss.abs(),
                "loss {mean} vs {ref_loss}"
            );
            for (name, a, b) in [("model", &*fast, &*slow), ("velocity", &*fast_v, &*slow_v)] {
                let worst = (0..a.num_params())
                    .map(|i| (a.param(i) - b.param(i)).abs())
                    .fold(0.0f32, f32::max);
                let differing = (0..a.num_params())
                    .filter(|&i| a.param(i).to_bits() != b.param(i).to_bits())
                    .count();
                assert_eq!(
                    differing, 0,
                    "batch {batch}: {differing} {name} parameters differ, worst by {worst:e}"
                );
            }
        }
    }
}
