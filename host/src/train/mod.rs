//! A training run: shuffled mini-batches, SGD with momentum, a held-out validation split, the
//! best model by validation accuracy kept, a checkpoint after every epoch ([`train`]).
//!
//! - [`epoch`]: the one epoch loop (the speed benchmark runs it too);
//! - `net`: the network in the form it trains (the fused step, the numerical gradient, batch
//!   normalization);
//! - [`fast_step`]: the core's fused mini-batch step on two [`threads`], over a
//!   [`sparse_set`] of the images and rows on cache lines ([`aligned`]);
//! - [`not_learning`]: the stop of a run that trains on at chance level (next to the
//!   divergence stop in [`epoch`]);
//! - [`checkpoint`], [`augment`], [`distill`], and `digits train` itself ([`command`]).

pub mod aligned;
pub mod augment;
pub mod checkpoint;
pub mod command;
pub mod compact;
pub mod distill;
pub mod epoch;
pub mod fast_step;
mod net;
pub mod not_learning;
pub mod score;
pub mod sparse_set;
pub mod threads;

use std::path::Path;

use anyhow::{Result, bail};
use digits_core::{MnistMlp, Rng, Schedule};
use rayon::prelude::*;
use serde::Serialize;

use crate::cli::progress::Progress;
use crate::data::Split;
use crate::train::aligned::ModelBox;
use crate::train::augment::Augment;
use crate::train::checkpoint::{Checkpoint, restore, tensors_of};
use crate::train::epoch::{Diverged, EpochData, Trainer};
use crate::train::net::NetState;
use crate::train::not_learning::NotLearning;
use crate::train::sparse_set::SparseSet;

pub use net::{MnistMlpBn, numeric_gradient};
pub use score::Score;

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
    /// Training images held out (from the end of the training set) to pick the best epoch;
    /// 0 trains on all of them and keeps the last epoch.
    pub validation: usize,
    /// Backprop or numerical differentiation.
    pub grad: GradMethod,
    /// Central-difference step for `--grad numeric`.
    pub step: f64,
    /// Random distortions of the training images, fresh every epoch.
    pub augment: Option<Augment>,
    /// A teacher's soft targets mixed with the labels.
    pub distill: Option<distill::Distillation>,
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
    /// Loss on the validation split after the epoch (none with `--validation 0`).
    pub val_loss: Option<f64>,
    /// Accuracy on the validation split after the epoch (none with `--validation 0`).
    pub val_accuracy: Option<f64>,
    /// Wall time of the epoch's training steps.
    pub seconds: f64,
    /// Training throughput.
    pub samples_per_second: f64,
}

/// The result of training.
pub struct Outcome {
    /// The best model by validation accuracy, or the last without a validation split (batch
    /// norm folded in).
    pub model: ModelBox,
    /// Its epoch, from 1.
    pub best_epoch: u32,
}

/// Loss and accuracy of `model` on `split` (all of it), in parallel.
pub fn evaluate(model: &MnistMlp, split: &Split) -> Score {
    // Bit-identical to `normalize` + `logits`, without a division or a branch per pixel.
    Score::of(split, |img| crate::evaluate::infer::logits(model, img))
}

