//! The network with batch normalization on the hidden layer:
//! dense -> batch norm -> ReLU -> dense. Trained in train mode, folded into a plain [`Mlp`] for
//! deployment.

use crate::activation::relu_forward;
use crate::batchnorm::{BatchNorm, BatchStats};
use crate::loss::{cross_entropy, cross_entropy_backward};
use crate::params::{Params, Tensor, TensorKind, TensorMut};
use crate::{Dense, Init, Mlp, Rng, Scalar};

/// `logits = relu(bn(x W1 + b1)) W2 + b2`.
#[derive(Clone, Debug, PartialEq, bytemuck::Zeroable)]
// The scalar is `Zeroable` already (see `Scalar`): no bound to add.
#[zeroable(bound = "")]
pub struct MlpBn<const IN: usize, const HIDDEN: usize, const OUT: usize, S: Scalar = f32> {
    /// First layer.
    pub hidden: Dense<IN, HIDDEN, S>,
    /// Normalization of the first layer's outputs.
    pub norm: BatchNorm<HIDDEN, S>,
    /// Second layer.
    pub output: Dense<HIDDEN, OUT, S>,
}

/// Per-sample buffers a training batch needs (no heap in the core: the caller owns them).
/// Both slices must have the batch's length.
pub struct BnScratch<'a, const HIDDEN: usize, S: Scalar = f32> {
    /// Normalized pre-activations.
    pub xhat: &'a mut [[S; HIDDEN]],
    /// Batch-norm outputs, then their gradients during backprop.
    pub y: &'a mut [[S; HIDDEN]],
}

impl<const IN: usize, const HIDDEN: usize, const OUT: usize, S: Scalar> MlpBn<IN, HIDDEN, OUT, S> {
    /// All parameters zero (the shape of a gradient).
    pub fn zeros() -> Self {
        Self {
            hidden: Dense::zeros(),
            norm: BatchNorm {
                gamma: [S::ZERO; HIDDEN],
                beta: [S::ZERO; HIDDEN],
                running_mean: [S::ZERO; HIDDEN],
                running_var: [S::ZERO; HIDDEN],
            },
            output: Dense::zeros(),
        }
    }

    /// He for the first layer, identity normalization, Xavier for the output layer.
    pub fn init(&mut self, rng: &mut Rng) {
        self.hidden.init(Init::He, rng);
        self.norm = BatchNorm::new();
        self.output.init(Init::Xavier, rng);
    }

    /// Eval mode: logits of one sample, normalized with the running statistics.
    pub fn logits_eval(&self, x: &[S; IN]) -> [S; OUT] {
        let mut pre = [S::ZERO; HIDDEN];
        self.hidden.forward(x, &mut pre);
        self.norm.forward_eval(&mut pre);
        let mut h = [S::ZERO; HIDDEN];
        relu_forward(&pre, &mut h);
        let mut z = [S::ZERO; OUT];
        self.output.forward(&h, &mut z);
        z
    }

    fn forward_train(
        &self,
        xs: &[[S; IN]],
        scratch: &mut BnScratch<'_, HIDDEN, S>,
    ) -> BatchStats<HIDDEN, S> {
        assert!(!xs.is_empty(), "empty batch");
        assert!(
            scratch.xhat.len() == xs.len() && scratch.y.len() == xs.len(),
            "scratch buffers must have the batch's length"
        );
        for (x, pre) in xs.iter().zip(scratch.xhat.iter_mut()) {
            self.hidden.forward(x, pre);
        }
        self.norm.forward_train(scratch.xhat, scratch.y)
    }

    /// Train mode: mean cross-entropy of a batch normalized with its own statistics. Pure (the
    /// running statistics are untouched), so it can be differentiated numerically.
    pub fn loss_train(
        &self,
        xs: &[[S; IN]],
        labels: &[u8],
        scratch: &mut BnScratch<'_, HIDDEN, S>,
    ) -> S {
        assert_eq!(xs.len(), labels.len(), "batch and label lengths differ");
        self.forward_train(xs, scratch);
        let mut sum = S::ZERO;
        for (y, &label) in scratch.y.iter().zip(labels) {
            let mut h = [S::ZERO; HIDDEN];
            relu_forward(y, &mut h);
            let mut z = [S::ZERO; OUT];
            self.output.forward(&h, &mut z);
            sum += cross_entropy(&z, label as usize);
        }
        sum / S::from_f64(xs.len() as f64)
    }

