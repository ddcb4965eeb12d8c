//! Fine-tuning the output layer of an [`Mlp`] on small batches, in fixed memory: what a device
//! does to learn its user's handwriting.
//!
//! The hidden layer stays where it is (in flash, on a device) and is only read; the output
//! layer is copied into a [`Tuner`], which caches each sample's hidden activations as it
//! arrives, so a training step never runs the hidden layer again: backprop and central
//! differences both need only the output layer's input. A step uses every cached sample, then
//! the cache empties for the next batch.
//!
//! Host and device run this same code, so they end with the same bits.

use crate::loss::{cross_entropy, cross_entropy_backward};
use crate::params::Params;
use crate::softmax::softmax;
use crate::structured_numgrad::output_layer_central_differences;
use crate::{Dense, Mlp, Sgd};

/// How a step computes its gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Gradient {
    /// Backpropagation through the output layer.
    Backprop,
    /// Central differences `(L(w + h) - L(w - h)) / 2h` for every weight and bias of the output
    /// layer, with step `h` = [`NUMERIC_STEP`], on the cached hidden activations.
    Numeric,
}

/// The step `h` of [`Gradient::Numeric`] (the training default of the project, for `f32`).
pub const NUMERIC_STEP: f32 = 1e-2;

/// One sample as a step needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cached<const HIDDEN: usize> {
    hidden: [f32; HIDDEN],
    label: u8,
}

/// Why a sample or a step was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TuneError {
    /// The batch holds its maximum already: take a step first.
    BatchFull,
    /// A step needs at least one sample.
    EmptyBatch,
    /// A label outside `0..OUT`.
    BadLabel,
    /// The gradient or the learning rate is NaN or infinite; nothing was changed.
    NotFinite,
}

impl core::fmt::Display for TuneError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TuneError::BatchFull => "the batch is full: train on it first",
            TuneError::EmptyBatch => "no samples to train on",
            TuneError::BadLabel => "a label outside the classes",
            TuneError::NotFinite => {
                "the gradient or the learning rate is not finite; nothing was changed"
            }
        })
    }
}

/// What a step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Samples in the batch.
    pub samples: usize,
    /// Mean loss of the batch before the step.
    pub loss: f32,
}

/// The output layer being tuned, its optimizer state and a batch of up to `BATCH` cached
/// samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuner<const HIDDEN: usize, const OUT: usize, const BATCH: usize> {
    /// The output layer as tuned so far.
    pub output: Dense<HIDDEN, OUT, f32>,
    grad: Dense<HIDDEN, OUT, f32>,
    velocity: Dense<HIDDEN, OUT, f32>,
    batch: [Cached<HIDDEN>; BATCH],
    len: usize,
    steps: u32,
}

impl<const HIDDEN: usize, const OUT: usize, const BATCH: usize> Tuner<HIDDEN, OUT, BATCH> {
    /// A tuner with all-zero weights (call [`Tuner::reset`] before use); `const` so that a
    /// device can keep it in a static.
    pub const fn zeroed() -> Self {
        Self {
            output: Dense {
                w: [[0.0; OUT]; HIDDEN],
                b: [0.0; OUT],
            },
            grad: Dense {
                w: [[0.0; OUT]; HIDDEN],
                b: [0.0; OUT],
            },
            velocity: Dense {
                w: [[0.0; OUT]; HIDDEN],
                b: [0.0; OUT],
            },
            batch: [Cached {
                hidden: [0.0; HIDDEN],
                label: 0,
            }; BATCH],
            len: 0,
            steps: 0,
        }
    }

    /// Starts over from `output` (the shipped layer): copies it, zeroes the momentum, empties
    /// the batch.
    pub fn reset(&mut self, output: &Dense<HIDDEN, OUT, f32>) {
        self.output.clone_from(output);
        self.velocity.fill_zero();
        self.len = 0;
        self.steps = 0;
    }

    /// Samples waiting for the next step.
    pub fn batch_len(&self) -> usize {
        self.len
    }

