//! Telling the ink from the paper: the paper's brightness fitted as a plane from the picture's
//! border, and the ink as what differs from it, with noise removed and strong ink saturated.

use alloc::vec;
use alloc::vec::Vec;

use libm::{ceil, ceilf, roundf};

use super::{
    FAINT_SHARE, Gray, MAX_NOISE, MIN_CONTRAST, PreprocessError, SATURATED_SHARE, WORK_SIDE,
};

/// A grayscale picture in floating point, row by row.
pub(super) struct Plane {
    pub(super) w: usize,
    pub(super) h: usize,
    pub(super) px: Vec<f32>,
}

impl Plane {
    /// The picture, averaged down by a whole factor so no side exceeds [`WORK_SIDE`].
    pub(super) fn working_copy(gray: Gray<'_>) -> Plane {
        let (w, h) = (gray.width, gray.height);
        let k = w.max(h).div_ceil(WORK_SIDE).max(1);
        let src = gray.levels;
        if k == 1 {
            return Plane {
                w,
                h,
                px: src.iter().map(|&v| f32::from(v)).collect(),
            };
        }
        let (ow, oh) = (w.div_ceil(k), h.div_ceil(k));
        let mut sum = vec![0u32; ow * oh];
        let mut count = vec![0u32; ow * oh];
        for y in 0..h {
            let row = &src[y * w..(y + 1) * w];
            let out = (y / k) * ow;
            for (x, &v) in row.iter().enumerate() {
                sum[out + x / k] += u32::from(v);
                count[out + x / k] += 1;
            }
        }
        Plane {
            w: ow,
            h: oh,
            px: sum
                .iter()
                .zip(&count)
                .map(|(&s, &c)| s as f32 / c as f32)
                .collect(),
        }
    }
}

/// The paper's brightness as a plane: `level + gx * (x - cx) + gy * (y - cy)`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Background {
    pub(super) level: f32,
    pub(super) gx: f32,
    pub(super) gy: f32,
    pub(super) cx: f32,
    pub(super) cy: f32,
}

impl Background {
    pub(super) fn at(&self, x: f32, y: f32) -> f32 {
        self.level + self.gx * (x - self.cx) + self.gy * (y - self.cy)
    }

    /// Fits the plane to the medians of short pieces of the border, robustly: pieces where the
    /// digit touches the border disagree with the rest and are left out.
    pub(super) fn fit(img: &Plane) -> (Background, Vec<f32>) {
        let (w, h) = (img.w, img.h);
        let band = (w.min(h) / 40).max(1);
        let pieces = 8;
        let mut points: Vec<[f32; 3]> = Vec::new(); // x, y, median
        let mut region = |x0: usize, x1: usize, y0: usize, y1: usize| {
            if x1 <= x0 || y1 <= y0 {
                return;
            }
            let mut v: Vec<f32> = (y0..y1)
                .flat_map(|y| img.px[y * w + x0..y * w + x1].iter().copied())
                .collect();
            points.push([
                (x0 + x1 - 1) as f32 / 2.0,
                (y0 + y1 - 1) as f32 / 2.0,
                median(&mut v),
            ]);
        };
        for i in 0..pieces {
            let (x0, x1) = (i * w / pieces, (i + 1) * w / pieces);
            let (y0, y1) = (i * h / pieces, (i + 1) * h / pieces);
            region(x0, x1, 0, band);
            region(x0, x1, h - band, h);
            region(0, band, y0, y1);
            region(w - band, w, y0, y1);
        }
        let mut levels: Vec<f32> = points.iter().map(|p| p[2]).collect();
        let mut bg = Background {
            level: median(&mut levels),
            gx: 0.0,
            gy: 0.0,
            cx: 0.0,
            cy: 0.0,
        };
        for _ in 0..4 {
            let mut residuals: Vec<f32> = points
                .iter()
                .map(|p| (p[2] - bg.at(p[0], p[1])).abs())
                .collect();
            let tolerance = (3.0 * 1.4826 * median(&mut residuals)).max(6.0);
            let inliers: Vec<[f32; 3]> = points
                .iter()
                .copied()
                .filter(|p| (p[2] - bg.at(p[0], p[1])).abs() <= tolerance)
                .collect();
            match fit_plane(&inliers) {
                Some(next) => bg = next,
                None => break,
            }
        }
        // The noise is measured on every border pixel (not only the medians).
        let mut border: Vec<f32> = Vec::new();
        for y in 0..h {
            for x in 0..w {
                if x < band || x >= w - band || y < band || y >= h - band {
                    border.push((img.px[y * w + x] - bg.at(x as f32, y as f32)).abs());
                }
            }
        }
        (bg, border)
    }
}

