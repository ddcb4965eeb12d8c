//! Fast backprop training on the host: the images as lists of lit pixels, made once, and the
//! core's fused [`train_step`](digits_core::Mlp::train_step) on every batch.

use digits_core::{Dense, Mlp, MnistMlp};

use crate::simd::{Fused, dispatch};
use crate::train::aligned::{AlignedBox, AlignedRows};
use crate::train::threads::Pair;
use digits_core::minibatch::{
    Columns, OutputScratch, SampleRows, StepStats, add_rows, update_output_and_biases, update_rows,
};
use digits_core::optim::SgdStep;
use digits_core::sparse::{SparseInput, sparsify};
use rayon::prelude::*;

/// A set of images as lists of their lit pixels, one after the other (CSR).
pub struct SparseSet {
    /// `len + 1` offsets into `idx` and `val`.
    start: Vec<u32>,
    /// Pixel indices, ascending within an image.
    idx: Vec<u16>,
    /// Pixel values.
    val: Vec<u8>,
}

impl SparseSet {
    /// Lists the lit pixels of every image (in parallel; the result does not depend on it).
    pub fn new(images: &[[u8; 784]]) -> Self {
        let parts: Vec<(Vec<u32>, Vec<u16>, Vec<u8>)> = images
            .par_chunks(1024)
            .map(|chunk| {
                let mut lens = Vec::with_capacity(chunk.len());
                let (mut idx, mut val) = (Vec::new(), Vec::new());
                let (mut i, mut v) = ([0u16; 784], [0u8; 784]);
                for img in chunk {
                    let n = sparsify(img, &mut i, &mut v);
                    lens.push(n as u32);
                    idx.extend_from_slice(&i[..n]);
                    val.extend_from_slice(&v[..n]);
                }
                (lens, idx, val)
            })
            .collect();
        let mut start = Vec::with_capacity(images.len() + 1);
        start.push(0u32);
        let (mut idx, mut val) = (Vec::new(), Vec::new());
        for (lens, i, v) in parts {
            for n in lens {
                start.push(start.last().expect("non-empty") + n);
            }
            idx.extend_from_slice(&i);
            val.extend_from_slice(&v);
        }
        Self { start, idx, val }
    }

    /// The images of `src` in the order `order` (an epoch's shuffle), so that each batch is
    /// read from consecutive memory; reuses this set's buffers. In parallel; the result does
    /// not depend on it.
    pub fn reorder(&mut self, src: &SparseSet, order: &[u32]) {
        self.start.clear();
        self.start.push(0);
        for &k in order {
            let len = src.start[k as usize + 1] - src.start[k as usize];
            self.start.push(self.start.last().expect("non-empty") + len);
        }
        let total = *self.start.last().expect("non-empty") as usize;
        self.idx.resize(total, 0);
        self.val.resize(total, 0);
        // Chunks of images, each with its own piece of the output.
        const CHUNK: usize = 2048;
        let mut pieces = Vec::new();
        let (mut idx, mut val) = (&mut self.idx[..], &mut self.val[..]);
        for (c, keys) in order.chunks(CHUNK).enumerate() {
            let (a, b) = (
                self.start[c * CHUNK] as usize,
                self.start[c * CHUNK + keys.len()] as usize,
            );
            let (i, rest_i) = idx.split_at_mut(b - a);
            let (v, rest_v) = val.split_at_mut(b - a);
            (idx, val) = (rest_i, rest_v);
            pieces.push((keys, i, v));
        }
        pieces.into_par_iter().for_each(|(keys, idx, val)| {
            let mut at = 0;
            for (j, &k) in keys.iter().enumerate() {
                // The images are scattered over the set: ask for a few ahead meanwhile.
                if let Some(&ahead) = keys.get(j + PREFETCH_AHEAD) {
                    src.prefetch(ahead as usize);
                }
                let img = src.get(k as usize);
                let n = img.idx.len();
                idx[at..at + n].copy_from_slice(img.idx);
                val[at..at + n].copy_from_slice(img.pixel);
                at += n;
            }
        });
    }

