//! Teaching a loaded model its user's handwriting from a handful of labelled drawings: what the
//! browser page runs, kept here so that a host test replays it bit for bit.
//!
//! Only the output layer learns, with a [`MnistTuner`]: the samples in order, in batches of
//! [`MAX_BATCH`] (one SGD step each), for [`Plan::epochs`] passes. An `f32` model is tuned as
//! it is. An int8 model is tuned in `f32` on the activations its hidden codes stand for
//! ([`QuantMlp::hidden_f32`], [`QuantMlp::output_dense`]), then its output layer is re-coded
//! ([`QuantMlp::set_output`]); its accuracy after is that of the re-coded model, the one the
//! user downloads.
//!
//! The tuned model goes into a caller's `&mut` model and the tuner is the caller's too: models
//! are too big for a WebAssembly stack, and nothing here allocates.
//!
//! [`QuantMlp::hidden_f32`]: crate::QuantMlp::hidden_f32
//! [`QuantMlp::output_dense`]: crate::QuantMlp::output_dense
//! [`QuantMlp::set_output`]: crate::QuantMlp::set_output

use crate::finetune::{Gradient, MnistTuner, TuneError};
use crate::loss::cross_entropy;
use crate::params::Params;
use crate::protocol::{IMAGE_BYTES, MAX_BATCH};
use crate::quant::QuantError;
use crate::softmax::argmax;
use crate::{Classifier, MnistMlp, MnistQuant, Sgd};

/// Digits a sample can be labelled with.
const CLASSES: usize = 10;
/// Hidden units of [`MnistMlp`]: the output layer's inputs.
const HIDDEN: usize = 128;

/// One labelled drawing: the 28x28 picture the network saw, row by row, and its digit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// 8-bit pixels, as the network reads them.
    pub pixels: [u8; IMAGE_BYTES],
    /// The digit, `0..=9`.
    pub label: u8,
}

/// How long and how fast to teach.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Passes over the samples.
    pub epochs: u32,
    /// SGD learning rate, at least 0.
    pub lr: f32,
    /// SGD momentum, in `[0, 1)`.
    pub momentum: f32,
}

/// The page's plan, chosen by measurement on MNIST test digits drawn in a style of their own
/// (shifted, thickened) that the shipped models often get wrong (the `teach` tests): every
/// sample is learned, from 30 up to 100, in a small fraction of the page's time budget, while
/// the model keeps the undistorted digits it knew and gets better at the style's other
/// digits too. Larger rates, or momentum near 1, learn the samples as well but forget more
/// of the rest once there are 100 samples; smaller ones leave samples unlearned.
pub const PAGE: Plan = Plan {
    epochs: 20,
    lr: 0.1,
    momentum: 0.5,
};

/// Samples a model classifies correctly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// Samples whose largest logit is their label.
    pub correct: u32,
    /// Samples.
    pub total: u32,
}

/// What teaching did, measured with the real models' logits on the samples.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// The model as it was.
    pub before: Score,
    /// The tuned model (for int8: re-coded, as downloaded).
    pub after: Score,
    /// Mean cross-entropy of the model as it was.
    pub loss_before: f32,
    /// Mean cross-entropy of the tuned model.
    pub loss_after: f32,
    /// SGD steps taken.
    pub steps: u32,
}

/// Why teaching was refused or stopped; the output model is written only on success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeachError {
    /// No samples to learn from.
    NoSamples,
    /// Sample `index` has a label outside `0..=9`.
    BadLabel {
        /// Position of the sample.
        index: usize,
        /// Its label.
        label: u8,
    },
    /// A learning rate below 0 or a momentum outside `[0, 1)`.
    BadPlan,
    /// A learning rate or momentum that is NaN or infinite, or training that diverged.
    NotFinite,
    /// The int8 model cannot be re-coded (its hidden scale is not positive and finite).
    Quant(QuantError),
}

impl core::fmt::Display for TeachError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TeachError::NoSamples => f.write_str("no samples to learn from"),
            TeachError::BadLabel { index, label } => {
                write!(f, "sample {index} is labelled {label}, not a digit 0-9")
            }
            TeachError::BadPlan => {
                f.write_str("the learning rate must be at least 0 and the momentum in [0, 1)")
            }
            TeachError::NotFinite => {
                f.write_str("the learning rate or momentum is not finite, or training diverged")
            }
            TeachError::Quant(e) => write!(f, "the int8 model cannot be re-coded: {e}"),
        }
    }
}

/// Teaches `model`'s output layer the `samples` by `plan`, with gradients by `method`, and
/// writes the tuned model into `out`. `tuner` is scratch space (its previous state is
/// dropped).
pub fn teach_f32(
    model: &MnistMlp,
    samples: &[Sample],
    method: Gradient,
    plan: &Plan,
    tuner: &mut MnistTuner,
    out: &mut MnistMlp,
) -> Result<Summary, TeachError> {
    check(samples, plan)?;
    tuner.reset(&model.output);
    let mut x = [0.0f32; IMAGE_BYTES];
    let steps = train(tuner, samples, method, plan, |pixels, hidden| {
        crate::pixels::normalize(pixels, &mut x);
        model.hidden_activations(&x, hidden);
    })?;
    for k in 0..model.tensor_count() {
        out.tensor_mut(k).data.copy_from_slice(model.tensor(k).data);
    }
    out.output.clone_from(&tuner.output);
    Ok(summary(model, out, samples, steps))
}

