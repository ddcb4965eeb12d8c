//! `digits bench --mode speed`: training and inference throughput of 784-128-10, with the
//! arithmetic rate next to the machine's measured peak; `scripts/bench_torch.py` prints the
//! same table for PyTorch and numpy.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use digits_core::pixels::normalize;
use digits_core::softmax::argmax;
use digits_core::{MnistMlp, Rng, Schedule};

use crate::data::{Dataset, Split};
use crate::evaluate::infer;
use crate::simd::Simd;
use crate::tools::measure::{median, time};
use crate::train::aligned::ModelBox;
use crate::train::epoch::{EpochData, Trainer};
use crate::train::sparse_set::SparseSet;
use crate::train::{GradMethod, TrainConfig};

/// Floating-point operations of one training image as a dense network computes them:
/// forward `2 (784*128 + 128*10)`, first-layer weight gradient `2 * 784*128`, output layer
/// weight and input gradients `2 * 2 * 128*10` (no gradient is needed for the pixels).
pub const TRAIN_FLOPS: f64 = (2 * (784 * 128 + 128 * 10) + 2 * 784 * 128 + 4 * 128 * 10) as f64;
/// Floating-point operations of one forward pass, dense.
pub const INFER_FLOPS: f64 = (2 * (784 * 128 + 128 * 10)) as f64;

/// What `digits bench --mode speed` does.
pub struct SpeedArgs {
    /// Images per SGD step.
    pub batch: usize,
    /// Epochs trained (each timed).
    pub epochs: u32,
    /// Repetitions of each inference measurement (the median is reported).
    pub repeats: usize,
    /// Seed of initialization and shuffling.
    pub seed: u64,
    /// Learning rate (constant), momentum 0.9, weight decay 1e-4.
    pub lr: f64,
    /// A Python with torch and numpy: run `scripts/bench_torch.py` after, the same way, and
    /// print the figures side by side.
    pub compare: Option<PathBuf>,
    /// The MNIST directory (for the script).
    pub data_dir: PathBuf,
}

/// The headline figures of one framework.
#[derive(Clone, Debug, serde::Deserialize)]
struct SpeedSummary {
    name: String,
    epoch_seconds: f64,
    test_accuracy: f64,
    single_images_per_second: f64,
    batched_images_per_second: f64,
}

