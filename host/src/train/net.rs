//! The network being trained, in one of its three forms, with the buffers its step needs.

use anyhow::{Result, bail};
use digits_core::fast::minibatch::Soft;
use digits_core::mlp_bn::MlpBn;
use digits_core::optim::{SgdStep, WithVelocity};
use digits_core::softmax::argmax;
use digits_core::structured_numgrad::SampleState;
use digits_core::{BnScratch, MnistMlp, Params, Rng, Sgd};
use rayon::prelude::*;

use crate::train::aligned::ModelBox;
use crate::train::checkpoint::{Checkpoint, restore, tensors_of};
use crate::train::fast_step::FastStep;
use crate::train::sparse_set::SparseSet;
use crate::train::{GradMethod, TrainConfig};

/// The MNIST network with batch normalization on its hidden layer.
pub type MnistMlpBn = MlpBn<784, 128, 10, f32>;

/// What a checkpoint keeps of the network being trained, tensor by tensor.
pub(super) struct NetState {
    pub(super) model: Vec<Vec<f32>>,
    pub(super) running: Vec<Vec<f32>>,
    pub(super) velocity: Vec<Vec<f32>>,
}

/// One batch as the slow steps read it: pixels, network inputs, labels (as many each).
pub(super) struct DenseBatch<'a> {
    pub(super) pixels: &'a [[u8; 784]],
    pub(super) xs: &'a [[f32; 784]],
    pub(super) labels: &'a [u8],
}

/// The network being trained, with its velocity and what its step needs: by backprop through
/// the core's fused step on the images as lit pixels, or by a step that reads them as pixels.
pub(super) enum Net {
    Fast(FastNet),
    Dense(DenseNet),
}

/// The plain network trained by backprop, through the core's fused step.
pub(super) struct FastNet {
    model: ModelBox,
    velocity: ModelBox,
    step: Box<FastStep>,
}

/// A network whose step reads a batch as pixels.
pub(super) enum DenseNet {
    /// The structured numerical gradient, then an SGD step.
    Numeric {
        model: ModelBox,
        grad: ModelBox,
        velocity: ModelBox,
        states: Vec<SampleState<128, 10, f32>>,
        columns: Vec<[f32; 784]>,
        h: f32,
    },
    /// Batch normalization on the hidden layer: backprop, then an SGD step.
    Norm {
        model: Box<MnistMlpBn>,
        grad: Box<MnistMlpBn>,
        velocity: Box<MnistMlpBn>,
        xhat: Vec<[f32; 128]>,
        y: Vec<[f32; 128]>,
    },
}

impl Net {
    pub(super) fn new(cfg: &TrainConfig, rng: &mut Rng) -> Self {
        if cfg.batchnorm {
            let mut model: Box<MnistMlpBn> = bytemuck::zeroed_box();
            model.init(rng);
            return Net::Dense(DenseNet::Norm {
                model,
                grad: bytemuck::zeroed_box(),
                velocity: bytemuck::zeroed_box(),
                xhat: vec![[0.0; 128]; cfg.batch],
                y: vec![[0.0; 128]; cfg.batch],
            });
        }
        let mut model = ModelBox::zeroed();
        model.init(rng);
        match cfg.grad {
            GradMethod::Backprop => Net::Fast(FastNet {
                model,
                velocity: ModelBox::zeroed(),
                step: Box::new(FastStep::new(cfg.batch)),
            }),
            GradMethod::Numeric => Net::Dense(DenseNet::Numeric {
                model,
                grad: ModelBox::zeroed(),
                velocity: ModelBox::zeroed(),
                states: vec![SampleState::default(); cfg.batch],
                columns: vec![[0.0; 784]; 128],
                h: cfg.step as f32,
            }),
        }
    }

    /// The deployable network: the plain model, or the batch-norm model folded.
    pub(super) fn deployable(&self) -> ModelBox {
        match self {
            Net::Fast(FastNet { model, .. }) | Net::Dense(DenseNet::Numeric { model, .. }) => {
                model.clone()
            }
            Net::Dense(DenseNet::Norm { model, .. }) => {
                let mut out = ModelBox::zeroed();
                model.fold(&mut out);
                out
            }
        }
    }

    /// Parameters, batch-norm running statistics and velocity, for a checkpoint.
    pub(super) fn snapshot(&self) -> NetState {
        match self {
            Net::Fast(FastNet {
                model, velocity, ..
            })
            | Net::Dense(DenseNet::Numeric {
                model, velocity, ..
            }) => NetState {
                model: tensors_of(&**model),
                running: vec![],
                velocity: tensors_of(&**velocity),
            },
            Net::Dense(DenseNet::Norm {
                model, velocity, ..
            }) => NetState {
                model: tensors_of(&**model),
                running: vec![
                    model.norm.running_mean.to_vec(),
                    model.norm.running_var.to_vec(),
                ],
                velocity: tensors_of(&**velocity),
            },
        }
    }

