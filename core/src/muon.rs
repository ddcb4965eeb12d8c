//! Muon (Jordan et al., 2024): momentum whose update of a weight matrix is orthogonalized, as
//! the reference `muon.py` does it.
//!
//! Adam scales every weight's step by its own history; Muon instead replaces the (Nesterov)
//! momentum matrix `G` by the nearest semi-orthogonal matrix, approximately `U Vᵀ` of its
//! singular value decomposition `U S Vᵀ`, so that every direction of the layer's map moves at the
//! same rate. The orthogonalization is five steps of a quintic Newton-Schulz iteration on
//! `X = G / |G|_F`: `X ← a X + (b A + c A²) X` with `A = X Xᵀ`, which drives every singular value
//! of `X` into about `[0.7, 1.2]` without ever computing the decomposition. It is meant for the
//! hidden layers' weight matrices; biases and the output layer stay with [`crate::Adam`].
//!
//! No heap: the caller lends the scratch ([`scratch_len`]).

use crate::Scalar;

/// The quintic's coefficients, chosen by Muon's authors for the fastest growth of small
/// singular values that still keeps the large ones near 1.
const A: f64 = 3.4445;
const B: f64 = -4.7750;
const C: f64 = 2.0315;
/// Added to the norm so that a zero matrix stays zero.
const NORM_EPSILON: f64 = 1e-7;

/// Muon's constants.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Muon {
    /// Decay of the momentum.
    pub momentum: f64,
    /// Newton-Schulz steps.
    pub steps: u32,
    /// Decoupled weight decay: `w -= lr * weight_decay * w`.
    pub weight_decay: f64,
}

impl Default for Muon {
    fn default() -> Self {
        Self {
            momentum: 0.95,
            steps: 5,
            weight_decay: 0.0,
        }
    }
}

/// Scalars of scratch [`Muon::step`] needs for an `inputs x outputs` matrix.
pub const fn scratch_len(inputs: usize, outputs: usize) -> usize {
    let (n, m) = if inputs < outputs {
        (inputs, outputs)
    } else {
        (outputs, inputs)
    };
    2 * n * m + 2 * n * n
}

/// Why a step was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MuonError {
    /// A slice does not have the matrix's size, or the scratch is too short.
    Shape,
}

impl core::fmt::Display for MuonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a Muon slice does not fit the matrix")
    }
}

impl Muon {
    /// One step of the weight matrix `w` (`inputs` rows of `outputs`, row-major, as
    /// [`crate::Dense::w`]) from its gradient `grad`, with the momentum `m` (same shape, zero at
    /// the start) and learning rate `lr`.
    #[allow(clippy::too_many_arguments)]
    pub fn step<S: Scalar>(
        &self,
        w: &mut [S],
        grad: &[S],
        m: &mut [S],
        inputs: usize,
        outputs: usize,
        lr: f64,
        scratch: &mut [S],
    ) -> Result<(), MuonError> {
        let len = inputs * outputs;
        if w.len() != len || grad.len() != len || m.len() != len {
            return Err(MuonError::Shape);
        }
        let (n, wide) = (inputs.min(outputs), inputs.max(outputs));
        let (x, rest) = scratch
            .get_mut(..scratch_len(inputs, outputs))
            .ok_or(MuonError::Shape)?
            .split_at_mut(n * wide);
        let beta = S::from_f64(self.momentum);
        let one_beta = S::ONE - beta;
        // Nesterov: the update looks ahead along the new momentum.
        let transposed = inputs > outputs;
        for i in 0..inputs {
            for o in 0..outputs {
                let k = i * outputs + o;
                m[k] = beta * m[k] + one_beta * grad[k];
                let u = one_beta * grad[k] + beta * m[k];
                x[if transposed { o * wide + i } else { k }] = u;
            }
        }
        orthogonalize(x, rest, n, wide, self.steps);
        // Taller matrices (more outputs than inputs) get a larger step, as in the reference.
        let gain = libm::sqrt((outputs as f64 / inputs as f64).max(1.0));
        let step = S::from_f64(lr * gain);
        let decay = S::ONE - S::from_f64(lr * self.weight_decay);
        for i in 0..inputs {
            for o in 0..outputs {
                let k = i * outputs + o;
                let u = x[if transposed { o * wide + i } else { k }];
                w[k] = w[k] * decay - step * u;
            }
        }
        Ok(())
    }
}

