//! A deeper network: three hidden layers with (clipped) ReLU, then the output layer; softmax
//! cross-entropy. Forward and backward of each layer side by side.
//!
//! The first two hidden layers are dense by default, or of another [`LayerKind`]: windows of
//! the image with shared weights ([`crate::conv`]).
//!
//! The hidden activation is `clamp(pre, 0, ceiling)`: with an infinite ceiling it is ReLU; a
//! finite one is the range an 8-bit activation code can hold, so that the gradient of this
//! network is the straight-through gradient of the quantized one (see [`crate::qat`]).

use crate::layer::{DenseKind, LayerKind, Linear};
use crate::loss::{cross_entropy, cross_entropy_backward};
use crate::params::{Params, Tensor, TensorKind, TensorMut};
use crate::softmax::argmax;
use crate::{Dense, Init, Rng, Scalar};

/// Number of hidden layers of a [`Deep`].
pub const HIDDEN_LAYERS: usize = 3;

/// `logits = act(act(act(x W1 + b1) W2 + b2) W3 + b3) W4 + b4`, `act` a clipped ReLU; the
/// first two layers of kinds `K1` and `K2` (dense unless given).
#[derive(Clone, Debug, PartialEq, bytemuck::Zeroable)]
#[zeroable(bound = "")]
#[repr(C)]
pub struct Deep<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    S: Scalar = f32,
    K1: LayerKind<IN, H1> = DenseKind,
    K2: LayerKind<H1, H2> = DenseKind,
> {
    /// First hidden layer.
    pub l1: K1::Of<S>,
    /// Second hidden layer.
    pub l2: K2::Of<S>,
    /// Third hidden layer.
    pub l3: Dense<H2, H3, S>,
    /// Output layer.
    pub out: Dense<H3, OUT, S>,
}

/// The clipping ceiling of each hidden layer's activation (infinite: plain ReLU).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ceilings<S: Scalar>(pub [S; HIDDEN_LAYERS]);

impl<S: Scalar> Ceilings<S> {
    /// No clipping: ReLU.
    pub fn relu() -> Self {
        Self([S::from_f64(f64::INFINITY); HIDDEN_LAYERS])
    }
}

/// One forward pass, kept for the backward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepActivations<
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    S: Scalar = f32,
> {
    /// Pre-activations of the first hidden layer.
    pub pre1: [S; H1],
    /// Activations of the first hidden layer.
    pub h1: [S; H1],
    /// Pre-activations of the second.
    pub pre2: [S; H2],
    /// Activations of the second.
    pub h2: [S; H2],
    /// Pre-activations of the third.
    pub pre3: [S; H3],
    /// Activations of the third.
    pub h3: [S; H3],
    /// Logits.
    pub logits: [S; OUT],
}

impl<const H1: usize, const H2: usize, const H3: usize, const OUT: usize, S: Scalar> Default
    for DeepActivations<H1, H2, H3, OUT, S>
{
    fn default() -> Self {
        Self {
            pre1: [S::ZERO; H1],
            h1: [S::ZERO; H1],
            pre2: [S::ZERO; H2],
            h2: [S::ZERO; H2],
            pre3: [S::ZERO; H3],
            h3: [S::ZERO; H3],
            logits: [S::ZERO; OUT],
        }
    }
}

/// Clipped ReLU, forward: `y = clamp(x, 0, ceiling)`.
#[inline]
pub fn clipped_relu_forward<S: Scalar, const N: usize>(x: &[S; N], ceiling: S, y: &mut [S; N]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = if x <= S::ZERO {
            S::ZERO
        } else if x >= ceiling {
            ceiling
        } else {
            x
        };
    }
}

/// Clipped ReLU, backward: `dx = dy` where `0 < x < ceiling`, else 0 (as ReLU at 0).
#[inline]
pub fn clipped_relu_backward<S: Scalar, const N: usize>(
    x: &[S; N],
    ceiling: S,
    dy: &[S; N],
    dx: &mut [S; N],
) {
    for ((dx, &dy), &x) in dx.iter_mut().zip(dy).zip(x) {
        *dx = if x > S::ZERO && x < ceiling {
            dy
        } else {
            S::ZERO
        };
    }
}

