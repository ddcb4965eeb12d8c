//! A batch by pixel: for every pixel of a range, the samples where it is lit.

use core::ops::Range;

use crate::fast::sparse::{PIXEL_TO_INPUT, SparseInput};

/// The batch by pixel, for the pixels `first..first + count.len()`: pixel `first + r` is lit
/// in `count[r]` samples, listed (ascending) at `sample[r * stride..][..count[r]]`, with their
/// input values at the same positions of `val`. The buffers are the caller's.
///
/// Why a fixed stride per pixel (the largest batch) rather than packed columns: filling them
/// is then one pass over the batch, instead of a counting pass and a placing pass.
#[derive(Debug)]
pub struct Columns<'s> {
    first: usize,
    stride: usize,
    count: &'s mut [u32],
    sample: &'s mut [u16],
    val: &'s mut [f32],
}

impl<'s> Columns<'s> {
    /// Columns of the pixels `pixels` for batches of up to `stride` samples (at most 65,536),
    /// in the caller's buffers: `count` as long as the range, `sample` and `val` `stride`
    /// times as long.
    pub fn new(
        pixels: Range<usize>,
        stride: usize,
        count: &'s mut [u32],
        sample: &'s mut [u16],
        val: &'s mut [f32],
    ) -> Self {
        assert!(stride <= 1 << 16, "batches of {stride} samples");
        assert_eq!(count.len(), pixels.len(), "one count per pixel");
        let room = pixels.len() * stride;
        assert!(
            sample.len() >= room && val.len() >= room,
            "column buffers too small"
        );
        Self {
            first: pixels.start,
            stride,
            count,
            sample,
            val,
        }
    }

    /// The pixels covered.
    #[inline(always)]
    pub fn pixels(&self) -> Range<usize> {
        self.first..self.first + self.count.len()
    }

    /// Transposes the covered pixels of `samples`.
    #[inline(always)]
    pub fn fill(&mut self, samples: &[SparseInput<'_>]) {
        assert!(
            samples.len() <= self.stride,
            "a batch of {} samples, columns for {}",
            samples.len(),
            self.stride
        );
        let lo = self.first;
        let covered = self.pixels();
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

    /// The samples and input values of the `r`-th pixel covered.
    #[inline(always)]
    pub fn column(&self, r: usize) -> (&[u16], &[f32]) {
        let a = r * self.stride;
        let b = a + self.count[r] as usize;
        (&self.sample[a..b], &self.val[a..b])
    }
}