/// Replaces the `n x wide` matrix `x` (`n <= wide`, row-major) by its orthogonalized form,
/// `steps` quintic Newton-Schulz steps from `x / |x|_F`. `rest` holds `wide * n + 2 * n * n`
/// scalars.
pub fn orthogonalize<S: Scalar>(x: &mut [S], rest: &mut [S], n: usize, wide: usize, steps: u32) {
    let (next, rest) = rest.split_at_mut(n * wide);
    let (a, b) = rest.split_at_mut(n * n);
    let norm = x.iter().fold(S::ZERO, |s, &v| s + v * v).sqrt();
    let inv = S::ONE / (norm + S::from_f64(NORM_EPSILON));
    x.iter_mut().for_each(|v| *v *= inv);
    let (ca, cb, cc) = (S::from_f64(A), S::from_f64(B), S::from_f64(C));
    for _ in 0..steps {
        // a = X Xᵀ (symmetric).
        for i in 0..n {
            for j in i..n {
                let dot = dot(&x[i * wide..(i + 1) * wide], &x[j * wide..(j + 1) * wide]);
                a[i * n + j] = dot;
                a[j * n + i] = dot;
            }
        }
        // b = cb A + cc A².
        for i in 0..n {
            let row = &mut b[i * n..(i + 1) * n];
            for (r, &v) in row.iter_mut().zip(&a[i * n..(i + 1) * n]) {
                *r = cb * v;
            }
            for k in 0..n {
                let aik = cc * a[i * n + k];
                for (r, &v) in row.iter_mut().zip(&a[k * n..(k + 1) * n]) {
                    *r += aik * v;
                }
            }
        }
        // next = ca X + B X.
        for i in 0..n {
            let row = &mut next[i * wide..(i + 1) * wide];
            for (r, &v) in row.iter_mut().zip(&x[i * wide..(i + 1) * wide]) {
                *r = ca * v;
            }
            for k in 0..n {
                let bik = b[i * n + k];
                for (r, &v) in row.iter_mut().zip(&x[k * wide..(k + 1) * wide]) {
                    *r += bik * v;
                }
            }
        }
        x.copy_from_slice(next);
    }
}

