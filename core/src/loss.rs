//! Cross-entropy with class-index labels, forward and backward; and the distillation loss
//! (Hinton, Vinyals, Dean 2015), hard labels mixed with a teacher's soft targets.

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

/// A teacher's soft targets and how much they count (Hinton, Vinyals, Dean 2015).
#[derive(Clone, Copy, Debug)]
pub struct Distill<S> {
    /// The temperature `T` both the teacher's and the student's softmax are taken at.
    pub temperature: S,
    /// The soft targets' share `a` of the loss, in `[0, 1]`; the hard label has `1 - a`.
    pub weight: S,
}

/// Gradient of the distillation loss `(1 - a) CE(z, label) + a T^2 CE(q, softmax(z / T))`
/// with respect to the logits: `(1 - a) (softmax(z) - onehot(label)) + a T (softmax(z / T) -
/// q)`, `q` the teacher's probabilities at temperature `T` (the `T^2` keeps the soft part's
/// gradient as large as the hard one's whatever `T`). Returns the hard label's cross-entropy,
/// the loss training reports.
#[inline]
pub fn distill_backward<S: Scalar, const N: usize>(
    z: &[S; N],
    label: usize,
    q: &[S; N],
    d: Distill<S>,
    dz: &mut [S; N],
) -> S {
    let loss = cross_entropy_backward(z, label, dz);
    let zt = z.map(|v| v / d.temperature);
    let mut pt = [S::ZERO; N];
    softmax(&zt, &mut pt);
    let (hard, soft) = (S::ONE - d.weight, d.weight * d.temperature);
    for ((g, &p), &t) in dz.iter_mut().zip(&pt).zip(q) {
        *g = hard * *g + soft * (p - t);
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The distillation loss itself, in f64: `(1 - a) CE(z, label) + a T^2 CE(q, softmax(z/T))`.
    fn distill_loss(z: &[f64; 4], label: usize, q: &[f64; 4], t: f64, a: f64) -> f64 {
        let zt = z.map(|v| v / t);
        let soft: f64 = (0..4).map(|k| q[k] * (log_sum_exp(&zt) - zt[k])).sum();
        (1.0 - a) * cross_entropy(z, label) + a * t * t * soft
    }

    #[test]
    fn distillation_gradient_is_the_losss_derivative() {
        let z = [1.5, -0.3, 0.8, 2.2];
        let q = [0.1, 0.2, 0.3, 0.4];
        for (t, a) in [(1.0, 0.5), (4.0, 0.7), (2.0, 0.0), (3.0, 1.0)] {
            let mut dz = [0.0; 4];
            let loss = distill_backward(
                &z,
                2,
                &q,
                Distill {
                    temperature: t,
                    weight: a,
                },
                &mut dz,
            );
            assert_eq!(loss, cross_entropy(&z, 2), "the hard loss is reported");
            for k in 0..4 {
                let h = 1e-5;
                let (mut up, mut down) = (z, z);
                up[k] += h;
                down[k] -= h;
                let numeric =
                    (distill_loss(&up, 2, &q, t, a) - distill_loss(&down, 2, &q, t, a)) / (2.0 * h);
                assert!(
                    (numeric - dz[k]).abs() < 1e-8,
                    "T {t} a {a} logit {k}: {numeric} vs {}",
                    dz[k]
                );
            }
        }
    }
}
