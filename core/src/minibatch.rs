//! One SGD step on a whole mini-batch of sparse inputs, gradient and update fused.
//!
//! The same arithmetic as [`Mlp::backprop`] followed by [`Sgd::step`](crate::Sgd::step), in the
//! same order, so the result is bit-identical to them (with
//! [`Separate`](crate::mul_add::Separate) multiply-adds; fused ones round once instead of
//! twice, see [`crate::mul_add`]); only the memory traffic differs:
//! - the first layer's forward pass reads only the weight rows of lit pixels
//!   ([`Dense::forward_sparse`]);
//! - the first layer's weight gradient is computed row by row from the batch's pixel columns
//!   ([`Columns`]: for every pixel, the samples where it is lit), in registers, and each row is
//!   updated as soon as its gradient is known: the 400 KB gradient of `W1` is never stored.
//!
//! The first layer's pre-activations may be summed in ranges of pixels ([`Columns`] cover one
//! range each): `pre = (b + sum over range 0) + (0 + sum over range 1) + ...`, each range's
//! rows in ascending order. With one range that is exactly the reference's sum; with two, each
//! range can be summed by the thread that also updates those rows of `W1`, so that no weight
//! row ever moves between two cores' caches. The result depends on the ranges, never on the
//! threads.
//!
//! A step has two phases, each made of independent parts that a caller may run in parallel
//! (the host does, on two threads) without changing a bit of the result:
//! 1. [`Mlp::add_columns`] for each range of pixels, then [`add_rows`] and
//!    [`Mlp::backward_samples`] per sample: any split of the batch;
//! 2. [`update_rows`] over any split of `W1`'s rows, and [`update_output_and_biases`].
//!
//! Sums over the batch are only taken in phase 2, always over the samples in order.

use crate::activation::{relu_backward, relu_forward};
use crate::loss::cross_entropy_backward;
use crate::mul_add::MulAdd;
use crate::optim::SgdStep;
use crate::params::TensorKind;
use crate::softmax::argmax;
use crate::sparse::{PIXEL_TO_INPUT, SparseInput};
use crate::{Dense, Mlp};

/// The batch by pixel, for the pixels `first..first + count.len()`: pixel `first + r` is lit in
/// `count[r]` samples, listed (ascending) at `sample[r * stride..][..count[r]]`, with their
/// values at the same positions of `val`. `stride` is the most samples a batch may have; the
/// buffers are the caller's, `count.len() * stride` long (`sample`, `val`).
///
/// Why a fixed stride per pixel rather than packed columns: building them is then one pass
/// over the batch instead of a counting pass and a placing pass (measured: a third faster).
#[derive(Debug)]
pub struct Columns<'s> {
    /// First pixel covered.
    pub first: usize,
    /// Room per pixel: the largest batch.
    pub stride: usize,
    /// Per pixel covered, the number of samples where it is lit.
    pub count: &'s mut [u32],
    /// Sample indices within the batch, `stride` places per pixel.
    pub sample: &'s mut [u16],
    /// Input values, parallel to `sample`.
    pub val: &'s mut [f32],
}

impl Columns<'_> {
    /// The number of pixels covered.
    #[inline(always)]
    pub fn pixels(&self) -> usize {
        self.count.len()
    }

    /// Transposes the covered pixels of `samples`. Inlined always, so that a caller compiled
    /// for wider vector instructions compiles it for them too.
    #[inline(always)]
    pub fn fill(&mut self, samples: &[SparseInput<'_>]) {
        assert!(
            samples.len() <= self.stride && samples.len() <= 1 << 16,
            "a batch of {} samples, columns for {}",
            samples.len(),
            self.stride
        );
        let room = self.pixels() * self.stride;
        assert!(
            self.sample.len() >= room && self.val.len() >= room,
            "column buffers too small"
        );
        let lo = self.first;
        let covered = lo..lo + self.pixels();
        self.count.fill(0);
        for (n, s) in samples.iter().enumerate() {
            let lit = s.lit_between(covered.clone());
            for (&i, &p) in s.idx[lit.clone()].iter().zip(&s.pixel[lit]) {
                let c = i as usize - lo;
                let at = c * self.stride + self.count[c] as usize;
                self.sample[at] = n as u16;
                self.val[at] = PIXEL_TO_INPUT[p as usize];
                self.count[c] += 1;
            }
        }
    }

    /// The samples and values of the `r`-th pixel covered.
    #[inline(always)]
    pub fn column(&self, r: usize) -> (&[u16], &[f32]) {
        let a = r * self.stride;
        let b = a + self.count[r] as usize;
        (&self.sample[a..b], &self.val[a..b])
    }
}

