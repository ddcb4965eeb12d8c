//! `digits train`: its options, and the run from loading the data to writing the model file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use digits_core::Schedule;

use digits_core::lowbit::Bits;

use super::augment::Recipe;
use super::checkpoint::Checkpoint;
use super::compact;
use super::compact::arch::LayerBits;
use super::distill::Distillation;
use super::{EpochReport, GradMethod, TrainConfig, evaluate, hold_out};
use crate::cli::number::Within;
use crate::cli::output::{self, Output};
use crate::data::command::{DataArgs, load};
use crate::model_io;

#[derive(Clone, Copy, ValueEnum)]
pub enum ScheduleArg {
    /// The base learning rate throughout.
    Constant,
    /// Divided by 10 after each third of the epochs.
    Step,
    /// Multiplied by 0.9 every epoch.
    Exp,
    /// Half a cosine from the base rate to 0.
    Cosine,
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Passes over the training images, at least 1 [default: 30, or 100 with --augment].
    #[arg(long, allow_negative_numbers = true, value_parser = Within::<u32>::at_least(1))]
    epochs: Option<u32>,
    /// Images per step: 1 to the training images left after --validation [default: 32, or 128
    /// with --arch].
    #[arg(long, allow_negative_numbers = true, value_parser = Within::at_least(1usize))]
    batch: Option<usize>,
    /// Base learning rate (> 0) [default: 0.05 (SGD), or 0.002 (Adam, on what Muon does not
    /// train) with --arch].
    #[arg(long, allow_negative_numbers = true, value_parser = Within::above(0.0))]
    lr: Option<f64>,
    /// SGD momentum (>= 0 and < 1); --arch trains with Adam, without it.
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true, value_parser = Within::at_least(0.0).below(1.0))]
    momentum: f64,
    /// L2 weight decay, weights only (>= 0).
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true, value_parser = Within::at_least(0.0))]
    weight_decay: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = ScheduleArg::Cosine)]
    schedule: ScheduleArg,
    /// Distort the training images afresh every epoch: affine (rotation, scale, shift),
    /// elastic (smooth random displacements on top of affine), none. Bare `--augment` is the
    /// best recipe, affine.
    #[arg(long, value_enum, value_name = "RECIPE", num_args = 0..=1, default_missing_value = "affine")]
    augment: Option<Recipe>,
    /// Distill from these model files (f32, made by `digits train`; several are an ensemble,
    /// their probabilities averaged): their soft targets are mixed with the labels.
    #[arg(long, value_name = "FILE,...", value_delimiter = ',')]
    teacher: Vec<PathBuf>,
    /// Temperature of the teacher's and the student's softmax with --teacher (> 0).
    #[arg(long, default_value_t = 4.0, requires = "teacher", allow_negative_numbers = true, value_parser = Within::above(0.0))]
    temperature: f64,
    /// Share of the loss the teacher's soft targets get with --teacher (0 to 1; the labels
    /// get the rest).
    #[arg(long, default_value_t = 0.7, requires = "teacher", allow_negative_numbers = true, value_parser = Within::at_least(0.0).at_most(1.0))]
    distill_weight: f64,
    /// Batch normalization on the hidden layer (folded into the weights at the end).
    #[arg(long)]
    batchnorm: bool,
    /// Seed of initialization and shuffling: same seed and options, same model.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Training images held out to pick the best epoch, fewer than the training images; 0
    /// trains on all of them and keeps the last epoch.
    #[arg(long, default_value_t = 5000, allow_negative_numbers = true, value_parser = Within::at_least(0usize))]
    validation: usize,
    /// Use only the first N training images (before the validation split): quick runs.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = Within::at_least(1usize))]
    limit: Option<usize>,
    /// How to compute gradients: backprop, or central differences (structured).
    #[arg(long, value_enum, default_value_t = GradMethod::Backprop)]
    grad: GradMethod,
    /// Central-difference step h of `--grad numeric` (> 0) [default: 0.01].
    #[arg(long, allow_negative_numbers = true, value_parser = Within::above(0.0))]
    step: Option<f64>,
    /// Write per-epoch metrics here as JSON lines.
    #[arg(long, value_name = "FILE", value_parser = Output::FILE)]
    metrics: Option<PathBuf>,
    /// Where to write the model file.
    #[arg(long, value_name = "FILE", default_value = "model.digits", value_parser = Output::FILE)]
    out: PathBuf,
    /// Checkpoint, rewritten after every epoch so that --resume can continue a run that was
    /// stopped; removed when the run completes [default: the model file + ".ckpt"].
    #[arg(long, value_name = "FILE", value_parser = Output::FILE)]
    checkpoint: Option<PathBuf>,
    /// Continue an interrupted run from its checkpoint (same options).
    #[arg(long)]
    resume: bool,
    /// Train a compact network instead of 784-128-10: the input downsampled to SIDExSIDE, three
    /// hidden layers, low-bit weights learned with quantization-aware training and Adam, e.g.
    /// 16x16-56-56-56-10.
    #[arg(long, value_name = "SIDExSIDE-H1-H2-H3-10")]
    arch: Option<compact::arch::Arch>,
    /// Bits per weight code of --arch: 2 or 4, or one per layer as 2,4,4,4 [default: 4].
    #[arg(long)]
    bits: Option<LayerBits>,
    /// Optimizer of --arch: muon (orthogonalized momentum on the hidden layers' weights, Adam
    /// on the rest), or adam [default: muon].
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    /// Base learning rate of the Muon steps with --optimizer muon (> 0) [default: 0.01].
    #[arg(long, allow_negative_numbers = true, value_parser = Within::above(0.0))]
    muon_lr: Option<f64>,
}

