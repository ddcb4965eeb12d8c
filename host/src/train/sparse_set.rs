//! A training set as lists of lit pixels, in one buffer: made once, and reordered every epoch
//! so that each batch is read from consecutive memory.

use digits_core::fast::sparse::{SparseInput, sparsify};
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
        /// The lit pixels of a run of images, one after the other.
        struct Part {
            lens: Vec<u32>,
            idx: Vec<u16>,
            val: Vec<u8>,
        }
        let parts: Vec<Part> = images
            .par_chunks(1024)
            .map(|chunk| {
                let mut part = Part {
                    lens: Vec::with_capacity(chunk.len()),
                    idx: Vec::new(),
                    val: Vec::new(),
                };
                let (mut i, mut v) = ([0u16; 784], [0u8; 784]);
                for img in chunk {
                    let n = sparsify(img, &mut i, &mut v);
                    part.lens.push(n as u32);
                    part.idx.extend_from_slice(&i[..n]);
                    part.val.extend_from_slice(&v[..n]);
                }
                part
            })
            .collect();
        let mut start = Vec::with_capacity(images.len() + 1);
        start.push(0u32);
        let (mut idx, mut val) = (Vec::new(), Vec::new());
        for part in parts {
            for n in part.lens {
                start.push(start.last().expect("non-empty") + n);
            }
            idx.extend_from_slice(&part.idx);
            val.extend_from_slice(&part.val);
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
        /// A chunk of the order, and its place in the output.
        struct Piece<'a> {
            keys: &'a [u32],
            idx: &'a mut [u16],
            val: &'a mut [u8],
        }
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
            pieces.push(Piece {
                keys,
                idx: i,
                val: v,
            });
        }
        pieces.into_par_iter().for_each(|Piece { keys, idx, val }| {
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

    #[test]
    fn images_are_their_lit_pixels_in_any_order() {
        let mut images = testkit::random_images(2, 3000);
        images[7] = [0; 784];
        images[8] = [255; 784];
        let set = SparseSet::new(&images);
        let order: Vec<u32> = (0..3000u32).rev().collect();
        let mut reordered = SparseSet::empty();
        reordered.reorder(&set, &order);
        for (k, img) in images.iter().enumerate() {
            let lit: Vec<(u16, u8)> = (0..784)
                .filter(|&i| img[i] != 0)
                .map(|i| (i as u16, img[i]))
                .collect();
            for x in [set.get(k), reordered.get(2999 - k)] {
                let got: Vec<(u16, u8)> =
                    x.idx.iter().copied().zip(x.pixel.iter().copied()).collect();
                assert_eq!(got, lit, "image {k}");
            }
        }
    }
}
