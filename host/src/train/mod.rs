//! The training loop: shuffled mini-batches, SGD with momentum, a held-out validation split,
//! and the best model by validation accuracy kept.

pub mod aligned;
pub mod augment;
pub mod checkpoint;
pub mod command;
pub mod fast_step;
pub mod threads;

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use digits_core::mlp_bn::MlpBn;
use digits_core::pixels::normalize;
use digits_core::softmax::argmax;
use digits_core::structured_numgrad::SampleState;
use digits_core::{Activations, MnistMlp, Params, Rng, Schedule, Sgd};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::data::Split;
use crate::train::aligned::ModelBox;
use crate::train::augment::Augment;
use crate::train::checkpoint::{Checkpoint, restore, tensors_of};
use crate::train::fast_step::{Backprop, SparseSet};

/// Samples per gradient chunk. Fixed (not derived from the thread count) so that the order of
/// floating-point sums, and therefore the trained model, is the same on any machine.
const CHUNK: usize = 16;

/// The MNIST network with batch normalization on its hidden layer.
pub type MnistMlpBn = MlpBn<784, 128, 10, f32>;

/// How gradients are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GradMethod {
    /// Backpropagation: the analytic gradient.
    Backprop,
    /// Central differences, structured: only where each perturbation reaches.
    Numeric,
}

/// Everything that determines a training run.
#[derive(Clone, Debug, Serialize)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: u32,
    /// Samples per SGD step.
    pub batch: usize,
    /// Base learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 weight decay on weight matrices.
    pub weight_decay: f64,
    /// Learning-rate schedule over epochs.
    pub schedule: Schedule,
    /// Seed of initialization and shuffling.
    pub seed: u64,
    /// Batch normalization on the hidden layer (folded away in the result).
    pub batchnorm: bool,
    /// Training images held out (from the end of the training set) to pick the best epoch.
    pub validation: usize,
    /// Backprop or numerical differentiation.
    pub grad: GradMethod,
    /// Central-difference step for `--grad numeric`.
    pub step: f64,
    /// Random distortions of the training images, fresh every epoch.
    pub augment: Option<Augment>,
    /// Only the first this many training images were used (quick runs).
    pub limit: Option<usize>,
}

/// Metrics of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct EpochReport {
    /// Epoch number, from 1.
    pub epoch: u32,
    /// Learning rate used.
    pub lr: f64,
    /// Mean training loss over the epoch (as the model was when it saw each batch).
    pub train_loss: f64,
    /// Training accuracy over the epoch, same convention.
    pub train_accuracy: f64,
    /// Loss on the validation split after the epoch.
    pub val_loss: f64,
    /// Accuracy on the validation split after the epoch.
    pub val_accuracy: f64,
    /// Wall time of the epoch's training steps.
    pub seconds: f64,
    /// Training throughput.
    pub samples_per_second: f64,
}

/// The result of training.
pub struct Outcome {
    /// The best model by validation accuracy (batch norm folded in).
    pub model: ModelBox,
    /// Its epoch, from 1.
    pub best_epoch: u32,
}

/// Loss and accuracy of a model on a set of images.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Score {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
}

/// What a checkpoint keeps of the network being trained, tensor by tensor.
struct NetState {
    model: Vec<Vec<f32>>,
    running: Vec<Vec<f32>>,
    velocity: Vec<Vec<f32>>,
}

/// The network being trained, with its gradient and velocity buffers.
enum Net {
    Plain {
        model: ModelBox,
        grad: ModelBox,
        velocity: ModelBox,
        partials: Vec<ModelBox>,
        fast: Box<Backprop>,
        method: GradMethod,
        states: Vec<SampleState<128, 10, f32>>,
        columns: Vec<[f32; 784]>,
        step: f32,
    },
    Norm {
        model: Box<MnistMlpBn>,
        grad: Box<MnistMlpBn>,
        velocity: Box<MnistMlpBn>,
        xhat: Vec<[f32; 128]>,
        y: Vec<[f32; 128]>,
    },
}

impl Net {
    fn new(cfg: &TrainConfig, rng: &mut Rng) -> Self {
        if cfg.batchnorm {
            let mut model: Box<MnistMlpBn> = bytemuck::zeroed_box();
            model.init(rng);
            Net::Norm {
                model,
                grad: bytemuck::zeroed_box(),
                velocity: bytemuck::zeroed_box(),
                xhat: vec![[0.0; 128]; cfg.batch],
                y: vec![[0.0; 128]; cfg.batch],
            }
        } else {
            let mut model: ModelBox = ModelBox::zeroed();
            model.init(rng);
            Net::Plain {
                model,
                grad: ModelBox::zeroed(),
                velocity: ModelBox::zeroed(),
                partials: (0..cfg.batch.div_ceil(CHUNK))
                    .map(|_| ModelBox::zeroed())
                    .collect(),
                fast: Box::new(Backprop::new(cfg.batch)),
                method: cfg.grad,
                states: vec![SampleState::default(); cfg.batch],
                columns: vec![[0.0; 784]; 128],
                step: cfg.step as f32,
            }
        }
    }

