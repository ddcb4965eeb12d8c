//! Training the "not a digit" [`Detector`]: MNIST's training digits (as they are, and drawn as
//! photos through `predict`'s preprocessing) against Fashion-MNIST's training clothes and
//! generated non-digits ([`nondigits`]) from seeds the bench never uses. The last 10,000 of
//! each training split, and generated pictures of another seed, are held out: the line between
//! digit and not is set on them, so that few held-out digits are flagged. Neither test split is
//! read. The committed detector is embedded in the binary ([`embedded`]).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use digits_core::detector::{DIGIT, Detector, DetectorNet, NOT_A_DIGIT};
use digits_core::model_file::{self, Metadata};
use digits_core::optim::Sgd;
use digits_core::pixels::normalize;
use digits_core::verdict::Limits;
use digits_core::{Params, Rng};
use rayon::prelude::*;

use super::nondigits::{self, Kind};
use super::photo;
use super::preprocess;
use crate::data::command::{DataArgs, load};
use crate::data::{Dataset, DatasetKind, resolve_dir};

/// The detector `digits predict` and the bench use, trained by
/// `digits bench --mode not-a-digit --train-detector host/assets/detector.digits --seed 1`.
const EMBEDDED: &[u8] = include_bytes!("../../assets/detector.digits");

/// The committed detector, decoded once.
pub fn embedded() -> &'static Detector {
    static DETECTOR: std::sync::OnceLock<Detector> = std::sync::OnceLock::new();
    DETECTOR.get_or_init(|| {
        Detector::decode(EMBEDDED).expect("the embedded detector is a valid detector file")
    })
}

/// Pictures held out of training, from the end of each training split.
pub const HELD_OUT: usize = 10_000;
/// Generated non-digits of each kind for training.
pub const GENERATED_PER_KIND: u64 = 3000;
/// Generated non-digits of each kind held out.
pub const HELD_OUT_PER_KIND: u64 = 500;
/// Training digits also drawn as photos.
pub const PHOTO_DIGITS: usize = 10_000;
/// Share of held-out digits the detector may flag.
pub const DIGITS_FLAGGED: f64 = 0.003;
/// Passes over the training pictures.
pub const EPOCHS: u32 = 8;
/// Pictures per step.
pub const BATCH: usize = 64;
/// Learning rate (momentum 0.9, weight decay 1e-4).
pub const LR: f64 = 0.02;

/// Pictures with their class.
#[derive(Default)]
struct Labelled {
    images: Vec<[u8; 784]>,
    labels: Vec<u8>,
}

impl Labelled {
    fn add(&mut self, images: impl IntoIterator<Item = [u8; 784]>, label: u8) {
        for image in images {
            self.images.push(image);
            self.labels.push(label);
        }
    }
}

/// Seeds of generated pictures: the bench's seed sits in the low bits, these never reach them.
fn generator_seed(seed: u64, part: u64) -> u64 {
    (seed << 44) | (part << 40)
}

/// Generated non-digits as the classifier sees them (those the preprocessing keeps).
fn generated(seed: u64, per_kind: u64) -> Vec<[u8; 784]> {
    Kind::ALL
        .iter()
        .flat_map(|&kind| (0..per_kind).map(move |i| (kind, i)))
        .collect::<Vec<_>>()
        .into_par_iter()
        .filter_map(|(kind, i)| preprocess::to_mnist(&nondigits::draw(kind, i, seed)).ok())
        .collect()
}

/// Pictures drawn as photos and prepared as `predict` prepares them.
fn as_photos(images: &[[u8; 784]], seed: u64) -> Vec<[u8; 784]> {
    images
        .par_iter()
        .enumerate()
        .filter_map(|(i, p)| preprocess::to_mnist(&photo::render_digit(p, seed + i as u64)).ok())
        .collect()
}

/// The training and held-out pictures.
fn sets(mnist: &Dataset, fashion: &Dataset, seed: u64) -> (Labelled, Labelled) {
    let split = |n: usize| n - HELD_OUT;
    let digits = &mnist.train.images;
    let clothes = &fashion.train.images;
    let (d, c) = (split(digits.len()), split(clothes.len()));
    let mut train = Labelled::default();
    train.add(digits[..d].iter().copied(), DIGIT);
    train.add(
        as_photos(&digits[..PHOTO_DIGITS.min(d)], generator_seed(seed, 1)),
        DIGIT,
    );
    train.add(clothes[..c].iter().copied(), NOT_A_DIGIT);
    train.add(
        as_photos(&clothes[..PHOTO_DIGITS.min(c) / 4], generator_seed(seed, 2)),
        NOT_A_DIGIT,
    );
    train.add(
        generated(generator_seed(seed, 3), GENERATED_PER_KIND),
        NOT_A_DIGIT,
    );
    let mut held = Labelled::default();
    held.add(digits[d..].iter().copied(), DIGIT);
    held.add(as_photos(&digits[d..], generator_seed(seed, 4)), DIGIT);
    held.add(clothes[c..].iter().copied(), NOT_A_DIGIT);
    held.add(
        generated(generator_seed(seed, 5), HELD_OUT_PER_KIND),
        NOT_A_DIGIT,
    );
    (train, held)
}

