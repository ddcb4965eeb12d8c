//! Training-time augmentation: each image slightly rotated, scaled, sheared and shifted, as a
//! different writer might have drawn it. Deterministic: the distortion of image `i` in epoch `e`
//! depends only on (seed, e, i), so runs repeat exactly and can use any number of threads.

use digits_core::Rng;

/// How strong the random distortions are.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Augment {
    /// Largest rotation, degrees.
    pub max_rotation_deg: f64,
    /// Largest relative change of scale.
    pub max_scale: f64,
    /// Largest shear.
    pub max_shear: f64,
    /// Largest shift, pixels.
    pub max_shift: f64,
}

impl Default for Augment {
    fn default() -> Self {
        Self {
            max_rotation_deg: 12.0,
            max_scale: 0.12,
            max_shear: 0.15,
            max_shift: 2.5,
        }
    }
}

impl Augment {
    /// The distorted image `index` of epoch `epoch`.
    pub fn apply(&self, image: &[u8; 784], seed: u64, epoch: u32, index: u32) -> [u8; 784] {
        let mix = seed
            ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (index as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let mut rng = Rng::new(mix);
        let angle = rng.uniform_in(-1.0, 1.0) * self.max_rotation_deg.to_radians();
        let scale = 1.0 + rng.uniform_in(-1.0, 1.0) * self.max_scale;
        let shear = rng.uniform_in(-1.0, 1.0) * self.max_shear;
        let dx = rng.uniform_in(-1.0, 1.0) * self.max_shift;
        let dy = rng.uniform_in(-1.0, 1.0) * self.max_shift;
        warp(image, angle, scale, shear, dx, dy)
    }
}

/// `image` rotated by `angle` (radians), scaled, sheared (`x += shear * y` before rotating)
/// and shifted by (`dx`, `dy`) pixels, about the image's centre, with bilinear sampling.
pub fn warp(image: &[u8; 784], angle: f64, scale: f64, shear: f64, dx: f64, dy: f64) -> [u8; 784] {
    // Output pixel (x, y) samples the source at A^-1 ((x, y) - c - d) + c, c the centre.
    let (s, c) = angle.sin_cos();
    // Forward map: rotation * shear * scale.
    let a = [
        [c * scale, (c * shear - s) * scale],
        [s * scale, (s * shear + c) * scale],
    ];
    let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
    let inv = [
        [a[1][1] / det, -a[0][1] / det],
        [-a[1][0] / det, a[0][0] / det],
    ];
    let centre = 13.5;
    // The source with a one-pixel zero border, so bilinear reads need no bounds checks.
    let mut padded = [0f32; 30 * 30];
    for (y, row) in image.chunks_exact(28).enumerate() {
        for (x, &v) in row.iter().enumerate() {
            padded[(y + 1) * 30 + x + 1] = v as f32;
        }
    }
    let inv = inv.map(|r| r.map(|v| v as f32));
    let (dx, dy, centre) = (dx as f32, dy as f32, centre as f32);
    let mut out = [0u8; 784];
    for y in 0..28 {
        let v = y as f32 - centre - dy;
        for x in 0..28 {
            let u = x as f32 - centre - dx;
            let sx = inv[0][0] * u + inv[0][1] * v + centre;
            let sy = inv[1][0] * u + inv[1][1] * v + centre;
            out[y * 28 + x] = bilinear(&padded, sx, sy);
        }
    }
    out
}

/// Bilinear sample of the padded source at (x, y) in source coordinates; zero outside.
#[inline]
fn bilinear(padded: &[f32; 900], x: f32, y: f32) -> u8 {
    if !(x > -1.0 && x < 28.0 && y > -1.0 && y < 28.0) {
        return 0;
    }
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let i = (y0 as isize + 1) as usize * 30 + (x0 as isize + 1) as usize;
    let top = padded[i] * (1.0 - fx) + padded[i + 1] * fx;
    let bottom = padded[i + 30] * (1.0 - fx) + padded[i + 31] * fx;
    let v = top * (1.0 - fy) + bottom * fy;
    v.round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> [u8; 784] {
        let mut img = [0u8; 784];
        for y in 10..18 {
            for x in 10..18 {
                img[y * 28 + x] = 255;
            }
        }
        img
    }

    #[test]
    fn no_distortion_is_the_identity() {
        let none = Augment {
            max_rotation_deg: 0.0,
            max_scale: 0.0,
            max_shear: 0.0,
            max_shift: 0.0,
        };
        assert_eq!(none.apply(&square(), 1, 2, 3), square());
    }

    #[test]
    fn distortions_are_deterministic_small_and_keep_the_ink() {
        let aug = Augment::default();
        let a = aug.apply(&square(), 5, 1, 9);
        assert_eq!(a, aug.apply(&square(), 5, 1, 9));
        assert_ne!(a, aug.apply(&square(), 5, 2, 9));
        let ink = |img: &[u8; 784]| img.iter().map(|&v| v as f64).sum::<f64>();
        let ratio = ink(&a) / ink(&square());
        // Area changes by at most (1 +- 0.12)^2.
        assert!((0.7..1.3).contains(&ratio), "ink ratio {ratio}");
    }
}
