//! `digits`: train, evaluate and check the handwritten-digit network of `digits-core`.

mod augment;
mod backprop;
mod bench;
mod boxed;
mod checkpoint;
mod device;
mod device_finetune;
mod eval;
mod fetch;
mod finetune;
mod gradcheck;
mod infer;
mod model_io;
mod pair;
mod peak;
mod predict;
mod quantize;
mod shift;
mod simd;
mod speed;
#[cfg(test)]
mod testing;
mod train;

use host::{data, preprocess};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use digits_core::Schedule;

use crate::data::{Dataset, DatasetKind};
use crate::train::{GradMethod, TrainConfig, evaluate, hold_out};

/// Handwritten-digit recognition with a small network written once for PC and microcontroller.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the 784-128-10 network and write the best model (by validation accuracy).
    Train(TrainArgs),
    /// Compare numerical gradients with backprop, per tensor, in f64 and f32.
    Gradcheck(GradcheckArgs),
    /// Measure: one full numerical gradient (definition vs structured), or `--mode speed`:
    /// training and inference throughput.
    Bench(BenchArgs),
    /// Evaluate a model on the test split: accuracy, per-class precision/recall/F1, confusion matrix.
    Eval(eval::EvalArgs),
    /// Recognize your own pictures of digits (PNG/JPEG), preprocessed the way MNIST was made.
    Predict(predict::PredictArgs),
    /// Work with the dataset files.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Run the firmware in QEMU and talk to it: info, predict, eval.
    Device(device::DeviceArgs),
    /// Quantize an f32 model file to int8 (4x smaller): per-channel weight scales, hidden
    /// activations calibrated on training images; prints f32 vs int8 test accuracy.
    Quantize(quantize::QuantizeArgs),
    /// Print what a model file holds.
    Inspect {
        /// The model file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Verify the SHA-256 of the four files' contents against the official values.
    Check {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Download the four files where missing or damaged, with the official checksums verified
    /// before any file is moved into place.
    Fetch {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        fetch: fetch::FetchArgs,
    },
    /// Write MNIST as a new writer would have drawn it (slanted, rotated, heavier strokes):
    /// a data directory for `--data`, to test adaptation (`digits device finetune`).
    Shift {
        #[command(flatten)]
        data: DataArgs,
        /// Which writer: the same seed gives the same writer and the same files.
        #[arg(long, default_value_t = 1)]
        writer: u64,
        /// Directory to write the four IDX files into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    data: DataArgs,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = BenchMode::Numgrad)]
    mode: BenchMode,
    /// `--mode speed`: epochs trained, each timed.
    #[arg(long, default_value_t = 5)]
    epochs: u32,
    /// `--mode speed`: seed of initialization and shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `--mode speed`: learning rate (constant; momentum 0.9, weight decay 1e-4).
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// `--mode speed`: also run scripts/bench_torch.py with this Python (one with torch and
    /// numpy, e.g. /work/venv-torch/bin/python) and print the figures side by side.
    #[arg(long, value_name = "PYTHON")]
    compare: Option<PathBuf>,
    /// Batch sizes to measure (`--mode speed`: the first).
    #[arg(long, value_delimiter = ',', default_value = "32,64")]
    batch: Vec<usize>,
    /// Repetitions of the fast methods (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Central-difference step.
    #[arg(long, default_value_t = 1e-2)]
    step: f32,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BenchMode {
    /// One full numerical gradient: the definition vs the structured version.
    Numgrad,
    /// Training epoch time, images/s one at a time and batched, GFLOP/s next to the peak.
    Speed,
}

#[derive(Args)]
struct GradcheckArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Model file to check; a freshly initialized network when absent.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Seed of the fresh network and of the parameter sample.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Test images in the batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// First test image of the batch.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Parameters per tensor checked against the definition (slow: two full losses each).
    #[arg(long, default_value_t = 500)]
    sample: usize,
    /// Also write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Where the data is.
#[derive(Args)]
struct DataArgs {
    /// Directory with the four IDX files (gzipped or raw); else $MNIST_DIR, else data/mnist/.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Which dataset.
    #[arg(long, value_enum, default_value_t = DatasetArg::Mnist)]
    dataset: DatasetArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum DatasetArg {
    /// Handwritten digits.
    Mnist,
    /// Zalando's Fashion-MNIST (Debian package dataset-fashion-mnist).
    Fashion,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScheduleArg {
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
struct TrainArgs {
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

fn main() -> std::process::ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes, without a backtrace: messages are written for users.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(args) => train_command(args),
        Command::Gradcheck(args) => gradcheck_command(args),
        Command::Bench(args) => {
            let dataset = load(&args.data)?;
            if args
                .batch
                .iter()
                .any(|&b| b == 0 || b > dataset.test.labels.len())
            {
                anyhow::bail!("--batch sizes must be between 1 and the number of test images");
            }
            if args.mode == BenchMode::Speed {
                let speed = speed::SpeedArgs {
                    batch: args.batch[0],
                    epochs: args.epochs.max(1),
                    repeats: args.repeats.max(1),
                    seed: args.seed,
                    lr: args.lr,
                    compare: args.compare,
                    data_dir: data::resolve_dir(
                        args.data.data.as_deref(),
                        dataset_kind(args.data.dataset),
                    )
                    .path,
                };
                return speed::run(&dataset, &speed);
            }
            bench::numgrad(&dataset.test, &args.batch, args.repeats.max(1), args.step);
            Ok(())
        }
        Command::Eval(args) => eval::run(args),
        Command::Device(args) => device::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Data {
            command: DataCommand::Check { data: args },
        } => data_check_command(&args),
        Command::Data {
            command: DataCommand::Fetch { data: args, fetch },
        } => {
            let kind = dataset_kind(args.dataset);
            fetch::run(&data::resolve_dir(args.data.as_deref(), kind), kind, &fetch)
        }
        Command::Data {
            command: DataCommand::Shift { data, writer, out },
        } => {
            let dataset = load(&data)?;
            let writer = shift::Writer::from_seed(writer);
            shift::write_dataset(&dataset, &writer, &out)?;
            println!(
                "wrote {} by writer {} (slant {:+.2}, rotation {:+.1} degrees, heaviness {:.2}) \
                 to {}; e.g. `digits eval --data {} --model firmware/models/mnist.digits`",
                data.dataset_name(),
                writer.seed,
                writer.slant,
                writer.rotation_deg,
                writer.heaviness,
                out.display(),
                out.display()
            );
            Ok(())
        }
        Command::Quantize(args) => quantize::run(&args),
        Command::Inspect { file } => inspect_command(&file),
    }
}

impl DataArgs {
    fn dataset_name(&self) -> &'static str {
        match self.dataset {
            DatasetArg::Mnist => "MNIST",
            DatasetArg::Fashion => "Fashion-MNIST",
        }
    }
}

fn dataset_kind(arg: DatasetArg) -> DatasetKind {
    match arg {
        DatasetArg::Mnist => DatasetKind::Mnist,
        DatasetArg::Fashion => DatasetKind::Fashion,
    }
}

fn load(args: &DataArgs) -> Result<Dataset> {
    let kind = dataset_kind(args.dataset);
    let dir = data::resolve_dir(args.data.as_deref(), kind);
    let start = Instant::now();
    let dataset = Dataset::load(&dir.path, kind)?;
    eprintln!(
        "{kind}: {} training and {} test images from {} ({}) in {:.2} s",
        dataset.train.labels.len(),
        dataset.test.labels.len(),
        dir.path.display(),
        dir.source,
        start.elapsed().as_secs_f64()
    );
    Ok(dataset)
}

fn train_command(args: TrainArgs) -> Result<()> {
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
    let resume = train::Resume {
        checkpoint: Some(&checkpoint),
        resume: args.resume,
    };
    let start = Instant::now();
    let outcome = train::train(&train_split, &val_split, &cfg, &resume, |history| {
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

fn gradcheck_command(args: GradcheckArgs) -> Result<()> {
    let dataset = load(&args.data)?;
    let test = &dataset.test;
    let end = args
        .offset
        .checked_add(args.batch)
        .filter(|&e| e <= test.labels.len());
    let Some(end) = end.filter(|_| args.batch > 0) else {
        anyhow::bail!(
            "--offset {} --batch {} is outside the {} test images",
            args.offset,
            args.batch,
            test.labels.len()
        );
    };
    let pixels = &test.images[args.offset..end];
    let labels = &test.labels[args.offset..end];
    let model = match &args.model {
        Some(path) => model_io::load(path)?.model,
        None => {
            let mut m = boxed::ModelBox::zeroed();
            m.init(&mut digits_core::Rng::new(args.seed));
            m
        }
    };
    let results = [
        gradcheck::structured::<f64>(&model, pixels, labels, gradcheck::F64_TOLERANCE),
        gradcheck::definition::<f64>(
            &model,
            pixels,
            labels,
            gradcheck::F64_TOLERANCE,
            args.sample,
            args.seed,
        ),
        gradcheck::structured::<f32>(&model, pixels, labels, gradcheck::F32_TOLERANCE),
        gradcheck::definition::<f32>(
            &model,
            pixels,
            labels,
            gradcheck::F32_TOLERANCE,
            args.sample,
            args.seed,
        ),
    ];
    for r in &results {
        gradcheck::print(r);
    }
    if let Some(path) = &args.json {
        model_io::write_atomically(path, serde_json::to_string_pretty(&results)?.as_bytes())?;
    }
    let failed: Vec<String> = results
        .iter()
        .flat_map(|r| {
            r.tensors
                .iter()
                .filter(|t| t.failures > 0)
                .map(move |t| format!("{} {} ({})", r.precision, t.name, r.method))
        })
        .collect();
    if failed.is_empty() {
        println!("all tensors within tolerance");
        Ok(())
    } else {
        anyhow::bail!("gradient check failed for: {}", failed.join("; "))
    }
}

fn data_check_command(args: &DataArgs) -> Result<()> {
    let kind = dataset_kind(args.dataset);
    let dir = data::resolve_dir(args.data.as_deref(), kind);
    println!("{kind} in {} ({})", dir.path.display(), dir.source);
    let checks = data::check(&dir.path, kind)?;
    for c in &checks {
        if c.ok {
            println!("  ok        {}  {}", c.sha256, c.file.display());
        } else {
            println!(
                "  MISMATCH  {}  {} (expected {})",
                c.sha256,
                c.file.display(),
                c.expected
            );
        }
    }
    let bad = checks.iter().filter(|c| !c.ok).count();
    if bad > 0 {
        anyhow::bail!(
            "{bad} of {} files do not match the official checksums: fetch them again (`digits data fetch`)",
            checks.len()
        );
    }
    println!("all {} files match the official checksums", checks.len());
    Ok(())
}

fn inspect_command(path: &std::path::Path) -> Result<()> {
    let loaded = model_io::load_network(path)?;
    let p = &loaded.provenance;
    println!("file          {} ({} bytes)", path.display(), loaded.bytes);
    println!(
        "format        digits model, version {}",
        digits_core::model_file::FORMAT_VERSION
    );
    println!("architecture  784-128-10");
    println!("dataset       {}", p.dataset);
    match p.test_accuracy {
        Some(a) => println!("test accuracy {:.2}%", 100.0 * a),
        None => println!("test accuracy (not measured)"),
    }
    println!("seed          {}", p.seed);
    println!("epochs        {}", p.epochs);
    println!("options       {}", p.options);
    let range = |values: &mut dyn Iterator<Item = f64>| {
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        })
    };
    match &loaded.network {
        model_io::Network::F32(model) => {
            println!("precision     f32");
            use digits_core::Params;
            for k in 0..model.tensor_count() {
                let t = model.tensor(k);
                let (lo, hi) = range(&mut t.data.iter().map(|&v| v as f64));
                println!(
                    "tensor {:<3}   {:>6} values in [{lo:+.4}, {hi:+.4}]",
                    t.name,
                    t.data.len()
                );
            }
        }
        model_io::Network::Int8(q) => {
            println!(
                "precision     int8 (per-channel weight scales, hidden activation step {:.5})",
                q.hidden_scale
            );
            let (lo, hi) = range(&mut q.w1.as_flattened().iter().map(|&v| v as f64));
            println!(
                "tensor W1     {:>6} codes in [{lo}, {hi}]",
                q.w1.as_flattened().len()
            );
            let (lo, hi) = range(&mut q.w2.as_flattened().iter().map(|&v| v as f64));
            println!(
                "tensor W2     {:>6} codes in [{lo}, {hi}]",
                q.w2.as_flattened().len()
            );
        }
    }
    Ok(())
}
