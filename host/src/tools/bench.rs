//! `digits bench`: its options, and the choice between the two benchmarks.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::{numgrad_bench, speed};
use crate::cli::number::Within;
use crate::data::command::{DataArgs, load, load_test};

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    data: DataArgs,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = BenchMode::Numgrad)]
    mode: BenchMode,
    /// `--mode speed`: epochs trained, each timed.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true, value_parser = Within::at_least(1u32))]
    epochs: u32,
    /// `--mode speed`: seed of initialization and shuffling; `--mode not-a-digit`: seed of the
    /// generated non-digits.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `--mode speed`: learning rate (constant; momentum 0.9, weight decay 1e-4).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true, value_parser = Within::above(0.0))]
    lr: f64,
    /// `--mode speed`: also run scripts/bench_torch.py with this Python (one with torch and
    /// numpy, e.g. /work/venv-torch/bin/python) and print the figures side by side.
    #[arg(long, value_name = "PYTHON")]
    compare: Option<PathBuf>,
    /// Batch sizes to measure (`--mode speed`: the first).
    #[arg(long, value_delimiter = ',', default_value = "32,64", value_parser = Within::at_least(1usize))]
    batch: Vec<usize>,
    /// Repetitions of the fast methods (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = Within::at_least(1usize))]
    repeats: usize,
    /// Central-difference step.
    #[arg(long, default_value_t = 1e-2, allow_negative_numbers = true, value_parser = Within::above(0.0f32))]
    step: f32,
    /// `--mode not-a-digit`: the model file.
    #[arg(long, value_name = "FILE", default_value = "model.digits")]
    model: PathBuf,
    /// `--mode not-a-digit`: instead of measuring, train the "not a digit" detector from --seed
    /// (training splits and generated pictures only) and write it to FILE.
    #[arg(long, value_name = "FILE", value_parser = crate::cli::output::Output::FILE)]
    train_detector: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    /// One full numerical gradient: the definition vs the structured version.
    Numgrad,
    /// Training epoch time, images/s one at a time and batched, GFLOP/s next to the peak.
    Speed,
    /// The "not a digit" verdict: flagged digits and non-digits, per set, over the threshold
    /// (MNIST's and Fashion-MNIST's test sets; generated non-digits drawn from --seed).
    NotADigit,
}

/// Runs `digits bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    if let (BenchMode::NotADigit, Some(out)) = (args.mode, &args.train_detector) {
        crate::cli::output::require_file("--train-detector", out)?;
        return crate::evaluate::detector::train(&args.data, args.seed, out);
    }
    if args.mode == BenchMode::NotADigit {
        return crate::evaluate::verdict_bench::run(&args.model, &args.data, args.seed);
    }
    if args.mode == BenchMode::Speed {
        let dataset = load(&args.data)?;
        check_batches(&args.batch, dataset.test.labels.len())?;
        let speed = speed::SpeedArgs {
            batch: args.batch[0],
            epochs: args.epochs.max(1),
            repeats: args.repeats.max(1),
            seed: args.seed,
            lr: args.lr,
            compare: args.compare,
            data_dir: args.data.dir().path,
        };
        return speed::run(&dataset, &speed);
    }
    // One gradient on test images: the training files are not needed.
    let dataset = load_test(&args.data)?;
    check_batches(&args.batch, dataset.test.labels.len())?;
    numgrad_bench::numgrad(&dataset.test, &args.batch, args.repeats.max(1), args.step);
    Ok(())
}

fn check_batches(batches: &[usize], images: usize) -> Result<()> {
    if batches.iter().any(|&b| b == 0 || b > images) {
        anyhow::bail!("--batch sizes must be between 1 and the number of test images");
    }
    Ok(())
}