    /// One SGD step on a batch (as pixels and as network inputs); returns the summed loss and
    /// the number classified correctly.
    fn step(
        &mut self,
        pixels: &[[u8; 784]],
        xs: &[[f32; 784]],
        labels: &[u8],
        sgd: &Sgd,
        lr: f64,
    ) -> (f64, usize) {
        match self {
            Net::Plain {
                model,
                grad,
                velocity,
                partials,
                method: GradMethod::Backprop,
                ..
            } => {
                let (loss, correct) = plain_gradient(model, xs, labels, partials, grad);
                sgd.step(&mut **model, grad, velocity, lr);
                (loss, correct)
            }
            Net::Plain {
                model,
                grad,
                velocity,
                method: GradMethod::Numeric,
                states,
                columns,
                step,
                ..
            } => {
                let n = labels.len();
                let states = &mut states[..n];
                let loss = numeric_gradient(model, pixels, labels, *step, states, columns, grad);
                let correct = states
                    .iter()
                    .filter(|s| argmax(&s.probs) == s.label as usize)
                    .count();
                sgd.step(&mut **model, grad, velocity, lr);
                (loss as f64 * n as f64, correct)
            }
            Net::Norm {
                model,
                grad,
                velocity,
                xhat,
                y,
            } => {
                let n = xs.len();
                let mut scratch = digits_core::BnScratch {
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

    /// The plain network trained by backprop, through the fused sparse step.
    fn fast(&mut self) -> Option<(&mut MnistMlp, &mut MnistMlp, &mut Backprop)> {
        match self {
            Net::Plain {
                model,
                velocity,
                fast,
                method: GradMethod::Backprop,
                ..
            } => Some((&mut **model, &mut **velocity, fast)),
            _ => None,
        }
    }

    /// The deployable network: the plain model, or the batch-norm model folded.
    fn deployable(&self) -> ModelBox {
        match self {
            Net::Plain { model, .. } => model.clone(),
            Net::Norm { model, .. } => {
                let mut out: ModelBox = ModelBox::zeroed();
                model.fold(&mut out);
                out
            }
        }
    }

    /// Parameters, batch-norm running statistics and velocity, for a checkpoint.
    fn snapshot(&self) -> NetState {
        match self {
            Net::Plain {
                model, velocity, ..
            } => NetState {
                model: tensors_of(&**model),
                running: vec![],
                velocity: tensors_of(&**velocity),
            },
            Net::Norm {
                model, velocity, ..
            } => NetState {
                model: tensors_of(&**model),
                running: vec![
                    model.norm.running_mean.to_vec(),
                    model.norm.running_var.to_vec(),
                ],
                velocity: tensors_of(&**velocity),
            },
        }
    }

    fn restore(&mut self, ckpt: &Checkpoint) -> Result<()> {
        match self {
            Net::Plain {
                model, velocity, ..
            } => {
                restore(&mut **model, &ckpt.model)?;
                restore(&mut **velocity, &ckpt.velocity)
            }
            Net::Norm {
                model, velocity, ..
            } => {
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

    fn all_finite(&self) -> bool {
        match self {
            Net::Plain { model, .. } => model.all_finite(),
            Net::Norm { model, .. } => model.all_finite(),
        }
    }
}

/// Gradient of the mean loss over a batch, computed in fixed chunks in parallel and summed in
/// chunk order (so the result does not depend on the number of threads).
fn plain_gradient(
    model: &MnistMlp,
    xs: &[[f32; 784]],
    labels: &[u8],
    partials: &mut [ModelBox],
    grad: &mut MnistMlp,
) -> (f64, usize) {
    let chunks = xs.len().div_ceil(CHUNK);
    let sums: Vec<(f32, usize)> = partials[..chunks]
        .par_iter_mut()
        .zip(xs.par_chunks(CHUNK).zip(labels.par_chunks(CHUNK)))
        .map(|(partial, (xs, labels))| {
            partial.fill_zero();
            let mut act = Activations::default();
            let mut loss = 0.0f32;
            let mut correct = 0;
            for (x, &label) in xs.iter().zip(labels) {
                loss += model.backprop_sample(x, label, partial, &mut act);
                correct += usize::from(argmax(&act.logits) == label as usize);
            }
            (loss, correct)
        })
        .collect();
    let inv = 1.0 / xs.len() as f32;
    for k in 0..grad.tensor_count() {
        let g = grad.tensor_mut(k).data;
        g.copy_from_slice(partials[0].tensor(k).data);
        for partial in &partials[1..chunks] {
            for (a, b) in g.iter_mut().zip(partial.tensor(k).data) {
                *a += b;
            }
        }
        for a in g.iter_mut() {
            *a *= inv;
        }
    }
    let loss = sums.iter().map(|s| s.0 as f64).sum();
    let correct = sums.iter().map(|s| s.1).sum();
    (loss, correct)
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

/// Loss and accuracy of `model` on `split` (all of it), in parallel.
pub fn evaluate(model: &MnistMlp, split: &Split) -> Score {
    let parts: Vec<(f64, usize)> = split
        .images
        .par_chunks(500)
        .zip(split.labels.par_chunks(500))
        .map(|(images, labels)| {
            let mut loss = 0.0f64;
            let mut correct = 0;
            for (img, &label) in images.iter().zip(labels) {
                // Bit-identical to `normalize` + `logits`, several times faster.
                let z = crate::evaluate::infer::logits(model, img);
                loss += digits_core::loss::cross_entropy(&z, label as usize) as f64;
                correct += usize::from(argmax(&z) == label as usize);
            }
            (loss, correct)
        })
        .collect();
    let n = split.labels.len().max(1) as f64;
    Score {
        loss: parts.iter().map(|p| p.0).sum::<f64>() / n,
        accuracy: parts.iter().map(|p| p.1).sum::<usize>() as f64 / n,
    }
}

/// Splits the training set into (train, validation), the validation split taken from the end.
pub fn hold_out(train: &Split, validation: usize) -> Result<(Split, Split)> {
    let n = train.labels.len();
    if validation >= n {
        bail!("--validation {validation} leaves no training images (the training set has {n})");
    }
    let cut = n - validation;
    Ok((
        Split {
            images: train.images[..cut].to_vec(),
            labels: train.labels[..cut].to_vec(),
        },
        Split {
            images: train.images[cut..].to_vec(),
            labels: train.labels[cut..].to_vec(),
        },
    ))
}

/// Where a run keeps its checkpoint, and whether to continue from it.
pub struct Resume<'a> {
    /// Checkpoint file, rewritten atomically after every epoch.
    pub checkpoint: Option<&'a Path>,
    /// Continue from the checkpoint instead of starting afresh.
    pub resume: bool,
}

/// Trains (from scratch, or from a checkpoint). `on_epoch` sees the whole history after every
/// epoch.
pub fn train(
    train: &Split,
    validation: &Split,
    cfg: &TrainConfig,
    resume: &Resume<'_>,
    mut on_epoch: impl FnMut(&[EpochReport]) -> Result<()>,
) -> Result<Outcome> {
    if cfg.batch == 0 || cfg.epochs == 0 {
        bail!("--batch and --epochs must be at least 1");
    }
    if cfg.grad == GradMethod::Numeric && cfg.batchnorm {
        bail!("--grad numeric trains the plain network; drop --batchnorm");
    }
    if !(cfg.step > 0.0 && cfg.step.is_finite()) {
        bail!("--step must be a positive number (got {})", cfg.step);
    }
    let config = serde_json::to_string(cfg)?;
    let mut rng = Rng::new(cfg.seed);
    let mut net = Net::new(cfg, &mut rng);
    let mut history = Vec::new();
    let mut best: Option<(f64, u32, ModelBox)> = None;
    let mut first_epoch = 0;
    // A run killed before its first checkpoint has nothing to resume: it starts again.
    let resumable = match resume.checkpoint {
        Some(path) if resume.resume && !path.exists() => {
            eprintln!(
                "no checkpoint at {} yet (the run stopped before its first epoch ended): \
                 starting from epoch 1",
                path.display()
            );
            None
        }
        Some(path) if resume.resume => Some(path),
        None if resume.resume => bail!("--resume needs a checkpoint file"),
        _ => None,
    };
    if let Some(path) = resumable {
        let ckpt = Checkpoint::load(path)?;
        if ckpt.config != config {
            bail!(
                "checkpoint {} was made with other options:\n  checkpoint: {}\n  now:        {config}\n\
                 run with the same options, or start again without --resume",
                path.display(),
                ckpt.config
            );
        }
        net.restore(&ckpt)?;
        rng = Rng::from_state(ckpt.rng);
        let mut best_model: ModelBox = ModelBox::zeroed();
        restore(&mut *best_model, &ckpt.best_model)?;
        best = Some((ckpt.best_accuracy, ckpt.best_epoch, best_model));
        history = ckpt.history;
        first_epoch = ckpt.epochs_done;
        eprintln!(
            "resuming after epoch {first_epoch} of {} from {}",
            cfg.epochs,
            path.display()
        );
    }
    let sgd = Sgd {
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
    };
    let mut order: Vec<u32> = Vec::with_capacity(train.labels.len());
    let mut xs = vec![[0.0f32; 784]; cfg.batch];
    let mut pixels = vec![[0u8; 784]; cfg.batch];
    let mut labels = vec![0u8; cfg.batch];
    let mut distorted: Vec<[u8; 784]> = Vec::new();
    let fast = net.fast().is_some();
    let mut sparse = (fast && cfg.augment.is_none()).then(|| SparseSet::new(&train.images));
    // The epoch's images in the epoch's order, so that a batch is read from consecutive memory.
    let mut epoch_set = SparseSet::empty();
    let positions: Vec<u32> = (0..train.labels.len() as u32).collect();

    for epoch in first_epoch..cfg.epochs {
        let images = match &cfg.augment {
            Some(aug) => {
                train
                    .images
                    .par_iter()
                    .enumerate()
                    .map(|(i, img)| aug.apply(img, cfg.seed, epoch, i as u32))
                    .collect_into_vec(&mut distorted);
                if fast {
                    sparse = Some(SparseSet::new(&distorted));
                }
                &distorted
            }
            None => &train.images,
        };
        let lr = cfg.schedule.lr(cfg.lr, epoch);
        let coefficients = sgd.coefficients::<f32>(lr);
        // A fresh permutation every epoch: the order depends only on the generator's state,
        // which a checkpoint keeps.
        order.clear();
        order.extend(0..train.labels.len() as u32);
        rng.shuffle(&mut order);
        let bar = progress_bar(epoch + 1, cfg.epochs, order.len());
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        if let Some(set) = &sparse {
            epoch_set.reorder(set, &order);
        }
        for (b, batch) in order.chunks(cfg.batch).enumerate() {
            let n = batch.len();
            for (k, &i) in batch.iter().enumerate() {
                labels[k] = train.labels[i as usize];
            }
            let (loss, right) = match (net.fast(), &sparse) {
                (Some((model, velocity, fast)), Some(_)) => {
                    let at = &positions[b * cfg.batch..b * cfg.batch + n];
                    let stats =
                        fast.step(model, velocity, &coefficients, &epoch_set, at, &labels[..n]);
                    (stats.loss_sum, stats.correct)
                }
                _ => {
                    for (k, &i) in batch.iter().enumerate() {
                        pixels[k] = images[i as usize];
                        normalize(&pixels[k], &mut xs[k]);
                    }
                    net.step(&pixels[..n], &xs[..n], &labels[..n], &sgd, lr)
                }
            };
            // The loss every batch; the parameters (a full pass over them) once an epoch.
            let last = seen + n == order.len();
            if !loss.is_finite() || (last && !net.all_finite()) {
                bar.abandon();
                bail!(
                    "training diverged in epoch {} (loss {loss}); the last good checkpoint is kept. \
                     Lower --lr (now {lr}) or add --batchnorm",
                    epoch + 1
                );
            }
            loss_sum += loss;
            correct += right;
            seen += n;
            if seen % (32 * cfg.batch) >= cfg.batch && !last {
                continue;
            }
            bar.set_position(seen as u64);
            bar.set_message(format!(
                "loss {:.4}  acc {:.2}%",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64
            ));
        }
        let seconds = start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let model = net.deployable();
        let val = evaluate(&model, validation);
        history.push(EpochReport {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            val_loss: val.loss,
            val_accuracy: val.accuracy,
            seconds,
            samples_per_second: seen as f64 / seconds,
        });
        // Ties go to the later epoch: with a decaying learning rate it is the better trained.
        if best.as_ref().is_none_or(|b| val.accuracy >= b.0) {
            best = Some((val.accuracy, epoch + 1, model));
        }
        if let Some(path) = resume.checkpoint {
            let NetState {
                model,
                running,
                velocity,
            } = net.snapshot();
            let (best_accuracy, best_epoch, best_model) = best.as_ref().expect("set above");
            Checkpoint {
                config: config.clone(),
                epochs_done: epoch + 1,
                rng: rng.state(),
                model,
                running,
                velocity,
                best_accuracy: *best_accuracy,
                best_epoch: *best_epoch,
                best_model: tensors_of(&**best_model),
                history: history.clone(),
            }
            .save(path)?;
        }
        on_epoch(&history)?;
    }
    let (_, best_epoch, model) = best.expect("at least one epoch ran");
    Ok(Outcome { model, best_epoch })
}

fn progress_bar(epoch: u32, epochs: u32, len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}  {per_sec}  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}