fn dot<S: Scalar>(a: &[S], b: &[S]) -> S {
    a.iter().zip(b).fold(S::ZERO, |s, (&x, &y)| s + x * y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quintic applied `steps` times to one normalized singular value: what the iteration
    /// must do to each singular value of a matrix.
    fn quintic(mut s: f64, steps: u32) -> f64 {
        for _ in 0..steps {
            s = A * s + B * s * s * s + C * s * s * s * s * s;
        }
        s
    }

    /// A `d x d` orthogonal matrix: a product of Givens rotations by angles from `seed`.
    fn orthogonal(d: usize, seed: u64) -> std::vec::Vec<f64> {
        let mut q = std::vec![0.0; d * d];
        for i in 0..d {
            q[i * d + i] = 1.0;
        }
        let mut rng = crate::Rng::new(seed);
        for i in 0..d {
            for j in i + 1..d {
                let t = rng.uniform_in(-3.0, 3.0);
                let (c, s) = (t.cos(), t.sin());
                for r in 0..d {
                    let (qi, qj) = (q[r * d + i], q[r * d + j]);
                    q[r * d + i] = c * qi - s * qj;
                    q[r * d + j] = s * qi + c * qj;
                }
            }
        }
        q
    }

    extern crate std;

    #[test]
    fn orthogonalize_maps_each_singular_value_through_the_quintic() {
        // G = U diag(s) Vᵀ with known U, V, s; the iteration must give U diag(p⁵(s/|s|)) Vᵀ.
        let (n, wide) = (5, 9);
        let (u, v) = (orthogonal(n, 1), orthogonal(wide, 2));
        let s = [4.0, 1.5, 0.8, 0.05, 0.002];
        let norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
        let mut x = std::vec![0.0f64; n * wide];
        let mut expect = std::vec![0.0f64; n * wide];
        for i in 0..n {
            for j in 0..wide {
                for (k, &sk) in s.iter().enumerate() {
                    x[i * wide + j] += u[i * n + k] * sk * v[j * wide + k];
                    expect[i * wide + j] +=
                        u[i * n + k] * quintic(sk / (norm + NORM_EPSILON), 5) * v[j * wide + k];
                }
            }
        }
        let mut rest = std::vec![0.0f64; n * wide + 2 * n * n];
        orthogonalize(&mut x, &mut rest, n, wide, 5);
        let worst = x
            .iter()
            .zip(&expect)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // f64 rounding over five steps of three products of at most 9 terms.
        const TOLERANCE: f64 = 1e-12;
        std::println!("worst difference from the quintic on the singular values: {worst:.2e}");
        assert!(worst < TOLERANCE, "worst {worst:e}");
        // And the large singular values did land near 1: the row norms of U diag(p(s)) Vᵀ.
        assert!((0.6..1.25).contains(&quintic(4.0 / norm, 5)));
    }

    #[test]
    fn a_step_moves_against_the_gradient_by_an_orthogonal_update() {
        // A diagonal gradient of a square matrix: its polar factor is the sign pattern, so
        // every diagonal weight moves by lr times p⁵(1/sqrt(d)) against its gradient's sign.
        let d = 4;
        let mut grad = std::vec![0.0f64; d * d];
        for i in 0..d {
            grad[i * d + i] = if i % 2 == 0 { 2.0 } else { -2.0 };
        }
        let mut w = std::vec![0.0f64; d * d];
        let mut m = std::vec![0.0f64; d * d];
        let mut scratch = std::vec![0.0f64; scratch_len(d, d)];
        let lr = 0.1;
        Muon::default()
            .step(&mut w, &grad, &mut m, d, d, lr, &mut scratch)
            .unwrap();
        // The Nesterov update is 0.0975 g; normalized, every diagonal entry is the same.
        let norm = 0.0975 * 2.0 * (d as f64).sqrt();
        let moved = lr * quintic(0.0975 * 2.0 / (norm + NORM_EPSILON), 5);
        for i in 0..d {
            for j in 0..d {
                let want = if i != j {
                    0.0
                } else if i % 2 == 0 {
                    -moved
                } else {
                    moved
                };
                assert!((w[i * d + j] - want).abs() < 1e-12, "{w:?}");
            }
        }
    }

    #[test]
    fn a_tall_and_a_wide_matrix_give_transposed_steps() {
        // The update of Wᵀ from Gᵀ is the transpose of the update of W from G, except for the
        // reference's gain sqrt(outputs / inputs) on matrices with more outputs than inputs.
        let (r, c) = (3, 7);
        let mut rng = crate::Rng::new(5);
        let g: std::vec::Vec<f64> = (0..r * c).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let gt: std::vec::Vec<f64> = (0..c * r).map(|k| g[(k % r) * c + k / r]).collect();
        let mut scratch = std::vec![0.0f64; scratch_len(r, c)];
        let (mut w, mut m) = (std::vec![0.0; r * c], std::vec![0.0; r * c]);
        let (mut wt, mut mt) = (std::vec![0.0; r * c], std::vec![0.0; r * c]);
        let muon = Muon::default();
        muon.step(&mut w, &g, &mut m, r, c, 1.0, &mut scratch)
            .unwrap();
        muon.step(&mut wt, &gt, &mut mt, c, r, 1.0, &mut scratch)
            .unwrap();
        let gain = (c as f64 / r as f64).sqrt();
        for i in 0..r {
            for j in 0..c {
                assert!((w[i * c + j] - gain * wt[j * r + i]).abs() < 1e-12);
            }
        }
        assert_eq!(
            muon.step(&mut w, &g, &mut m, r, c, 1.0, &mut scratch[..5]),
            Err(MuonError::Shape)
        );
    }
}
