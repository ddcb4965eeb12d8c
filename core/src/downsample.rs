//! 28x28 images made smaller by area averaging, in integers: every output pixel is the mean of
//! the source area it covers, each source pixel weighted by the part of it that lies inside.
//!
//! The output pixel `o` of a side `N` covers source coordinates `[28 o / N, 28 (o + 1) / N)`.
//! Measured in `1/N` of a source pixel, the overlaps are whole numbers that sum to 28 along each
//! axis, so the 2-D weights are integers that sum to `28 * 28`, and the result is
//! `round(sum w p / 784)`: exact, the same bits on the host, the device and in a browser.

/// Side of the images the downsampling starts from.
pub const SOURCE_SIDE: usize = 28;
/// Bytes of the stack buffers of [`area_average_into`], the output aside: the two open output
/// rows and the spread source row of `u32` sums, and each source column's first output column
/// and weight.
pub const SCRATCH_BYTES: usize = (2 * SOURCE_SIDE + (SOURCE_SIDE + 1)) * size_of::<u32>()
    + SOURCE_SIDE * (size_of::<usize>() + size_of::<u32>());

/// The integer overlap of output pixel `o` (of `side`) with source pixel `i`, in `1/side` of a
/// source pixel.
const fn overlap(side: usize, o: usize, i: usize) -> u32 {
    let (lo, hi) = (o * SOURCE_SIDE, (o + 1) * SOURCE_SIDE);
    let (slo, shi) = (i * side, (i + 1) * side);
    let a = if lo > slo { lo } else { slo };
    let b = if hi < shi { hi } else { shi };
    if b > a { (b - a) as u32 } else { 0 }
}

/// `image` (28x28, row by row) area-averaged to `SIDE x SIDE` into `out` (`PIXELS` must be
/// `SIDE * SIDE`). `SIDE = 28` is the identity; `SIDE = 14` averages 2x2 blocks.
pub fn area_average<const SIDE: usize, const PIXELS: usize>(
    image: &[u8; SOURCE_SIDE * SOURCE_SIDE],
    out: &mut [u8; PIXELS],
) {
    const { assert!(SIDE >= 1 && SIDE <= SOURCE_SIDE && PIXELS == SIDE * SIDE) };
    area_average_into(image, SIDE, out);
}