    /// Train mode backprop: overwrites `grad` with the gradient of the mean loss, returns the
    /// mean loss and the batch statistics (pass them to [`BatchNorm::update_running`]).
    pub fn backprop(
        &self,
        xs: &[[S; IN]],
        labels: &[u8],
        grad: &mut Self,
        scratch: &mut BnScratch<'_, HIDDEN, S>,
    ) -> (S, BatchStats<HIDDEN, S>) {
        assert_eq!(xs.len(), labels.len(), "batch and label lengths differ");
        grad.fill_zero();
        let stats = self.forward_train(xs, scratch);
        let mut sum = S::ZERO;
        for (y, &label) in scratch.y.iter_mut().zip(labels) {
            let mut h = [S::ZERO; HIDDEN];
            relu_forward(y, &mut h);
            let mut z = [S::ZERO; OUT];
            self.output.forward(&h, &mut z);
            let mut dz = [S::ZERO; OUT];
            sum += cross_entropy_backward(&z, label as usize, &mut dz);
            self.output.backward_params(&h, &dz, &mut grad.output);
            let mut dh = [S::ZERO; HIDDEN];
            self.output.backward_input(&dz, &mut dh);
            // y becomes dL/dy: ReLU passes the gradient where its input was positive.
            for (yj, &d) in y.iter_mut().zip(&dh) {
                *yj = if *yj > S::ZERO { d } else { S::ZERO };
            }
        }
        self.norm.backward(
            scratch.xhat,
            &stats,
            scratch.y,
            &mut grad.norm.gamma,
            &mut grad.norm.beta,
        );
        for (x, dpre) in xs.iter().zip(scratch.y.iter()) {
            self.hidden.backward_params(x, dpre, &mut grad.hidden);
        }
        let inv = S::ONE / S::from_f64(xs.len() as f64);
        grad.scale(inv);
        (sum * inv, stats)
    }

    /// The plain network that computes the same eval-mode outputs (normalization folded into
    /// the first layer).
    pub fn fold(&self, out: &mut Mlp<IN, HIDDEN, OUT, S>) {
        self.norm.fold(&self.hidden, &mut out.hidden);
        out.output.clone_from(&self.output);
    }
}

impl<const IN: usize, const HIDDEN: usize, const OUT: usize, S: Scalar> Params<S>
    for MlpBn<IN, HIDDEN, OUT, S>
{
    fn tensor_count(&self) -> usize {
        6
    }

    fn tensor(&self, k: usize) -> Tensor<'_, S> {
        let norm = |name, data| Tensor {
            name,
            kind: TensorKind::Bias,
            data,
        };
        match k {
            0 => self.hidden.weight_tensor("W1"),
            1 => self.hidden.bias_tensor("b1"),
            2 => norm("gamma", &self.norm.gamma[..]),
            3 => norm("beta", &self.norm.beta[..]),
            4 => self.output.weight_tensor("W2"),
            5 => self.output.bias_tensor("b2"),
            _ => panic!("MlpBn has 6 tensors"),
        }
    }

    fn tensor_mut(&mut self, k: usize) -> TensorMut<'_, S> {
        match k {
            0 => self.hidden.weight_tensor_mut("W1"),
            1 => self.hidden.bias_tensor_mut("b1"),
            2 => TensorMut {
                name: "gamma",
                kind: TensorKind::Bias,
                data: &mut self.norm.gamma[..],
            },
            3 => TensorMut {
                name: "beta",
                kind: TensorKind::Bias,
                data: &mut self.norm.beta[..],
            },
            4 => self.output.weight_tensor_mut("W2"),
            5 => self.output.bias_tensor_mut("b2"),
            _ => panic!("MlpBn has 6 tensors"),
        }
    }
}
