//! How far a gradient computed in a given precision may be from the true one: first-order
//! rounding-error bounds of the forward pass, the loss and backprop, and the truncation error of
//! a central difference, all from the network's own magnitudes on the batch.
//!
//! The network is a [`Stack`] of dense layers, each but the last followed by a clipped ReLU
//! `clamp(pre, 0, ceiling)` (ReLU when the ceiling is infinite): 784-128-10 and the compact
//! networks alike. A convolution is the dense layer it stands for (each window's units reading
//! their window, zeros elsewhere); its shared parameter is all its copies at once: its
//! gradient is their sum, a step moves them all. Rounding follows the standard bounds for recursive summation and dot
//! products (a sum of `n` terms is off by at most `n u` times the sum of their magnitudes, `u`
//! the unit roundoff), kept to first order in `u`; [`SAFETY`] covers the second-order terms and
//! the library's `exp` and `ln` (each within one unit in the last place). The derivation:
//! docs/design.md, "Gradients three ways".

use digits_core::conv::Windows;
use digits_core::{Params, Scalar};

/// Multiplies every first-order rounding bound: its neglected higher-order terms and the
/// elementary functions' own rounding are well within it.
pub const SAFETY: f64 = 2.0;

/// Unit roundoff of a precision: half its machine epsilon.
pub fn unit_roundoff<S: Scalar>() -> f64 {
    S::EPSILON.to_f64() / 2.0
}

/// One dense layer in `f64`: `pre = x W + b`.
pub struct Layer {
    /// Inputs.
    pub inputs: usize,
    /// Units.
    pub outputs: usize,
    /// Weights, row-major `[inputs][outputs]`, as the networks store them.
    pub w: Vec<f64>,
    /// Biases.
    pub b: Vec<f64>,
    /// For a convolution (expanded into `w` and `b`), its windows; its parameters are then
    /// `[patch][units]` weights and `units` biases, each shared by every window.
    pub windows: Option<Windows>,
}

impl Layer {
    /// A convolution's dense equivalent, from its shared `[patch][units]` weights and biases.
    fn expanded(windows: Windows, w: &[f64], b: &[f64]) -> Self {
        let units = b.len();
        let (inputs, outputs) = (windows.inputs(), windows.positions() * units);
        let mut dense = vec![0.0; inputs * outputs];
        for p in 0..windows.positions() {
            for e in 0..windows.patch() {
                let i = windows.source(p, e);
                dense[i * outputs + p * units..][..units].copy_from_slice(&w[e * units..][..units]);
            }
        }
        Layer {
            inputs,
            outputs,
            w: dense,
            b: (0..outputs).map(|k| b[k % units]).collect(),
            windows: Some(windows),
        }
    }

    /// Parameters of the network's own tensors: the shared ones of a convolution.
    fn parameters(&self) -> usize {
        match self.windows {
            Some(w) => {
                let units = self.outputs / w.positions();
                (w.patch() + 1) * units
            }
            None => (self.inputs + 1) * self.outputs,
        }
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.w[i * self.outputs..(i + 1) * self.outputs]
    }
}

/// A network as the bounds see it, in the reference precision.
pub struct Stack {
    /// Dense layers, first to last.
    pub layers: Vec<Layer>,
    /// The clipping ceiling after each hidden layer (infinite: ReLU).
    pub ceilings: Vec<f64>,
}

impl Stack {
    /// From a network whose tensors are each layer's weights then its bias, first to last, the
    /// ceiling of each hidden layer and the windows of each convolution (none: all dense).
    pub fn new(
        net: &(impl Params<f64> + ?Sized),
        ceilings: &[f64],
        windows: &[Option<Windows>],
    ) -> Self {
        assert_eq!(net.tensor_count(), 2 * (ceilings.len() + 1), "tensor count");
        let layers = (0..net.tensor_count() / 2)
            .map(|l| {
                let (w, b) = (net.tensor(2 * l).data, net.tensor(2 * l + 1).data);
                match windows.get(l).copied().flatten() {
                    Some(windows) => Layer::expanded(windows, w, b),
                    None => Layer {
                        inputs: w.len() / b.len(),
                        outputs: b.len(),
                        w: w.to_vec(),
                        b: b.to_vec(),
                        windows: None,
                    },
                }
            })
            .collect();
        Self {
            layers,
            ceilings: ceilings.to_vec(),
        }
    }