/// [`evaluate`] on the validation split, none when it is empty (`--validation 0`).
fn validate(model: &MnistMlp, validation: &Split) -> Option<Score> {
    (!validation.labels.is_empty()).then(|| evaluate(model, validation))
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

/// The model a run keeps: the best so far by validation accuracy, or the last epoch's.
pub struct Best<M> {
    /// Its validation accuracy; none without a validation split.
    pub accuracy: Option<f64>,
    /// Its epoch, from 1.
    pub epoch: u32,
    /// The model.
    pub model: M,
}

impl<M> Best<M> {
    /// Offers the model of `epoch`, whose validation accuracy is `accuracy`: it is kept when
    /// it scores at least the best so far (ties go to the later epoch: with a decaying
    /// learning rate it is the better trained), and always without a validation split, so
    /// that the last epoch is kept. `model` is made only when it is kept.
    pub fn offer(
        best: &mut Option<Best<M>>,
        accuracy: Option<f64>,
        epoch: u32,
        model: impl FnOnce() -> M,
    ) {
        let keep = match (best.as_ref().and_then(|b| b.accuracy), accuracy) {
            (Some(old), Some(new)) => new >= old,
            _ => true,
        };
        if keep {
            *best = Some(Best {
                accuracy,
                epoch,
                model: model(),
            });
        }
    }
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
    if cfg.distill.is_some() && (cfg.batchnorm || cfg.grad == GradMethod::Numeric) {
        bail!(
            "--teacher distills into the plain network trained by backprop; drop --batchnorm and --grad numeric"
        );
    }
    if !(cfg.step > 0.0 && cfg.step.is_finite()) {
        bail!("--step must be a positive number (got {})", cfg.step);
    }
    let config = serde_json::to_string(cfg)?;
    let mut rng = Rng::new(cfg.seed);
    let mut trainer = Trainer::new(cfg, &mut rng);
    let mut history = Vec::new();
    let mut best: Option<Best<ModelBox>> = None;
    let mut first_epoch = 0;
    // A run killed before its first checkpoint has nothing to resume: it starts again.
    let resumable = match resume.checkpoint {
        Some(path) if resume.resume && !path.exists() => {
            eprintln!(
                "no checkpoint at {} (the run stopped before its first epoch ended, or it \
                 completed and removed it): starting from epoch 1",
                path.display()
            );
            None
        }
        Some(path) if resume.resume => Some(path),
        None if resume.resume => bail!("--resume needs a checkpoint file"),
        _ => None,
    };
    // Whether the checkpoint file is this run's (written by it, or resumed from): only then is
    // it removed when the run diverges.
    let mut own_checkpoint = resumable.is_some();
    if let Some(path) = resumable {
        let ckpt = Checkpoint::load(path)?;
        ckpt.require_options(&config, path)?;
        trainer.net.restore(&ckpt)?;
        rng = Rng::from_state(ckpt.rng);
        let mut best_model: ModelBox = ModelBox::zeroed();
        restore(&mut *best_model, &ckpt.best_model)?;
        best = Some(Best {
            accuracy: ckpt.best_accuracy,
            epoch: ckpt.best_epoch,
            model: best_model,
        });
        history = ckpt.history;
        first_epoch = ckpt.epochs_done;
        eprintln!(
            "resuming after epoch {first_epoch} of {} from {}",
            cfg.epochs,
            path.display()
        );
    }
    let teacher = cfg.distill.as_ref().map(|d| d.load()).transpose()?;
    let mut soft_targets: Vec<[f32; 10]> = Vec::new();
    let mut distorted: Vec<[u8; 784]> = Vec::new();
    let distorter = cfg.augment.map(|a| a.distorter(cfg.seed));
    let fast = trainer.needs_sparse();
    let mut sparse = (fast && cfg.augment.is_none()).then(|| SparseSet::new(&train.images));

    for epoch in first_epoch..cfg.epochs {
        let images = match &distorter {
            Some(aug) => {
                train
                    .images
                    .par_iter()
                    .enumerate()
                    .map(|(i, img)| aug.apply(img, epoch, i as u32))
                    .collect_into_vec(&mut distorted);
                if fast {
                    sparse = Some(SparseSet::new(&distorted));
                }
                &distorted
            }
            None => &train.images,
        };
        if let Some(teacher) = &teacher
            && (cfg.augment.is_some() || soft_targets.is_empty())
        {
            teacher.targets(images, &mut soft_targets);
        }
        let data = EpochData {
            images,
            sparse: sparse.as_ref(),
            labels: &train.labels,
            soft: teacher.as_ref().map(|_| &soft_targets[..]),
        };
        let lr = cfg.schedule.lr(cfg.lr, epoch);
        let len = train.labels.len() as u64;
        let bar = Progress {
            prefix: format!("epoch {}/{}", epoch + 1, cfg.epochs),
            len,
            unit: "img",
            after: u64::from(cfg.epochs - epoch - 1) * len,
            known_rate: history.last().map(|r: &EpochReport| r.samples_per_second),
        }
        .bar();
        let totals = match trainer.epoch(data, &mut rng, lr, epoch, Some(&bar)) {
            Ok(totals) => totals,
            Err(e) => {
                return Err(stopped(
                    e,
                    cfg,
                    resume.checkpoint.filter(|_| own_checkpoint),
                ));
            }
        };
        bar.finish_and_clear();
        let model = trainer.model();
        let val = validate(&model, validation);
        history.push(EpochReport {
            epoch: epoch + 1,
            lr,
            train_loss: totals.loss_sum / totals.seen as f64,
            train_accuracy: totals.correct as f64 / totals.seen as f64,
            val_loss: val.map(|v| v.loss),
            val_accuracy: val.map(|v| v.accuracy),
            seconds: totals.seconds,
            samples_per_second: totals.seen as f64 / totals.seconds,
        });
        Best::offer(&mut best, val.map(|v| v.accuracy), epoch + 1, || model);
        if let Some(path) = resume.checkpoint {
            let NetState {
                model,
                running,
                velocity,
            } = trainer.net.snapshot();
            let best = best.as_ref().expect("set above");
            Checkpoint {
                config: config.clone(),
                epochs_done: epoch + 1,
                rng: rng.state(),
                model,
                running,
                velocity,
                best_accuracy: best.accuracy,
                best_epoch: best.epoch,
                best_model: tensors_of(&*best.model),
                history: history.clone(),
            }
            .save(path)?;
            own_checkpoint = true;
        }
        on_epoch(&history)?;
        let updates = (epoch as usize + 1) * train.labels.len().div_ceil(cfg.batch);
        let report = history.last().expect("pushed above");
        if let Err(e) = not_learning::check(report, updates) {
            return Err(stopped(
                e.into(),
                cfg,
                resume.checkpoint.filter(|_| own_checkpoint),
            ));
        }
    }
    let Best {
        epoch: best_epoch,
        model,
        ..
    } = best.expect("at least one epoch ran");
    Ok(Outcome { model, best_epoch })
}

/// The error of a run stopped because it diverged or is not learning, with what to change; its
/// checkpoint (`checkpoint`, if the run's own) is removed, since resuming it with the same
/// options would only do the same again.
fn stopped(e: anyhow::Error, cfg: &TrainConfig, checkpoint: Option<&Path>) -> anyhow::Error {
    let not_learning = e.downcast_ref::<NotLearning>().is_some();
    if e.downcast_ref::<Diverged>().is_none() && !not_learning {
        return e;
    }
    let removed = checkpoint.is_some_and(|path| std::fs::remove_file(path).is_ok());
    // A run stalls at chance when its rate is so high that it kills the hidden units, or so
    // low that the weights hardly move.
    let change = if not_learning && cfg.lr < TINY_LR {
        "raise"
    } else {
        "lower"
    };
    let batchnorm = if cfg.batchnorm {
        ""
    } else {
        " or add --batchnorm"
    };
    anyhow::anyhow!(
        "{e}; {change} --lr (now {}){batchnorm}. No model written{}",
        cfg.lr,
        if removed {
            ", and the run's checkpoint removed"
        } else {
            ""
        }
    )
}

/// Below this learning rate a run that does not learn is taken to move too little, not too
/// much: well below the default rate.
const TINY_LR: f64 = 0.01;
