//! Batch normalization of the hidden layer: train and eval modes, forward and backward, and
//! folding into the preceding dense layer for deployment.

// Per-feature formulas index several arrays in parallel; indices read like the math.
#![allow(clippy::needless_range_loop)]

use crate::{Dense, Scalar};

/// Added to the variance before the square root, as in PyTorch.
pub const BN_EPS: f64 = 1e-5;
/// Weight of the current batch in the running statistics, as in PyTorch.
pub const BN_MOMENTUM: f64 = 0.1;

/// `y = gamma * (x - mean) / sqrt(var + eps) + beta`, per feature.
///
/// In train mode `mean` and `var` are the batch's (biased variance); in eval mode they are the
/// running estimates gathered during training.
#[derive(Clone, Debug, PartialEq, bytemuck::Zeroable)]
// The scalar is `Zeroable` already (see `Scalar`): no bound to add.
#[zeroable(bound = "")]
pub struct BatchNorm<const N: usize, S: Scalar = f32> {
    /// Scale.
    pub gamma: [S; N],
    /// Shift.
    pub beta: [S; N],
    /// Running mean (eval mode).
    pub running_mean: [S; N],
    /// Running unbiased variance (eval mode).
    pub running_var: [S; N],
}

/// Statistics of one training batch.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchStats<const N: usize, S: Scalar = f32> {
    /// Per-feature mean.
    pub mean: [S; N],
    /// Per-feature biased variance.
    pub var: [S; N],
    /// `1 / sqrt(var + eps)`.
    pub inv_std: [S; N],
    /// Batch size.
    pub count: usize,
}

impl<const N: usize, S: Scalar> Default for BatchNorm<N, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, S: Scalar> BatchNorm<N, S> {
    /// Identity at the start: `gamma = 1`, `beta = 0`, running mean 0 and variance 1.
    pub fn new() -> Self {
        Self {
            gamma: [S::ONE; N],
            beta: [S::ZERO; N],
            running_mean: [S::ZERO; N],
            running_var: [S::ONE; N],
        }
    }

    fn eps() -> S {
        S::from_f64(BN_EPS)
    }

    /// Mean and biased variance of a batch (two passes, for accuracy). Needs a non-empty batch.
    pub fn batch_stats(x: &[[S; N]]) -> BatchStats<N, S> {
        assert!(!x.is_empty(), "empty batch");
        let m = S::from_f64(x.len() as f64);
        let mut mean = [S::ZERO; N];
        for row in x {
            for (a, &v) in mean.iter_mut().zip(row) {
                *a += v;
            }
        }
        for a in mean.iter_mut() {
            *a /= m;
        }
        let mut var = [S::ZERO; N];
        for row in x {
            for ((a, &v), &mu) in var.iter_mut().zip(row).zip(&mean) {
                let d = v - mu;
                *a += d * d;
            }
        }
        let mut inv_std = [S::ZERO; N];
        for (a, s) in var.iter_mut().zip(inv_std.iter_mut()) {
            *a /= m;
            *s = S::ONE / (*a + Self::eps()).sqrt();
        }
        BatchStats {
            mean,
            var,
            inv_std,
            count: x.len(),
        }
    }

    /// Eval mode, in place: normalizes with the running statistics.
    pub fn forward_eval(&self, x: &mut [S; N]) {
        for j in 0..N {
            let inv = S::ONE / (self.running_var[j] + Self::eps()).sqrt();
            x[j] = self.gamma[j] * (x[j] - self.running_mean[j]) * inv + self.beta[j];
        }
    }

    /// Train mode over a batch. `xhat` holds the inputs on entry and the normalized values on
    /// return; `y` receives the outputs. Returns the batch statistics. Does not touch the running
    /// statistics (see [`BatchNorm::update_running`]), so it is a pure function of the parameters.
    pub fn forward_train(&self, xhat: &mut [[S; N]], y: &mut [[S; N]]) -> BatchStats<N, S> {
        assert_eq!(xhat.len(), y.len(), "batch buffers differ in length");
        let stats = Self::batch_stats(xhat);
        for (hr, yr) in xhat.iter_mut().zip(y.iter_mut()) {
            for j in 0..N {
                hr[j] = (hr[j] - stats.mean[j]) * stats.inv_std[j];
                yr[j] = self.gamma[j] * hr[j] + self.beta[j];
            }
        }
        stats
    }

    /// Moves the running statistics towards a batch's (unbiased variance, as PyTorch).
    pub fn update_running(&mut self, stats: &BatchStats<N, S>) {
        let mom = S::from_f64(BN_MOMENTUM);
        let n = stats.count as f64;
        let unbias = S::from_f64(if stats.count > 1 { n / (n - 1.0) } else { 1.0 });
        for j in 0..N {
            self.running_mean[j] = (S::ONE - mom) * self.running_mean[j] + mom * stats.mean[j];
            self.running_var[j] =
                (S::ONE - mom) * self.running_var[j] + mom * stats.var[j] * unbias;
        }
    }

    /// Backward of train mode. `dy` holds `dL/dy` per sample and is overwritten with `dL/dx`;
    /// the gradients of `gamma` and `beta` are added to `d_gamma` and `d_beta`.
    pub fn backward(
        &self,
        xhat: &[[S; N]],
        stats: &BatchStats<N, S>,
        dy: &mut [[S; N]],
        d_gamma: &mut [S; N],
        d_beta: &mut [S; N],
    ) {
        let m = S::from_f64(dy.len() as f64);
        let mut sum_dy = [S::ZERO; N];
        let mut sum_dy_xhat = [S::ZERO; N];
        for (d, h) in dy.iter().zip(xhat) {
            for j in 0..N {
                sum_dy[j] += d[j];
                sum_dy_xhat[j] += d[j] * h[j];
            }
        }
        for j in 0..N {
            d_beta[j] += sum_dy[j];
            d_gamma[j] += sum_dy_xhat[j];
        }
        // dx = gamma * inv_std / m * (m * dy - sum(dy) - xhat * sum(dy * xhat))
        for (d, h) in dy.iter_mut().zip(xhat) {
            for j in 0..N {
                let scale = self.gamma[j] * stats.inv_std[j] / m;
                d[j] = scale * (m * d[j] - sum_dy[j] - h[j] * sum_dy_xhat[j]);
            }
        }
    }

    /// The dense layer that, followed by nothing, computes `eval(dense(x))`:
    /// `W'[i][j] = W[i][j] * s_j`, `b'_j = (b_j - mean_j) * s_j + beta_j` with
    /// `s_j = gamma_j / sqrt(var_j + eps)`.
    pub fn fold<const IN: usize>(&self, dense: &Dense<IN, N, S>, out: &mut Dense<IN, N, S>) {
        let mut s = [S::ZERO; N];
        for j in 0..N {
            s[j] = self.gamma[j] / (self.running_var[j] + Self::eps()).sqrt();
            out.b[j] = (dense.b[j] - self.running_mean[j]) * s[j] + self.beta[j];
        }
        for (row_out, row) in out.w.iter_mut().zip(&dense.w) {
            for j in 0..N {
                row_out[j] = row[j] * s[j];
            }
        }
    }
}
