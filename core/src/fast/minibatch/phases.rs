//! The kernels of a step's phases, each over its own part of the batch or of the model. Each
//! names the reference computation it repeats, in the same order.

use core::ops::Range;

use super::Soft;
use super::columns::Columns;
use super::rows::{OutputScratch, SampleRows};
use crate::activation::{relu_backward, relu_forward};
use crate::fast::mul_add::MulAdd;
use crate::fast::sparse::{PIXEL_TO_INPUT, SparseInput};
use crate::loss::{cross_entropy_backward, distill_backward};
use crate::optim::{SgdStep, WithVelocity};
use crate::params::TensorKind;
use crate::softmax::argmax;
use crate::{Dense, Mlp};

/// Phase 1, first part, for the pixels `pixels`: adds to `acc[n]` the weight rows of sample
/// `n`'s lit pixels in the range times their inputs, in ascending order, summed in registers
/// and stored once. From the bias and over every pixel, `acc[n]` is [`Dense::forward`] of the
/// normalized sample (with [`Separate`](crate::fast::mul_add::Separate)).
#[inline(always)]
pub(super) fn add_first_layer<M: MulAdd, const IN: usize, const HIDDEN: usize>(
    layer: &Dense<IN, HIDDEN, f32>,
    samples: &[SparseInput<'_>],
    pixels: Range<usize>,
    acc: &mut [[f32; HIDDEN]],
) {
    for (x, acc) in samples.iter().zip(acc) {
        let lit = x.lit_between(pixels.clone());
        let mut sum = *acc;
        for (&i, &p) in x.idx[lit.clone()].iter().zip(&x.pixel[lit]) {
            let v = PIXEL_TO_INPUT[p as usize];
            for (s, &w) in sum.iter_mut().zip(&layer.w[i as usize]) {
                *s = M::mul_add(v, w, *s);
            }
        }
        *acc = sum;
    }
}

/// `acc[n] += other[n]`, element by element: the second range's sums added to the first's.
#[inline(always)]
pub(super) fn add_rows<const HIDDEN: usize>(acc: &mut [[f32; HIDDEN]], other: &[[f32; HIDDEN]]) {
    for (a, o) in acc.iter_mut().zip(other) {
        for (a, &o) in a.iter_mut().zip(o) {
            *a += o;
        }
    }
}

/// Phase 1, second part, for any run of samples whose `rows.pre` are complete: ReLU, the
/// output layer, loss, and backward down to the hidden pre-activations, as
/// [`Mlp::backprop_sample`] computes them (or with the distillation loss, given `soft`).
#[inline(always)]
pub(super) fn backward_samples<const IN: usize, const HIDDEN: usize, const OUT: usize>(
    model: &Mlp<IN, HIDDEN, OUT, f32>,
    w2t: &[[f32; HIDDEN]; OUT],
    labels: &[u8],
    soft: Option<Soft<'_>>,
    rows: SampleRows<'_, HIDDEN, OUT>,
) {
    let per_sample = rows
        .hidden
        .iter_mut()
        .zip(rows.dpre.iter_mut())
        .zip(rows.dz.iter_mut())
        .zip(rows.loss.iter_mut().zip(rows.correct.iter_mut()));
    for (n, ((pre, &label), (((h, dpre), dz), (loss, correct)))) in
        rows.pre.iter().zip(labels).zip(per_sample).enumerate()
    {
        relu_forward(pre, h);
        let mut z = [0.0; OUT];
        model.output.forward_listed(h, &mut z);
        *loss = match soft {
            None => cross_entropy_backward(&z, label as usize, dz),
            Some(s) => {
                let mut q = [0.0; OUT];
                q.copy_from_slice(&s.targets[n * OUT..(n + 1) * OUT]);
                distill_backward(&z, label as usize, &q, s.distill, dz)
            }
        };
        *correct = argmax(&z) == label as usize;
        // `Dense::backward_input` along rows of HIDDEN: the same products, same order.
        let mut dh = [0.0; HIDDEN];
        for (w, &d) in w2t.iter().zip(dz.iter()) {
            for (dhj, &wj) in dh.iter_mut().zip(w) {
                *dhj += wj * d;
            }
        }
        relu_backward(pre, &dh, dpre);
    }
}

/// What phase 2 reads: the step's coefficients, `1 / batch`, and phase 1's per-sample rows.
pub(super) struct Update<'a, const HIDDEN: usize, const OUT: usize> {
    pub(super) step: &'a SgdStep<f32>,
    pub(super) inv: f32,
    pub(super) hidden: &'a [[f32; HIDDEN]],
    pub(super) dpre: &'a [[f32; HIDDEN]],
    pub(super) dz: &'a [[f32; OUT]],
}

