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
use digits_core::digest::{Fnv64, output_digest, params_digest};
use digits_core::finetune::Gradient;
use digits_core::protocol::{Evaluation, MAX_BATCH};
use digits_core::{MnistMlp, Sgd};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::HostSide;
use super::firmware::Firmware;
use super::link::Link;
use super::logs::LogPrinter;
use super::psram::PsramBlob;
use super::qemu::{Qemu, require_qemu};
use super::tuner::{self, MnistTuner, Plan};
use crate::cli::number::Within;
use crate::data::{self, Dataset, DatasetKind, Split};
use crate::model_io;
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
pub fn run(firmware: &Firmware, logs: LogPrinter, args: &FinetuneArgs) -> Result<()> {
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
    let model = model_io::load(&args.host.model)
        .context("name the model file the firmware was built from with --model FILE")?
        .model;
    let shifted = Dataset::load(&args.shift, DatasetKind::Mnist).with_context(|| {
        format!(
            "cannot read the shifted data in {}: write it with `digits data shift --out {}`",
            args.shift.display(),
            args.shift.display()
        )
    })?;
    let mnist_dir = data::resolve_dir(args.host.data.as_deref(), DatasetKind::Mnist);
    let mnist = Dataset::load(&mnist_dir.path, DatasetKind::Mnist)?;
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
    let (qemu, mut link) = Qemu::start_with_link(
        &firmware.elf("serve")?,
        &["-icount", "shift=0", "-device", blob.loader()],
        logs.sink(),
    )?;
    link.set_timeout(Duration::from_secs(600));
    let device_model = link.info()?.model.params_fnv64;
    let host_model = params_digest(&model);
    if device_model != host_model {
        bail!(
            "the device runs another model (parameters digest {device_model:016x}) than {} \
             ({host_model:016x}): pass the model file the firmware was built from with --model",
            args.host.model.display()
        );
    }

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
    let mut host = tuner::tuner(&model);
    let before: Vec<TuneScore> = sets
        .iter()
        .map(|set| evaluate(&mut link, &model, &host, set))
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
        let expected = tuner::step(&mut host, &model, &plan, &batch)
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
        .map(|set| evaluate(&mut link, &model, &host, set))
        .collect::<Result<_>>()?;
    let info = link.info()?;
    let (static_ram, stack_peak) = (info.static_ram_bytes, info.stack_peak_bytes);
    drop(link);
    qemu.stop()?;

    println!(
        "fine-tuned the output layer on the device: {} shifted samples ({per_class} of each \
         digit), {} epochs in batches of {}, {:?}, learning rate {}, momentum {}: {} steps in \
         {seconds:.1} s",
        samples.len(),
        plan.epochs,
        plan.batch,
        args.method,
        plan.lr,
        args.momentum,
        steps.len()
    );
    println!("                      before     after    change");
    for ((set, b), a) in sets.iter().zip(&before).zip(&after) {
        println!(
            "{:<20} {:>7.2}%  {:>7.2}%  {:>+6.2} points  ({} images)",
            set.name,
            b.percent(),
            a.percent(),
            a.percent() - b.percent(),
            a.images
        );
    }
    println!(
        "device = host         tuned weights bit-identical after all {} steps (final digest \
         {:016x}); logits of all {} evaluations bit-identical",
        steps.len(),
        output_digest(&host.output),
        2 * sets.len()
    );
    let per_sample = median(sample_instructions);
    let per_step_sample = median(step_instructions.iter().map(|&(instr, n)| instr / n as u64));
    println!(
        "instructions          {} per training image = {per_sample} (hidden layer, cached) + \
         {per_step_sample} (its share of a step: gradient and update); medians, qemu -icount",
        per_sample + per_step_sample
    );
    println!(
        "RAM                   {} B = {static_ram} B static (.data + .bss, tuner included) + \
         {stack_peak} B peak stack",
        static_ram + stack_peak
    );
    Ok(())
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
