//! Numerical differentiation of an [`Mlp`] that scales: the same central differences as
//! [`crate::numgrad`], `(L(w + h) - L(w - h)) / 2h` with the same `h`, but each perturbed loss
//! is re-evaluated only where the perturbation reaches.
//!
//! - A weight `W1[i][j]` moves one hidden pre-activation, `pre_j += +-h x_i`, and only in the
//!   samples whose pixel `i` is lit (81% of MNIST pixels are 0 and are skipped). Through ReLU
//!   and `W2[j]` that moves every logit by `da * W2[j][k]`.
//! - A weight `W2[j][k]` moves one logit, `z_k += +-h a_j`, in the samples where unit `j` is on.
//!
//! Each sample's loss change is computed directly, not as the difference of two losses of order
//! 1: with `p = softmax(z)`, the loss after logits move by `c` is
//! `L + ln(1 + sum_k p_k (e^{c_k} - 1)) - c_label`, evaluated with `exp_m1` and `ln_1p`, so
//! rounding stays relative to the (small) change. The two sides `+-h` are combined into one
//! logarithm. Because pixels are 8-bit, `e^{+-h x W2[j][k]} - 1` takes at most 255 values per
//! unit and sign: they are tabulated once per unit instead of recomputed per sample.

use crate::loss::cross_entropy;
use crate::pixels::normalize;
use crate::softmax::softmax;
use crate::{Activations, Mlp, Scalar};

/// What the numerical gradient reuses of one sample's forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleState<const HIDDEN: usize, const OUT: usize, S: Scalar = f32> {
    /// Hidden pre-activations.
    pub pre: [S; HIDDEN],
    /// Hidden activations.
    pub hidden: [S; HIDDEN],
    /// Softmax of the logits.
    pub probs: [S; OUT],
    /// Class label.
    pub label: u8,
}

impl<const HIDDEN: usize, const OUT: usize, S: Scalar> Default for SampleState<HIDDEN, OUT, S> {
    fn default() -> Self {
        Self {
            pre: [S::ZERO; HIDDEN],
            hidden: [S::ZERO; HIDDEN],
            probs: [S::ZERO; OUT],
            label: 0,
        }
    }
}

/// `ln(1 + s_plus) - ln(1 + s_minus)` as one logarithm.
#[inline]
fn log_ratio<S: Scalar>(s_plus: S, s_minus: S) -> S {
    ((s_plus - s_minus) / (S::ONE + s_minus)).ln_1p()
}

/// `sum_k p_k t_k`.
#[inline]
fn dot<S: Scalar, const N: usize>(p: &[S; N], t: &[S; N]) -> S {
    let mut acc = S::ZERO;
    for (&a, &b) in p.iter().zip(t) {
        acc += a * b;
    }
    acc
}

impl<const IN: usize, const HIDDEN: usize, const OUT: usize, S: Scalar> Mlp<IN, HIDDEN, OUT, S> {
    /// Forward pass of a batch of 8-bit images for the numerical gradient; fills one state per
    /// sample and returns the mean loss.
    pub fn numeric_prepare(
        &self,
        pixels: &[[u8; IN]],
        labels: &[u8],
        states: &mut [SampleState<HIDDEN, OUT, S>],
    ) -> S {
        assert!(
            pixels.len() == labels.len() && labels.len() == states.len() && !labels.is_empty(),
            "batch, labels and states must have the same, non-zero length"
        );
        let mut x = [S::ZERO; IN];
        let mut act = Activations::default();
        let mut sum = S::ZERO;
        for ((img, &label), state) in pixels.iter().zip(labels).zip(states.iter_mut()) {
            normalize(img, &mut x);
            self.forward(&x, &mut act);
            softmax(&act.logits, &mut state.probs);
            state.pre = act.pre;
            state.hidden = act.hidden;
            state.label = label;
            sum += cross_entropy(&act.logits, label as usize);
        }
        sum / S::from_f64(labels.len() as f64)
    }