    /// Asks the cache for image `k` (a hint, it changes no result).
    #[inline]
    fn prefetch(&self, k: usize) {
        let (a, b) = (self.start[k] as usize, self.start[k + 1] as usize);
        prefetch_lines(&self.idx[a..b]);
        prefetch_lines(&self.val[a..b]);
    }

    /// An empty set, to [`reorder`](Self::reorder) into.
    pub fn empty() -> Self {
        Self {
            start: vec![0],
            idx: Vec::new(),
            val: Vec::new(),
        }
    }

    /// Image `k`.
    #[inline]
    pub fn get(&self, k: usize) -> SparseInput<'_> {
        let (a, b) = (self.start[k] as usize, self.start[k + 1] as usize);
        SparseInput {
            idx: &self.idx[a..b],
            pixel: &self.val[a..b],
        }
    }
}

/// Where the pixels are split in two ranges, one per thread: the first layer's sums, `W1`'s
/// rows and their update. Row 14.5 of the image's 28, where about half of the lit pixels
/// are above; the second thread also updates the output layer and the biases, which the
/// measured times showed balance its slightly fewer rows. Part of the arithmetic (see
/// [`digits_core::minibatch`]): changing it changes the rounding of the first layer's sums,
/// on any number of threads alike.
pub const ROW_SPLIT: usize = 406;

/// Room for one range of pixels of a batch by pixel ([`Columns`]).
struct ColumnBuffers {
    first: usize,
    stride: usize,
    count: Vec<u32>,
    sample: Vec<u16>,
    val: Vec<f32>,
}

impl ColumnBuffers {
    /// For the pixels `pixels` of batches of up to `batch` samples.
    fn new(pixels: std::ops::Range<usize>, batch: usize) -> Self {
        Self {
            first: pixels.start,
            stride: batch,
            count: vec![0; pixels.len()],
            sample: vec![0; batch * pixels.len()],
            val: vec![0.0; batch * pixels.len()],
        }
    }

    fn columns(&mut self) -> Columns<'_> {
        Columns {
            first: self.first,
            stride: self.stride,
            count: &mut self.count,
            sample: &mut self.sample,
            val: &mut self.val,
        }
    }
}

/// The buffers of [`Backprop::step`], reused from batch to batch, and its two threads.
pub struct Backprop {
    /// The columns of the pixels below [`ROW_SPLIT`] and from it on.
    cols: [ColumnBuffers; 2],
    pre: AlignedRows<128>,
    /// The sums of the second range of pixels.
    partial: AlignedRows<128>,
    hidden: AlignedRows<128>,
    dpre: AlignedRows<128>,
    dz: Vec<[f32; 10]>,
    loss: Vec<f32>,
    correct: Vec<bool>,
    out: AlignedBox<OutputScratch<128, 10>>,
    pair: Pair,
}

impl Backprop {
    /// Buffers for batches of up to `batch` samples; two threads if rayon has two or more.
    pub fn new(batch: usize) -> Self {
        Self {
            cols: [
                ColumnBuffers::new(0..ROW_SPLIT, batch),
                ColumnBuffers::new(ROW_SPLIT..784, batch),
            ],
            pre: AlignedRows::zeros(batch),
            partial: AlignedRows::zeros(batch),
            hidden: AlignedRows::zeros(batch),
            dpre: AlignedRows::zeros(batch),
            dz: vec![[0.0; 10]; batch],
            loss: vec![0.0; batch],
            correct: vec![false; batch],
            out: AlignedBox::zeroed(),
            pair: Pair::new(rayon::current_num_threads()),
        }
    }

