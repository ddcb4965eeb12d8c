//! ReLU, forward and backward.

use crate::Scalar;

/// `y = max(x, 0)`, elementwise.
#[inline]
pub fn relu_forward<S: Scalar, const N: usize>(x: &[S; N], y: &mut [S; N]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = if xi > S::ZERO { xi } else { S::ZERO };
    }
}

/// `dx = dy * [x > 0]`, elementwise, given the pre-activation `x`.
/// The subgradient at exactly 0 is taken as 0, as in PyTorch.
#[inline]
pub fn relu_backward<S: Scalar, const N: usize>(x: &[S; N], dy: &[S; N], dx: &mut [S; N]) {
    for ((dxi, &dyi), &xi) in dx.iter_mut().zip(dy).zip(x) {
        *dxi = if xi > S::ZERO { dyi } else { S::ZERO };
    }
}