/// `--optimizer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OptimizerArg {
    /// Adam on every tensor.
    Adam,
    /// Muon on the hidden weight matrices, Adam on the rest.
    Muon,
}

/// Learning rate of `--optimizer muon` when none is given (Muon's authors' and BitNetMCU's).
const DEFAULT_MUON_LR: f64 = 0.01;

/// Central-difference step of `--grad numeric` when none is given.
const DEFAULT_STEP: f64 = 1e-2;

impl TrainArgs {
    /// The run these options ask for.
    fn config(&self) -> TrainConfig {
        // Distorted images take longer to learn from.
        let augment = self.augment.and_then(Recipe::augment);
        let epochs = self
            .epochs
            .unwrap_or(if augment.is_some() { 100 } else { 30 });
        let schedule = match self.schedule {
            ScheduleArg::Constant => Schedule::Constant,
            ScheduleArg::Step => Schedule::Step {
                every: (epochs / 3).max(1),
                gamma: 0.1,
            },
            ScheduleArg::Exp => Schedule::Exponential { gamma: 0.9 },
            ScheduleArg::Cosine => Schedule::Cosine {
                total: epochs,
                floor: 0.0,
            },
        };
        TrainConfig {
            epochs,
            batch: self.batch.unwrap_or(32),
            lr: self.lr.unwrap_or(0.05),
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            schedule,
            seed: self.seed,
            batchnorm: self.batchnorm,
            validation: self.validation,
            grad: self.grad,
            step: self.step.unwrap_or(DEFAULT_STEP),
            augment,
            distill: (!self.teacher.is_empty()).then(|| Distillation {
                teachers: self
                    .teacher
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                temperature: self.temperature,
                weight: self.distill_weight,
            }),
            limit: self.limit,
        }
    }

    /// The checkpoint file: `--checkpoint`, else the model file + ".ckpt".
    fn checkpoint(&self) -> PathBuf {
        self.checkpoint.clone().unwrap_or_else(|| {
            let mut p = self.out.clone().into_os_string();
            p.push(".ckpt");
            PathBuf::from(p)
        })
    }

    /// What can be judged without the data: options that go together, three distinct output
    /// files, and a checkpoint to resume that was made with these options.
    fn check(&self, cfg: &TrainConfig, checkpoint: &Path) -> Result<()> {
        if self.grad == GradMethod::Numeric && self.batchnorm {
            bail!("--grad numeric trains the plain network; drop --batchnorm");
        }
        if let Some(d) = &cfg.distill {
            if self.batchnorm || self.grad == GradMethod::Numeric {
                bail!(
                    "--teacher distills into the plain network trained by backprop; drop --batchnorm and --grad numeric"
                );
            }
            // Read now, so a wrong file fails before the data is loaded.
            d.load()?;
        }
        if self.step.is_some() && self.grad != GradMethod::Numeric {
            bail!(
                "--step is the central-difference step of --grad numeric; drop it, or add --grad numeric"
            );
        }
        if self.checkpoint.is_none() {
            output::require_file("--checkpoint (the --out file + .ckpt)", checkpoint)?;
        }
        let mut outputs = vec![("--out", self.out.as_path()), ("--checkpoint", checkpoint)];
        outputs.extend(self.metrics.as_deref().map(|m| ("--metrics", m)));
        for (k, (a, path_a)) in outputs.iter().enumerate() {
            for (b, path_b) in &outputs[k + 1..] {
                if same_file(path_a, path_b) {
                    bail!(
                        "{a} and {b} are the same file, {}; name two",
                        path_a.display()
                    );
                }
            }
        }
        if let Some(limit) = self.limit {
            self.check_sizes(
                limit,
                &format!("--limit {limit} leaves {limit} training images"),
            )?;
        }
        if self.resume && checkpoint.exists() {
            Checkpoint::load(checkpoint)?
                .require_options(&serde_json::to_string(cfg)?, checkpoint)?;
        }
        Ok(())
    }

