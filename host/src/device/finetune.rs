//! `digits device finetune`: the device learns a new writer's digits from a hundred labeled
//! samples, and the host checks every step against its own run of the same core code.
//!
//! The device (the `serve` firmware under `qemu -icount`, so instruction counts are exact)
//! gets the shifted test split and the MNIST test split as one data blob in its PSRAM, for
//! the before/after evaluations; the samples themselves travel over the UART, one frame each,
//! and a `Train` request takes a step on those sent since the last. After every step the
//! device's digest of its tuned output layer must equal the host's, bit for bit.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use digits_core::blob::{Contents, IMAGE_LEN};
use digits_core::digest::{Fnv64, output_digest};
use digits_core::finetune::Gradient;
use digits_core::protocol::{Evaluation, MAX_BATCH};
use digits_core::{MnistMlp, Sgd};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use super::link::Link;
use super::model::DeviceModel;
use super::psram::PsramBlob;
use super::qemu::{Qemu, require_qemu};
use super::tuner::{self, MnistTuner, Plan};
use super::{HostSide, Launch};
use crate::cli::number::Within;
use crate::data::command::{DataArgs, load_test};
use crate::data::{Dataset, DatasetKind, Split};
use crate::tools::measure::median;
use crate::train::GradMethod;

/// Options of `digits device finetune`.
#[derive(Args)]
pub struct FinetuneArgs {
    /// A data directory written by `digits data shift`: samples come from its training split,
    /// the evaluation is its test split (disjoint).
    #[arg(long, value_name = "DIR")]
    shift: PathBuf,
    /// Labeled shifted images to learn from, as many of each digit (a multiple of 10).
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// How the device computes each step's gradient.
    #[arg(long, value_enum, default_value_t = GradMethod::Backprop)]
    method: GradMethod,
    /// Passes over the samples.
    #[arg(long, default_value_t = 10, allow_negative_numbers = true, value_parser = Within::at_least(1u32))]
    epochs: u32,
    /// Samples per training step (at most 32, what the device caches).
    #[arg(
        long,
        default_value_t = 25,
        value_parser = Within::at_least(1usize).at_most(MAX_BATCH)
    )]
    batch: usize,
    /// Learning rate (> 0).
    #[arg(long, default_value_t = 0.02, allow_negative_numbers = true, value_parser = Within::above(0.0f32))]
    lr: f32,
    /// SGD momentum (>= 0 and < 1).
    #[arg(
        long,
        default_value_t = 0.9,
        allow_negative_numbers = true,
        value_parser = Within::at_least(0.0f32).below(1.0)
    )]
    momentum: f32,
    /// Seed of the sample order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only the first N images of each evaluation set.
    #[arg(long, value_name = "N", value_parser = Within::at_least(1usize))]
    limit: Option<usize>,
    #[command(flatten)]
    host: HostSide,
    #[command(flatten)]
    launch: Launch,
    /// Print one JSON object (the same figures) instead of the text report.
    #[arg(long)]
    json: bool,
}

/// One evaluation set as both sides see it.
struct EvalSet {
    name: &'static str,
    split: Split,
    /// Index of its first image in the blob.
    first: u32,
}

/// Accuracy and digest of one evaluation, checked equal on both sides.
#[derive(Clone, Copy)]
struct TuneScore {
    correct: u32,
    images: u32,
}

impl TuneScore {
    fn percent(&self) -> f64 {
        100.0 * self.correct as f64 / self.images as f64
    }
}

