//! Inputs as lists of their non-zero pixels, and the network's first layer on them.
//!
//! About 81% of MNIST pixels are zero. [`Dense::forward`](crate::Dense::forward) already skips
//! them, but still tests all 784; a [`SparseInput`] lists only the lit pixels (ascending), so a
//! forward pass touches only their weight rows. The sums are taken in the same order as the
//! dense pass, so the results are bit-identical to it.

use crate::activation::relu_forward;
use crate::mul_add::{MulAdd, Separate};
use crate::{Dense, Mlp};

/// `PIXEL_TO_INPUT[p] == p as f32 / 255.0`, exactly what [`crate::pixels::normalize`] computes
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

impl SparseInput<'_> {
    /// Where in `idx` the lit pixels of `pixels` are: `idx[r]` for the returned `r` are those
    /// in `pixels.start..pixels.end` (two binary searches; a linear count measured no faster).
    #[inline(always)]
    pub fn lit_between(&self, pixels: core::ops::Range<usize>) -> core::ops::Range<usize> {
        let a = self.idx.partition_point(|&i| (i as usize) < pixels.start);
        let b = a + self.idx[a..].partition_point(|&i| (i as usize) < pixels.end);
        a..b
    }
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

/// Calls `visit(i)` for every `i` (ascending) where `lit(&xs[i])`. The lit inputs are found 64
/// at a time as a bit mask (a vector compare) and visited bit by bit: no branch per input that
/// the CPU cannot predict (about 81% of pixels, and half of the hidden units after a ReLU,
/// are zero), and no list to write. Give it closures marked `#[inline(always)]`.
#[inline(always)]
pub fn for_each_lit<T>(xs: &[T], lit: impl Fn(&T) -> bool, mut visit: impl FnMut(usize)) {
    let chunks = xs.chunks_exact(64);
    let rest = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        lit_in_chunk(64 * c, chunk, &lit, &mut visit);
    }
    lit_in_chunk(xs.len() - rest.len(), rest, &lit, &mut visit);
}

/// [`for_each_lit`] of up to 64 inputs starting at input `base`. A function rather than a
/// closure so that it can be inlined always: called from code compiled for wider vectors (the
/// host's runtime dispatch), anything not inlined is compiled for the baseline.
#[inline(always)]
fn lit_in_chunk<T>(
    base: usize,
    chunk: &[T],
    lit: &impl Fn(&T) -> bool,
    visit: &mut impl FnMut(usize),
) {
    let mut mask = 0u64;
    for (k, x) in chunk.iter().enumerate() {
        mask |= u64::from(lit(x)) << k;
    }
    while mask != 0 {
        visit(base + mask.trailing_zeros() as usize);
        mask &= mask - 1;
    }
}

impl<const IN: usize, const OUT: usize> Dense<IN, OUT, f32> {
    /// `y = x W + b`: the same sums, in the same order, as [`Dense::forward`] (which skips
    /// zero inputs too), the non-zero inputs found by [`for_each_lit`].
    #[inline(always)]
    pub fn forward_listed(&self, x: &[f32; IN], y: &mut [f32; OUT]) {
        let mut acc = self.b;
        for_each_lit(
            x,
            #[inline(always)]
            |&xi| xi != 0.0,
            #[inline(always)]
            |i| {
                let xi = x[i];
                for (a, &w) in acc.iter_mut().zip(&self.w[i]) {
                    *a += xi * w;
                }
            },
        );
        *y = acc;
    }

    /// `y = x W + b` with `x` the normalized `pixels` (as [`crate::pixels::normalize`]): the
    /// same sums, in the same order, as `normalize` then [`Dense::forward`], the lit pixels
    /// found by [`for_each_lit`].
    #[inline(always)]
    pub fn forward_pixels(&self, pixels: &[u8; IN], y: &mut [f32; OUT]) {
        let mut acc = self.b;
        for_each_lit(
            pixels,
            #[inline(always)]
            |&p| p != 0,
            #[inline(always)]
            |i| {
                let xi = PIXEL_TO_INPUT[pixels[i] as usize];
                for (a, &w) in acc.iter_mut().zip(&self.w[i]) {
                    *a += xi * w;
                }
            },
        );
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

    /// Logits straight from 8-bit pixels (normalized as [`crate::pixels::normalize`]),
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
    use crate::pixels::normalize;
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

    /// `forward_listed` against `Dense::forward`, bit for bit, on a length that leaves a
    /// remainder after the 64-input chunks, with zeros of both signs, NaN and infinities among
    /// the inputs.
    #[test]
    fn listed_forward_is_the_dense_forward() {
        let mut rng = Rng::new(9);
        let mut layer: Box<Dense<130, 10>> = Box::new(Dense::zeros());
        layer.init(crate::Init::He, &mut rng);
        layer.b = core::array::from_fn(|k| k as f32 * 0.1 - 0.3);
        let specials = [0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-40];
        for trial in 0..200 {
            let mut x = [0.0f32; 130];
            for (i, xi) in x.iter_mut().enumerate() {
                let r = rng.next_u64();
                *xi = match r % 8 {
                    0..=3 => 0.0,
                    4 => -0.0,
                    5 if trial % 10 == 0 => specials[(r >> 8) as usize % specials.len()],
                    _ => (r >> 11) as f32 / (1u64 << 53) as f32 - 0.25 + i as f32 * 1e-3,
                };
            }
            let (mut dense, mut listed) = ([0.0f32; 10], [0.0f32; 10]);
            layer.forward(&x, &mut dense);
            layer.forward_listed(&x, &mut listed);
            assert_eq!(
                dense.map(f32::to_bits),
                listed.map(f32::to_bits),
                "trial {trial}"
            );
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