    /// `--validation` and `--batch` against the `images` there are to train on (`source`
    /// says where that number comes from: `the training set has 1000 images`).
    fn check_sizes(&self, images: usize, source: &str) -> Result<()> {
        Within::at_least(0)
            .at_most(images.saturating_sub(1))
            .require("--validation", self.validation, source)?;
        let left = images - self.validation;
        Within::at_least(1).at_most(left).require(
            "--batch",
            self.batch
                .unwrap_or(if self.arch.is_some() { 128 } else { 32 }),
            &format!("{source}, {left} after --validation {}", self.validation),
        )
    }
}

/// Whether two paths name one file (their directories exist: the options were checked).
fn same_file(a: &Path, b: &Path) -> bool {
    let resolved = |p: &Path| {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::canonicalize(dir)
            .ok()
            .map(|d| d.join(p.file_name().unwrap_or_default()))
    };
    a == b || (resolved(a).is_some() && resolved(a) == resolved(b))
}

/// Which epoch's model a run kept: `best epoch 7 of 10`, or `last epoch 10 of 10 (no
/// validation split)` with `--validation 0`.
fn kept_epoch(epoch: u32, epochs: u32, validation: usize) -> String {
    if validation == 0 {
        format!("last epoch {epoch} of {epochs} (no validation split)")
    } else {
        format!("best epoch {epoch} of {epochs}")
    }
}

/// After every epoch: prints the latest epoch's line (the learning rate with `lr_digits`
/// decimals) and rewrites the `--metrics` file, if any, with the whole history.
fn report_epoch(history: &[EpochReport], metrics: Option<&Path>, lr_digits: usize) -> Result<()> {
    let r = history.last().expect("called after an epoch");
    let val = match (r.val_loss, r.val_accuracy) {
        (Some(loss), Some(accuracy)) => format!("val loss {loss:.4} acc {:6.2}%", 100.0 * accuracy),
        _ => "no validation".to_string(),
    };
    println!(
        "epoch {:>3}  lr {:.lr_digits$}  train loss {:.4} acc {:6.2}%  {val}  {:.1} s ({:.0} img/s)",
        r.epoch,
        r.lr,
        r.train_loss,
        100.0 * r.train_accuracy,
        r.seconds,
        r.samples_per_second
    );
    if let Some(path) = metrics {
        // Rewritten whole and atomically: never a half-written line.
        let mut lines = String::new();
        for r in history {
            lines.push_str(&serde_json::to_string(r)?);
            lines.push('\n');
        }
        model_io::write_atomically(path, lines.as_bytes())?;
    }
    Ok(())
}

/// Runs `digits train`.
pub fn run(args: TrainArgs) -> Result<()> {
    if args.arch.is_some() {
        return run_compact(args);
    }
    if args.bits.is_some() {
        bail!(
            "--bits sets the weight codes of a compact network; add --arch (e.g. --arch 16x16-56-56-56-10)"
        );
    }
    if args.optimizer.is_some() || args.muon_lr.is_some() {
        bail!(
            "--optimizer and --muon-lr choose how a compact network learns; 784-128-10 trains with SGD: add --arch or drop them"
        );
    }
    let cfg = args.config();
    let checkpoint = args.checkpoint();
    args.check(&cfg, &checkpoint)?;
    let dataset = load(&args.data)?;
    let mut all_train = dataset.train;
    let available = all_train.labels.len();
    if let Some(n) = args.limit {
        Within::at_least(1).at_most(available).require(
            "--limit",
            n,
            &format!("the training set has {available} images"),
        )?;
        all_train.images.truncate(n);
        all_train.labels.truncate(n);
    }
    let images = all_train.labels.len();
    let source = match args.limit {
        Some(limit) => format!("--limit {limit} leaves {images} training images"),
        None => format!("the training set has {images} images"),
    };
    args.check_sizes(images, &source)?;
    let (train_split, val_split) = hold_out(&all_train, cfg.validation)?;
    let resume = super::Resume {
        checkpoint: Some(&checkpoint),
        resume: args.resume,
    };
    eprintln!(
        "checkpoint after every epoch: {} (`--resume` continues from it; removed when the run completes)",
        checkpoint.display()
    );
    let start = Instant::now();
    let outcome = super::train(&train_split, &val_split, &cfg, &resume, |history| {
        report_epoch(history, args.metrics.as_deref(), 4)
    })?;
    let test = evaluate(&outcome.model, &dataset.test);
    println!(
        "{}: test accuracy {:.2}% (loss {:.4}), {:.1} s in all",
        kept_epoch(outcome.best_epoch, cfg.epochs, cfg.validation),
        100.0 * test.accuracy,
        test.loss,
        start.elapsed().as_secs_f64()
    );
    let provenance = model_io::Provenance {
        dataset: dataset.kind.to_string(),
        test_accuracy: Some(test.accuracy as f32),
        seed: cfg.seed,
        epochs: outcome.best_epoch,
        options: serde_json::to_string(&cfg)?,
    };
    model_io::save(&args.out, &outcome.model, &provenance)?;
    // The run is complete: nothing is left to resume.
    if let Err(e) = std::fs::remove_file(&checkpoint)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!(
            "warning: cannot remove the checkpoint {}: {e}",
            checkpoint.display()
        );
    }
    println!("model written to {}", args.out.display());
    Ok(())
}