/// Runs the measurements and prints the table (and the comparison, with `compare`).
pub fn run(data: &Dataset, args: &SpeedArgs) -> anyhow::Result<()> {
    let threads = rayon::current_num_threads();
    let peak = crate::tools::peak::measure();
    println!(
        "digits: 784-128-10, f32, {} SIMD ({} threads); peak {:.0} GFLOP/s on 1 thread, {:.0} on {threads} ({} FMA)",
        Simd::current().name(),
        threads,
        peak.one_thread,
        peak.all_threads,
        peak.isa,
    );

    // Training: every epoch timed, all 60,000 training images.
    let (prep, set) = time(|| SparseSet::new(&data.train.images));
    let (times, model) = train(&data.train, &set, args)?;
    let accuracy = test_accuracy(&model, &data.test);
    let n = data.train.labels.len() as f64;
    let epoch = median(times.iter().copied());
    println!(
        "sparse lists of lit pixels, once per training set: {:.3} s",
        prep
    );
    println!(
        "{:<44} {:>10} {:>12} {:>12} {:>9}",
        "measurement", "seconds", "images/s", "GFLOP/s*", "% peak"
    );
    let row = |what: &str, seconds: f64, images: f64, flops: f64| {
        let gflops = images * flops / seconds / 1e9;
        println!(
            "{what:<44} {seconds:>10.4} {:>12.0} {gflops:>12.2} {:>8.1}%",
            images / seconds,
            100.0 * gflops / peak.all_threads
        );
    };
    row(
        &format!(
            "train epoch, batch {} (median of {})",
            args.batch,
            times.len()
        ),
        epoch,
        n,
        TRAIN_FLOPS,
    );
    println!(
        "  epochs: {}",
        times
            .iter()
            .map(|t| format!("{t:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  test accuracy after {} epochs: {:.2}%",
        args.epochs,
        100.0 * accuracy
    );
    if threads > 1 {
        // The same training on one thread: its time, and the proof that it is the same model.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .context("a one-thread pool")?;
        let (times1, model1) = pool.install(|| train(&data.train, &set, args))?;
        row(
            &format!("train epoch, batch {}, 1 thread", args.batch),
            median(times1),
            n,
            TRAIN_FLOPS,
        );
        println!(
            "  same model on 1 and {threads} threads, bit for bit: {}",
            if *model1 == *model { "yes" } else { "NO" }
        );
    }

    println!(
        "  * dense-equivalent: the flops of a dense implementation ({TRAIN_FLOPS} per training \
         image, {INFER_FLOPS} per inference) per second; the sparse paths skip the zero pixels' \
         share of them, so this can exceed the peak"
    );

    // Inference.
    let test = &data.test;
    let images = test.labels.len() as f64;
    let single = median((0..args.repeats).map(|_| time_single(&model, test, infer::logits)));
    row(
        "infer one at a time, sparse (u8 -> logits)",
        single,
        images,
        INFER_FLOPS,
    );
    let per_sample = median((0..args.repeats).map(|_| {
        time_single(&model, test, |m, img| {
            let mut x = [0.0f32; 784];
            normalize(img, &mut x);
            m.logits(&x)
        })
    }));
    row(
        "infer one at a time, normalize + Mlp::logits",
        per_sample,
        images,
        INFER_FLOPS,
    );
    let batched = median((0..args.repeats).map(|_| time_batched(&model, test)));
    row(
        &format!("infer batch of {}, {threads} threads", test.labels.len()),
        batched,
        images,
        INFER_FLOPS,
    );
    let ours = SpeedSummary {
        name: "digits".into(),
        epoch_seconds: epoch,
        test_accuracy: accuracy,
        single_images_per_second: images / single,
        batched_images_per_second: images / batched,
    };
    if let Some(python) = &args.compare {
        let others = compare(python, args, threads)?;
        side_by_side(&ours, &others, args);
    }
    Ok(())
}

/// Runs `scripts/bench_torch.py` with `python`, echoing its output; returns its results.
fn compare(python: &Path, args: &SpeedArgs, threads: usize) -> anyhow::Result<Vec<SpeedSummary>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_torch.py");
    println!();
    let out = Command::new(python)
        .arg(&script)
        .arg("--data")
        .arg(&args.data_dir)
        .args(["--batch", &args.batch.to_string()])
        .args(["--epochs", &args.epochs.to_string()])
        .args(["--repeats", &args.repeats.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--lr", &args.lr.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut results = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("RESULT ") {
            Some(json) => results.push(serde_json::from_str(json)?),
            None => println!("{line}"),
        }
    }
    if !out.status.success() {
        bail!(
            "{} {} failed ({}); it needs torch and numpy: python3 -m venv DIR && DIR/bin/pip install torch numpy",
            python.display(),
            script.display(),
            out.status
        );
    }
    Ok(results)
}

fn side_by_side(ours: &SpeedSummary, others: &[SpeedSummary], args: &SpeedArgs) {
    println!();
    println!(
        "side by side: 784-128-10, batch {}, {} epochs of 60,000 images, SGD lr {} momentum 0.9 wd 1e-4",
        args.batch, args.epochs, args.lr
    );
    let all: Vec<&SpeedSummary> = std::iter::once(ours).chain(others).collect();
    print!("{:<30}", "");
    for s in &all {
        print!(" {:>12}", s.name);
    }
    println!();
    let line = |what: &str, f: &dyn Fn(&SpeedSummary) -> String| {
        print!("{what:<30}");
        for s in &all {
            print!(" {:>12}", f(s));
        }
        println!();
    };
    line("epoch, median (s)", &|s| format!("{:.3}", s.epoch_seconds));
    line("test accuracy", &|s| {
        format!("{:.2}%", 100.0 * s.test_accuracy)
    });
    line("one at a time (images/s)", &|s| {
        format!("{:.0}", s.single_images_per_second)
    });
    line("batch of 10,000 (images/s)", &|s| {
        format!("{:.0}", s.batched_images_per_second)
    });
    for other in others {
        println!(
            "digits vs {}: epoch {:.1}x faster, one at a time {:.1}x, batched {:.1}x",
            other.name,
            other.epoch_seconds / ours.epoch_seconds,
            ours.single_images_per_second / other.single_images_per_second,
            ours.batched_images_per_second / other.batched_images_per_second
        );
    }
}

/// Trains a fresh model for `args.epochs` epochs as `digits train` does (the same epoch
/// loop) with a constant rate and no validation split; returns each epoch's wall time and the
/// model.
pub fn train(
    train: &Split,
    set: &SparseSet,
    args: &SpeedArgs,
) -> anyhow::Result<(Vec<f64>, ModelBox)> {
    let cfg = TrainConfig {
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        momentum: 0.9,
        weight_decay: 1e-4,
        schedule: Schedule::Constant,
        seed: args.seed,
        batchnorm: false,
        validation: 0,
        grad: GradMethod::Backprop,
        step: 1e-2,
        augment: None,
        distill: None,
        limit: None,
    };
    let mut rng = Rng::new(cfg.seed);
    let mut trainer = Trainer::new(&cfg, &mut rng);
    let data = EpochData {
        images: &train.images,
        sparse: Some(set),
        labels: &train.labels,
        soft: None,
    };
    let mut times = Vec::new();
    for epoch in 0..cfg.epochs {
        times.push(trainer.epoch(data, &mut rng, cfg.lr, epoch, None)?.seconds);
    }
    Ok((times, trainer.model()))
}

fn test_accuracy(model: &MnistMlp, test: &Split) -> f64 {
    let correct = test
        .images
        .iter()
        .zip(&test.labels)
        .filter(|(img, l)| argmax(&model.logits_from_pixels(img)) == **l as usize)
        .count();
    correct as f64 / test.labels.len() as f64
}

/// All test images one call at a time; seconds.
fn time_single(
    model: &MnistMlp,
    test: &Split,
    logits: impl Fn(&MnistMlp, &[u8; 784]) -> [f32; 10],
) -> f64 {
    let (seconds, correct) = time(|| {
        let mut correct = 0usize;
        for (img, &l) in test.images.iter().zip(&test.labels) {
            correct += usize::from(argmax(&logits(model, img)) == l as usize);
        }
        correct
    });
    std::hint::black_box(correct);
    seconds
}

/// All test images in one batch, spread over the threads ([`infer::logits_batch`]); seconds.
fn time_batched(model: &MnistMlp, test: &Split) -> f64 {
    let (seconds, out) = time(|| {
        let mut out = vec![[0.0f32; 10]; test.labels.len()];
        infer::logits_batch(model, &test.images, &mut out);
        out
    });
    std::hint::black_box(&out);
    seconds
}
