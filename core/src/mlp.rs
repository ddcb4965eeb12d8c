//! The network: dense -> ReLU -> dense -> softmax, trained with cross-entropy.

use crate::activation::{relu_backward, relu_forward};
use crate::loss::{cross_entropy, cross_entropy_backward};
use crate::params::{Params, Tensor, TensorMut};
use crate::softmax::argmax;
use crate::{Dense, Init, Rng, Scalar};

/// A two-layer perceptron: `logits = relu(x W1 + b1) W2 + b2`.
///
/// `Mlp<784, 128, 10>` is the MNIST model (101,770 parameters). The scalar defaults to `f32`;
/// `Mlp<784, 128, 10, f64>` is used to check gradients.
///
/// `#[repr(C)]`: `hidden` then `output`, each laid out as [`Dense`] is, so the parameters sit in
/// memory in the order of the model file's tensors (`W1`, `b1`, `W2`, `b2`).
#[derive(Clone, Debug, PartialEq, bytemuck::Zeroable)]
// The scalar is `Zeroable` already (see `Scalar`): no bound to add.
#[zeroable(bound = "")]
#[repr(C)]
pub struct Mlp<const IN: usize, const HIDDEN: usize, const OUT: usize, S: Scalar = f32> {
    /// First layer, `W1: [IN][HIDDEN]`, `b1: [HIDDEN]`.
    pub hidden: Dense<IN, HIDDEN, S>,
    /// Second layer, `W2: [HIDDEN][OUT]`, `b2: [OUT]`.
    pub output: Dense<HIDDEN, OUT, S>,
}

/// The MNIST network: 28x28 pixels, 128 hidden units, 10 digits.
pub type MnistMlp<S = f32> = Mlp<784, 128, 10, S>;

/// The intermediate values of one forward pass, kept for the backward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Activations<const HIDDEN: usize, const OUT: usize, S: Scalar = f32> {
    /// Hidden pre-activations `x W1 + b1`.
    pub pre: [S; HIDDEN],
    /// Hidden activations `relu(pre)`.
    pub hidden: [S; HIDDEN],
    /// Output logits.
    pub logits: [S; OUT],
}

impl<const HIDDEN: usize, const OUT: usize, S: Scalar> Default for Activations<HIDDEN, OUT, S> {
    fn default() -> Self {
        Self {
            pre: [S::ZERO; HIDDEN],
            hidden: [S::ZERO; HIDDEN],
            logits: [S::ZERO; OUT],
        }
    }
}

impl<const IN: usize, const HIDDEN: usize, const OUT: usize, S: Scalar> Mlp<IN, HIDDEN, OUT, S> {
    /// All parameters zero (also the shape of a gradient).
    pub fn zeros() -> Self {
        Self {
            hidden: Dense::zeros(),
            output: Dense::zeros(),
        }
    }

    /// He initialization for the ReLU layer, Xavier for the output layer, zero biases.
    pub fn init(&mut self, rng: &mut Rng) {
        self.hidden.init(Init::He, rng);
        self.output.init(Init::Xavier, rng);
    }

    /// A freshly initialized network (on the stack: fine for small shapes; large ones should be
    /// allocated zeroed by the caller and filled with [`Mlp::init`]).
    pub fn seeded(seed: u64) -> Self {
        let mut m = Self::zeros();
        m.init(&mut Rng::new(seed));
        m
    }

    /// Forward pass of one sample, keeping the intermediate values in `act`.
    #[inline]
    pub fn forward(&self, x: &[S; IN], act: &mut Activations<HIDDEN, OUT, S>) {
        self.hidden.forward(x, &mut act.pre);
        relu_forward(&act.pre, &mut act.hidden);
        self.output.forward(&act.hidden, &mut act.logits);
    }

