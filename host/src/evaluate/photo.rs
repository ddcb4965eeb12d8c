//! Pictures as a person's photo or scan of paper would be: dark ink on light gray paper, a
//! lighting gradient and noise. MNIST test digits drawn this way check `digits predict`'s
//! preprocessing (`host/tests/predict_cli.rs`), and the same paper carries the generated
//! non-digits that check its "not a digit" verdict.

use image::{GrayImage, Luma};

/// Side of the canvas a digit is rendered on.
pub const CANVAS: u32 = 400;

/// A small deterministic generator (a 64-bit LCG; the high bits are good enough here).
pub struct Lcg(u64);

impl Lcg {
    /// A generator for `seed`; nearby seeds give unrelated sequences.
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f32) as usize).min(n - 1)
    }
}

/// Paper and ink: brightness of each, and the lighting gradient across the paper.
pub struct Paper {
    /// Brightness of the paper at the centre.
    pub level: f32,
    /// Brightness of full ink.
    pub ink: f32,
    /// Lighting gradient, brightness per pixel along x and y.
    pub gradient: (f32, f32),
}

impl Paper {
    /// Paper between 215 and 250, ink between 10 and 60, a gradient of up to 0.05 per pixel.
    pub fn random(rng: &mut Lcg) -> Paper {
        let level = rng.range(215.0, 250.0);
        let ink = rng.range(10.0, 60.0);
        let gradient = (rng.range(-0.05, 0.05), rng.range(-0.05, 0.05));
        Paper {
            level,
            ink,
            gradient,
        }
    }

    /// A `side` x `side` picture of this paper with `cover(x, y)` (0 = paper, 1 = full ink)
    /// drawn on it, and noise of +-6 levels.
    pub fn draw(&self, side: u32, rng: &mut Lcg, cover: impl Fn(f32, f32) -> f32) -> GrayImage {
        let mid = side as f32 / 2.0;
        GrayImage::from_fn(side, side, |x, y| {
            let light = self.level
                + self.gradient.0 * (x as f32 - mid)
                + self.gradient.1 * (y as f32 - mid);
            let c = cover(x as f32 + 0.5, y as f32 + 0.5).clamp(0.0, 1.0);
            let noise = rng.range(-6.0, 6.0);
            Luma([(light + c * (self.ink - light) + noise)
                .round()
                .clamp(0.0, 255.0) as u8])
        })
    }
}

/// Renders a 28x28 MNIST digit as a person's picture of it: dark ink on light gray paper,
/// scaled up 6-12 times with bilinear interpolation, anywhere on a [`CANVAS`]-pixel square,
/// with a lighting gradient and noise. The same digit and seed give the same picture.
pub fn render_digit(digit: &[u8; 784], seed: u64) -> GrayImage {
    let mut rng = Lcg::new(seed);
    let scale = rng.range(6.0, 12.0);
    let size = 28.0 * scale;
    let ox = rng.range(0.0, CANVAS as f32 - size);
    let oy = rng.range(0.0, CANVAS as f32 - size);
    let paper = Paper::random(&mut rng);
    let at = |x: i32, y: i32| -> f32 {
        if (0..28).contains(&x) && (0..28).contains(&y) {
            f32::from(digit[(y * 28 + x) as usize]) / 255.0
        } else {
            0.0
        }
    };
    paper.draw(CANVAS, &mut rng, |px, py| {
        // Source coordinates of this pixel's center, pixel centers at integer + 0.5.
        let u = (px - ox) / scale - 0.5;
        let v = (py - oy) / scale - 0.5;
        let (x0, y0) = (u.floor(), v.floor());
        let (tx, ty) = (u - x0, v - y0);
        let (x0, y0) = (x0 as i32, y0 as i32);
        (1.0 - ty) * ((1.0 - tx) * at(x0, y0) + tx * at(x0 + 1, y0))
            + ty * ((1.0 - tx) * at(x0, y0 + 1) + tx * at(x0 + 1, y0 + 1))
    })
}