    /// One SGD step of `model` on the images `batch` of `set` with `labels` (fastest when
    /// they are consecutive: [`SparseSet::reorder`]).
    ///
    /// Three parts, each split between the two threads:
    /// 1. the first layer's sums over each thread's range of pixels (split at [`ROW_SPLIT`]),
    ///    sample by sample, and the batch by pixel ([`Columns`]) over that range for part 3;
    /// 2. the rest of the forward and backward pass, per sample, a half of the batch each;
    /// 3. the update of each thread's rows of `W1`, row by row from the columns; the second
    ///    thread also updates the output layer and the biases.
    ///
    /// A thread reads and writes only its own rows of `W1` (and of their velocity), so they
    /// stay in its core's cache from step to step; only the per-sample rows cross. Every sum
    /// runs in the same order on one thread or two: the result is bit-identical to the core's
    /// `train_step` with [`Fused`] multiply-adds and the same two ranges.
    pub fn step(
        &mut self,
        model: &mut MnistMlp,
        velocity: &mut MnistMlp,
        step: &SgdStep<f32>,
        set: &SparseSet,
        batch: &[u32],
        labels: &[u8],
    ) -> StepStats {
        let samples: Vec<SparseInput<'_>> = batch.iter().map(|&k| set.get(k as usize)).collect();
        let samples = &samples[..];
        let n = samples.len();
        assert!(
            n > 0 && n == labels.len(),
            "batch and labels differ or are empty"
        );
        let mut rows = SampleRows {
            pre: &mut self.pre[..n],
            hidden: &mut self.hidden[..n],
            dpre: &mut self.dpre[..n],
            dz: &mut self.dz[..n],
            loss: &mut self.loss[..n],
            correct: &mut self.correct[..n],
        };
        let partial = &mut self.partial[..n];
        let [cols_a, cols_b] = &mut self.cols;
        let (mut cols_a, mut cols_b) = (cols_a.columns(), cols_b.columns());
        let out = &mut *self.out;
        out.transpose(&model.output);

        // 1. The first layer's sums, a range of pixels each.
        {
            let m = &*model;
            let (cols_a, cols_b) = (&mut cols_a, &mut cols_b);
            let (pre, partial) = (&mut *rows.pre, &mut *partial);
            self.pair.join(
                || {
                    dispatch(
                        #[inline(always)]
                        || {
                            cols_a.fill(samples);
                            pre.fill(m.hidden.b);
                            m.add_samples::<Fused>(samples, 0..ROW_SPLIT, pre);
                        },
                    )
                },
                || {
                    dispatch(
                        #[inline(always)]
                        || {
                            cols_b.fill(samples);
                            partial.fill([0.0; 128]);
                            m.add_samples::<Fused>(samples, ROW_SPLIT..784, partial);
                        },
                    )
                },
            );
        }

        // 2. The rest of phase 1, a half of the batch each.
        {
            let m = &*model;
            let w2t = &out.w2t;
            let half = n / 2;
            let (rows_a, rows_b) = rows.reborrow().split_at(half);
            let (partial_a, partial_b) = partial.split_at(half);
            let (labels_a, labels_b) = labels.split_at(half);
            let rest = |mut rows: SampleRows<'_, 128, 10>, partial, labels| {
                dispatch(
                    #[inline(always)]
                    || {
                        add_rows(rows.pre, partial);
                        m.backward_samples(w2t, labels, rows.reborrow());
                    },
                )
            };
            self.pair.join(
                || rest(rows_a, partial_a, labels_a),
                || rest(rows_b, partial_b, labels_b),
            );
        }

        // 3. W1 by ranges of rows, the rest with the second.
        let inv = 1.0 / n as f32;
        let Mlp {
            hidden: Dense { w, b },
            output,
        } = model;
        let Mlp {
            hidden: Dense { w: vw, b: vb },
            output: voutput,
        } = velocity;
        let (w_low, w_high) = w.split_at_mut(ROW_SPLIT);
        let (v_low, v_high) = vw.split_at_mut(ROW_SPLIT);
        let (hidden, dpre, dz) = (&*rows.hidden, &*rows.dpre, &*rows.dz);
        let (cols_a, cols_b) = (&cols_a, &cols_b);
        self.pair.join(
            || {
                dispatch(
                    #[inline(always)]
                    || {
                        update_rows::<Fused, 128>(w_low, v_low, 0, cols_a, dpre, step, inv);
                    },
                )
            },
            || {
                dispatch(
                    #[inline(always)]
                    || {
                        update_rows::<Fused, 128>(
                            w_high, v_high, ROW_SPLIT, cols_b, dpre, step, inv,
                        );
                        update_output_and_biases(
                            (b, vb),
                            (output, voutput),
                            hidden,
                            dpre,
                            dz,
                            out,
                            step,
                            inv,
                        );
                    },
                )
            },
        );
        rows.stats()
    }
}

