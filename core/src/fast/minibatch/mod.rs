//! One SGD step on a whole mini-batch of sparse inputs, gradient and update fused:
//! [`train_step`].
//!
//! The same arithmetic as [`Mlp::backprop`] followed by [`Sgd::step`](crate::Sgd::step), in the
//! same order, so the result is bit-identical to them (with
//! [`Separate`](crate::fast::mul_add::Separate) multiply-adds and one range of pixels:
//! `tests::one_range_is_backprop_then_sgd_bit_for_bit`); only the memory traffic differs:
//! - the first layer's forward pass reads only the weight rows of lit pixels;
//! - the first layer's weight gradient is computed row by row from the batch's pixel columns
//!   ([`Columns`]: for every pixel, the samples where it is lit), in registers, and each row
//!   is updated as soon as its gradient is known: the gradient of `W1` is never stored.
//!
//! The first layer's pre-activations are summed in two ranges of pixels, split where the
//! caller's [`Columns`] say: `pre = (b + sum over the low range) + (0 + sum over the high
//! range)`, each range's rows in ascending order. With an empty high range that is exactly the
//! reference's sum; with two, each range can be summed by the thread that also updates those
//! rows of `W1`, so that no weight row ever moves between two cores' caches. The result then
//! differs from the reference's by the rounding of the split sums, and depends on the split,
//! never on the threads.
//!
//! A step has three phases, each of two independent parts that a [`Join`] runs one after the
//! other ([`Sequential`]) or at once (the host's two threads), the same bits either way
//! (`tests::the_parts_are_independent_and_two_ranges_round_only`):
//! 1. the first layer's sums, a range of pixels each, and the batch by pixel for phase 3;
//! 2. the rest of the forward and backward pass per sample, a half of the batch each;
//! 3. the update of `W1`, a range of rows each; the second part also updates the output layer
//!    and the biases, their gradients summed over the samples in order.

mod columns;
mod join;
mod phases;
mod rows;
#[cfg(test)]
mod tests;

pub use columns::Columns;
pub use join::{Join, Sequential};
pub use rows::{OutputScratch, SampleRows, StepStats};

use crate::Mlp;
use crate::fast::mul_add::MulAdd;
use crate::fast::sparse::SparseInput;
use crate::loss::Distill;
use crate::optim::{SgdStep, WithVelocity};
use phases::{Update, add_first_layer, add_rows, backward_samples};

/// The samples of one step and their labels (as many, at least one).
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// The inputs, as their lit pixels.
    pub samples: &'a [SparseInput<'a>],
    /// Their labels, `< OUT`.
    pub labels: &'a [u8],
    /// A teacher's soft targets, if the step distills ([`distill_backward`](crate::loss::distill_backward)).
    pub soft: Option<Soft<'a>>,
}

/// A teacher's soft targets for a batch: `OUT` probabilities per sample, one sample after the
/// other, and the loss's temperature and weight.
#[derive(Clone, Copy, Debug)]
pub struct Soft<'a> {
    /// `samples x OUT` probabilities at the temperature.
    pub targets: &'a [f32],
    /// Temperature and weight.
    pub distill: Distill<f32>,
}

/// The memory a step works in, the caller's (the core allocates nothing), reused from step
/// to step.
#[derive(Debug)]
pub struct StepBuffers<'s, const HIDDEN: usize, const OUT: usize> {
    /// The batch by pixel, for the low range of pixels (from 0) and the high one (up to the
    /// input size). The split between them is part of the arithmetic (see the module docs).
    pub columns: [Columns<'s>; 2],
    /// Per-sample rows, at least as many as the batch.
    pub rows: SampleRows<'s, HIDDEN, OUT>,
    /// The high range's sums, at least as many as the batch.
    pub partial: &'s mut [[f32; HIDDEN]],
    /// The output layer transposed, and its gradient.
    pub output: &'s mut OutputScratch<HIDDEN, OUT>,
}

