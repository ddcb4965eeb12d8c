//! How far a gradient computed in a given precision may be from the true one: first-order
//! rounding-error bounds of the forward pass, the loss and backprop, and the truncation error of
//! a central difference, all from the network's own magnitudes on the batch.
//!
//! Rounding follows the standard bounds for recursive summation and dot products (a sum of `n`
//! terms is off by at most `n u` times the sum of their magnitudes, `u` the unit roundoff), kept
//! to first order in `u`; [`SAFETY`] covers the second-order terms and the library's `exp` and
//! `ln` (each within one unit in the last place). The derivation: docs/design.md, "Gradients
//! three ways".

use digits_core::{Activations, Mlp, Scalar};

/// The network in the checker's reference precision.
pub type Net = Mlp<784, 128, 10, f64>;

/// Multiplies every first-order rounding bound: its neglected higher-order terms and the
/// elementary functions' own rounding are well within it.
pub const SAFETY: f64 = 2.0;

/// Unit roundoff of a precision: half its machine epsilon.
pub fn unit_roundoff<S: Scalar>() -> f64 {
    S::EPSILON.to_f64() / 2.0
}

/// One sample's forward pass in `f64`, with what rounding in the checked precision may change.
struct Sample {
    x: [f64; 784],
    pre: [f64; 128],
    hidden: [f64; 128],
    /// `softmax(z) - onehot(label)`.
    dz: [f64; 10],
    loss: f64,
    /// Bound on the rounding error of each pre-activation.
    pre_err: [f64; 128],
    /// Bound on the rounding error of the hidden layer's gradient `dL/dpre`.
    dh_err: [f64; 128],
    /// `dL/dpre` for an active unit (what backprop gives when the unit is on).
    dh: [f64; 128],
    /// Bound on the rounding error of `dz`.
    dz_err: [f64; 10],
    /// Bound on the rounding error of this sample's loss.
    loss_err: f64,
}

/// Error bounds of one batch in one precision (unit roundoff `u`).
pub struct Bounds {
    samples: Vec<Sample>,
    u: f64,
    /// Range of each hidden unit's outgoing weights, `max_k W2[j][k] - min_k W2[j][k]`.
    w2_range: [f64; 128],
    /// Bound on the rounding error of the mean loss.
    pub loss_err: f64,
    /// The mean loss.
    pub loss: f64,
}

impl Bounds {
    /// Bounds for `model` evaluated in a precision of unit roundoff `u` on a batch.
    pub fn new(model: &Net, pixels: &[[u8; 784]], labels: &[u8], u: f64) -> Self {
        let n = labels.len() as f64;
        let samples: Vec<Sample> = pixels
            .iter()
            .zip(labels)
            .map(|(p, &y)| sample(model, p, y as usize, u))
            .collect();
        let loss = samples.iter().map(|s| s.loss).sum::<f64>() / n;
        // Each sample's error, then the sum over the batch and the division.
        let loss_err = SAFETY
            * (samples.iter().map(|s| s.loss_err).sum::<f64>() / n + n * u * loss + u * loss);
        let w2_range = std::array::from_fn(|j| {
            let row = &model.output.w[j];
            let hi = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lo = row.iter().copied().fold(f64::INFINITY, f64::min);
            hi - lo
        });
        Self {
            samples,
            u,
            w2_range,
            loss_err,
            loss,
        }
    }

    fn mean(&self, f: impl Fn(&Sample) -> f64) -> f64 {
        self.samples.iter().map(f).sum::<f64>() / self.samples.len() as f64
    }

    /// Bound on the rounding error of backprop's value for flat parameter `index`.
    pub fn backprop_error(&self, index: usize) -> f64 {
        let (u, nb) = (self.u, self.samples.len() as f64);
        let e = match Param::of(index) {
            Param::W1 { i, j } => {
                self.mean(|s| s.x[i] * (s.dh_err[j] + 3.0 * u * s.dh[j].abs()))
                    + nb * u * self.mean(|s| (s.x[i] * s.dh[j]).abs())
            }
            Param::B1 { j } => self.mean(|s| s.dh_err[j]) + nb * u * self.mean(|s| s.dh[j].abs()),
            Param::W2 { j, k } => {
                self.mean(|s| {
                    s.pre_err[j] * s.dz[k].abs()
                        + s.hidden[j] * (s.dz_err[k] + 2.0 * u * s.dz[k].abs())
                }) + nb * u * self.mean(|s| (s.hidden[j] * s.dz[k]).abs())
            }
            Param::B2 { k } => self.mean(|s| s.dz_err[k]) + nb * u * self.mean(|s| s.dz[k].abs()),
        };
        SAFETY * e
    }

    /// What the loss looks like along one parameter: bounds on its second and third derivatives
    /// (while no ReLU changes state), and the largest step that keeps every ReLU on its side in
    /// this precision (`None`: some sample sits on a kink, within rounding).
    pub fn along(&self, index: usize) -> Option<Along> {
        // Along one parameter the logits of a sample move on a line `z + t v`; the loss's k-th
        // derivative is the k-th cumulant of `v` under softmax(z), at most `r^2 / 4` (k = 2) and
        // `r^3 / 4` (k = 3) for `r` the spread of `v` (Popoviciu's inequality).
        let param = Param::of(index);
        let mut m2 = 0.0;
        let mut m3 = 0.0;
        let mut max_step = f64::INFINITY;
        for s in &self.samples {
            let r = match param {
                Param::W2 { j, .. } => s.hidden[j],
                Param::B2 { .. } => 1.0,
                Param::W1 { i, j } => self.unit_spread(s, s.x[i], j, &mut max_step)?,
                Param::B1 { j } => self.unit_spread(s, 1.0, j, &mut max_step)?,
            };
            m2 += r * r / 4.0;
            m3 += r * r * r / 4.0;
        }
        let n = self.samples.len() as f64;
        Some(Along {
            m2: m2 / n,
            m3: m3 / n,
            max_step,
        })
    }

