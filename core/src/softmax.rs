//! Numerically stable log-sum-exp, softmax and log-softmax.
//!
//! Every exponent is taken of `z - max(z)`, which is <= 0, so nothing overflows even for logits
//! of +-1e4, and the largest term is exactly 1, so the sum never underflows to 0.

use crate::Scalar;

fn max_of<S: Scalar>(z: &[S]) -> S {
    let mut m = z[0];
    for &v in &z[1..] {
        if v > m {
            m = v;
        }
    }
    m
}

/// `ln(sum_i e^{z_i})`, computed as `m + ln(sum_i e^{z_i - m})` with `m = max(z)`.
/// `z` must not be empty.
pub fn log_sum_exp<S: Scalar>(z: &[S]) -> S {
    let m = max_of(z);
    let mut sum = S::ZERO;
    for &v in z {
        sum += (v - m).exp();
    }
    m + sum.ln()
}

/// `p_i = e^{z_i} / sum_j e^{z_j}`.
pub fn softmax<S: Scalar, const N: usize>(z: &[S; N], p: &mut [S; N]) {
    let m = max_of(z);
    let mut sum = S::ZERO;
    for (pi, &zi) in p.iter_mut().zip(z) {
        *pi = (zi - m).exp();
        sum += *pi;
    }
    let inv = S::ONE / sum;
    for pi in p.iter_mut() {
        *pi *= inv;
    }
}

/// `log p_i = z_i - logsumexp(z)`.
pub fn log_softmax<S: Scalar, const N: usize>(z: &[S; N], out: &mut [S; N]) {
    let lse = log_sum_exp(z);
    for (o, &zi) in out.iter_mut().zip(z) {
        *o = zi - lse;
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax<S: Scalar>(z: &[S]) -> usize {
    let mut best = 0;
    for (i, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = i;
        }
    }
    best
}
