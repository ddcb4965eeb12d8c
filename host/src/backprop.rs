//! Fast backprop training on the host: the images as lists of lit pixels, made once, and the
//! core's fused [`train_step`](digits_core::Mlp::train_step) on every batch.

use digits_core::{Dense, Mlp, MnistMlp};

use crate::simd::{Fused, dispatch};
use digits_core::minibatch::{
    Columns, OutputScratch, SampleRows, StepStats, update_output_and_biases, update_rows,
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

/// Where `W1`'s rows are split between the two parts of phase 2. The first part also updates
/// the output layer and the biases, so it takes a little less than half of the pixels (the
/// lit ones are spread evenly above and below the middle row). Any split gives the same bits.
const ROW_SPLIT: usize = 364;

/// The buffers of [`Backprop::step`], reused from batch to batch.
pub struct Backprop {
    col_start: Vec<u32>,
    col_sample: Vec<u16>,
    col_val: Vec<f32>,
    pre: Vec<[f32; 128]>,
    hidden: Vec<[f32; 128]>,
    dpre: Vec<[f32; 128]>,
    dz: Vec<[f32; 10]>,
    loss: Vec<f32>,
    correct: Vec<bool>,
    out: Box<OutputScratch<128, 10>>,
}

impl Backprop {
    /// Buffers for batches of up to `batch` samples.
    pub fn new(batch: usize) -> Self {
        Self {
            col_start: vec![0; 785],
            col_sample: vec![0; batch * 784],
            col_val: vec![0.0; batch * 784],
            pre: vec![[0.0; 128]; batch],
            hidden: vec![[0.0; 128]; batch],
            dpre: vec![[0.0; 128]; batch],
            dz: vec![[0.0; 10]; batch],
            loss: vec![0.0; batch],
            correct: vec![false; batch],
            out: Box::new(OutputScratch::zeros()),
        }
    }

    /// One SGD step of `model` on the images `batch` of `set` with `labels` (fastest when
    /// they are consecutive: [`SparseSet::reorder`]).
    ///
    /// The batch is transposed into pixel columns, the first layer's forward pass runs pixel
    /// by pixel (each weight row read once per batch) and the rest of phase 1 per sample, on
    /// this thread; phase 2 runs as two parts on two threads (when rayon has them): `W1`'s
    /// rows split at [`ROW_SPLIT`], the output layer and the biases with the first. No sum is
    /// split across threads, so the result is bit-identical to the core's `train_step` with
    /// [`Fused`] multiply-adds on any number of threads.
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
        let mut columns = Columns {
            first: 0,
            start: &mut self.col_start,
            sample: &mut self.col_sample,
            val: &mut self.col_val,
        };
        columns.fill(&samples);
        let columns = &columns;
        let out = &mut *self.out;
        out.transpose(&model.output);

        // Phase 1.
        {
            let m = &*model;
            let w2t = &out.w2t;
            let rows = rows.reborrow();
            dispatch(
                #[inline(always)]
                || {
                    let mut rows = rows;
                    m.forward_columns::<Fused>(columns, rows.pre);
                    m.backward_samples(w2t, labels, rows.reborrow());
                },
            );
        }

        // Phase 2: W1's rows in two parts, the rest with the first.
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
        rayon::join(
            || {
                dispatch(
                    #[inline(always)]
                    || {
                        update_rows::<Fused, 128>(w_low, v_low, 0, columns, dpre, step, inv);
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
            || {
                dispatch(
                    #[inline(always)]
                    || {
                        update_rows::<Fused, 128>(
                            w_high, v_high, ROW_SPLIT, columns, dpre, step, inv,
                        )
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