/// Teaches the int8 `model`'s output layer the `samples` by `plan`, with gradients by
/// `method`, and writes the re-coded model into `out`. With no epochs `out` is `model` bit for
/// bit. `tuner` is scratch space (its previous state is dropped).
pub fn teach_int8(
    model: &MnistQuant,
    samples: &[Sample],
    method: Gradient,
    plan: &Plan,
    tuner: &mut MnistTuner,
    out: &mut MnistQuant,
) -> Result<Summary, TeachError> {
    check(samples, plan)?;
    if !(model.hidden_scale.is_finite() && model.hidden_scale > 0.0) {
        return Err(TeachError::Quant(QuantError::BadHiddenScale));
    }
    tuner.reset(&model.output_dense());
    let steps = train(tuner, samples, method, plan, |pixels, hidden| {
        *hidden = model.hidden_f32(pixels);
    })?;
    // Field by field: a whole-struct copy may pass through the stack.
    out.w1
        .as_flattened_mut()
        .copy_from_slice(model.w1.as_flattened());
    out.w2
        .as_flattened_mut()
        .copy_from_slice(model.w2.as_flattened());
    out.b1 = model.b1;
    out.m1 = model.m1;
    out.shift1 = model.shift1;
    out.b2 = model.b2;
    out.out_scale = model.out_scale;
    out.hidden_scale = model.hidden_scale;
    // Checked above and by `train`: the scale is valid and the layer finite.
    out.set_output(&tuner.output).map_err(TeachError::Quant)?;
    Ok(summary(model, out, samples, steps))
}

/// Refuses what would make teaching meaningless, before anything is computed.
fn check(samples: &[Sample], plan: &Plan) -> Result<(), TeachError> {
    if samples.is_empty() {
        return Err(TeachError::NoSamples);
    }
    if let Some((index, s)) = samples
        .iter()
        .enumerate()
        .find(|(_, s)| s.label as usize >= CLASSES)
    {
        return Err(TeachError::BadLabel {
            index,
            label: s.label,
        });
    }
    if !(plan.lr.is_finite() && plan.momentum.is_finite()) {
        return Err(TeachError::NotFinite);
    }
    if !(plan.lr >= 0.0 && (0.0..1.0).contains(&plan.momentum)) {
        return Err(TeachError::BadPlan);
    }
    Ok(())
}

/// The epochs of `plan` on `tuner`, reset to the model's output layer, with each sample's
/// hidden activations from `hidden` (recomputed every epoch: no cache beyond one batch).
/// Returns the steps taken.
fn train(
    tuner: &mut MnistTuner,
    samples: &[Sample],
    method: Gradient,
    plan: &Plan,
    mut hidden: impl FnMut(&[u8; IMAGE_BYTES], &mut [f32; HIDDEN]),
) -> Result<u32, TeachError> {
    let sgd = Sgd {
        momentum: plan.momentum as f64,
        weight_decay: 0.0,
    };
    let mut h = [0.0f32; HIDDEN];
    for _ in 0..plan.epochs {
        for (b, batch) in samples.chunks(MAX_BATCH).enumerate() {
            for (i, s) in batch.iter().enumerate() {
                let index = b * MAX_BATCH + i;
                hidden(&s.pixels, &mut h);
                // A batch is at most the tuner's size and labels are checked: only a bad
                // label can be refused.
                tuner
                    .add_hidden(&h, s.label)
                    .map_err(|_| TeachError::BadLabel {
                        index,
                        label: s.label,
                    })?;
            }
            tuner.step(method, &sgd, plan.lr).map_err(|e| match e {
                TuneError::EmptyBatch => TeachError::NoSamples,
                _ => TeachError::NotFinite,
            })?;
        }
    }
    // A step checks its gradient, not the weights it makes: a huge rate can overflow them.
    if !tuner.output.all_finite() {
        return Err(TeachError::NotFinite);
    }
    Ok(tuner.steps())
}

/// Accuracy and mean loss of `model` on `samples`.
fn score(model: &impl Classifier<IMAGE_BYTES, CLASSES>, samples: &[Sample]) -> (Score, f32) {
    let mut correct = 0u32;
    let mut loss = 0.0f32;
    for s in samples {
        let z = model.classify(&s.pixels);
        correct += u32::from(argmax(&z) == s.label as usize);
        loss += cross_entropy(&z, s.label as usize);
    }
    let total = samples.len() as u32;
    (Score { correct, total }, loss / samples.len() as f32)
}

fn summary<M: Classifier<IMAGE_BYTES, CLASSES>>(
    before: &M,
    after: &M,
    samples: &[Sample],
    steps: u32,
) -> Summary {
    let (before, loss_before) = score(before, samples);
    let (after, loss_after) = score(after, samples);
    Summary {
        before,
        after,
        loss_before,
        loss_after,
        steps,
    }
}
