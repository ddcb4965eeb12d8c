//! Inputs as lists of their lit pixels.
//!
//! Most MNIST pixels are zero. [`Dense::forward`](crate::Dense::forward) skips them, but still
//! tests every one; a [`SparseInput`] lists only the lit pixels (ascending), so a pass over an
//! image touches only their weight rows, in the order the dense pass would. The input value of
//! a pixel is [`PIXEL_TO_INPUT`], which is [`normalize`](crate::pixels::normalize) bit for bit
//! (`tests::the_table_is_normalize`).

use core::ops::Range;

/// `PIXEL_TO_INPUT[p] == p as f32 / 255.0`, exactly what [`crate::pixels::normalize`]
/// computes for `f32`, without a division per pixel.
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
/// whole training set stays small enough to keep in memory in this form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseInput<'a> {
    /// Pixel indices, strictly ascending.
    pub idx: &'a [u16],
    /// Their 8-bit values (non-zero), `pixel.len() == idx.len()`.
    pub pixel: &'a [u8],
}

impl SparseInput<'_> {
    /// Where in `idx` the lit pixels of `pixels` are: `idx[r]` for the returned `r` are those
    /// in `pixels.start..pixels.end` (two binary searches).
    #[inline(always)]
    pub fn lit_between(&self, pixels: Range<usize>) -> Range<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::normalize;

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
    fn sparsify_lists_the_lit_pixels_in_order_and_lit_between_finds_a_range() {
        let mut img = [0u8; 784];
        for (i, v) in [(0, 9u8), (5, 1), (300, 255), (783, 7)] {
            img[i] = v;
        }
        let (mut idx, mut val) = ([0u16; 784], [0u8; 784]);
        let n = sparsify(&img, &mut idx, &mut val);
        assert_eq!(
            (&idx[..n], &val[..n]),
            (&[0, 5, 300, 783][..], &[9, 1, 255, 7][..])
        );
        let x = SparseInput {
            idx: &idx[..n],
            pixel: &val[..n],
        };
        assert_eq!(x.lit_between(0..784), 0..4);
        assert_eq!(x.lit_between(1..300), 1..2);
        assert_eq!(x.lit_between(300..784), 2..4);
        assert_eq!(x.lit_between(784..784), 4..4);
        assert_eq!(sparsify(&[255u8; 784], &mut idx, &mut val), 784);
        assert_eq!(sparsify(&[0u8; 784], &mut idx, &mut val), 0);
    }
}
