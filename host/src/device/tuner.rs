//! The host's run of on-device fine-tuning: the same `digits-core` tuner on the same batches,
//! to check the device's weights and to plan its batches.

use digits_core::finetune::{Gradient, Step, TuneError};
use digits_core::pixels::normalize;
use digits_core::{MnistMlp, Rng, Sgd};

use crate::data::{IMAGE_PIXELS, Split};

pub use digits_core::finetune::MnistTuner;

/// How to fine-tune.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Gradient method of every step.
    pub method: Gradient,
    /// Passes over the adaptation samples.
    pub epochs: u32,
    /// Samples per step, at most [`digits_core::protocol::MAX_BATCH`].
    pub batch: usize,
    /// Learning rate.
    pub lr: f32,
    /// SGD momentum and weight decay.
    pub sgd: Sgd,
    /// Seed of the order of the samples in each epoch.
    pub seed: u64,
}

/// The first `per_class` images of each digit in `split`, in the split's order.
pub fn pick(split: &Split, per_class: usize) -> Vec<usize> {
    let mut taken = [0usize; 10];
    let mut picked = Vec::new();
    for (i, &label) in split.labels.iter().enumerate() {
        if taken[label as usize] < per_class {
            taken[label as usize] += 1;
            picked.push(i);
        }
    }
    picked
}

/// The batches of every epoch, as indices into the samples: each epoch shuffled by the plan's
/// seed, cut into batches of `plan.batch`.
pub fn batches(plan: &Plan, samples: usize) -> Vec<Vec<usize>> {
    let mut rng = Rng::new(plan.seed);
    let mut out = Vec::new();
    for _ in 0..plan.epochs {
        let mut order: Vec<usize> = (0..samples).collect();
        rng.shuffle(&mut order);
        out.extend(order.chunks(plan.batch).map(<[usize]>::to_vec));
    }
    out
}

/// Normalized input of an image.
pub fn input(pixels: &[u8; IMAGE_PIXELS]) -> [f32; IMAGE_PIXELS] {
    let mut x = [0.0f32; IMAGE_PIXELS];
    normalize(pixels, &mut x);
    x
}

/// A tuner reset to `model`'s output layer.
pub fn tuner(model: &MnistMlp) -> Box<MnistTuner> {
    let mut t = Box::new(MnistTuner::zeroed());
    t.reset(&model.output);
    t
}

/// One step on the host: the batch's samples added, then the step.
pub fn step(
    tuner: &mut MnistTuner,
    model: &MnistMlp,
    plan: &Plan,
    samples: &[([u8; IMAGE_PIXELS], u8)],
) -> Result<Step, TuneError> {
    for (pixels, label) in samples {
        tuner.add(model, &input(pixels), *label)?;
    }
    tuner.step(plan.method, &plan.sgd, plan.lr)
}
