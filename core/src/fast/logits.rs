//! Logits straight from 8-bit pixels: [`normalize`](crate::pixels::normalize) then
//! [`Mlp::logits`], bit for bit (`tests::logits_from_pixels_are_normalize_then_logits`),
//! without a division per pixel and without a branch per input that the CPU cannot predict.
//!
//! Both layers skip zero inputs as [`Dense::forward`] does and sum the rest in the same
//! (ascending) order; only how the non-zero inputs are found differs ([`for_each_lit`]):
//! [`Dense::forward_listed`] is [`Dense::forward`] bit for bit, with zeros of both signs, NaN
//! and infinities among the inputs (`tests::listed_forward_is_the_dense_forward`).

use crate::activation::relu_forward;
use crate::fast::sparse::PIXEL_TO_INPUT;
use crate::{Dense, Mlp};

/// Calls `visit(i)` for every `i` (ascending) where `lit(&xs[i])`. The lit inputs are found 64
/// at a time as a bit mask (a vector compare) and visited bit by bit: no branch per input that
/// the CPU cannot predict (most pixels, and about half of the hidden units after a ReLU, are
/// zero), and no list to write. Give it closures marked `#[inline(always)]`.
#[inline(always)]
pub fn for_each_lit<T>(xs: &[T], lit: impl Fn(&T) -> bool, mut visit: impl FnMut(usize)) {
    let chunks = xs.chunks_exact(64);
    let rest = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        lit_in_chunk(64 * c, chunk, &lit, &mut visit);
    }
    lit_in_chunk(xs.len() - rest.len(), rest, &lit, &mut visit);
}

/// [`for_each_lit`] of up to 64 inputs starting at input `base`.
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
    /// Logits straight from 8-bit pixels: `normalize` followed by [`Mlp::logits`], bit for bit.
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
    fn logits_from_pixels_are_normalize_then_logits() {
        let mut rng = Rng::new(7);
        let model: Box<MnistMlp> = Box::new(MnistMlp::seeded(3));
        let images = testkit::random_images(rng.next_u64(), 50).into_iter();
        // Edge cases too: nothing lit, everything lit.
        for img in images.chain([[0u8; 784], [255u8; 784]]) {
            let mut x = [0.0f32; 784];
            normalize(&img, &mut x);
            assert_eq!(
                model.logits(&x).map(f32::to_bits),
                model.logits_from_pixels(&img).map(f32::to_bits)
            );
        }
    }
}
