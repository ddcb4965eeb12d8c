//! `digits bench --mode speed`: training and inference throughput of 784-128-10, with the
//! arithmetic rate next to the machine's measured peak; `scripts/bench_torch.py` prints the
//! same table for PyTorch and numpy.

use std::time::Instant;

use digits_core::input::normalize;
use digits_core::softmax::argmax;
use digits_core::{MnistMlp, Rng, Sgd};
use rayon::prelude::*;

use crate::backprop::{Backprop, SparseSet};
use crate::boxed::zeroed;
use crate::data::{Dataset, Split};
use crate::simd::{Simd, dispatch};

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
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the measurements and prints the table.
pub fn run(data: &Dataset, args: &SpeedArgs) {
    let threads = rayon::current_num_threads();
    let peak = crate::peak::measure();
    println!(
        "digits: 784-128-10, f32, {} SIMD ({} threads); peak {:.0} GFLOP/s on 1 thread, {:.0} on {threads} ({} FMA)",
        Simd::current().name(),
        threads,
        peak.one_thread,
        peak.all_threads,
        peak.isa,
    );

    // Training: every epoch timed, all 60,000 training images.
    let start = Instant::now();
    let set = SparseSet::new(&data.train.images);
    let prep = start.elapsed().as_secs_f64();
    let (times, model) = train(&data.train, &set, args);
    let accuracy = test_accuracy(&model, &data.test);
    let n = data.train.labels.len() as f64;
    let epoch = median(times.clone());
    println!(
        "sparse lists of lit pixels, once per training set: {:.3} s",
        prep
    );
    println!(
        "{:<44} {:>10} {:>12} {:>12} {:>9}",
        "measurement", "seconds", "images/s", "GFLOP/s", "% peak"
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

    // Inference.
    let test = &data.test;
    let images = test.labels.len() as f64;
    let single = median(
        (0..args.repeats)
            .map(|_| {
                time_single(&model, test, |m, img| {
                    dispatch(|| m.logits_from_pixels(img))
                })
            })
            .collect(),
    );
    row(
        "infer one at a time, sparse (u8 -> logits)",
        single,
        images,
        INFER_FLOPS,
    );
    let per_sample = median(
        (0..args.repeats)
            .map(|_| {
                time_single(&model, test, |m, img| {
                    let mut x = [0.0f32; 784];
                    normalize(img, &mut x);
                    m.logits(&x)
                })
            })
            .collect(),
    );
    row(
        "infer one at a time, normalize + Mlp::logits",
        per_sample,
        images,
        INFER_FLOPS,
    );
    let batched = median(
        (0..args.repeats)
            .map(|_| time_batched(&model, test))
            .collect(),
    );
    row(
        &format!("infer batch of {}, {threads} threads", test.labels.len()),
        batched,
        images,
        INFER_FLOPS,
    );
}

/// Trains a fresh model for `args.epochs` epochs as `digits train` does with a constant rate
/// and no validation split; returns each epoch's wall time and the model.
pub fn train(train: &Split, set: &SparseSet, args: &SpeedArgs) -> (Vec<f64>, Box<MnistMlp>) {
    let mut rng = Rng::new(args.seed);
    let mut model: Box<MnistMlp> = zeroed();
    model.init(&mut rng);
    let mut velocity: Box<MnistMlp> = zeroed();
    let sgd = Sgd {
        momentum: 0.9,
        weight_decay: 1e-4,
    };
    let step = sgd.coefficients::<f32>(args.lr);
    let mut fast = Backprop::new(args.batch);
    let mut order: Vec<u32> = (0..train.labels.len() as u32).collect();
    let mut labels = vec![0u8; args.batch];
    let mut times = Vec::new();
    let mut epoch_set = SparseSet::empty();
    let positions: Vec<u32> = (0..train.labels.len() as u32).collect();
    for _ in 0..args.epochs {
        rng.shuffle(&mut order);
        let start = Instant::now();
        epoch_set.reorder(set, &order);
        for (batch, keys) in positions.chunks(args.batch).zip(order.chunks(args.batch)) {
            for (l, &i) in labels.iter_mut().zip(keys) {
                *l = train.labels[i as usize];
            }
            fast.step(
                &mut model,
                &mut velocity,
                &step,
                &epoch_set,
                batch,
                &labels[..batch.len()],
            );
        }
        times.push(start.elapsed().as_secs_f64());
    }
    (times, model)
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
    let start = Instant::now();
    let mut correct = 0usize;
    for (img, &l) in test.images.iter().zip(&test.labels) {
        correct += usize::from(argmax(&logits(model, img)) == l as usize);
    }
    std::hint::black_box(correct);
    start.elapsed().as_secs_f64()
}

/// All test images in one batch, spread over the threads; seconds.
fn time_batched(model: &MnistMlp, test: &Split) -> f64 {
    let start = Instant::now();
    let mut out = vec![[0.0f32; 10]; test.labels.len()];
    out.par_chunks_mut(500)
        .zip(test.images.par_chunks(500))
        .for_each(|(out, images)| {
            dispatch(
                #[inline(always)]
                || {
                    for (o, img) in out.iter_mut().zip(images) {
                        *o = model.logits_from_pixels(img);
                    }
                },
            )
        });
    std::hint::black_box(&out);
    start.elapsed().as_secs_f64()
}