/// [`area_average`] with the side known at run time (a model file's input size): `out` holds
/// `side * side` pixels, `1 <= side <= 28`.
pub fn area_average_into(image: &[u8; SOURCE_SIDE * SOURCE_SIDE], side: usize, out: &mut [u8]) {
    assert!(
        (1..=SOURCE_SIDE).contains(&side) && out.len() == side * side,
        "side 1..=28 and out of side^2 pixels"
    );
    // A source pixel is no wider than an output pixel, so it overlaps at most two along an
    // axis: `first[i]`, by `weight[i]`, and the next by `side - weight[i]`.
    let mut first = [0usize; SOURCE_SIDE];
    let mut weight = [0u32; SOURCE_SIDE];
    for i in 0..SOURCE_SIDE {
        first[i] = i * side / SOURCE_SIDE;
        weight[i] = overlap(side, first[i], i);
    }
    let side32 = side as u32;
    let total = (SOURCE_SIDE * SOURCE_SIDE) as u32;
    // Source rows in order, each spread over the (at most two) output rows it overlaps, which
    // are the only ones open; an output row is written once its last source row is in. Little
    // stack and no division per pixel: a device runs this. Integers: the same sums as the
    // definition in any order.
    let mut open = [[0u32; SOURCE_SIDE]; 2];
    for iy in 0..SOURCE_SIDE {
        // One spare column: the last output column's "next" gets weight 0.
        let mut row = [0u32; SOURCE_SIDE + 1];
        let src = &image[iy * SOURCE_SIDE..][..SOURCE_SIDE];
        for ((&p, &f), &w) in src.iter().zip(&first).zip(&weight) {
            let p = p as u32;
            row[f] += w * p;
            row[f + 1] += (side32 - w) * p;
        }
        let oy = first[iy];
        let (wy, wy_next) = (weight[iy], side32 - weight[iy]);
        let [a, b] = &mut open;
        let (this, next) = if oy % 2 == 0 { (a, b) } else { (b, a) };
        for ((t, n), &r) in this[..side].iter_mut().zip(&mut next[..side]).zip(&row) {
            *t += wy * r;
            *n += wy_next * r;
        }
        if (iy + 1) * side >= SOURCE_SIDE * (oy + 1) {
            for (o, t) in out[oy * side..][..side].iter_mut().zip(&mut this[..side]) {
                // Round half up; the sum is at most 784 * 255.
                *o = ((*t + total / 2) / total) as u8;
                *t = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_along_an_axis_sum_to_the_source_side() {
        for side in [7, 14, 16, 20, 28] {
            for o in 0..side {
                let s: u32 = (0..SOURCE_SIDE).map(|i| overlap(side, o, i)).sum();
                assert_eq!(s as usize, SOURCE_SIDE, "side {side}, output {o}");
            }
        }
    }

    /// The definition: every output pixel from every source pixel, weights computed anew.
    fn reference(image: &[u8; 784], side: usize) -> [u8; 784] {
        let mut out = [0u8; 784];
        for oy in 0..side {
            for ox in 0..side {
                let mut sum = 0u32;
                for iy in 0..SOURCE_SIDE {
                    for ix in 0..SOURCE_SIDE {
                        let w = overlap(side, oy, iy) * overlap(side, ox, ix);
                        sum += w * image[iy * SOURCE_SIDE + ix] as u32;
                    }
                }
                out[oy * side + ox] = ((sum + 392) / 784) as u8;
            }
        }
        out
    }

    #[test]
    fn every_side_gives_the_definitions_pixels() {
        let mut state = 0x2545_f491_u32;
        for side in 1..=SOURCE_SIDE {
            for _ in 0..4 {
                let image: [u8; 784] = core::array::from_fn(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    (state >> 24) as u8
                });
                let mut out = [0u8; 784];
                area_average_into(&image, side, &mut out[..side * side]);
                assert_eq!(out, reference(&image, side), "side {side}");
            }
        }
    }

    #[test]
    fn identity_and_constant_images() {
        let img: [u8; 784] = core::array::from_fn(|i| (i * 7 % 256) as u8);
        let mut same = [0u8; 784];
        area_average::<28, 784>(&img, &mut same);
        assert_eq!(same, img);
        let flat = [200u8; 784];
        let mut small = [0u8; 256];
        area_average::<16, 256>(&flat, &mut small);
        assert!(small.iter().all(|&v| v == 200));
    }

    #[test]
    fn halving_is_the_mean_of_2x2_blocks() {
        let img: [u8; 784] = core::array::from_fn(|i| (i * 37 % 251) as u8);
        let mut half = [0u8; 196];
        area_average::<14, 196>(&img, &mut half);
        for y in 0..14 {
            for x in 0..14 {
                let at = |dy: usize, dx: usize| img[(2 * y + dy) * 28 + 2 * x + dx] as u32;
                let sum = at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1);
                assert_eq!(half[y * 14 + x] as u32, (sum + 2) / 4, "({x}, {y})");
            }
        }
    }

    #[test]
    fn ink_is_kept_to_rounding() {
        let img: [u8; 784] = core::array::from_fn(|i| if i % 5 == 0 { 255 } else { 0 });
        let mut small = [0u8; 256];
        area_average::<16, 256>(&img, &mut small);
        let ink_in: f64 = img.iter().map(|&v| v as f64).sum::<f64>() / 784.0;
        let ink_out: f64 = small.iter().map(|&v| v as f64).sum::<f64>() / 256.0;
        assert!((ink_in - ink_out).abs() < 0.5, "{ink_in} vs {ink_out}");
    }
}