    /// Central differences of the mean loss for hidden unit `j`: `W1[i][j]` for every pixel `i`
    /// into `column[i]`, and `b1[j]` (returned). `states` from [`Mlp::numeric_prepare`].
    pub fn numeric_hidden_unit(
        &self,
        pixels: &[[u8; IN]],
        states: &[SampleState<HIDDEN, OUT, S>],
        h: S,
        j: usize,
        column: &mut [S; IN],
    ) -> S {
        let w2 = &self.output.w[j];
        // e^{+-h x W2[j][k]} - 1 for every pixel value; x(255) = 1 serves the bias.
        let mut plus = [[S::ZERO; OUT]; 256];
        let mut minus = [[S::ZERO; OUT]; 256];
        let mut step = [S::ZERO; 256];
        let mut levels = [0u8; 256];
        for (v, l) in levels.iter_mut().enumerate() {
            *l = v as u8;
        }
        normalize(&levels, &mut step);
        for v in 1..256 {
            step[v] = h * step[v];
            for k in 0..OUT {
                plus[v][k] = (step[v] * w2[k]).exp_m1();
                minus[v][k] = (-(step[v] * w2[k])).exp_m1();
            }
        }

        column.fill(S::ZERO);
        let mut bias = S::ZERO;
        for (img, st) in pixels.iter().zip(states) {
            let p = st.pre[j];
            let w_label = w2[st.label as usize];
            // The change of this sample's loss, L(+d) - L(-d), for a move of pre_j by +-d.
            let diff = |v: usize| -> S {
                let d = step[v];
                if p - d > S::ZERO {
                    // Active on both sides: the activation moves by exactly +-d.
                    let s_plus = dot(&st.probs, &plus[v]);
                    let s_minus = dot(&st.probs, &minus[v]);
                    log_ratio(s_plus, s_minus) - (d + d) * w_label
                } else if p + d <= S::ZERO {
                    // Off on both sides: nothing changes.
                    S::ZERO
                } else {
                    // The perturbation crosses the ReLU's kink: evaluate it as it is.
                    let a = st.hidden[j];
                    let da_plus = (p + d).max(S::ZERO) - a;
                    let da_minus = (p - d).max(S::ZERO) - a;
                    let mut s_plus = S::ZERO;
                    let mut s_minus = S::ZERO;
                    for (&pk, &w) in st.probs.iter().zip(w2) {
                        s_plus += pk * (da_plus * w).exp_m1();
                        s_minus += pk * (da_minus * w).exp_m1();
                    }
                    log_ratio(s_plus, s_minus) - (da_plus - da_minus) * w_label
                }
            };
            for (c, &v) in column.iter_mut().zip(img) {
                if v != 0 {
                    *c += diff(v as usize);
                }
            }
            bias += diff(255);
        }
        let scale = S::ONE / ((h + h) * S::from_f64(states.len() as f64));
        for c in column.iter_mut() {
            *c *= scale;
        }
        bias * scale
    }

    /// Central differences of the mean loss for the output layer, written into `grad`.
    pub fn numeric_output_layer(
        &self,
        states: &[SampleState<HIDDEN, OUT, S>],
        h: S,
        grad: &mut crate::Dense<HIDDEN, OUT, S>,
    ) {
        output_layer_central_differences(
            states.iter().map(|st| (&st.hidden, &st.probs, st.label)),
            h,
            grad,
        );
    }

    /// The whole structured numerical gradient of the mean loss over a batch of 8-bit images,
    /// single-threaded (a host may run [`Mlp::numeric_hidden_unit`] for different units in
    /// parallel instead). Returns the mean loss.
    pub fn numeric_gradient(
        &self,
        pixels: &[[u8; IN]],
        labels: &[u8],
        h: S,
        states: &mut [SampleState<HIDDEN, OUT, S>],
        grad: &mut Self,
    ) -> S {
        let loss = self.numeric_prepare(pixels, labels, states);
        let mut column = [S::ZERO; IN];
        for j in 0..HIDDEN {
            grad.hidden.b[j] = self.numeric_hidden_unit(pixels, states, h, j, &mut column);
            for (row, &c) in grad.hidden.w.iter_mut().zip(&column) {
                row[j] = c;
            }
        }
        self.numeric_output_layer(states, h, &mut grad.output);
        loss
    }
}

/// Central differences `(L(w + h) - L(w - h)) / 2h` of the mean loss over a batch for every
/// weight and bias of an output layer, written into `grad`; each sample is its layer input
/// `hidden`, the softmax `probs` of its logits and its label.
///
/// A weight `W[j][k]` moves logit `k` by `+-d = +-h hidden[j]`, a bias by `+-h`: the sample's
/// loss then changes by `ln(1 + p_k (e^{+-d} - 1)) -+ d [k == label]`, computed directly (see
/// the module docs). Only the layer's input and softmax are needed, not the layer before it:
/// a device fine-tuning its output layer keeps just these per sample.
pub fn output_layer_central_differences<'a, const HIDDEN: usize, const OUT: usize, S: Scalar>(
    samples: impl Iterator<Item = (&'a [S; HIDDEN], &'a [S; OUT], u8)>,
    h: S,
    grad: &mut crate::Dense<HIDDEN, OUT, S>,
) {
    grad.w = [[S::ZERO; OUT]; HIDDEN];
    grad.b = [S::ZERO; OUT];
    let diff = |probs: &[S; OUT], label: u8, k: usize, d: S, e_plus: S, e_minus: S| {
        let mut r = log_ratio(probs[k] * e_plus, probs[k] * e_minus);
        if k == label as usize {
            r -= d + d;
        }
        r
    };
    let mut n = 0usize;
    for (hidden, probs, label) in samples {
        n += 1;
        for (row, &a) in grad.w.iter_mut().zip(hidden) {
            if a != S::ZERO {
                let d = h * a;
                let (e_plus, e_minus) = (d.exp_m1(), (-d).exp_m1());
                for (k, g) in row.iter_mut().enumerate() {
                    *g += diff(probs, label, k, d, e_plus, e_minus);
                }
            }
        }
        let (e_plus, e_minus) = (h.exp_m1(), (-h).exp_m1());
        for (k, g) in grad.b.iter_mut().enumerate() {
            *g += diff(probs, label, k, h, e_plus, e_minus);
        }
    }
    let scale = S::ONE / ((h + h) * S::from_f64(n.max(1) as f64));
    for row in grad.w.iter_mut() {
        for g in row.iter_mut() {
            *g *= scale;
        }
    }
    for g in grad.b.iter_mut() {
        *g *= scale;
    }
}