    /// Steps taken since the last reset.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Runs `x` through `model`'s hidden layer and caches the activations with `label` for the
    /// next step ([`Tuner::add_hidden`]); returns the samples now in the batch.
    pub fn add<const IN: usize>(
        &mut self,
        model: &Mlp<IN, HIDDEN, OUT, f32>,
        x: &[f32; IN],
        label: u8,
    ) -> Result<usize, TuneError> {
        let mut hidden = [0.0f32; HIDDEN];
        model.hidden_activations(x, &mut hidden);
        self.add_hidden(&hidden, label)
    }

    /// Caches the output layer's input `hidden` with `label` for the next step, however it
    /// was computed (an `f32` hidden layer, or int8 codes as
    /// [`crate::QuantMlp::hidden_f32`]); returns the samples now in the batch.
    pub fn add_hidden(&mut self, hidden: &[f32; HIDDEN], label: u8) -> Result<usize, TuneError> {
        if label as usize >= OUT {
            return Err(TuneError::BadLabel);
        }
        if self.len == BATCH {
            return Err(TuneError::BatchFull);
        }
        let slot = &mut self.batch[self.len];
        slot.hidden = *hidden;
        slot.label = label;
        self.len += 1;
        Ok(self.len)
    }

    /// One SGD step of the output layer on the cached batch with the gradient by `method`;
    /// empties the batch. A non-finite gradient or learning rate changes nothing.
    pub fn step(&mut self, method: Gradient, sgd: &Sgd, lr: f32) -> Result<Step, TuneError> {
        let loss = self.gradient(method)?;
        // Checked before the update rather than undone after it: no second copy of the layer
        // on a device's stack.
        if !self.grad.all_finite() || !lr.is_finite() {
            return Err(TuneError::NotFinite);
        }
        sgd.step(&mut self.output, &self.grad, &mut self.velocity, lr as f64);
        let samples = core::mem::take(&mut self.len);
        self.steps += 1;
        Ok(Step { samples, loss })
    }

    /// The gradient of the mean loss over the cached batch by `method`, into
    /// [`Tuner::last_gradient`]; returns the mean loss. The batch stays.
    pub fn gradient(&mut self, method: Gradient) -> Result<f32, TuneError> {
        let n = self.len;
        if n == 0 {
            return Err(TuneError::EmptyBatch);
        }
        let batch = &self.batch[..n];
        let mut loss = 0.0f32;
        let mut z = [0.0f32; OUT];
        match method {
            Gradient::Backprop => {
                self.grad.fill_zero();
                let mut dz = [0.0f32; OUT];
                for s in batch {
                    self.output.forward(&s.hidden, &mut z);
                    loss += cross_entropy_backward(&z, s.label as usize, &mut dz);
                    self.output.backward_params(&s.hidden, &dz, &mut self.grad);
                }
                self.grad.scale(1.0 / n as f32);
            }
            Gradient::Numeric => {
                let mut probs = [[0.0f32; OUT]; BATCH];
                for (s, p) in batch.iter().zip(probs.iter_mut()) {
                    self.output.forward(&s.hidden, &mut z);
                    loss += cross_entropy(&z, s.label as usize);
                    softmax(&z, p);
                }
                let samples = batch
                    .iter()
                    .zip(&probs)
                    .map(|(s, p)| (&s.hidden, p, s.label));
                output_layer_central_differences(samples, NUMERIC_STEP, &mut self.grad);
            }
        }
        Ok(loss / n as f32)
    }

    /// The gradient computed by the last [`Tuner::gradient`] or [`Tuner::step`].
    pub fn last_gradient(&self) -> &Dense<HIDDEN, OUT, f32> {
        &self.grad
    }

    /// Logits of `x` with `model`'s hidden layer and the tuned output layer: the same
    /// operations as [`Mlp::logits`], so an untuned tuner gives the model's bits.
    pub fn logits<const IN: usize>(
        &self,
        model: &Mlp<IN, HIDDEN, OUT, f32>,
        x: &[f32; IN],
    ) -> [f32; OUT] {
        let mut hidden = [0.0f32; HIDDEN];
        model.hidden_activations(x, &mut hidden);
        let mut z = [0.0f32; OUT];
        self.output.forward(&hidden, &mut z);
        z
    }
}

/// The tuner of [`crate::MnistMlp`]'s output layer with the protocol's batch: what the device
/// keeps in RAM.
pub type MnistTuner = Tuner<128, 10, { crate::protocol::MAX_BATCH }>;