/// How many images ahead [`SparseSet::reorder`] asks the cache for.
const PREFETCH_AHEAD: usize = 8;

/// Asks the cache for every 64-byte line of `data`.
#[inline]
fn prefetch_lines<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = data.as_ptr().cast::<i8>();
        for off in (0..std::mem::size_of_val(data)).step_by(64) {
            // SAFETY: a prefetch is only a hint, and the address is inside `data`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::random_images;
    use digits_core::minibatch::Columns;
    use digits_core::{Params, Rng, Sgd};

    /// `Backprop::step` on two threads and on one, against the core's `train_step` with the
    /// same two ranges of pixels: every parameter and velocity bit-identical after a few steps
    /// of uneven batch sizes.
    #[test]
    fn step_is_the_cores_train_step_with_two_ranges_on_one_thread_or_two() {
        let mut rng = Rng::new(3);
        let images = random_images(&mut rng, 200);
        let labels: Vec<u8> = (0..200).map(|_| rng.below(10) as u8).collect();
        let set = SparseSet::new(&images);
        let step = Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
        }
        .coefficients::<f32>(0.05);
        let start: Box<MnistMlp> = {
            let mut m: Box<MnistMlp> = bytemuck::zeroed_box();
            m.init(&mut Rng::new(4));
            m
        };
        let batches: [std::ops::Range<usize>; 4] = [0..64, 64..65, 65..138, 138..200];
        let mut results = Vec::new();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool");
            results.push(pool.install(|| {
                let (mut m, mut v) = (start.clone(), bytemuck::zeroed_box::<MnistMlp>());
                let mut fast = Backprop::new(73);
                for r in batches.clone() {
                    let keys: Vec<u32> = (r.start as u32..r.end as u32).collect();
                    fast.step(&mut m, &mut v, &step, &set, &keys, &labels[r]);
                }
                (m, v)
            }));
        }
        // The core, on this thread.
        let (mut m, mut v) = (start.clone(), bytemuck::zeroed_box::<MnistMlp>());
        let mut out = Box::new(OutputScratch::zeros());
        for r in batches {
            let n = r.len();
            let samples: Vec<SparseInput<'_>> = r.clone().map(|k| set.get(k)).collect();
            let mut cols = [
                ColumnBuffers::new(0..ROW_SPLIT, n),
                ColumnBuffers::new(ROW_SPLIT..784, n),
            ];
            let [a, b] = &mut cols;
            let mut ranges: [Columns<'_>; 2] = [a.columns(), b.columns()];
            for c in ranges.iter_mut() {
                c.fill(&samples);
            }
            let (mut pre, mut hidden, mut dpre, mut partial) = (
                vec![[0.0f32; 128]; n],
                vec![[0.0f32; 128]; n],
                vec![[0.0f32; 128]; n],
                vec![[0.0f32; 128]; n],
            );
            let (mut dz, mut loss, mut correct) =
                (vec![[0.0f32; 10]; n], vec![0.0; n], vec![false; n]);
            dispatch(|| {
                m.train_step::<Fused>(
                    &mut v,
                    &step,
                    &samples,
                    &labels[r],
                    &ranges,
                    &mut partial,
                    SampleRows {
                        pre: &mut pre,
                        hidden: &mut hidden,
                        dpre: &mut dpre,
                        dz: &mut dz,
                        loss: &mut loss,
                        correct: &mut correct,
                    },
                    &mut out,
                )
            });
        }
        for (threads, (fm, fv)) in [1, 2].iter().zip(&results) {
            let differing = |a: &MnistMlp, b: &MnistMlp| {
                (0..a.num_params())
                    .filter(|&i| a.param(i).to_bits() != b.param(i).to_bits())
                    .count()
            };
            assert_eq!(differing(fm, &m), 0, "model, {threads} thread(s)");
            assert_eq!(differing(fv, &v), 0, "velocity, {threads} thread(s)");
        }
    }
}