/// `digits train --arch`: a compact network, quantization-aware from the first step.
fn run_compact(args: TrainArgs) -> Result<()> {
    let arch = args.arch.expect("called with --arch");
    let refuse = |option: &str| {
        anyhow::anyhow!(
            "{option} is not available with --arch (compact networks train with Muon and Adam, without batch normalization or checkpoints); drop it"
        )
    };
    if args.batchnorm {
        return Err(refuse("--batchnorm"));
    }
    if args.grad != GradMethod::Backprop {
        return Err(refuse("--grad numeric"));
    }
    if args.step.is_some() {
        return Err(refuse("--step"));
    }
    if args.resume || args.checkpoint.is_some() {
        return Err(refuse("--resume/--checkpoint"));
    }
    if args.muon_lr.is_some() && args.optimizer == Some(OptimizerArg::Adam) {
        bail!("--muon-lr is the learning rate of --optimizer muon; drop one of them");
    }
    let augment = args.augment.and_then(Recipe::augment);
    let epochs = args
        .epochs
        .unwrap_or(if augment.is_some() { 50 } else { 30 });
    let cfg = compact::CompactConfig {
        arch,
        bits: args.bits.unwrap_or(LayerBits::all(Bits::Four)),
        epochs,
        batch: args.batch.unwrap_or(128),
        lr: args.lr.unwrap_or(0.002),
        optimizer: match args.optimizer.unwrap_or(OptimizerArg::Muon) {
            OptimizerArg::Adam => compact::Optimizer::Adam,
            OptimizerArg::Muon => compact::Optimizer::Muon {
                lr: args.muon_lr.unwrap_or(DEFAULT_MUON_LR),
            },
        },
        weight_decay: args.weight_decay,
        schedule: args.config().schedule,
        seed: args.seed,
        validation: args.validation,
        augment,
        distill: args.config().distill,
        limit: args.limit,
    };
    if let Some(d) = &cfg.distill {
        // Read now, so a wrong file fails before the data is loaded.
        d.load()?;
    }
    let mut outputs = vec![("--out", args.out.as_path())];
    outputs.extend(args.metrics.as_deref().map(|m| ("--metrics", m)));
    if let [(a, pa), (b, pb)] = outputs[..]
        && same_file(pa, pb)
    {
        bail!("{a} and {b} are the same file, {}; name two", pa.display());
    }
    if let Some(limit) = args.limit {
        args.check_sizes(
            limit,
            &format!("--limit {limit} leaves {limit} training images"),
        )?;
    }
    let dataset = load(&args.data)?;
    let mut all_train = dataset.train;
    let available = all_train.labels.len();
    if let Some(n) = args.limit {
        Within::at_least(1).at_most(available).require(
            "--limit",
            n,
            &format!("the training set has {available} images"),
        )?;
        all_train.images.truncate(n);
        all_train.labels.truncate(n);
    }
    let images = all_train.labels.len();
    args.check_sizes(images, &format!("the training set has {images} images"))?;
    let (train_split, val_split) = hold_out(&all_train, cfg.validation)?;
    let start = Instant::now();
    // Adam's smaller rates need one more digit.
    let outcome = compact::train(&cfg, &train_split, &val_split, |history| {
        report_epoch(history, args.metrics.as_deref(), 5)
    })?;
    let model = outcome.net.view();
    let test = compact::evaluate(&model, &dataset.test);
    println!(
        "{arch} {}: {}: test accuracy {:.2}% (loss {:.4}), {} bytes of weights, {:.1} s in all",
        cfg.bits,
        kept_epoch(outcome.best_epoch, cfg.epochs, cfg.validation),
        100.0 * test.accuracy,
        test.loss,
        model.weight_bytes(),
        start.elapsed().as_secs_f64()
    );
    let provenance = model_io::Provenance {
        dataset: dataset.kind.to_string(),
        test_accuracy: Some(test.accuracy as f32),
        seed: cfg.seed,
        epochs: outcome.best_epoch,
        options: serde_json::to_string(&cfg)?,
    };
    model_io::write_atomically(
        &args.out,
        &model_io::encode_compact(&outcome.net, &provenance)?,
    )?;
    println!("model written to {}", args.out.display());
    Ok(())
}