    /// Whether a hidden unit of layer `l` at pre-activation `pre` passes its gradient.
    fn active(&self, l: usize, pre: f64) -> bool {
        pre > 0.0 && pre < self.ceilings[l]
    }

    /// Distance of a pre-activation of hidden layer `l` to its nearest kink (0 or the ceiling).
    fn to_kink(&self, l: usize, pre: f64) -> f64 {
        pre.abs().min((pre - self.ceilings[l]).abs())
    }
}

/// One sample's forward pass in `f64`, with what rounding in the checked precision may change.
/// Layers are counted from 0; hidden layer `l`'s activation is the input of layer `l + 1`.
struct Sample {
    /// Each layer's input: the network's input, then each hidden layer's activation.
    a: Vec<Vec<f64>>,
    /// Bound on the rounding error of each.
    a_err: Vec<Vec<f64>>,
    /// Each layer's pre-activation (the last layer's: the logits).
    pre: Vec<Vec<f64>>,
    /// Bound on the rounding error of each.
    pre_err: Vec<Vec<f64>>,
    /// `dL/dpre` of each layer as backprop gives it when no unit is within rounding of a kink
    /// (the last: `softmax(z) - onehot(label)`).
    d: Vec<Vec<f64>>,
    /// Bound on the rounding error of each (all of it where a unit may switch).
    d_err: Vec<Vec<f64>>,
    /// Per hidden layer and unit: the spread of the logits' move per unit of its activation,
    /// while no later unit changes state.
    spread: Vec<Vec<f64>>,
    /// Per hidden layer and unit: how far its activation may move before a later hidden unit
    /// comes within rounding of a kink (0: one already is).
    slack: Vec<Vec<f64>>,
    loss: f64,
    /// Bound on the rounding error of this sample's loss.
    loss_err: f64,
}

/// Error bounds of one batch in one precision (unit roundoff `u`).
pub struct Bounds<'a> {
    stack: &'a Stack,
    samples: Vec<Sample>,
    u: f64,
    /// Bound on the rounding error of the mean loss.
    pub loss_err: f64,
    /// The mean loss.
    pub loss: f64,
}