/// One SGD step of `net` on `batch`: the gradient of the mean cross-entropy, then `step`
/// applied with the velocity; returns what the model (before the step) scored on the batch.
///
/// `M` computes the multiply-adds of the two large kernels (the first layer's forward pass
/// and weight gradient): with [`Separate`](crate::fast::mul_add::Separate) they round as the
/// reference does; fused, they differ from it by rounding only. `join` runs each phase's two
/// parts; the result does not depend on how.
#[inline(always)]
pub fn train_step<M: MulAdd, J: Join, const IN: usize, const HIDDEN: usize, const OUT: usize>(
    net: WithVelocity<'_, Mlp<IN, HIDDEN, OUT, f32>>,
    step: &SgdStep<f32>,
    batch: Batch<'_>,
    buffers: StepBuffers<'_, HIDDEN, OUT>,
    join: &mut J,
) -> StepStats {
    let Batch {
        samples,
        labels,
        soft,
    } = batch;
    let n = samples.len();
    assert!(
        n > 0 && n == labels.len(),
        "a batch of {n} samples and {} labels",
        labels.len()
    );
    assert!(
        soft.is_none_or(|s| s.targets.len() == n * OUT),
        "{OUT} soft targets per sample"
    );
    let StepBuffers {
        columns: [mut low, mut high],
        rows,
        partial,
        output: scratch,
    } = buffers;
    let split = high.pixels().start;
    assert!(
        low.pixels() == (0..split) && high.pixels().end == IN,
        "the columns must cover the inputs in two consecutive ranges"
    );
    let mut rows = rows.split_at(n).0;
    let partial = &mut partial[..n];
    let WithVelocity { params, velocity } = net;
    scratch.transpose(&params.output);

    // 1. The first layer's sums, a range of pixels each.
    {
        let layer = &params.hidden;
        let (pre, partial) = (&mut *rows.pre, &mut *partial);
        let (low, high) = (&mut low, &mut high);
        join.join(
            #[inline(always)]
            || {
                low.fill(samples);
                pre.fill(layer.b);
                add_first_layer::<M, IN, HIDDEN>(layer, samples, 0..split, pre);
            },
            #[inline(always)]
            || {
                high.fill(samples);
                partial.fill([0.0; HIDDEN]);
                add_first_layer::<M, IN, HIDDEN>(layer, samples, split..IN, partial);
            },
        );
    }

    // 2. The rest of the forward and backward pass, a half of the batch each.
    {
        let (model, w2t) = (&*params, &scratch.w2t);
        let half = n / 2;
        let (rows_a, rows_b) = rows.reborrow().split_at(half);
        let (partial_a, partial_b) = partial.split_at(half);
        let (labels_a, labels_b) = labels.split_at(half);
        let (soft_a, soft_b) = match soft {
            Some(s) => {
                let (a, b) = s.targets.split_at(half * OUT);
                (
                    Some(Soft { targets: a, ..s }),
                    Some(Soft { targets: b, ..s }),
                )
            }
            None => (None, None),
        };
        let two_ranges = split < IN;
        join.join(
            #[inline(always)]
            || {
                if two_ranges {
                    add_rows(rows_a.pre, partial_a);
                }
                backward_samples(model, w2t, labels_a, soft_a, rows_a);
            },
            #[inline(always)]
            || {
                if two_ranges {
                    add_rows(rows_b.pre, partial_b);
                }
                backward_samples(model, w2t, labels_b, soft_b, rows_b);
            },
        );
    }

    // 3. W1 by ranges of rows; the output layer and the biases with the high range.
    {
        let update = Update {
            step,
            inv: 1.0 / n as f32,
            hidden: &*rows.hidden,
            dpre: &*rows.dpre,
            dz: &*rows.dz,
        };
        let update = &update;
        let (w_low, w_high) = params.hidden.w.split_at_mut(split);
        let (v_low, v_high) = velocity.hidden.w.split_at_mut(split);
        let b1 = WithVelocity {
            params: &mut params.hidden.b,
            velocity: &mut velocity.hidden.b,
        };
        let output = WithVelocity {
            params: &mut params.output,
            velocity: &mut velocity.output,
        };
        let (low, high) = (&low, &high);
        join.join(
            #[inline(always)]
            || {
                let w1 = WithVelocity {
                    params: w_low,
                    velocity: v_low,
                };
                update.first_layer_rows::<M>(w1, low);
            },
            #[inline(always)]
            || {
                let w1 = WithVelocity {
                    params: w_high,
                    velocity: v_high,
                };
                update.first_layer_rows::<M>(w1, high);
                update.output_and_biases(b1, output, scratch);
            },
        );
    }
    rows.stats()
}
