//! Elastic distortions (Simard, Steinkraus, Platt 2003): every pixel moved by a random
//! displacement, the displacements smoothed by a Gaussian of width `sigma` and scaled by
//! `alpha`, so the strokes bend as a hand's would rather than jitter.

use digits_core::Rng;

/// Image side.
const SIDE: usize = 28;

/// A displacement field's strength.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Elastic {
    /// Scale of the smoothed displacements, pixels.
    pub alpha: f64,
    /// Width of the Gaussian smoothing, pixels.
    pub sigma: f64,
}

/// A displacement per pixel, in the resampler's fixed point (1/65536 pixel).
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Right.
    pub dx: [i32; 784],
    /// Down.
    pub dy: [i32; 784],
}

impl Elastic {
    /// A field drawn from `rng`: uniform displacements in `[-1, 1)` per pixel, each component
    /// smoothed by a normalized Gaussian (zero beyond the image, as Simard's), times `alpha`.
    pub fn field(&self, rng: &mut Rng) -> Field {
        let kernel = gaussian(self.sigma);
        let smooth = |rng: &mut Rng| {
            let noise: Vec<f64> = (0..784).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let smoothed = blur(&blur(&noise, &kernel, 1), &kernel, SIDE);
            let mut out = [0i32; 784];
            for (o, v) in out.iter_mut().zip(smoothed) {
                *o = (v * self.alpha * 65536.0).round() as i32;
            }
            out
        };
        let dx = smooth(rng);
        let dy = smooth(rng);
        Field { dx, dy }
    }

    /// `count` fields drawn from `seed`: drawn once, then picked from, so that distorting
    /// every training image every epoch costs only the resampling.
    pub fn bank(&self, seed: u64, count: usize) -> Vec<Field> {
        use rayon::prelude::*;
        (0..count)
            .into_par_iter()
            .map(|k| {
                let mut rng = Rng::new(seed ^ (k as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
                self.field(&mut rng)
            })
            .collect()
    }
}

/// A normalized Gaussian kernel, out to 3 sigma on each side.
fn gaussian(sigma: f64) -> Vec<f64> {
    let radius = (3.0 * sigma).ceil().max(1.0) as i32;
    let raw: Vec<f64> = (-radius..=radius)
        .map(|k| libm::exp(-f64::from(k * k) / (2.0 * sigma * sigma)))
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|v| v / sum).collect()
}

/// `image` (28x28) convolved with `kernel` along one axis: `stride` 1 along rows, 28 along
/// columns; zero beyond the image.
fn blur(image: &[f64], kernel: &[f64], stride: usize) -> Vec<f64> {
    let radius = (kernel.len() / 2) as i32;
    let mut out = vec![0.0; 784];
    for (i, o) in out.iter_mut().enumerate() {
        let pos = if stride == 1 { i % SIDE } else { i / SIDE } as i32;
        let mut sum = 0.0;
        for (k, w) in kernel.iter().enumerate() {
            let at = pos + k as i32 - radius;
            if (0..SIDE as i32).contains(&at) {
                let j = (i as i32 + (at - pos) * stride as i32) as usize;
                sum += w * image[j];
            }
        }
        *o = sum;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_smooth_seeded_and_scaled_by_alpha() {
        let e = Elastic {
            alpha: 34.0,
            sigma: 4.0,
        };
        let a = e.field(&mut Rng::new(1));
        assert_eq!(a, e.field(&mut Rng::new(1)));
        assert_ne!(a, e.field(&mut Rng::new(2)));
        let px = |v: i32| f64::from(v) / 65536.0;
        let largest =
            a.dx.iter()
                .chain(&a.dy)
                .map(|&v| px(v).abs())
                .fold(0.0, f64::max);
        assert!(
            (0.3..6.0).contains(&largest),
            "largest displacement {largest} px"
        );
        // Smooth: neighbours move almost together.
        let step = (0..783)
            .filter(|i| i % 28 != 27)
            .map(|i| px(a.dx[i + 1] - a.dx[i]).abs())
            .fold(0.0, f64::max);
        assert!(step < largest / 2.0, "neighbours differ by {step} px");
        let doubled = Elastic { alpha: 68.0, ..e }.field(&mut Rng::new(1));
        for (d, s) in doubled.dx.iter().zip(&a.dx) {
            assert!((d - 2 * s).abs() <= 1);
        }
    }
}