    pub(super) fn restore(&mut self, ckpt: &Checkpoint) -> Result<()> {
        match self {
            Net::Fast(FastNet {
                model, velocity, ..
            })
            | Net::Dense(DenseNet::Numeric {
                model, velocity, ..
            }) => {
                restore(&mut **model, &ckpt.model)?;
                restore(&mut **velocity, &ckpt.velocity)
            }
            Net::Dense(DenseNet::Norm {
                model, velocity, ..
            }) => {
                restore(&mut **model, &ckpt.model)?;
                restore(&mut **velocity, &ckpt.velocity)?;
                match ckpt.running.as_slice() {
                    [mean, var] if mean.len() == 128 && var.len() == 128 => {
                        model.norm.running_mean.copy_from_slice(mean);
                        model.norm.running_var.copy_from_slice(var);
                        Ok(())
                    }
                    _ => bail!("the checkpoint has no batch-norm statistics"),
                }
            }
        }
    }

    pub(super) fn all_finite(&self) -> bool {
        match self {
            Net::Fast(FastNet { model, .. }) | Net::Dense(DenseNet::Numeric { model, .. }) => {
                model.all_finite()
            }
            Net::Dense(DenseNet::Norm { model, .. }) => model.all_finite(),
        }
    }
}

impl FastNet {
    /// One fused SGD step on the images `keys` of `set` (toward `soft` targets too, if
    /// given); returns the summed loss and the number classified correctly.
    pub(super) fn step(
        &mut self,
        step: &SgdStep<f32>,
        set: &SparseSet,
        keys: &[u32],
        labels: &[u8],
        soft: Option<Soft<'_>>,
    ) -> (f64, usize) {
        let net = WithVelocity {
            params: &mut *self.model,
            velocity: &mut *self.velocity,
        };
        let stats = self.step.step(net, step, set, keys, labels, soft);
        (stats.loss_sum, stats.correct)
    }
}

impl DenseNet {
    /// One SGD step on a batch read as pixels; returns the summed loss and the number
    /// classified correctly.
    pub(super) fn step(&mut self, batch: DenseBatch<'_>, sgd: &Sgd, lr: f64) -> (f64, usize) {
        let DenseBatch { pixels, xs, labels } = batch;
        match self {
            DenseNet::Numeric {
                model,
                grad,
                velocity,
                states,
                columns,
                h,
            } => {
                let n = labels.len();
                let states = &mut states[..n];
                let loss = numeric_gradient(model, pixels, labels, *h, states, columns, grad);
                let correct = states
                    .iter()
                    .filter(|s| argmax(&s.probs) == s.label as usize)
                    .count();
                sgd.step(&mut **model, grad, velocity, lr);
                (loss as f64 * n as f64, correct)
            }
            DenseNet::Norm {
                model,
                grad,
                velocity,
                xhat,
                y,
            } => {
                let n = xs.len();
                let mut scratch = BnScratch {
                    xhat: &mut xhat[..n],
                    y: &mut y[..n],
                };
                let (loss, stats) = model.backprop(xs, labels, grad, &mut scratch);
                sgd.step(&mut **model, grad, velocity, lr);
                model.norm.update_running(&stats);
                // Train-mode accuracy would need a second pass; count it in eval mode instead.
                let correct = xs
                    .iter()
                    .zip(labels)
                    .filter(|(x, l)| argmax(&model.logits_eval(x)) == **l as usize)
                    .count();
                (loss as f64 * n as f64, correct)
            }
        }
    }
}

/// The structured numerical gradient of the mean loss, hidden units spread over threads. Each
/// unit's column is computed alone, so the result does not depend on the number of threads.
pub fn numeric_gradient(
    model: &MnistMlp,
    pixels: &[[u8; 784]],
    labels: &[u8],
    step: f32,
    states: &mut [SampleState<128, 10, f32>],
    columns: &mut [[f32; 784]],
    grad: &mut MnistMlp,
) -> f32 {
    let loss = model.numeric_prepare(pixels, labels, states);
    let states = &*states;
    let biases: Vec<f32> = columns
        .par_iter_mut()
        .enumerate()
        .map(|(j, column)| model.numeric_hidden_unit(pixels, states, step, j, column))
        .collect();
    grad.hidden.b.copy_from_slice(&biases);
    for (i, row) in grad.hidden.w.iter_mut().enumerate() {
        for (g, column) in row.iter_mut().zip(columns.iter()) {
            *g = column[i];
        }
    }
    model.numeric_output_layer(states, step, &mut grad.output);
    loss
}
