//! Fast backprop training on the host: the images as lists of lit pixels, made once, and the
//! core's fused [`train_step`](digits_core::Mlp::train_step) on every batch.

use digits_core::MnistMlp;
use digits_core::minibatch::{Columns, OutputScratch, StepScratch, StepStats};
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

    /// Image `k`.
    #[inline]
    pub fn get(&self, k: usize) -> SparseInput<'_> {
        let (a, b) = (self.start[k] as usize, self.start[k + 1] as usize);
        SparseInput {
            idx: &self.idx[a..b],
            pixel: &self.val[a..b],
        }
    }

    /// Asks the cache for image `k` (a hint: the images of a batch are scattered over the
    /// set, and fetched together they arrive in the time of one).
    #[inline]
    pub fn prefetch(&self, k: usize) {
        let (a, b) = (self.start[k] as usize, self.start[k + 1] as usize);
        prefetch_bytes(&self.idx[a..b]);
        prefetch_bytes(&self.val[a..b]);
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.start.len() - 1
    }
}

/// The buffers of [`Backprop::step`], reused from batch to batch (no allocation per step).
pub struct Backprop {
    col_start: Vec<u32>,
    col_sample: Vec<u16>,
    col_val: Vec<f32>,
    hidden: Vec<[f32; 128]>,
    dpre: Vec<[f32; 128]>,
    out: Box<OutputScratch<128, 10>>,
}

impl Backprop {
    /// Buffers for batches of up to `batch` samples.
    pub fn new(batch: usize) -> Self {
        Self {
            col_start: vec![0; 785],
            col_sample: vec![0; batch * 784],
            col_val: vec![0.0; batch * 784],
            hidden: vec![[0.0; 128]; batch],
            dpre: vec![[0.0; 128]; batch],
            out: Box::new(OutputScratch::zeros()),
        }
    }

    /// One SGD step of `model` on the images `batch` of `set` with `labels`; the images of
    /// `next` (the next batch) are fetched into the cache meanwhile.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        model: &mut MnistMlp,
        velocity: &mut MnistMlp,
        step: &SgdStep<f32>,
        set: &SparseSet,
        batch: &[u32],
        labels: &[u8],
        next: &[u32],
    ) -> StepStats {
        for &k in next {
            set.prefetch(k as usize);
        }
        let samples: Vec<SparseInput<'_>> = batch.iter().map(|&k| set.get(k as usize)).collect();
        let mut columns = Columns {
            start: &mut self.col_start,
            sample: &mut self.col_sample,
            val: &mut self.col_val,
        };
        columns.fill(&samples);
        let n = samples.len();
        let mut scratch = StepScratch {
            hidden: &mut self.hidden[..n],
            dpre: &mut self.dpre[..n],
            out: &mut self.out,
        };
        crate::simd::dispatch(
            #[inline(always)]
            || model.train_step(velocity, step, &samples, labels, &columns, &mut scratch),
        )
    }
}

/// Prefetches every cache line of `data`.
#[inline]
fn prefetch_bytes<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = data.as_ptr() as *const i8;
        let bytes = std::mem::size_of_val(data);
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch is a hint; the address is inside `data`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}
