//! Cross-entropy with class-index labels, forward and backward.

use crate::Scalar;
use crate::softmax::{log_sum_exp, softmax};

/// `-log softmax(z)[label]`, computed as `logsumexp(z) - z[label]` (never negative, never NaN
/// for finite logits).
#[inline]
pub fn cross_entropy<S: Scalar, const N: usize>(z: &[S; N], label: usize) -> S {
    log_sum_exp(z) - z[label]
}

/// Gradient of [`cross_entropy`] with respect to the logits: `softmax(z) - onehot(label)`.
/// Returns the loss as well, since it comes almost for free.
#[inline]
pub fn cross_entropy_backward<S: Scalar, const N: usize>(
    z: &[S; N],
    label: usize,
    dz: &mut [S; N],
) -> S {
    softmax(z, dz);
    dz[label] -= S::ONE;
    cross_entropy(z, label)
}
