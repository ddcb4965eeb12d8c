//! A fully connected layer, forward and backward.

use crate::params::{Tensor, TensorKind, TensorMut};
use crate::{Init, Rng, Scalar};

/// `y = x W + b` with `x: [IN]`, `W: [IN][OUT]`, `b: [OUT]`.
///
/// Input-major layout: row `i` of `w` holds the weights leaving input `i`. The forward pass is
/// then a sum of contiguous rows scaled by the inputs, and a zero input (about 81% of MNIST
/// pixels) skips its whole row, in the forward pass and in the weight gradient alike.
///
/// `#[repr(C)]`: the layout is fixed (`w` row by row, then `b`, no padding), so a model can be
/// laid out in flash at build time and used in place (see the firmware's `model` module).
#[derive(Clone, Debug, PartialEq, bytemuck::Zeroable)]
// The scalar is `Zeroable` already (see `Scalar`): no bound to add.
#[zeroable(bound = "")]
#[repr(C)]
pub struct Dense<const IN: usize, const OUT: usize, S: Scalar = f32> {
    /// Weights, `w[i][o]` from input `i` to output `o`.
    pub w: [[S; OUT]; IN],
    /// Biases.
    pub b: [S; OUT],
}

impl<const IN: usize, const OUT: usize, S: Scalar> Dense<IN, OUT, S> {
    /// All weights and biases zero.
    pub fn zeros() -> Self {
        Self {
            w: [[S::ZERO; OUT]; IN],
            b: [S::ZERO; OUT],
        }
    }

    /// Draws the weights with `init` and zeroes the biases.
    pub fn init(&mut self, init: Init, rng: &mut Rng) {
        init.fill(self.w.as_flattened_mut(), IN, OUT, rng);
        self.b = [S::ZERO; OUT];
    }

    /// `y = x W + b`. Zero inputs are skipped.
    #[inline]
    pub fn forward(&self, x: &[S; IN], y: &mut [S; OUT]) {
        *y = self.b;
        for (&xi, row) in x.iter().zip(&self.w) {
            if xi != S::ZERO {
                for (yo, &wo) in y.iter_mut().zip(row) {
                    *yo += xi * wo;
                }
            }
        }
    }

    /// Accumulates this sample's parameter gradient into `grad`:
    /// `dW += x^T dy`, `db += dy`. Zero inputs are skipped.
    #[inline]
    pub fn backward_params(&self, x: &[S; IN], dy: &[S; OUT], grad: &mut Self) {
        for (gb, &d) in grad.b.iter_mut().zip(dy) {
            *gb += d;
        }
        for (&xi, grow) in x.iter().zip(grad.w.iter_mut()) {
            if xi != S::ZERO {
                for (g, &d) in grow.iter_mut().zip(dy) {
                    *g += xi * d;
                }
            }
        }
    }

    /// Gradient with respect to the input: `dx = W dy`.
    #[inline]
    pub fn backward_input(&self, dy: &[S; OUT], dx: &mut [S; IN]) {
        for (dxi, row) in dx.iter_mut().zip(&self.w) {
            let mut acc = S::ZERO;
            for (&w, &d) in row.iter().zip(dy) {
                acc += w * d;
            }
            *dxi = acc;
        }
    }

    /// The weight tensor, named `name`.
    pub fn weight_tensor(&self, name: &'static str) -> Tensor<'_, S> {
        Tensor {
            name,
            kind: TensorKind::Weight,
            data: self.w.as_flattened(),
        }
    }

    /// The bias tensor, named `name`.
    pub fn bias_tensor(&self, name: &'static str) -> Tensor<'_, S> {
        Tensor {
            name,
            kind: TensorKind::Bias,
            data: &self.b,
        }
    }

    /// The weight tensor, mutably.
    pub fn weight_tensor_mut(&mut self, name: &'static str) -> TensorMut<'_, S> {
        TensorMut {
            name,
            kind: TensorKind::Weight,
            data: self.w.as_flattened_mut(),
        }
    }

    /// The bias tensor, mutably.
    pub fn bias_tensor_mut(&mut self, name: &'static str) -> TensorMut<'_, S> {
        TensorMut {
            name,
            kind: TensorKind::Bias,
            data: &mut self.b,
        }
    }
}

/// A layer on its own as parameters: `W`, then `b` (e.g. to train only the output layer).
impl<const IN: usize, const OUT: usize, S: Scalar> crate::Params<S> for Dense<IN, OUT, S> {
    fn tensor_count(&self) -> usize {
        2
    }

    fn tensor(&self, k: usize) -> Tensor<'_, S> {
        match k {
            0 => self.weight_tensor("W"),
            1 => self.bias_tensor("b"),
            _ => panic!("Dense has 2 tensors"),
        }
    }

    fn tensor_mut(&mut self, k: usize) -> TensorMut<'_, S> {
        match k {
            0 => self.weight_tensor_mut("W"),
            1 => self.bias_tensor_mut("b"),
            _ => panic!("Dense has 2 tensors"),
        }
    }
}