/// Per-sample values of a batch, one row per sample; phase 1 fills them, phase 2 reads them.
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
/// contiguous rows of `HIDDEN`, which vectorize), and room for its gradient.
#[derive(Clone, Debug, bytemuck::Zeroable)]
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

    /// Copies `layer`'s weights into `w2t`; do it before phase 1.
    pub fn transpose(&mut self, layer: &Dense<HIDDEN, OUT, f32>) {
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

impl<const IN: usize, const HIDDEN: usize, const OUT: usize> Mlp<IN, HIDDEN, OUT, f32> {
    /// Phase 1, first part, for the range of pixels `columns` covers: adds each of their
    /// weight rows, times the input, to `acc[n]` for every sample `n` where the pixel is lit,
    /// pixel by pixel in ascending order. Each weight row is read once per batch; each sample
    /// still sums its rows in ascending order, so from the bias and over every input `acc[n]`
    /// is bit-identical to [`Dense::forward_sparse_with`]`::<M>` of sample `n`.
    #[inline(always)]
    pub fn add_columns<M: MulAdd>(&self, columns: &Columns<'_>, acc: &mut [[f32; HIDDEN]]) {
        let rows = &self.hidden.w[columns.first..columns.first + columns.pixels()];
        for (r, row) in rows.iter().enumerate() {
            let (ns, xs) = columns.column(r);
            for (&n, &x) in ns.iter().zip(xs) {
                for (a, &w) in acc[n as usize].iter_mut().zip(row) {
                    *a = M::mul_add(x, w, *a);
                }
            }
        }
    }

    /// Phase 1, first part, sample by sample: [`Mlp::add_columns`] for the pixels `pixels`,
    /// the same sums in the same order (so bit-identical), each sample's summed in registers
    /// and stored once, from the weight rows of its lit pixels in the range.
    #[inline(always)]
    pub fn add_samples<M: MulAdd>(
        &self,
        samples: &[SparseInput<'_>],
        pixels: core::ops::Range<usize>,
        acc: &mut [[f32; HIDDEN]],
    ) {
        for (x, acc) in samples.iter().zip(acc) {
            let lit = x.lit_between(pixels.clone());
            let mut sum = *acc;
            for (&i, &p) in x.idx[lit.clone()].iter().zip(&x.pixel[lit]) {
                let v = PIXEL_TO_INPUT[p as usize];
                for (s, &w) in sum.iter_mut().zip(&self.hidden.w[i as usize]) {
                    *s = M::mul_add(v, w, *s);
                }
            }
            *acc = sum;
        }
    }

    /// Phase 1, second part, for any run of samples whose `rows.pre` are computed: loss and
    /// backward down to the hidden pre-activations.
    #[inline(always)]
    pub fn backward_samples(
        &self,
        w2t: &[[f32; HIDDEN]; OUT],
        labels: &[u8],
        rows: SampleRows<'_, HIDDEN, OUT>,
    ) {
        let per_sample = rows
            .hidden
            .iter_mut()
            .zip(rows.dpre.iter_mut())
            .zip(rows.dz.iter_mut())
            .zip(rows.loss.iter_mut().zip(rows.correct.iter_mut()));
        for ((pre, &label), (((h, dpre), dz), (loss, correct))) in
            rows.pre.iter().zip(labels).zip(per_sample)
        {
            relu_forward(pre, h);
            let mut z = [0.0; OUT];
            self.output.forward_listed(h, &mut z);
            *loss = cross_entropy_backward(&z, label as usize, dz);
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

    /// One SGD step on a batch of sparse inputs: the gradient of the mean cross-entropy, then
    /// `step` applied with `velocity`. `ranges` are the batch's [`Columns`] for consecutive
    /// ranges of pixels that together cover every input, in order; `partial` (as long as the
    /// batch) holds a range's sums when there is more than one. With one range the step is
    /// bit-identical to [`Mlp::backprop`] then [`Sgd::step`](crate::Sgd::step); with more,
    /// it differs from them by the rounding of the first layer's split sums only. `rows` must
    /// be as long as the batch. Both phases in turn, on the calling thread.
    ///
    /// `M` computes the multiply-adds of the two large kernels (the first layer's forward pass
    /// and weight gradient): with [`Separate`](crate::mul_add::Separate) the step is
    /// bit-identical to the reference; fused, it differs from it by rounding only.
    ///
    /// Inlined always, so that a caller compiled for wider vector instructions (the host's
    /// runtime dispatch) gets all of it compiled for them.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn train_step<M: MulAdd>(
        &mut self,
        velocity: &mut Self,
        step: &SgdStep<f32>,
        samples: &[SparseInput<'_>],
        labels: &[u8],
        ranges: &[Columns<'_>],
        partial: &mut [[f32; HIDDEN]],
        mut rows: SampleRows<'_, HIDDEN, OUT>,
        out: &mut OutputScratch<HIDDEN, OUT>,
    ) -> StepStats {
        assert_eq!(
            samples.len(),
            labels.len(),
            "batch and label lengths differ"
        );
        assert!(!samples.is_empty(), "empty batch");
        let mut next = 0;
        for c in ranges {
            assert_eq!(c.first, next, "the ranges must follow each other");
            next += c.pixels();
        }
        assert_eq!(next, IN, "the ranges must cover every input");
        out.transpose(&self.output);
        rows.pre.fill(self.hidden.b);
        self.add_columns::<M>(&ranges[0], rows.pre);
        for range in &ranges[1..] {
            partial.fill([0.0; HIDDEN]);
            self.add_columns::<M>(range, partial);
            add_rows(rows.pre, partial);
        }
        self.backward_samples(&out.w2t, labels, rows.reborrow());
        let inv = 1.0 / samples.len() as f32;
        for range in ranges {
            let rows_of_range = range.first..range.first + range.pixels();
            update_rows::<M, HIDDEN>(
                &mut self.hidden.w[rows_of_range.clone()],
                &mut velocity.hidden.w[rows_of_range],
                range.first,
                range,
                rows.dpre,
                step,
                inv,
            );
        }
        update_output_and_biases(
            (&mut self.hidden.b, &mut velocity.hidden.b),
            (&mut self.output, &mut velocity.output),
            rows.hidden,
            rows.dpre,
            rows.dz,
            out,
            step,
            inv,
        );
        rows.stats()
    }
}

/// `acc[n] += other[n]`, element by element: a range's sums added to the pre-activations.
#[inline(always)]
pub fn add_rows<const HIDDEN: usize>(acc: &mut [[f32; HIDDEN]], other: &[[f32; HIDDEN]]) {
    for (a, o) in acc.iter_mut().zip(other) {
        for (a, &o) in a.iter_mut().zip(o) {
            *a += o;
        }
    }
}

/// Phase 2, for any run of `W1`'s rows: each row's gradient `sum_n x_n dpre[n]` over the
/// samples where its pixel is lit (ascending, from zero, as [`Dense::backward_params`]
/// accumulates), scaled by `inv`, then the SGD step, with the row's velocity in `v`.
/// `w[0]` is row `first_row`; `columns` covers these rows (and maybe more).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn update_rows<M: MulAdd, const HIDDEN: usize>(
    w: &mut [[f32; HIDDEN]],
    v: &mut [[f32; HIDDEN]],
    first_row: usize,
    columns: &Columns<'_>,
    dpre: &[[f32; HIDDEN]],
    step: &SgdStep<f32>,
    inv: f32,
) {
    for (r, (w, v)) in w.iter_mut().zip(v).enumerate() {
        let (ns, xs) = columns.column(first_row + r - columns.first);
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

/// Phase 2, the rest: the gradients of `b1`, `W2` and `b2` summed over the samples in order
/// (as [`Dense::backward_params`]: adding the +-0 products of zero activations that it skips
/// changes nothing, since these sums start at +0 and a float sum is -0 only if every term
/// is), scaled by `inv`, and the SGD step on them. Each pair is (parameters, velocity).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn update_output_and_biases<const HIDDEN: usize, const OUT: usize>(
    b1: (&mut [f32; HIDDEN], &mut [f32; HIDDEN]),
    output: (&mut Dense<HIDDEN, OUT, f32>, &mut Dense<HIDDEN, OUT, f32>),
    hidden: &[[f32; HIDDEN]],
    dpre: &[[f32; HIDDEN]],
    dz: &[[f32; OUT]],
    out: &mut OutputScratch<HIDDEN, OUT>,
    step: &SgdStep<f32>,
    inv: f32,
) {
    let mut grad_b1 = [0.0f32; HIDDEN];
    out.grad_w2t = [[0.0; HIDDEN]; OUT];
    out.grad.b = [0.0; OUT];
    for ((h, dpre), dz) in hidden.iter().zip(dpre).zip(dz) {
        for (g, &d) in grad_b1.iter_mut().zip(dpre) {
            *g += d;
        }
        for (g, &d) in out.grad_w2t.iter_mut().zip(dz) {
            for (g, &hj) in g.iter_mut().zip(h) {
                *g += hj * d;
            }
        }
        for (g, &d) in out.grad.b.iter_mut().zip(dz) {
            *g += d;
        }
    }
    for (k, row) in out.grad_w2t.iter().enumerate() {
        for (j, &g) in row.iter().enumerate() {
            out.grad.w[j][k] = g;
        }
    }
    let (w, v) = output;
    update_scaled(TensorKind::Bias, b1.0, b1.1, &grad_b1, step, inv);
    update_scaled(
        TensorKind::Weight,
        w.w.as_flattened_mut(),
        v.w.as_flattened_mut(),
        out.grad.w.as_flattened(),
        step,
        inv,
    );
    update_scaled(TensorKind::Bias, &mut w.b, &mut v.b, &out.grad.b, step, inv);
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
    use crate::mul_add::{FusedSoft, Separate};
    use crate::pixels::normalize;
    use crate::sparse::sparsify;
    use crate::{MnistMlp, Params, Rng, Sgd};

    extern crate std;
    use std::boxed::Box;
    use std::format;
    use std::vec;
    use std::vec::Vec;

    fn random_image(rng: &mut Rng) -> [u8; 784] {
        let mut img = [0u8; 784];
        for p in img.iter_mut() {
            let r = rng.next_u64();
            if r.is_multiple_of(5) {
                *p = (r >> 8) as u8;
            }
        }
        img
    }

    /// Buffers for one batch's phase-1 rows.
    struct Rows {
        pre: Vec<[f32; 128]>,
        hidden: Vec<[f32; 128]>,
        dpre: Vec<[f32; 128]>,
        dz: Vec<[f32; 10]>,
        loss: Vec<f32>,
        correct: Vec<bool>,
    }

    impl Rows {
        fn new(n: usize) -> Self {
            Self {
                pre: vec![[0.0; 128]; n],
                hidden: vec![[0.0; 128]; n],
                dpre: vec![[0.0; 128]; n],
                dz: vec![[0.0; 10]; n],
                loss: vec![0.0; n],
                correct: vec![false; n],
            }
        }

        fn rows(&mut self) -> SampleRows<'_, 128, 10> {
            SampleRows {
                pre: &mut self.pre,
                hidden: &mut self.hidden,
                dpre: &mut self.dpre,
                dz: &mut self.dz,
                loss: &mut self.loss,
                correct: &mut self.correct,
            }
        }
    }

    /// Buffers for the columns of pixels `first..last`.
    struct Cols {
        first: usize,
        stride: usize,
        count: Vec<u32>,
        sample: Vec<u16>,
        val: Vec<f32>,
    }

    impl Cols {
        fn new(first: usize, last: usize, batch: usize) -> Self {
            Self {
                first,
                stride: batch,
                count: vec![0; last - first],
                sample: vec![0; batch * (last - first)],
                val: vec![0.0; batch * (last - first)],
            }
        }

        fn filled(&mut self, samples: &[SparseInput<'_>]) -> Columns<'_> {
            let mut c = Columns {
                first: self.first,
                stride: self.stride,
                count: &mut self.count,
                sample: &mut self.sample,
                val: &mut self.val,
            };
            c.fill(samples);
            c
        }
    }

    fn assert_same(what: &str, a: &MnistMlp, b: &MnistMlp) {
        let worst = (0..a.num_params())
            .map(|i| (a.param(i) - b.param(i)).abs())
            .fold(0.0f32, f32::max);
        let differing = (0..a.num_params())
            .filter(|&i| a.param(i).to_bits() != b.param(i).to_bits())
            .count();
        assert_eq!(
            differing, 0,
            "{what}: {differing} parameters differ, worst by {worst:e}"
        );
    }

    /// Sparse copies of `images`, and the `SparseInput`s viewing them.
    struct Sparse {
        idx: Vec<[u16; 784]>,
        val: Vec<[u8; 784]>,
        lens: Vec<usize>,
    }

    impl Sparse {
        fn new(images: &[[u8; 784]]) -> Self {
            let mut idx = vec![[0u16; 784]; images.len()];
            let mut val = vec![[0u8; 784]; images.len()];
            let lens = images
                .iter()
                .zip(idx.iter_mut().zip(val.iter_mut()))
                .map(|(p, (i, v))| sparsify(p, i, v))
                .collect();
            Self { idx, val, lens }
        }

        fn inputs(&self) -> Vec<SparseInput<'_>> {
            (0..self.lens.len())
                .map(|n| SparseInput {
                    idx: &self.idx[n][..self.lens[n]],
                    pixel: &self.val[n][..self.lens[n]],
                })
                .collect()
        }
    }

    fn dense_inputs(images: &[[u8; 784]]) -> Vec<[f32; 784]> {
        images
            .iter()
            .map(|p| {
                let mut x = [0.0f32; 784];
                normalize(p, &mut x);
                x
            })
            .collect()
    }

    /// Largest difference splitting the first layer's sums in two ranges may make to any
    /// parameter after four steps (a different rounding of sums of some 150 terms).
    const SPLIT_TOLERANCE: f32 = 1e-6;

    /// Several steps of `train_step` with one range of pixels against `backprop` + `Sgd::step`
    /// on the dense inputs: every parameter and velocity bit-identical. With two ranges, run
    /// as one call and as its phases split in uneven parts (as threads run them): the two
    /// bit-identical, and within rounding of the reference.
    #[test]
    fn train_step_is_backprop_then_sgd_and_its_split_phases_are_train_step() {
        let mut rng = Rng::new(11);
        let sgd = Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
        };
        let step = sgd.coefficients::<f32>(0.05);
        let mut fast: Box<MnistMlp> = Box::new(MnistMlp::seeded(5));
        let mut fast_v: Box<MnistMlp> = Box::new(MnistMlp::zeros());
        let (mut two, mut two_v) = (fast.clone(), fast_v.clone());
        let (mut split, mut split_v) = (fast.clone(), fast_v.clone());
        let (mut slow, mut slow_v) = (fast.clone(), fast_v.clone());
        let mut grad: Box<MnistMlp> = Box::new(MnistMlp::zeros());
        let mut out = Box::new(OutputScratch::zeros());
        for batch in [1usize, 7, 64, 33] {
            let images: Vec<[u8; 784]> = (0..batch).map(|_| random_image(&mut rng)).collect();
            let labels: Vec<u8> = (0..batch).map(|_| rng.below(10) as u8).collect();
            // Reference.
            let ref_loss = slow.backprop(&dense_inputs(&images), &labels, &mut grad);
            sgd.step(&mut *slow, &*grad, &mut *slow_v, 0.05);
            let sparse = Sparse::new(&images);
            let samples = sparse.inputs();
            let mut partial = vec![[0.0f32; 128]; batch];
            // One range.
            let mut all = Cols::new(0, 784, batch);
            let mut rows = Rows::new(batch);
            let stats = fast.train_step::<Separate>(
                &mut fast_v,
                &step,
                &samples,
                &labels,
                &[all.filled(&samples)],
                &mut partial,
                rows.rows(),
                &mut out,
            );
            let mean = (stats.loss_sum / batch as f64) as f32;
            assert!(
                (mean - ref_loss).abs() <= 1e-5 * ref_loss.abs(),
                "loss {mean} vs {ref_loss}"
            );
            assert_same(&format!("batch {batch}, model"), &fast, &slow);
            assert_same(&format!("batch {batch}, velocity"), &fast_v, &slow_v);
            // Two ranges, split at pixel 300, in one call.
            let (mut lo, mut hi) = (Cols::new(0, 300, batch), Cols::new(300, 784, batch));
            let mut rows = Rows::new(batch);
            two.train_step::<Separate>(
                &mut two_v,
                &step,
                &samples,
                &labels,
                &[lo.filled(&samples), hi.filled(&samples)],
                &mut partial,
                rows.rows(),
                &mut out,
            );
            // The same, phase by phase: each range apart, then the samples split at a third,
            // then the rows by range.
            let mut rows = Rows::new(batch);
            let (lo, hi) = (lo.filled(&samples), hi.filled(&samples));
            out.transpose(&split.output);
            rows.pre.fill(split.hidden.b);
            split.add_columns::<Separate>(&lo, &mut rows.pre);
            partial.fill([0.0; 128]);
            split.add_columns::<Separate>(&hi, &mut partial);
            let third = batch / 3;
            let (r0, r1) = rows.rows().split_at(third);
            for (mut r, part, labels) in [
                (r0, &partial[..third], &labels[..third]),
                (r1, &partial[third..], &labels[third..]),
            ] {
                add_rows(r.pre, part);
                split.backward_samples(&out.w2t, labels, r.reborrow());
            }
            let inv = 1.0 / batch as f32;
            let (w_lo, w_hi) = split.hidden.w.split_at_mut(300);
            let (v_lo, v_hi) = split_v.hidden.w.split_at_mut(300);
            update_rows::<Separate, 128>(w_hi, v_hi, 300, &hi, &rows.dpre, &step, inv);
            update_rows::<Separate, 128>(w_lo, v_lo, 0, &lo, &rows.dpre, &step, inv);
            update_output_and_biases(
                (&mut split.hidden.b, &mut split_v.hidden.b),
                (&mut split.output, &mut split_v.output),
                &rows.hidden,
                &rows.dpre,
                &rows.dz,
                &mut out,
                &step,
                inv,
            );
            assert_same(&format!("batch {batch}, split model"), &split, &two);
            assert_same(&format!("batch {batch}, split velocity"), &split_v, &two_v);
        }
        let worst = (0..two.num_params())
            .map(|i| (two.param(i) - slow.param(i)).abs())
            .fold(0.0f32, f32::max);
        std::println!("two ranges vs one after 4 steps: worst difference {worst:e}");
        assert!(
            worst <= SPLIT_TOLERANCE,
            "two ranges differ from one by {worst:e}"
        );
    }

    /// Largest difference a fused multiply-add may make to any parameter after four steps
    /// (rounding once instead of twice in sums of some 30 terms; parameters are about 0.1).
    const FUSED_TOLERANCE: f32 = 1e-6;

    /// `train_step` with fused multiply-adds against `backprop` + `Sgd::step`: different by
    /// rounding only.
    #[test]
    fn fused_train_step_differs_from_backprop_by_rounding_only() {
        let mut rng = Rng::new(12);
        let sgd = Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
        };
        let step = sgd.coefficients::<f32>(0.05);
        let mut fast: Box<MnistMlp> = Box::new(MnistMlp::seeded(6));
        let mut fast_v: Box<MnistMlp> = Box::new(MnistMlp::zeros());
        let (mut slow, mut slow_v) = (fast.clone(), fast_v.clone());
        let mut grad: Box<MnistMlp> = Box::new(MnistMlp::zeros());
        let mut out = Box::new(OutputScratch::zeros());
        let batch = 64;
        for _ in 0..4 {
            let images: Vec<[u8; 784]> = (0..batch).map(|_| random_image(&mut rng)).collect();
            let labels: Vec<u8> = (0..batch).map(|_| rng.below(10) as u8).collect();
            slow.backprop(&dense_inputs(&images), &labels, &mut grad);
            sgd.step(&mut *slow, &*grad, &mut *slow_v, 0.05);
            let sparse = Sparse::new(&images);
            let samples = sparse.inputs();
            let mut all = Cols::new(0, 784, batch);
            let mut rows = Rows::new(batch);
            let mut partial = vec![[0.0f32; 128]; batch];
            fast.train_step::<FusedSoft>(
                &mut fast_v,
                &step,
                &samples,
                &labels,
                &[all.filled(&samples)],
                &mut partial,
                rows.rows(),
                &mut out,
            );
        }
        let (worst, at) = (0..fast.num_params())
            .map(|i| ((fast.param(i) - slow.param(i)).abs(), i))
            .fold((0.0f32, 0), |a, b| if b.0 > a.0 { b } else { a });
        let differing = (0..fast.num_params())
            .filter(|&i| fast.param(i) != slow.param(i))
            .count();
        std::println!(
            "fused vs reference after 4 steps: {differing} of {} parameters differ, worst by {worst:e} (parameter {at})",
            fast.num_params()
        );
        assert!(
            differing > 0,
            "fused multiply-adds changed nothing: not fused?"
        );
        assert!(
            worst <= FUSED_TOLERANCE,
            "parameter {at} differs by {worst:e} > {FUSED_TOLERANCE:e}"
        );
    }
}