impl<'a> Bounds<'a> {
    /// Bounds for `stack` evaluated in a precision of unit roundoff `u` on a batch (`inputs`
    /// as the network takes them, each element the rounded quotient of an 8-bit value).
    pub fn new(stack: &'a Stack, inputs: &[impl AsRef<[f64]>], labels: &[u8], u: f64) -> Self {
        let n = labels.len() as f64;
        let samples: Vec<Sample> = inputs
            .iter()
            .zip(labels)
            .map(|(x, &y)| sample(stack, x.as_ref(), y as usize, u))
            .collect();
        let loss = samples.iter().map(|s| s.loss).sum::<f64>() / n;
        // Each sample's error, then the sum over the batch and the division.
        let loss_err = SAFETY
            * (samples.iter().map(|s| s.loss_err).sum::<f64>() / n + n * u * loss + u * loss);
        Self {
            stack,
            samples,
            u,
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
        let copies = Param::of(self.stack, index);
        // A shared parameter's gradient sums its copies' in each sample, then the batch.
        let sums = nb + copies.len() as f64 - 1.0;
        let e: f64 = copies
            .iter()
            .map(|&param| match param {
                // The input's own error carried by the gradient, the gradient's error carried
                // by the input, the product and the sums.
                Param::Weight { l, i, j } => {
                    self.mean(|s| {
                        s.a_err[l][i] * s.d[l][j].abs()
                            + s.a[l][i].abs() * (s.d_err[l][j] + 2.0 * u * s.d[l][j].abs())
                    }) + sums * u * self.mean(|s| (s.a[l][i] * s.d[l][j]).abs())
                }
                Param::Bias { l, j } => {
                    self.mean(|s| s.d_err[l][j]) + sums * u * self.mean(|s| s.d[l][j].abs())
                }
            })
            .sum();
        SAFETY * e
    }

    /// What the loss looks like along one parameter: bounds on its second and third derivatives
    /// (while no unit changes state), and the largest step that keeps every unit on its side
    /// of every kink in this precision (`None`: some sample sits on a kink, within rounding).
    pub fn along(&self, index: usize) -> Option<Along> {
        // Along one parameter the logits of a sample move on a line `z + t v` while no unit
        // changes state; the loss's k-th derivative is the k-th cumulant of `v` under
        // softmax(z), at most `r^2 / 4` (k = 2) and `r^3 / 4` (k = 3) for `r` the spread of `v`
        // (Popoviciu's inequality).
        // A shared parameter moves all its copies: the spreads add up (the spread of a sum is
        // at most the sum of the spreads), and each copy may use only its share of the room a
        // later unit leaves, as they all push it at once.
        let last = self.stack.layers.len() - 1;
        let copies = Param::of(self.stack, index);
        let mut m2 = 0.0;
        let mut m3 = 0.0;
        let mut max_step = f64::INFINITY;
        for s in &self.samples {
            let mut r = 0.0;
            for &param in &copies {
                r += match param {
                    Param::Weight { l, i, .. } if l == last => s.a[l][i].abs(),
                    Param::Bias { l, .. } if l == last => 1.0,
                    Param::Weight { l, i, j } => {
                        self.unit_spread(s, s.a[l][i], l, j, &mut max_step)?
                    }
                    Param::Bias { l, j } => self.unit_spread(s, 1.0, l, j, &mut max_step)?,
                };
            }
            m2 += r * r / 4.0;
            m3 += r * r * r / 4.0;
        }
        let n = self.samples.len() as f64;
        Some(Along {
            m2: m2 / n,
            m3: m3 / n,
            max_step: max_step / copies.len() as f64,
        })
    }

    /// The spread of the logits' move when unit `j` of hidden layer `l` moves by `scale` per
    /// unit of the parameter; lowers `max_step` so no step carries it or any later hidden unit
    /// across a kink, even allowing for rounding (`None`: one sits on a kink).
    fn unit_spread(
        &self,
        s: &Sample,
        scale: f64,
        l: usize,
        j: usize,
        max_step: &mut f64,
    ) -> Option<f64> {
        if scale == 0.0 {
            return Some(0.0);
        }
        let pre = s.pre[l][j];
        let mut room = self.stack.to_kink(l, pre) - s.pre_err[l][j];
        if room <= 0.0 {
            return None;
        }
        let active = self.stack.active(l, pre);
        if active {
            if s.slack[l][j] <= 0.0 {
                return None;
            }
            room = room.min(s.slack[l][j]);
        }
        *max_step = max_step.min(room / scale.abs());
        Some(if active {
            scale.abs() * s.spread[l][j]
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
    /// Largest step that crosses no kink.
    pub max_step: f64,
}

/// A parameter of a layer of the stack (for a convolution: of its dense equivalent).
#[derive(Clone, Copy)]
enum Param {
    Weight { l: usize, i: usize, j: usize },
    Bias { l: usize, j: usize },
}

impl Param {
    /// The stack's parameters that the network's flat parameter `index` is: one, or every copy
    /// of a convolution's shared one.
    fn of(stack: &Stack, mut index: usize) -> Vec<Self> {
        for (l, layer) in stack.layers.iter().enumerate() {
            if index >= layer.parameters() {
                index -= layer.parameters();
                continue;
            }
            let Some(w) = layer.windows else {
                let weights = layer.inputs * layer.outputs;
                return vec![if index < weights {
                    Param::Weight {
                        l,
                        i: index / layer.outputs,
                        j: index % layer.outputs,
                    }
                } else {
                    Param::Bias {
                        l,
                        j: index - weights,
                    }
                }];
            };
            let units = layer.outputs / w.positions();
            let weights = w.patch() * units;
            return (0..w.positions())
                .map(|p| {
                    if index < weights {
                        let (e, j) = (index / units, index % units);
                        Param::Weight {
                            l,
                            i: w.source(p, e),
                            j: p * units + j,
                        }
                    } else {
                        Param::Bias {
                            l,
                            j: p * units + index - weights,
                        }
                    }
                })
                .collect();
        }
        panic!("parameter index out of range");
    }
}

fn sample(stack: &Stack, x: &[f64], label: usize, u: f64) -> Sample {
    let depth = stack.layers.len();
    let last = depth - 1;
    // The input: each element the rounded quotient of an 8-bit value.
    let mut a = vec![x.to_vec()];
    let mut a_err = vec![x.iter().map(|v| u * v.abs()).collect::<Vec<f64>>()];
    let mut pre = Vec::with_capacity(depth);
    let mut pre_err = Vec::with_capacity(depth);
    for (l, layer) in stack.layers.iter().enumerate() {
        let (input, err) = (&a[l], &a_err[l]);
        // Zero terms are skipped or add exactly: count those that may not be zero.
        let terms = input
            .iter()
            .zip(err)
            .filter(|&(&v, &e)| v != 0.0 || e > 0.0)
            .count() as f64;
        let mut p = layer.b.clone();
        let mut mag: Vec<f64> = layer.b.iter().map(|b| b.abs()).collect();
        let mut carried = vec![0.0; layer.outputs];
        for (i, (&v, &e)) in input.iter().zip(err).enumerate() {
            if v == 0.0 && e == 0.0 {
                continue;
            }
            for (j, &w) in layer.row(i).iter().enumerate() {
                p[j] += v * w;
                mag[j] += (v * w).abs();
                carried[j] += e * w.abs();
            }
        }
        let p_err: Vec<f64> = (0..layer.outputs)
            .map(|j| (terms + 1.0) * u * mag[j] + carried[j])
            .collect();
        if l < last {
            let c = stack.ceilings[l];
            // Clipped ReLU moves its output no more than its input; a unit surely off or
            // surely clipped is exact.
            a.push(p.iter().map(|&v| v.clamp(0.0, c)).collect());
            a_err.push(
                p.iter()
                    .zip(&p_err)
                    .map(|(&v, &e)| if v + e <= 0.0 || v - e >= c { 0.0 } else { e })
                    .collect(),
            );
        }
        pre.push(p);
        pre_err.push(p_err);
    }
    let z = &pre[last];
    let logit_err = &pre_err[last];
    let lse = digits_core::softmax::log_sum_exp(z);
    let probs: Vec<f64> = z.iter().map(|v| (v - lse).exp()).collect();
    let dz: Vec<f64> = (0..z.len())
        .map(|k| probs[k] - f64::from(u8::from(k == label)))
        .collect();
    let loss = lse - z[label];
    // The loss moves by at most sum_k |dL/dz_k| dz_k; evaluating logsumexp and the subtraction
    // rounds a bounded number of times at the magnitude of the logits.
    let loss_err = dz
        .iter()
        .zip(logit_err)
        .map(|(d, e)| d.abs() * e)
        .sum::<f64>()
        + u * (20.0 + lse.abs() + loss.abs() + z[label].abs());
    let max_logit_err = logit_err.iter().copied().fold(0.0, f64::max);
    // softmax: the logits' error moves `p_k` by `p_k sum_{m != k} p_m (dz_k - dz_m)`, at most
    // twice the largest error times `p_k (1 - p_k)`; then its own evaluation.
    let dz_err: Vec<f64> = probs
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let others: f64 = probs
                .iter()
                .enumerate()
                .filter(|&(m, _)| m != k)
                .map(|(_, q)| q)
                .sum();
            p * (2.0 * max_logit_err * others + 14.0 * u) + u
        })
        .collect();
    let mut d = vec![Vec::new(); depth];
    let mut d_err = vec![Vec::new(); depth];
    d[last] = dz;
    d_err[last] = dz_err;
    for l in (0..last).rev() {
        let next = &stack.layers[l + 1];
        let (dn, en) = (&d[l + 1], &d_err[l + 1]);
        let terms = next.outputs as f64;
        let mut dl = vec![0.0; next.inputs];
        let mut el = vec![0.0; next.inputs];
        for j in 0..next.inputs {
            let w = next.row(j);
            let full: f64 = w.iter().zip(dn).map(|(w, d)| w * d).sum();
            let err: f64 = w
                .iter()
                .zip(dn)
                .zip(en)
                .map(|((w, d), e)| w.abs() * e + terms * u * (w * d).abs())
                .sum();
            let (p, e) = (pre[l][j], pre_err[l][j]);
            let active = stack.active(l, p);
            if stack.to_kink(l, p) <= e {
                // Rounding may switch the unit either way: backprop may give all or nothing.
                dl[j] = if active { full } else { 0.0 };
                el[j] = full.abs() + err;
            } else if active {
                dl[j] = full;
                el[j] = err;
            }
        }
        d[l] = dl;
        d_err[l] = el;
    }
    let (spread, slack) = sensitivities(stack, &pre, &pre_err);
    Sample {
        a,
        a_err,
        pre,
        pre_err,
        d,
        d_err,
        spread,
        slack,
        loss,
        loss_err,
    }
}

/// For each hidden unit, how the later layers see its activation under the sample's current
/// activation pattern: the spread of the logits' move per unit of it, and how far it may move
/// before a later hidden unit comes within rounding of a kink.
fn sensitivities(
    stack: &Stack,
    pre: &[Vec<f64>],
    pre_err: &[Vec<f64>],
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let last = stack.layers.len() - 1;
    let mut spread = Vec::with_capacity(last);
    let mut slack = Vec::with_capacity(last);
    for l in 0..last {
        let units = stack.layers[l].outputs;
        // `k[j][q]`: how far pre-activation `q` of layer `m` moves per unit of activation `j`.
        let mut k: Vec<Vec<f64>> = (0..units)
            .map(|j| stack.layers[l + 1].row(j).to_vec())
            .collect();
        let mut room = vec![f64::INFINITY; units];
        for m in l + 1..last {
            let next = &stack.layers[m + 1];
            for (kj, room) in k.iter_mut().zip(&mut room) {
                let mut moved = vec![0.0; next.outputs];
                for (q, &kq) in kj.iter().enumerate() {
                    if kq == 0.0 {
                        continue;
                    }
                    let left = stack.to_kink(m, pre[m][q]) - pre_err[m][q];
                    *room = room.min((left / kq.abs()).max(0.0));
                    if stack.active(m, pre[m][q]) {
                        for (o, &w) in moved.iter_mut().zip(next.row(q)) {
                            *o += kq * w;
                        }
                    }
                }
                *kj = moved;
            }
        }
        spread.push(
            k.iter()
                .map(|v| {
                    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    hi - lo
                })
                .collect(),
        );
        slack.push(room);
    }
    (spread, slack)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One input, one hidden unit `pre = x` clipped at 0.5, two logits `h` and `-h`.
    fn stack() -> Stack {
        let layer = |inputs, w: Vec<f64>| Layer {
            inputs,
            outputs: w.len() / inputs,
            b: vec![0.0; w.len() / inputs],
            w,
            windows: None,
        };
        Stack {
            layers: vec![layer(1, vec![1.0]), layer(1, vec![1.0, -1.0])],
            ceilings: vec![0.5],
        }
    }

    /// `b1`, the hidden unit's bias, as a flat index (after `W1`).
    const B1: usize = 1;

    fn along(x: f64) -> Option<Along> {
        let s = stack();
        Bounds::new(&s, &[[x]], &[0], unit_roundoff::<f32>()).along(B1)
    }

    #[test]
    fn the_ceiling_is_a_kink_like_zero() {
        assert!(along(0.5).is_none(), "on the ceiling");
        assert!(along(0.0).is_none(), "on zero");
        let active = along(0.25).unwrap();
        assert!(active.max_step < 0.25 && active.max_step > 0.2499);
        assert_eq!(active.m2, 1.0, "spread 2 between the logits");
        let clipped = along(0.75).unwrap();
        assert!(clipped.max_step < 0.25 && clipped.max_step > 0.2499);
        assert_eq!(clipped.m2, 0.0, "a clipped unit does not move the logits");
    }

    #[test]
    fn a_later_unit_near_its_kink_shortens_the_step() {
        // Two hidden layers: the second unit's pre-activation is `h1 - 0.2`, 0.05 from zero
        // when the first is 0.25.
        let mut s = stack();
        s.layers[1] = Layer {
            inputs: 1,
            outputs: 1,
            w: vec![1.0],
            b: vec![-0.2],
            windows: None,
        };
        s.layers.push(Layer {
            inputs: 1,
            outputs: 2,
            w: vec![1.0, -1.0],
            b: vec![0.0; 2],
            windows: None,
        });
        s.ceilings.push(f64::INFINITY);
        let a = Bounds::new(&s, &[[0.25]], &[0], unit_roundoff::<f64>())
            .along(B1)
            .unwrap();
        assert!(a.max_step < 0.05 && a.max_step > 0.0499, "{}", a.max_step);
    }
}