/// Least-squares plane through `points` (x, y, value); `None` when they do not determine one.
pub(super) fn fit_plane(points: &[[f32; 3]]) -> Option<Background> {
    if points.len() < 6 {
        return None;
    }
    let n = points.len() as f64;
    let cx = points.iter().map(|p| f64::from(p[0])).sum::<f64>() / n;
    let cy = points.iter().map(|p| f64::from(p[1])).sum::<f64>() / n;
    let cz = points.iter().map(|p| f64::from(p[2])).sum::<f64>() / n;
    // With centered coordinates the level is the mean and the slopes solve a 2x2 system.
    let (mut sxx, mut sxy, mut syy, mut sxz, mut syz) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        let (x, y, z) = (
            f64::from(p[0]) - cx,
            f64::from(p[1]) - cy,
            f64::from(p[2]) - cz,
        );
        sxx += x * x;
        sxy += x * y;
        syy += y * y;
        sxz += x * z;
        syz += y * z;
    }
    let det = sxx * syy - sxy * sxy;
    if det.abs() < 1e-9 * (sxx * syy).max(1e-12) {
        return None;
    }
    Some(Background {
        level: cz as f32,
        gx: ((sxz * syy - syz * sxy) / det) as f32,
        gy: ((syz * sxx - sxz * sxy) / det) as f32,
        cx: cx as f32,
        cy: cy as f32,
    })
}

/// Median (the upper one for an even count); reorders `v`. 0 for an empty slice.
pub(super) fn median(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// The value below which `share` of the counted levels lie (histogram of levels 0..=255).
pub(super) fn quantile(hist: &[u64; 256], from: usize, share: f32) -> f32 {
    let total: u64 = hist[from..].iter().sum();
    let target = ceil(total as f64 * f64::from(share)).max(1.0) as u64;
    let mut seen = 0;
    for (level, &n) in hist.iter().enumerate().skip(from) {
        seen += n;
        if seen >= target {
            return level as f32;
        }
    }
    255.0
}

/// Ink intensity in `[0, 1]` per pixel of `img`: the difference from the background on the ink's
/// side, with noise removed and the strong ink saturated.
pub(super) fn ink(img: &Plane) -> Result<Vec<f32>, PreprocessError> {
    let (bg, mut border) = Background::fit(img);
    let sigma = 1.4826 * median(&mut border);
    if sigma > MAX_NOISE {
        return Err(PreprocessError::Noisy { noise: sigma });
    }
    let noise = 3.0 * sigma + 4.0;
    let mut diff = Vec::with_capacity(img.px.len());
    let (mut darker, mut lighter) = (0.0f64, 0.0f64);
    for y in 0..img.h {
        for x in 0..img.w {
            let d = img.px[y * img.w + x] - bg.at(x as f32, y as f32);
            darker += f64::from((-d - noise).max(0.0));
            lighter += f64::from((d - noise).max(0.0));
            diff.push(d);
        }
    }
    // Ink is on the side with more difference; for dark ink on light paper this inverts.
    let sign = if darker >= lighter { -1.0 } else { 1.0 };
    let mut hist = [0u64; 256];
    for d in &mut diff {
        *d = (sign * *d).clamp(0.0, 255.0);
        hist[roundf(*d) as usize] += 1;
    }
    let above_noise = (ceilf(noise) as usize + 1).min(255);
    let peak = if hist[above_noise..].iter().sum::<u64>() == 0 {
        // Nothing rises above the noise: report the largest difference seen.
        hist.iter().rposition(|&n| n > 0).unwrap_or(0) as f32
    } else {
        quantile(&hist, above_noise, 0.99)
    };
    if peak < MIN_CONTRAST {
        return Err(PreprocessError::NoInk { contrast: peak });
    }
    let low = noise.max(FAINT_SHARE * peak);
    let high = quantile(
        &hist,
        (ceilf(low) as usize + 1).min(255),
        1.0 - SATURATED_SHARE,
    )
    .max(low + 1.0);
    let scale = 1.0 / (high - low);
    for d in &mut diff {
        *d = ((*d - low) * scale).clamp(0.0, 1.0);
    }
    Ok(diff)
}