impl<const HIDDEN: usize, const OUT: usize> Update<'_, HIDDEN, OUT> {
    /// Phase 2, for the rows of `W1` of the pixels `columns` covers (`w1` holds exactly
    /// those): each row's gradient `sum_n x_n dpre[n]` over the samples where its pixel is lit
    /// (ascending, from zero, as [`Dense::backward_params`] accumulates), scaled by `1 / batch`,
    /// then the SGD step on the row. The gradient of a row lives in registers only.
    #[inline(always)]
    pub(super) fn first_layer_rows<M: MulAdd>(
        &self,
        w1: WithVelocity<'_, [[f32; HIDDEN]]>,
        columns: &Columns<'_>,
    ) {
        assert_eq!(w1.params.len(), columns.pixels().len(), "one row per pixel");
        // Locals, not loads through `self` in the loops: the compiler cannot tell that the
        // rows written do not overlap `self`.
        let (step, inv, dpre) = (*self.step, self.inv, self.dpre);
        for (r, (w, v)) in w1.params.iter_mut().zip(w1.velocity).enumerate() {
            let (ns, xs) = columns.column(r);
            let mut g = [0.0f32; HIDDEN];
            for (&n, &x) in ns.iter().zip(xs) {
                for (a, &d) in g.iter_mut().zip(&dpre[n as usize]) {
                    *a = M::mul_add(x, d, *a);
                }
            }
            for a in g.iter_mut() {
                *a *= inv;
            }
            step.apply(TensorKind::Weight, w, v, &g);
        }
    }

    /// Phase 2, the rest: the gradients of `b1`, `W2` and `b2` summed over the samples in
    /// order (as [`Dense::backward_params`]: adding the +-0 products of zero activations that
    /// it skips changes nothing, since these sums start at +0 and a float sum is -0 only if
    /// every term is), scaled by `1 / batch`, and the SGD step on them.
    #[inline(always)]
    pub(super) fn output_and_biases(
        &self,
        b1: WithVelocity<'_, [f32; HIDDEN]>,
        output: WithVelocity<'_, Dense<HIDDEN, OUT, f32>>,
        scratch: &mut OutputScratch<HIDDEN, OUT>,
    ) {
        let (hidden, dpre, dz) = (self.hidden, self.dpre, self.dz);
        let mut grad_b1 = [0.0f32; HIDDEN];
        scratch.grad_w2t = [[0.0; HIDDEN]; OUT];
        scratch.grad.b = [0.0; OUT];
        for ((h, dpre), dz) in hidden.iter().zip(dpre).zip(dz) {
            for (g, &d) in grad_b1.iter_mut().zip(dpre) {
                *g += d;
            }
            for (g, &d) in scratch.grad_w2t.iter_mut().zip(dz) {
                for (g, &hj) in g.iter_mut().zip(h) {
                    *g += hj * d;
                }
            }
            for (g, &d) in scratch.grad.b.iter_mut().zip(dz) {
                *g += d;
            }
        }
        for (k, row) in scratch.grad_w2t.iter().enumerate() {
            for (j, &g) in row.iter().enumerate() {
                scratch.grad.w[j][k] = g;
            }
        }
        let WithVelocity {
            params: w,
            velocity: v,
        } = output;
        self.apply_scaled(
            TensorKind::Bias,
            WithVelocity {
                params: b1.params,
                velocity: b1.velocity,
            },
            &grad_b1,
        );
        self.apply_scaled(
            TensorKind::Weight,
            WithVelocity {
                params: w.w.as_flattened_mut(),
                velocity: v.w.as_flattened_mut(),
            },
            scratch.grad.w.as_flattened(),
        );
        self.apply_scaled(
            TensorKind::Bias,
            WithVelocity {
                params: &mut w.b,
                velocity: &mut v.b,
            },
            &scratch.grad.b,
        );
    }

    /// `grad / batch` (as `grad * (1 / batch)`), then the SGD step, through a small stack
    /// buffer.
    #[inline(always)]
    fn apply_scaled(&self, kind: TensorKind, target: WithVelocity<'_, [f32]>, grad: &[f32]) {
        const CHUNK: usize = 64;
        let (step, inv) = (*self.step, self.inv);
        for ((w, v), g) in target
            .params
            .chunks_mut(CHUNK)
            .zip(target.velocity.chunks_mut(CHUNK))
            .zip(grad.chunks(CHUNK))
        {
            let mut scaled = [0.0f32; CHUNK];
            for (s, &g) in scaled.iter_mut().zip(g) {
                *s = g * inv;
            }
            step.apply(kind, w, v, &scaled[..g.len()]);
        }
    }
}