/// Runs `digits device finetune`.
pub fn run(args: &FinetuneArgs) -> Result<()> {
    ensure!(
        args.samples >= 10 && args.samples.is_multiple_of(10),
        "--samples must be a positive multiple of 10 (as many of each digit), not {}",
        args.samples
    );
    ensure!(
        (1..=MAX_BATCH).contains(&args.batch),
        "--batch must be 1 to {MAX_BATCH} (what the device caches), not {}",
        args.batch
    );
    let device_model = DeviceModel::load(args.host.model.as_deref())?;
    let model = device_model.f32_to_tune()?;
    let shifted = Dataset::load(&args.shift, DatasetKind::Mnist).with_context(|| {
        format!(
            "cannot read the shifted data in {}: write it with `digits data shift --out {}`",
            args.shift.display(),
            args.shift.display()
        )
    })?;
    let mnist = load_test(&DataArgs::mnist_at(args.host.data.clone()))?;
    // The user's inputs are judged first, whatever this machine lacks.
    require_qemu()?;

    let per_class = args.samples / 10;
    let picked = tuner::pick(&shifted.train, per_class);
    ensure!(
        picked.len() == args.samples,
        "the shifted training split has fewer than {per_class} images of some digit"
    );
    let samples: Vec<([u8; IMAGE_LEN], u8)> = picked
        .iter()
        .map(|&i| (shifted.train.images[i], shifted.train.labels[i]))
        .collect();

    let limit = |split: &Split| {
        let n = args.limit.unwrap_or(usize::MAX).min(split.labels.len());
        Split {
            images: split.images[..n].to_vec(),
            labels: split.labels[..n].to_vec(),
        }
    };
    let shifted_test = limit(&shifted.test);
    let sets = [
        EvalSet {
            name: "shifted test split",
            first: 0,
            split: shifted_test.clone(),
        },
        EvalSet {
            name: "MNIST test set",
            first: shifted_test.labels.len() as u32,
            split: limit(&mnist.test),
        },
    ];
    ensure!(
        sets.iter().all(|s| !s.split.labels.is_empty()),
        "--limit must be at least 1"
    );
    // The sets one after the other, their labels after all the images.
    let images = sets.each_ref().map(|set| set.split.images.as_slice());
    let labels = sets.each_ref().map(|set| set.split.labels.as_slice());
    let blob = PsramBlob::write(
        "digits-finetune-",
        &Contents {
            images: &images,
            labels: Some(&labels),
            print_logits: false,
        },
    )?;

    // -icount: the device's instruction counts are exact (its clock counts instructions).
    let board = args.launch.serving_board("finetune")?;
    let firmware = args.launch.firmware();
    let given = blob.for_board(board, "serve")?;
    let (qemu, mut link) = Qemu::start_with_link_on(
        board,
        &firmware.elf("serve", Some(&device_model))?,
        &[&["-icount", "shift=0"][..], &given.qemu].concat(),
        &given.semihosting,
        args.launch.logs().sink(),
    )?;
    link.wait_ready(Link::STARTUP)
        .context("the device does not answer a ping")?;
    link.set_timeout(Duration::from_secs(600));
    link.hello()?;
    let runs = link.info()?.model.map_or(0, |m| m.params_fnv64);
    device_model.check(runs, &firmware.reached())?;

    let plan = Plan {
        method: match args.method {
            GradMethod::Backprop => Gradient::Backprop,
            GradMethod::Numeric => Gradient::Numeric,
        },
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        sgd: Sgd {
            momentum: args.momentum as f64,
            weight_decay: 0.0,
        },
        seed: args.seed,
    };
    let mut host = tuner::tuner(model);
    let before: Vec<TuneScore> = sets
        .iter()
        .map(|set| evaluate(&mut link, model, &host, set))
        .collect::<Result<_>>()?;

    link.reset()?;
    let steps = tuner::batches(&plan, samples.len());
    let bar = ProgressBar::new(steps.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("device finetune [{bar:30}] step {pos}/{len}  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let (mut sample_instructions, mut step_instructions) = (Vec::new(), Vec::new());
    for (k, batch) in steps.iter().enumerate() {
        let batch: Vec<_> = batch.iter().map(|&i| samples[i]).collect();
        for (pixels, label) in &batch {
            let tuning = link.sample(*label, pixels)?;
            sample_instructions.push(tuning.instructions);
        }
        let trained = link.train(plan.method, plan.lr, args.momentum)?;
        let expected = tuner::step(&mut host, model, &plan, &batch)
            .map_err(|e| anyhow::anyhow!("the host's step {}: {e}", k + 1))?;
        let host_digest = output_digest(&host.output);
        if trained.output_fnv64 != host_digest || trained.loss.to_bits() != expected.loss.to_bits()
        {
            bail!(
                "step {}: the device's tuned layer (digest {:016x}, loss {}) differs from the \
                 host's ({host_digest:016x}, loss {})",
                k + 1,
                trained.output_fnv64,
                trained.loss,
                expected.loss
            );
        }
        step_instructions.push((trained.instructions, batch.len()));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let after: Vec<TuneScore> = sets
        .iter()
        .map(|set| evaluate(&mut link, model, &host, set))
        .collect::<Result<_>>()?;
    let info = link.info()?;
    let (static_ram, stack_peak) = (info.static_ram_bytes, info.stack_peak_bytes);
    drop(link);
    qemu.stop()?;

    let per_sample = median(sample_instructions);
    let per_step_sample = median(step_instructions.iter().map(|&(instr, n)| instr / n as u64));
    let report = FinetuneReport {
        samples: samples.len(),
        per_class,
        method: args.method,
        epochs: plan.epochs,
        batch: plan.batch,
        lr: plan.lr,
        momentum: args.momentum,
        steps: steps.len(),
        seconds,
        sets: sets
            .iter()
            .zip(&before)
            .zip(&after)
            .map(|((set, b), a)| SetReport {
                name: set.name,
                images: a.images,
                before: b.percent() / 100.0,
                after: a.percent() / 100.0,
            })
            .collect(),
        output_digest: format!("{:016x}", output_digest(&host.output)),
        instructions_per_sample: per_sample,
        instructions_per_step_sample: per_step_sample,
        static_ram_bytes: static_ram,
        stack_peak_bytes: stack_peak,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print();
    }
    Ok(())
}

/// What `digits device finetune` found; `--json` prints it as it is. Every figure was checked
/// equal on the device and the host.
#[derive(Serialize)]
struct FinetuneReport {
    /// Labeled shifted images learned from...
    samples: usize,
    /// ...as many of each digit.
    per_class: usize,
    method: GradMethod,
    epochs: u32,
    batch: usize,
    lr: f32,
    momentum: f32,
    /// Training steps taken.
    steps: usize,
    /// Seconds for all steps.
    seconds: f64,
    /// Accuracy before and after, per evaluation set.
    sets: Vec<SetReport>,
    /// Digest of the tuned output layer (hex), the same on both sides.
    output_digest: String,
    /// Median instructions per training image: its hidden layer, cached...
    instructions_per_sample: u64,
    /// ...and its share of a step (gradient and update).
    instructions_per_step_sample: u64,
    /// Static RAM (.data + .bss, tuner included), bytes.
    static_ram_bytes: u32,
    /// Deepest stack use, bytes.
    stack_peak_bytes: u32,
}

/// One evaluation set's accuracy before and after (fractions).
#[derive(Serialize)]
struct SetReport {
    name: &'static str,
    images: u32,
    before: f64,
    after: f64,
}

impl FinetuneReport {
    fn print(&self) {
        println!(
            "fine-tuned the output layer on the device: {} shifted samples ({} of each \
             digit), {} epochs in batches of {}, {:?}, learning rate {}, momentum {}: {} steps \
             in {:.1} s",
            self.samples,
            self.per_class,
            self.epochs,
            self.batch,
            self.method,
            self.lr,
            self.momentum,
            self.steps,
            self.seconds
        );
        println!("                      before     after    change");
        for set in &self.sets {
            let (b, a) = (100.0 * set.before, 100.0 * set.after);
            println!(
                "{:<20} {b:>7.2}%  {a:>7.2}%  {:>+6.2} points  ({} images)",
                set.name,
                a - b,
                set.images
            );
        }
        println!(
            "device = host         tuned weights bit-identical after all {} steps (final digest \
             {}); logits of all {} evaluations bit-identical",
            self.steps,
            self.output_digest,
            2 * self.sets.len()
        );
        println!(
            "instructions          {} per training image = {} (hidden layer, cached) + {} (its \
             share of a step: gradient and update); medians, qemu -icount",
            self.instructions_per_sample + self.instructions_per_step_sample,
            self.instructions_per_sample,
            self.instructions_per_step_sample
        );
        println!(
            "RAM                   {} B = {} B static (.data + .bss, tuner included) + {} B \
             peak stack",
            self.static_ram_bytes + self.stack_peak_bytes,
            self.static_ram_bytes,
            self.stack_peak_bytes
        );
    }
}

/// Evaluates `set` on the device and on the host; they must agree bit for bit.
fn evaluate(
    link: &mut Link,
    model: &MnistMlp,
    host: &MnistTuner,
    set: &EvalSet,
) -> Result<TuneScore> {
    let n = set.split.labels.len() as u32;
    let device: Evaluation = link
        .evaluate(set.first, n)
        .with_context(|| format!("evaluating the {} on the device", set.name))?;
    let logits: Vec<[f32; 10]> = set
        .split
        .images
        .par_iter()
        .map(|im| host.logits(model, &tuner::input(im)))
        .collect();
    let mut digest = Fnv64::new();
    let mut correct = 0u32;
    for (z, &y) in logits.iter().zip(&set.split.labels) {
        digest.write_f32s(z);
        correct += (digits_core::softmax::argmax(z) == y as usize) as u32;
    }
    if device.logits_fnv64 != digest.finish() || device.correct != Some(correct) {
        bail!(
            "the device's logits on the {} differ from the host's (digest {:016x} vs {:016x})",
            set.name,
            device.logits_fnv64,
            digest.finish()
        );
    }
    Ok(TuneScore { correct, images: n })
}
