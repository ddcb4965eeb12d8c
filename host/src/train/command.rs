//! `digits train`: its options, and the run from loading the data to writing the model file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, ValueEnum};
use digits_core::Schedule;

use super::augment;
use super::{GradMethod, TrainConfig, evaluate, hold_out};
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
    /// Passes over the training images [default: 30, or 50 with --augment].
    #[arg(long)]
    epochs: Option<u32>,
    /// Images per SGD step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Base learning rate.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// L2 weight decay (weights only).
    #[arg(long, default_value_t = 1e-4)]
    weight_decay: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = ScheduleArg::Cosine)]
    schedule: ScheduleArg,
    /// Randomly rotate, scale, shear and shift the training images every epoch.
    #[arg(long)]
    augment: bool,
    /// Batch normalization on the hidden layer (folded into the weights at the end).
    #[arg(long)]
    batchnorm: bool,
    /// Seed of initialization and shuffling: same seed and options, same model.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Training images held out to pick the best epoch.
    #[arg(long, default_value_t = 5000)]
    validation: usize,
    /// Use only the first N training images (before the validation split): quick runs.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// How to compute gradients: backprop, or central differences (structured).
    #[arg(long, value_enum, default_value_t = GradMethod::Backprop)]
    grad: GradMethod,
    /// Central-difference step h for `--grad numeric`.
    #[arg(long, default_value_t = 1e-2)]
    step: f64,
    /// Write per-epoch metrics here as JSON lines.
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,
    /// Where to write the model file.
    #[arg(long, value_name = "FILE", default_value = "model.digits")]
    out: PathBuf,
    /// Checkpoint file, rewritten after every epoch [default: the model file + ".ckpt"].
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Continue an interrupted run from its checkpoint (same options).
    #[arg(long)]
    resume: bool,
}

/// Runs `digits train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let dataset = load(&args.data)?;
    // Distorted images take longer to learn from.
    let epochs = args.epochs.unwrap_or(if args.augment { 50 } else { 30 });
    let schedule = match args.schedule {
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
    let cfg = TrainConfig {
        epochs,
        batch: args.batch,
        lr: args.lr,
        momentum: args.momentum,
        weight_decay: args.weight_decay,
        schedule,
        seed: args.seed,
        batchnorm: args.batchnorm,
        validation: args.validation,
        grad: args.grad,
        step: args.step,
        augment: args.augment.then(augment::Augment::default),
        limit: args.limit,
    };
    let mut all_train = dataset.train;
    if let Some(n) = args.limit {
        all_train.images.truncate(n);
        all_train.labels.truncate(n);
    }
    let (train_split, val_split) = hold_out(&all_train, cfg.validation)?;
    let checkpoint = args.checkpoint.clone().unwrap_or_else(|| {
        let mut p = args.out.clone().into_os_string();
        p.push(".ckpt");
        PathBuf::from(p)
    });
    let resume = super::Resume {
        checkpoint: Some(&checkpoint),
        resume: args.resume,
    };
    let start = Instant::now();
    let outcome = super::train(&train_split, &val_split, &cfg, &resume, |history| {
        let r = history.last().expect("called after an epoch");
        println!(
            "epoch {:>3}  lr {:.4}  train loss {:.4} acc {:6.2}%  val loss {:.4} acc {:6.2}%  {:.1} s ({:.0} img/s)",
            r.epoch,
            r.lr,
            r.train_loss,
            100.0 * r.train_accuracy,
            r.val_loss,
            100.0 * r.val_accuracy,
            r.seconds,
            r.samples_per_second
        );
        if let Some(path) = &args.metrics {
            // Rewritten whole and atomically: never a half-written line.
            let mut lines = String::new();
            for r in history {
                lines.push_str(&serde_json::to_string(r)?);
                lines.push('\n');
            }
            model_io::write_atomically(path, lines.as_bytes())?;
        }
        Ok(())
    })?;
    let test = evaluate(&outcome.model, &dataset.test);
    println!(
        "best epoch {} of {}: test accuracy {:.2}% (loss {:.4}), {:.1} s in all",
        outcome.best_epoch,
        cfg.epochs,
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
    println!("model written to {}", args.out.display());
    Ok(())
}