    /// The hidden layer's activations (after ReLU) for one sample.
    #[inline]
    pub fn hidden_activations(&self, x: &[S; IN], hidden: &mut [S; HIDDEN]) {
        let mut pre = [S::ZERO; HIDDEN];
        self.hidden.forward(x, &mut pre);
        relu_forward(&pre, hidden);
    }

    /// Logits of one sample.
    pub fn logits(&self, x: &[S; IN]) -> [S; OUT] {
        let mut act = Activations::default();
        self.forward(x, &mut act);
        act.logits
    }

    /// The predicted class of one sample.
    pub fn predict(&self, x: &[S; IN]) -> usize {
        argmax(&self.logits(x))
    }

    /// Cross-entropy of one sample.
    pub fn sample_loss(&self, x: &[S; IN], label: u8) -> S {
        cross_entropy(&self.logits(x), label as usize)
    }

    /// Mean cross-entropy over a batch. Labels must be `< OUT`.
    pub fn loss(&self, xs: &[[S; IN]], labels: &[u8]) -> S {
        assert_eq!(xs.len(), labels.len(), "batch and label lengths differ");
        assert!(!xs.is_empty(), "empty batch");
        let mut sum = S::ZERO;
        for (x, &y) in xs.iter().zip(labels) {
            sum += self.sample_loss(x, y);
        }
        sum / S::from_f64(xs.len() as f64)
    }

    /// Backprop of one sample: adds its (unscaled) gradient to `grad` and returns its loss.
    #[inline]
    pub fn backprop_sample(
        &self,
        x: &[S; IN],
        label: u8,
        grad: &mut Self,
        act: &mut Activations<HIDDEN, OUT, S>,
    ) -> S {
        self.forward(x, act);
        let mut dz = [S::ZERO; OUT];
        let loss = cross_entropy_backward(&act.logits, label as usize, &mut dz);
        self.output
            .backward_params(&act.hidden, &dz, &mut grad.output);
        let mut dh = [S::ZERO; HIDDEN];
        self.output.backward_input(&dz, &mut dh);
        let mut dpre = [S::ZERO; HIDDEN];
        relu_backward(&act.pre, &dh, &mut dpre);
        self.hidden.backward_params(x, &dpre, &mut grad.hidden);
        loss
    }

    /// Backprop over a batch: overwrites `grad` with the gradient of the mean loss and returns
    /// the mean loss.
    pub fn backprop(&self, xs: &[[S; IN]], labels: &[u8], grad: &mut Self) -> S {
        assert_eq!(xs.len(), labels.len(), "batch and label lengths differ");
        assert!(!xs.is_empty(), "empty batch");
        grad.fill_zero();
        let mut act = Activations::default();
        let mut sum = S::ZERO;
        for (x, &y) in xs.iter().zip(labels) {
            sum += self.backprop_sample(x, y, grad, &mut act);
        }
        let inv = S::ONE / S::from_f64(xs.len() as f64);
        grad.scale(inv);
        sum * inv
    }
}

impl<const IN: usize, const HIDDEN: usize, const OUT: usize, S: Scalar> Params<S>
    for Mlp<IN, HIDDEN, OUT, S>
{
    fn tensor_count(&self) -> usize {
        4
    }

    fn tensor(&self, k: usize) -> Tensor<'_, S> {
        match k {
            0 => self.hidden.weight_tensor("W1"),
            1 => self.hidden.bias_tensor("b1"),
            2 => self.output.weight_tensor("W2"),
            3 => self.output.bias_tensor("b2"),
            _ => panic!("Mlp has 4 tensors"),
        }
    }

    fn tensor_mut(&mut self, k: usize) -> TensorMut<'_, S> {
        match k {
            0 => self.hidden.weight_tensor_mut("W1"),
            1 => self.hidden.bias_tensor_mut("b1"),
            2 => self.output.weight_tensor_mut("W2"),
            3 => self.output.bias_tensor_mut("b2"),
            _ => panic!("Mlp has 4 tensors"),
        }
    }
}