/// Trains the network by SGD over shuffled batches, the classes weighed equally.
fn fit(train: &Labelled, seed: u64) -> DetectorNet {
    let mut rng = Rng::new(seed);
    let mut net = DetectorNet::zeros();
    net.init(&mut rng);
    let (mut grad, mut velocity) = (DetectorNet::zeros(), DetectorNet::zeros());
    let sgd = Sgd {
        momentum: 0.9,
        weight_decay: 1e-4,
    };
    let x: Vec<[f32; 784]> = train
        .images
        .par_iter()
        .map(|p| {
            let mut x = [0.0f32; 784];
            normalize(p, &mut x);
            x
        })
        .collect();
    let mut order: Vec<usize> = (0..x.len()).collect();
    let mut xs = Vec::with_capacity(BATCH);
    let mut ys = Vec::with_capacity(BATCH);
    for epoch in 1..=EPOCHS {
        rng.shuffle(&mut order);
        let lr = LR
            * 0.5
            * (1.0 + (std::f64::consts::PI * f64::from(epoch - 1) / f64::from(EPOCHS)).cos());
        let mut loss = 0.0;
        for batch in order.chunks(BATCH) {
            xs.clear();
            ys.clear();
            xs.extend(batch.iter().map(|&i| x[i]));
            ys.extend(batch.iter().map(|&i| train.labels[i]));
            loss += net.backprop(&xs, &ys, &mut grad) * batch.len() as f32;
            sgd.step(&mut net, &grad, &mut velocity, lr);
        }
        eprintln!("epoch {epoch}: loss {:.4}", loss / x.len() as f32);
    }
    net
}

/// The "not a digit" logit minus the "digit" logit of each picture.
fn margins(net: &DetectorNet, images: &[[u8; 784]]) -> Vec<f32> {
    images
        .par_iter()
        .map(|p| {
            let mut x = [0.0f32; 784];
            normalize(p, &mut x);
            let z = net.logits(&x);
            z[usize::from(NOT_A_DIGIT)] - z[usize::from(DIGIT)]
        })
        .collect()
}

/// Trains a detector from `seed` and writes it to `out`.
pub fn train(data: &DataArgs, seed: u64, out: &Path) -> Result<()> {
    let start = Instant::now();
    let mnist = load(data)?;
    let fashion_dir = resolve_dir(None, DatasetKind::Fashion);
    let fashion = Dataset::load(&fashion_dir.path, DatasetKind::Fashion)?;
    let (train, held) = sets(&mnist, &fashion, seed);
    eprintln!(
        "training the detector on {} pictures, {} held out...",
        train.images.len(),
        held.images.len()
    );
    let mut net = fit(&train, seed);
    // Move the line so that a share DIGITS_FLAGGED of held-out digits is past one half.
    let m = margins(&net, &held.images);
    let mut digit_margins: Vec<f32> = m
        .iter()
        .zip(&held.labels)
        .filter(|(_, l)| **l == DIGIT)
        .map(|(m, _)| *m)
        .collect();
    digit_margins.sort_by(f32::total_cmp);
    let at = ((1.0 - DIGITS_FLAGGED) * digit_margins.len() as f64) as usize;
    let line = digit_margins[at.min(digit_margins.len() - 1)];
    net.output.b[usize::from(NOT_A_DIGIT)] -= line;
    let detector = Detector { net };
    let limit = Limits::MNIST.max_unlike;
    let flagged = |label: u8| {
        let (n, f) = held
            .images
            .iter()
            .zip(&held.labels)
            .filter(|(_, l)| **l == label)
            .fold((0, 0), |(n, f), (p, _)| {
                (n + 1, f + usize::from(detector.unlikeness(p) > limit))
            });
        100.0 * f as f64 / n as f64
    };
    eprintln!(
        "held out: digits {:.2}% flagged, non-digits {:.2}% flagged (margin moved by {line:.3})",
        flagged(DIGIT),
        flagged(NOT_A_DIGIT)
    );
    let options = format!(
        "{{\"epochs\":{EPOCHS},\"batch\":{BATCH},\"lr\":{LR},\"digits_flagged\":{DIGITS_FLAGGED},\"generated_per_kind\":{GENERATED_PER_KIND}}}"
    );
    let metadata = Metadata {
        dataset: "mnist vs fashion-mnist train + generated",
        test_accuracy: None,
        seed,
        epochs: EPOCHS,
        options: &options,
    };
    let mut buf =
        vec![0u8; model_file::encoded_len_bound(detector.net.num_params(), options.len() + 64)];
    let len = model_file::encode(&detector.net, &metadata, &mut buf)?;
    crate::model_io::write_atomically(out, &buf[..len])
        .with_context(|| format!("--train-detector {}", out.display()))?;
    eprintln!(
        "wrote {} ({len} bytes) in {:.1}s",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
