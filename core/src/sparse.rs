//! Inputs as lists of their non-zero pixels, and the network's first layer on them.
//!
//! About 81% of MNIST pixels are zero. [`Dense::forward`](crate::Dense::forward) already skips
//! them, but still tests all 784; a [`SparseInput`] lists only the lit pixels (ascending), so a
//! forward pass touches only their weight rows. The sums are taken in the same order as the
//! dense pass, so the results are bit-identical to it.

use crate::activation::relu_forward;
use crate::mul_add::{MulAdd, Separate};
use crate::{Dense, Mlp};

/// `PIXEL_TO_INPUT[p] == p as f32 / 255.0`, exactly what [`crate::input::normalize`] computes
/// for `f32`, without a division per pixel.
pub const PIXEL_TO_INPUT: [f32; 256] = {
    let mut t = [0.0f32; 256];
    let mut p = 0;
    while p < 256 {
        t[p] = p as f32 / 255.0;
        p += 1;
    }
    t
};

/// The lit pixels of one image: pixel `idx[k]` has the value `pixel[k]` (non-zero), indices
/// ascending; its network input is `PIXEL_TO_INPUT[pixel[k]]`. Three bytes per lit pixel, so a
/// whole training set stays small (about 27 MB for MNIST's 60,000 images).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseInput<'a> {
    /// Pixel indices, strictly ascending.
    pub idx: &'a [u16],
    /// Their 8-bit values (non-zero), `pixel.len() == idx.len()`.
    pub pixel: &'a [u8],
}

/// Lists the lit pixels of `pixels` into `idx`/`val` and returns how many there are.
#[inline]
pub fn sparsify<const N: usize>(pixels: &[u8; N], idx: &mut [u16; N], val: &mut [u8; N]) -> usize {
    let mut len = 0;
    for (i, &p) in pixels.iter().enumerate() {
        // Branch-free: always write, advance only on a lit pixel.
        idx[len.min(N - 1)] = i as u16;
        val[len.min(N - 1)] = p;
        len += usize::from(p != 0);
    }
    len
}

impl<const IN: usize, const OUT: usize> Dense<IN, OUT, f32> {
    /// `y = x W + b` for a sparse `x`: the same sums, in the same order, as [`Dense::forward`].
    #[inline(always)]
    pub fn forward_sparse(&self, x: SparseInput<'_>, y: &mut [f32; OUT]) {
        self.forward_sparse_with::<Separate>(x, y);
    }

    /// [`forward_sparse`](Self::forward_sparse) with each `xi * w + y` computed by `M`.
    #[inline(always)]
    pub fn forward_sparse_with<M: MulAdd>(&self, x: SparseInput<'_>, y: &mut [f32; OUT]) {
        let mut acc = self.b;
        for (&i, &p) in x.idx.iter().zip(x.pixel) {
            let xi = PIXEL_TO_INPUT[p as usize];
            let row = &self.w[i as usize];
            for (a, &w) in acc.iter_mut().zip(row) {
                *a = M::mul_add(xi, w, *a);
            }
        }
        *y = acc;
    }
}

impl<const IN: usize, const OUT: usize> Dense<IN, OUT, f32> {
    /// `y = x W + b`: the same sums, in the same order, as [`Dense::forward`], but the non-zero
    /// inputs are listed first (without branches), so the rows are summed without a branch
    /// per input that the CPU cannot predict (after a ReLU, about half the inputs are zero).
    #[inline(always)]
    pub fn forward_listed(&self, x: &[f32; IN], y: &mut [f32; OUT]) {
        let mut idx = [0u16; IN];
        let mut len = 0;
        for (i, &xi) in x.iter().enumerate() {
            idx[len.min(IN - 1)] = i as u16;
            len += usize::from(xi != 0.0);
        }
        let mut acc = self.b;
        for &i in &idx[..len] {
            let xi = x[i as usize];
            for (a, &w) in acc.iter_mut().zip(&self.w[i as usize]) {
                *a += xi * w;
            }
        }
        *y = acc;
    }
}