    /// The spread of the logits' move when hidden unit `j`'s pre-activation moves by `scale`
    /// per unit of the parameter; lowers `max_step` so no step carries the pre-activation
    /// across zero, even allowing for its rounding (`None`: it sits on the kink).
    fn unit_spread(&self, s: &Sample, scale: f64, j: usize, max_step: &mut f64) -> Option<f64> {
        if scale == 0.0 {
            return Some(0.0);
        }
        let room = s.pre[j].abs() - s.pre_err[j];
        if room <= 0.0 {
            return None;
        }
        *max_step = max_step.min(room / scale);
        Some(if s.pre[j] > 0.0 {
            scale * self.w2_range[j]
        } else {
            0.0
        })
    }
}

/// The loss along one parameter, see [`Bounds::along`].
pub struct Along {
    /// Bound on `|d^2 L / dw^2|`.
    pub m2: f64,
    /// Bound on `|d^3 L / dw^3|`.
    pub m3: f64,
    /// Largest step that crosses no ReLU kink.
    pub max_step: f64,
}

/// A flat parameter index of the 784-128-10 network, by tensor.
#[derive(Clone, Copy)]
enum Param {
    W1 { i: usize, j: usize },
    B1 { j: usize },
    W2 { j: usize, k: usize },
    B2 { k: usize },
}

impl Param {
    fn of(index: usize) -> Self {
        const W1: usize = 784 * 128;
        const B1: usize = W1 + 128;
        const W2: usize = B1 + 1280;
        match index {
            i if i < W1 => Param::W1 {
                i: i / 128,
                j: i % 128,
            },
            i if i < B1 => Param::B1 { j: i - W1 },
            i if i < W2 => Param::W2 {
                j: (i - B1) / 10,
                k: (i - B1) % 10,
            },
            i => Param::B2 { k: i - W2 },
        }
    }
}

fn sample(model: &Net, pixels: &[u8; 784], label: usize, u: f64) -> Sample {
    let mut x = [0.0; 784];
    digits_core::pixels::normalize(pixels, &mut x);
    let mut act = Activations::<128, 10, f64>::default();
    model.forward(&x, &mut act);
    let lit = pixels.iter().filter(|&&p| p != 0).count() as f64;
    // Pre-activations: the pixel's division, then a sum of products over the lit pixels.
    let pre_err: [f64; 128] = std::array::from_fn(|j| {
        let mut mag = model.hidden.b[j].abs();
        for (xi, row) in x.iter().zip(&model.hidden.w) {
            mag += (xi * row[j]).abs();
        }
        (lit + 2.0) * u * mag
    });
    let logit_err: [f64; 10] = std::array::from_fn(|k| {
        let mut mag = model.output.b[k].abs();
        let mut carried = 0.0;
        for ((a, e), row) in act.hidden.iter().zip(&pre_err).zip(&model.output.w) {
            mag += (a * row[k]).abs();
            carried += e * row[k].abs();
        }
        129.0 * u * mag + carried
    });
    let z = &act.logits;
    let lse = digits_core::softmax::log_sum_exp(z);
    let mut probs = [0.0; 10];
    digits_core::softmax::softmax(z, &mut probs);
    let dz: [f64; 10] = std::array::from_fn(|k| probs[k] - f64::from(u8::from(k == label)));
    let loss = lse - z[label];
    // The loss moves by at most sum_k |dL/dz_k| dz_k; evaluating logsumexp and the subtraction
    // rounds a bounded number of times at the magnitude of the logits.
    let loss_err = dz
        .iter()
        .zip(&logit_err)
        .map(|(d, e)| d.abs() * e)
        .sum::<f64>()
        + u * (20.0 + lse.abs() + loss.abs() + z[label].abs());
    let max_logit_err = logit_err.iter().copied().fold(0.0, f64::max);
    // softmax: relative error from the logits' error (twice it) and from its own evaluation.
    let dz_err: [f64; 10] =
        std::array::from_fn(|k| probs[k] * (2.0 * max_logit_err + 14.0 * u) + u);
    let mut dh = [0.0; 128];
    let mut dh_err = [0.0; 128];
    for j in 0..128 {
        let w = &model.output.w[j];
        let full: f64 = (0..10).map(|k| w[k] * dz[k]).sum();
        let err: f64 = (0..10)
            .map(|k| w[k].abs() * dz_err[k] + 10.0 * u * (w[k] * dz[k]).abs())
            .sum();
        if act.pre[j].abs() <= pre_err[j] {
            // Rounding may switch the unit either way: backprop may give all or nothing.
            dh[j] = if act.pre[j] > 0.0 { full } else { 0.0 };
            dh_err[j] = full.abs() + err;
        } else if act.pre[j] > 0.0 {
            dh[j] = full;
            dh_err[j] = err;
        }
    }
    Sample {
        x,
        pre: act.pre,
        hidden: act.hidden,
        dz,
        loss,
        pre_err,
        dh_err,
        dh,
        dz_err,
        loss_err,
    }
}
