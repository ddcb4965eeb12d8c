//! Adam (Kingma and Ba, 2015) with decoupled weight decay (AdamW), as `torch.optim.AdamW`.

use crate::Scalar;
use crate::params::{Params, TensorKind};

/// Adam's constants.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adam {
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub epsilon: f64,
    /// Decoupled weight decay, weights only: `w -= lr * weight_decay * w`.
    pub weight_decay: f64,
}

impl Default for Adam {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl Adam {
    /// Step `t` (from 1) of `params` from `grad`, with the moments in `m` and `v` (the same
    /// shape, zero at the start) and learning rate `lr`.
    pub fn step<S: Scalar, P: Params<S> + ?Sized>(
        &self,
        params: &mut P,
        grad: &P,
        m: &mut P,
        v: &mut P,
        t: u64,
        lr: f64,
    ) {
        for k in 0..params.tensor_count() {
            let g = grad.tensor(k);
            let w = params.tensor_mut(k).data;
            self.step_tensor(
                g.kind,
                w,
                g.data,
                m.tensor_mut(k).data,
                v.tensor_mut(k).data,
                t,
                lr,
            );
        }
    }

    /// [`Adam::step`] of one tensor `w` of kind `kind` (weights are decayed, biases not).
    #[allow(clippy::too_many_arguments)]
    pub fn step_tensor<S: Scalar>(
        &self,
        kind: TensorKind,
        w: &mut [S],
        g: &[S],
        m: &mut [S],
        v: &mut [S],
        t: u64,
        lr: f64,
    ) {
        let t = t.max(1) as f64;
        let c1 = 1.0 - libm::pow(self.beta1, t);
        let c2 = 1.0 - libm::pow(self.beta2, t);
        // The bias corrections folded into the step size and epsilon, as PyTorch does.
        let step = S::from_f64(lr * libm::sqrt(c2) / c1);
        let eps = S::from_f64(self.epsilon * libm::sqrt(c2));
        let (b1, b2) = (S::from_f64(self.beta1), S::from_f64(self.beta2));
        let (one_b1, one_b2) = (S::ONE - b1, S::ONE - b2);
        let decay = match kind {
            TensorKind::Weight => S::ONE - S::from_f64(lr * self.weight_decay),
            TensorKind::Bias => S::ONE,
        };
        for (((w, m), v), &g) in w.iter_mut().zip(m).zip(v).zip(g) {
            *m = b1 * *m + one_b1 * g;
            *v = b2 * *v + one_b2 * g * g;
            *w = *w * decay - step * *m / (v.sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_weight_by_the_learning_rate() {
        // After one step m / sqrt(v) = sign(g) (bias-corrected), so each weight moves by lr.
        let adam = Adam::default();
        let mut w = [1.0f64, -2.0, 0.5];
        let g = [0.3f64, -4.0, 1e-3];
        let (mut m, mut v) = ([0.0f64; 3], [0.0f64; 3]);
        adam.step(&mut w[..], &g[..], &mut m[..], &mut v[..], 1, 0.01);
        let expect = [0.99, -1.99, 0.49];
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
    }

    #[test]
    fn minimizes_a_quadratic() {
        let adam = Adam::default();
        let mut w = [3.0f64, -2.0];
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        for t in 1..=2000 {
            let g = [2.0 * (w[0] - 1.0), 2.0 * (w[1] + 0.5)];
            adam.step(&mut w[..], &g[..], &mut m[..], &mut v[..], t, 0.01);
        }
        assert!(
            (w[0] - 1.0).abs() < 1e-3 && (w[1] + 0.5).abs() < 1e-3,
            "{w:?}"
        );
    }
}