impl<const IN: usize, const OUT: usize> Dense<IN, OUT, f32> {
    /// `y = x W + b` with `x` the normalized `pixels` (as [`crate::input::normalize`]): the
    /// same sums, in the same order, as `normalize` then [`Dense::forward`]. The lit pixels are
    /// found 64 at a time, as a bit mask (a vector compare), and visited bit by bit.
    #[inline(always)]
    pub fn forward_pixels(&self, pixels: &[u8; IN], y: &mut [f32; OUT]) {
        let mut acc = self.b;
        let mut visit = |base: usize, chunk: &[u8]| {
            let mut mask = 0u64;
            for (k, &p) in chunk.iter().enumerate() {
                mask |= u64::from(p != 0) << k;
            }
            while mask != 0 {
                let i = base + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let xi = PIXEL_TO_INPUT[pixels[i] as usize];
                for (a, &w) in acc.iter_mut().zip(&self.w[i]) {
                    *a += xi * w;
                }
            }
        };
        let chunks = pixels.chunks_exact(64);
        let rest = chunks.remainder();
        for (c, chunk) in chunks.enumerate() {
            visit(64 * c, chunk);
        }
        visit(IN - rest.len(), rest);
        *y = acc;
    }
}

impl<const IN: usize, const HIDDEN: usize, const OUT: usize> Mlp<IN, HIDDEN, OUT, f32> {
    /// Logits of one sparse sample, bit-identical to [`Mlp::logits`] of the dense sample.
    #[inline(always)]
    pub fn logits_sparse(&self, x: SparseInput<'_>) -> [f32; OUT] {
        let mut pre = [0.0; HIDDEN];
        self.hidden.forward_sparse(x, &mut pre);
        let mut h = [0.0; HIDDEN];
        relu_forward(&pre, &mut h);
        let mut z = [0.0; OUT];
        self.output.forward_listed(&h, &mut z);
        z
    }

    /// Logits straight from 8-bit pixels (normalized as [`crate::input::normalize`]),
    /// bit-identical to `normalize` followed by [`Mlp::logits`], but without a division or a
    /// branch per pixel ([`Dense::forward_pixels`]).
    #[inline(always)]
    pub fn logits_from_pixels(&self, pixels: &[u8; IN]) -> [f32; OUT] {
        let mut pre = [0.0; HIDDEN];
        self.hidden.forward_pixels(pixels, &mut pre);
        let mut h = [0.0; HIDDEN];
        relu_forward(&pre, &mut h);
        let mut z = [0.0; OUT];
        self.output.forward_listed(&h, &mut z);
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::normalize;
    use crate::{MnistMlp, Rng};

    extern crate std;
    use std::boxed::Box;

    fn random_image(rng: &mut Rng) -> [u8; 784] {
        let mut img = [0u8; 784];
        for p in img.iter_mut() {
            // About a fifth lit, like MNIST, with full-scale and partial values.
            let r = rng.next_u64();
            if r.is_multiple_of(5) {
                *p = (r >> 8) as u8;
            }
        }
        img
    }

    #[test]
    fn the_table_is_normalize() {
        let pixels: [u8; 256] = core::array::from_fn(|p| p as u8);
        let mut x = [0.0f32; 256];
        normalize(&pixels, &mut x);
        for p in 0..256 {
            assert_eq!(x[p].to_bits(), PIXEL_TO_INPUT[p].to_bits(), "pixel {p}");
        }
    }

    #[test]
    fn sparse_logits_are_bit_identical_to_dense_ones() {
        let mut rng = Rng::new(7);
        let model: Box<MnistMlp> = Box::new(MnistMlp::seeded(3));
        for _ in 0..50 {
            let img = random_image(&mut rng);
            let mut x = [0.0f32; 784];
            normalize(&img, &mut x);
            let dense = model.logits(&x);
            let sparse = model.logits_from_pixels(&img);
            assert_eq!(dense.map(f32::to_bits), sparse.map(f32::to_bits));
            let (mut idx, mut val) = ([0u16; 784], [0u8; 784]);
            let n = sparsify(&img, &mut idx, &mut val);
            let listed = model.logits_sparse(SparseInput {
                idx: &idx[..n],
                pixel: &val[..n],
            });
            assert_eq!(dense.map(f32::to_bits), listed.map(f32::to_bits));
        }
        // Edge cases: nothing lit, everything lit.
        for img in [[0u8; 784], [255u8; 784]] {
            let mut x = [0.0f32; 784];
            normalize(&img, &mut x);
            assert_eq!(
                model.logits(&x).map(f32::to_bits),
                model.logits_from_pixels(&img).map(f32::to_bits)
            );
        }
    }
}