impl<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    S: Scalar,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
> Deep<IN, H1, H2, H3, OUT, S, K1, K2>
{
    /// All parameters zero (also the shape of a gradient).
    pub fn zeros() -> Self {
        bytemuck::Zeroable::zeroed()
    }

    /// He initialization for the hidden layers, Xavier for the output layer, zero biases.
    pub fn init(&mut self, rng: &mut Rng) {
        self.l1.init(Init::He, rng);
        self.l2.init(Init::He, rng);
        self.l3.init(Init::He, rng);
        self.out.init(Init::Xavier, rng);
    }

    /// Forward pass of one sample, keeping the intermediate values in `act`.
    pub fn forward(
        &self,
        x: &[S; IN],
        ceilings: &Ceilings<S>,
        act: &mut DeepActivations<H1, H2, H3, OUT, S>,
    ) {
        let [c1, c2, c3] = ceilings.0;
        self.l1.forward(x, &mut act.pre1);
        clipped_relu_forward(&act.pre1, c1, &mut act.h1);
        self.l2.forward(&act.h1, &mut act.pre2);
        clipped_relu_forward(&act.pre2, c2, &mut act.h2);
        self.l3.forward(&act.h2, &mut act.pre3);
        clipped_relu_forward(&act.pre3, c3, &mut act.h3);
        self.out.forward(&act.h3, &mut act.logits);
    }

    /// Backward pass of one sample from the gradient `dz` of its logits: adds the parameter
    /// gradient to `grad`. `act` is what the forward pass left (or, for quantization-aware
    /// training, the quantized network's values in the same units).
    pub fn backward(
        &self,
        x: &[S; IN],
        ceilings: &Ceilings<S>,
        act: &DeepActivations<H1, H2, H3, OUT, S>,
        dz: &[S; OUT],
        grad: &mut Self,
    ) {
        let [c1, c2, c3] = ceilings.0;
        self.out.backward_params(&act.h3, dz, &mut grad.out);
        let mut dh3 = [S::ZERO; H3];
        self.out.backward_input(dz, &mut dh3);
        let mut dpre3 = [S::ZERO; H3];
        clipped_relu_backward(&act.pre3, c3, &dh3, &mut dpre3);

        self.l3.backward_params(&act.h2, &dpre3, &mut grad.l3);
        let mut dh2 = [S::ZERO; H2];
        self.l3.backward_input(&dpre3, &mut dh2);
        let mut dpre2 = [S::ZERO; H2];
        clipped_relu_backward(&act.pre2, c2, &dh2, &mut dpre2);

        self.l2.backward_params(&act.h1, &dpre2, &mut grad.l2);
        let mut dh1 = [S::ZERO; H1];
        self.l2.backward_input(&dpre2, &mut dh1);
        let mut dpre1 = [S::ZERO; H1];
        clipped_relu_backward(&act.pre1, c1, &dh1, &mut dpre1);

        self.l1.backward_params(x, &dpre1, &mut grad.l1);
    }

    /// Logits of one sample.
    pub fn logits(&self, x: &[S; IN], ceilings: &Ceilings<S>) -> [S; OUT] {
        let mut act = DeepActivations::default();
        self.forward(x, ceilings, &mut act);
        act.logits
    }

    /// The predicted class of one sample.
    pub fn predict(&self, x: &[S; IN], ceilings: &Ceilings<S>) -> usize {
        argmax(&self.logits(x, ceilings))
    }

    /// Mean cross-entropy over a batch. Labels must be `< OUT`.
    pub fn loss(&self, xs: &[[S; IN]], labels: &[u8], ceilings: &Ceilings<S>) -> S {
        assert!(xs.len() == labels.len() && !xs.is_empty(), "batch");
        let mut sum = S::ZERO;
        for (x, &y) in xs.iter().zip(labels) {
            sum += cross_entropy(&self.logits(x, ceilings), y as usize);
        }
        sum / S::from_f64(xs.len() as f64)
    }

    /// Backprop over a batch: overwrites `grad` with the gradient of the mean loss and returns
    /// the mean loss.
    pub fn backprop(
        &self,
        xs: &[[S; IN]],
        labels: &[u8],
        ceilings: &Ceilings<S>,
        grad: &mut Self,
    ) -> S {
        assert!(xs.len() == labels.len() && !xs.is_empty(), "batch");
        grad.fill_zero();
        let mut act = DeepActivations::default();
        let mut sum = S::ZERO;
        for (x, &y) in xs.iter().zip(labels) {
            self.forward(x, ceilings, &mut act);
            let mut dz = [S::ZERO; OUT];
            sum += cross_entropy_backward(&act.logits, y as usize, &mut dz);
            self.backward(x, ceilings, &act, &dz, grad);
        }
        let inv = S::ONE / S::from_f64(xs.len() as f64);
        grad.scale(inv);
        sum * inv
    }
}

fn weight<'a, S>(name: &'static str, data: &'a [S]) -> Tensor<'a, S> {
    let kind = TensorKind::Weight;
    Tensor { name, kind, data }
}

fn bias<'a, S>(name: &'static str, data: &'a [S]) -> Tensor<'a, S> {
    let kind = TensorKind::Bias;
    Tensor { name, kind, data }
}

fn weight_mut<'a, S>(name: &'static str, data: &'a mut [S]) -> TensorMut<'a, S> {
    let kind = TensorKind::Weight;
    TensorMut { name, kind, data }
}

fn bias_mut<'a, S>(name: &'static str, data: &'a mut [S]) -> TensorMut<'a, S> {
    let kind = TensorKind::Bias;
    TensorMut { name, kind, data }
}

/// Tensor names in order: weights and bias of each layer.
pub const TENSOR_NAMES: [&str; 8] = ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"];

impl<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    S: Scalar,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
> Params<S> for Deep<IN, H1, H2, H3, OUT, S, K1, K2>
{
    fn tensor_count(&self) -> usize {
        8
    }

    fn tensor(&self, k: usize) -> Tensor<'_, S> {
        let name = TENSOR_NAMES[k];
        match k {
            0 => weight(name, self.l1.weights()),
            1 => bias(name, self.l1.bias()),
            2 => weight(name, self.l2.weights()),
            3 => bias(name, self.l2.bias()),
            4 => self.l3.weight_tensor(name),
            5 => self.l3.bias_tensor(name),
            6 => self.out.weight_tensor(name),
            7 => self.out.bias_tensor(name),
            _ => panic!("Deep has 8 tensors"),
        }
    }

    fn tensor_mut(&mut self, k: usize) -> TensorMut<'_, S> {
        let name = TENSOR_NAMES[k];
        match k {
            0 => weight_mut(name, self.l1.weights_mut()),
            1 => bias_mut(name, self.l1.bias_mut()),
            2 => weight_mut(name, self.l2.weights_mut()),
            3 => bias_mut(name, self.l2.bias_mut()),
            4 => self.l3.weight_tensor_mut(name),
            5 => self.l3.bias_tensor_mut(name),
            6 => self.out.weight_tensor_mut(name),
            7 => self.out.bias_tensor_mut(name),
            _ => panic!("Deep has 8 tensors"),
        }
    }
}
