//! Stochastic gradient descent with momentum and L2 weight decay.

use crate::Scalar;
use crate::params::{Params, TensorKind};

/// SGD with (heavy-ball) momentum and L2 weight decay, as in `torch.optim.SGD`:
/// `g = grad + weight_decay * w` (weights only, not biases), `v = momentum * v + g`,
/// `w = w - lr * v`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Momentum coefficient in `[0, 1)`; 0 is plain SGD.
    pub momentum: f64,
    /// L2 penalty coefficient applied to weight tensors.
    pub weight_decay: f64,
}

impl Sgd {
    /// One update of `params` from `grad`, with the velocity kept in `velocity` (same shape,
    /// start it at zero) and the learning rate `lr` of this step.
    pub fn step<S: Scalar, P: Params<S> + ?Sized>(
        &self,
        params: &mut P,
        grad: &P,
        velocity: &mut P,
        lr: f64,
    ) {
        let step = self.coefficients::<S>(lr);
        for k in 0..params.tensor_count() {
            let g = grad.tensor(k);
            step.apply(
                g.kind,
                params.tensor_mut(k).data,
                velocity.tensor_mut(k).data,
                g.data,
            );
        }
    }

    /// The coefficients of one step with learning rate `lr`, in the scalar type.
    pub fn coefficients<S: Scalar>(&self, lr: f64) -> SgdStep<S> {
        SgdStep {
            lr: S::from_f64(lr),
            momentum: S::from_f64(self.momentum),
            weight_decay: S::from_f64(self.weight_decay),
        }
    }
}

/// Parameters and their velocity (the same shape), updated together by an [`SgdStep`].
#[derive(Debug)]
pub struct WithVelocity<'a, T: ?Sized> {
    /// The parameters.
    pub params: &'a mut T,
    /// Their velocity.
    pub velocity: &'a mut T,
}

/// One SGD step's coefficients, converted once: what [`Sgd::step`] applies to every tensor,
/// usable on any slice of one (a row updated as soon as its gradient is known).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep<S> {
    /// Learning rate.
    pub lr: S,
    /// Momentum coefficient.
    pub momentum: S,
    /// L2 coefficient (weights only).
    pub weight_decay: S,
}

impl<S: Scalar> SgdStep<S> {
    /// `g = grad + wd * w` (`wd` zero for biases), `v = momentum * v + g`, `w -= lr * v`,
    /// elementwise over equal-length slices.
    #[inline(always)]
    pub fn apply(&self, kind: TensorKind, w: &mut [S], v: &mut [S], grad: &[S]) {
        let wd = match kind {
            TensorKind::Weight => self.weight_decay,
            TensorKind::Bias => S::ZERO,
        };
        let (lr, mu) = (self.lr, self.momentum);
        for ((w, v), &g) in w.iter_mut().zip(v.iter_mut()).zip(grad) {
            let g = g + wd * *w;
            *v = mu * *v + g;
            *w -= lr * *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_and_decay_follow_the_formula() {
        let sgd = Sgd {
            momentum: 0.5,
            weight_decay: 0.1,
        };
        let mut w = [1.0f64, -2.0];
        let mut v = [0.0f64; 2];
        let g = [0.5f64, 0.25];
        sgd.step(&mut w[..], &g[..], &mut v[..], 0.1);
        // g' = g + 0.1 w = [0.6, 0.05]; v = g'; w -= 0.1 v
        assert!(
            (v[0] - 0.6).abs() < 1e-15 && (v[1] - 0.05).abs() < 1e-15,
            "{v:?}"
        );
        assert!(
            (w[0] - 0.94).abs() < 1e-15 && (w[1] + 2.005).abs() < 1e-15,
            "{w:?}"
        );
        sgd.step(&mut w[..], &g[..], &mut v[..], 0.1);
        // g' = [0.5 + 0.094, 0.25 - 0.2005]; v = 0.5 v + g'
        let v_expected = [0.3 + 0.594, 0.025 + 0.0495];
        assert!((v[0] - v_expected[0]).abs() < 1e-15 && (v[1] - v_expected[1]).abs() < 1e-15);
    }
}
