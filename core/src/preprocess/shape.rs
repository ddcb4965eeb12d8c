//! Shaping the ink like MNIST's: specks dropped, thin strokes thickened, the digit resampled.

use alloc::vec;
use alloc::vec::Vec;

use libm::{ceil, ceilf, floor, roundf};

use super::{BOX, SPECK_SHARE, TARGET_STROKE};

/// Zeroes the specks (8-connected pieces with little ink compared with the largest piece) and
/// returns the bounding box `(x0, y0, x1, y1)` (exclusive ends) of the rest.
pub(super) fn drop_specks(
    ink: &mut [f32],
    w: usize,
    h: usize,
) -> Option<(usize, usize, usize, usize)> {
    const NONE: u32 = u32::MAX;
    let mut label = vec![NONE; ink.len()];
    let mut pieces: Vec<(f32, [usize; 4])> = Vec::new(); // ink, bounding box
    let mut stack = Vec::new();
    for start in 0..ink.len() {
        if ink[start] <= 0.0 || label[start] != NONE {
            continue;
        }
        let id = pieces.len() as u32;
        let mut mass = 0.0f32;
        let mut bbox = [usize::MAX, usize::MAX, 0, 0];
        label[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            mass += ink[i];
            bbox = [
                bbox[0].min(x),
                bbox[1].min(y),
                bbox[2].max(x + 1),
                bbox[3].max(y + 1),
            ];
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if ink[j] > 0.0 && label[j] == NONE {
                        label[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        pieces.push((mass, bbox));
    }
    let largest = pieces.iter().map(|p| p.0).fold(0.0, f32::max);
    let keep: Vec<bool> = pieces
        .iter()
        .map(|p| p.0 >= SPECK_SHARE * largest)
        .collect();
    let mut bbox: Option<[usize; 4]> = None;
    for (p, _) in pieces.iter().zip(&keep).filter(|(_, k)| **k) {
        let b = p.1;
        bbox = Some(match bbox {
            None => b,
            Some(a) => [
                a[0].min(b[0]),
                a[1].min(b[1]),
                a[2].max(b[2]),
                a[3].max(b[3]),
            ],
        });
    }
    for (v, &l) in ink.iter_mut().zip(&label) {
        if l != NONE && !keep[l as usize] {
            *v = 0.0;
        }
    }
    bbox.map(|b| (b[0], b[1], b[2], b[3]))
}

/// For each output position along one axis, the source positions and their weights: area
/// averaging when shrinking (every source pixel counts by how much of it the output pixel
/// covers: MNIST-like anti-aliasing), linear interpolation between pixel centers when enlarging.
pub(super) fn axis_weights(n_in: usize, n_out: usize) -> Vec<Vec<(usize, f32)>> {
    let r = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|j| {
            if r >= 1.0 {
                let (lo, hi) = (j as f64 * r, (j + 1) as f64 * r);
                (floor(lo) as usize..(ceil(hi) as usize).min(n_in))
                    .map(|i| {
                        let cover = hi.min(i as f64 + 1.0) - lo.max(i as f64);
                        (i, (cover / r) as f32)
                    })
                    .filter(|&(_, wgt)| wgt > 0.0)
                    .collect()
            } else {
                let x = ((j as f64 + 0.5) * r - 0.5).clamp(0.0, (n_in - 1) as f64);
                let i0 = floor(x) as usize;
                let t = (x - i0 as f64) as f32;
                vec![(i0, 1.0 - t), ((i0 + 1).min(n_in - 1), t)]
            }
        })
        .collect()
}

/// Resamples a `sw` x `sh` picture to `dw` x `dh`, one axis after the other.
pub(super) fn resample(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let (wx, wy) = (axis_weights(sw, dw), axis_weights(sh, dh));
    let mut rows = vec![0.0f32; dw * sh];
    for y in 0..sh {
        let line = &src[y * sw..(y + 1) * sw];
        for (x, taps) in wx.iter().enumerate() {
            rows[y * dw + x] = taps.iter().map(|&(i, wgt)| wgt * line[i]).sum();
        }
    }
    let mut out = vec![0.0f32; dw * dh];
    for (y, taps) in wy.iter().enumerate() {
        for x in 0..dw {
            out[y * dw + x] = taps.iter().map(|&(i, wgt)| wgt * rows[i * dw + x]).sum();
        }
    }
    out
}

/// Width of the strokes in `crop` (`bw` x `bh`), in pixels of the 20-pixel box: for long
/// strokes the area is length x width and the perimeter twice the length, so 2 x area /
/// perimeter is the width. Measured on the half-intensity ink, as MNIST's figures were.
pub fn stroke_width(crop: &[f32], bw: usize, bh: usize) -> f32 {
    let on = |x: usize, y: usize| crop[y * bw + x] >= 0.5;
    let (mut area, mut perimeter) = (0u64, 0u64);
    for y in 0..bh {
        for x in 0..bw {
            if !on(x, y) {
                continue;
            }
            area += 1;
            perimeter += u64::from(x == 0 || !on(x - 1, y))
                + u64::from(x + 1 == bw || !on(x + 1, y))
                + u64::from(y == 0 || !on(x, y - 1))
                + u64::from(y + 1 == bh || !on(x, y + 1));
        }
    }
    if perimeter == 0 {
        return f32::INFINITY;
    }
    2.0 * area as f32 / perimeter as f32 * BOX as f32 / bw.max(bh) as f32
}

/// Thickens strokes of `width` (box pixels) to [`TARGET_STROKE`] with a round brush (a
/// grayscale dilation); returns the new crop, cropped again to its ink. The work is done at 8x
/// the final size: fine enough for a round brush and for anti-aliased edges once averaged down
/// to 20, small enough to be cheap whatever the picture's size. The picture is brought to that
/// size by taking maxima, not averages, so a hairline keeps its full intensity (averaging would
/// leave a faint stroke, which the brush would only widen).
pub(super) fn thicken(crop: &[f32], bw: usize, bh: usize, width: f32) -> (Vec<f32>, usize, usize) {
    let grow = (TARGET_STROKE - width) / 2.0 * bw.max(bh) as f32 / BOX as f32; // per side
    let pad = ceilf(grow) as usize + 1;
    let (pw, ph) = (bw + 2 * pad, bh + 2 * pad);
    let mut padded = vec![0.0f32; pw * ph];
    for y in 0..bh {
        padded[(y + pad) * pw + pad..(y + pad) * pw + pad + bw]
            .copy_from_slice(&crop[y * bw..(y + 1) * bw]);
    }
    let s = ((8 * BOX) as f32 / pw.max(ph) as f32).min(1.0);
    let (w, h) = (
        (roundf(pw as f32 * s) as usize).max(1),
        (roundf(ph as f32 * s) as usize).max(1),
    );
    let mid = max_pool(&padded, pw, ph, w, h);
    // Taking maxima already widened the strokes by up to one pixel.
    let r = (grow * w as f32 / pw as f32 - 0.5).max(0.5);
    let reach = ceilf(r) as isize;
    let brush: Vec<(isize, isize)> = (-reach..=reach)
        .flat_map(|dy| (-reach..=reach).map(move |dx| (dx, dy)))
        .filter(|&(dx, dy)| ((dx * dx + dy * dy) as f32) <= r * r)
        .collect();
    let mut out = vec![0.0f32; w * h];
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            let v = brush
                .iter()
                .filter_map(|&(dx, dy)| {
                    let (sx, sy) = (x as isize + dx, y as isize + dy);
                    ((0..w as isize).contains(&sx) && (0..h as isize).contains(&sy))
                        .then(|| mid[sy as usize * w + sx as usize])
                })
                .fold(0.0f32, f32::max);
            if v > 0.0 {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            }
            out[y * w + x] = v;
        }
    }
    if x1 <= x0 {
        return (mid, w, h);
    }
    let cropped = (y0..y1)
        .flat_map(|y| out[y * w + x0..y * w + x1].iter().copied())
        .collect();
    (cropped, x1 - x0, y1 - y0)
}

/// Shrinks a `sw` x `sh` picture to `dw` x `dh` (not larger) keeping each block's maximum.
pub(super) fn max_pool(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let span = |j: usize, n_in: usize, n_out: usize| {
        let r = n_in as f64 / n_out as f64;
        let lo = floor(j as f64 * r) as usize;
        lo..(ceil((j + 1) as f64 * r) as usize).clamp(lo + 1, n_in)
    };
    let mut out = vec![0.0f32; dw * dh];
    for y in 0..dh {
        for x in 0..dw {
            out[y * dw + x] = span(y, sh, dh)
                .flat_map(|sy| src[sy * sw..(sy + 1) * sw][span(x, sw, dw)].iter().copied())
                .fold(0.0f32, f32::max);
        }
    }
    out
}
