//! `digits bench --mode not-a-digit`: how often the "not a digit" verdict flags digits and how
//! often it flags non-digits, on four sets, and the trade-off over the confidence limit.
//!
//! - MNIST's test digits, as they are (28x28);
//! - the first 1,000 of them drawn as photos ([`photo::render_digit`]) through `predict`'s
//!   preprocessing, as `host/tests/predict_cli.rs` draws them;
//! - Fashion-MNIST's test images, as they are, and drawn as photos through the preprocessing
//!   (a person photographing a shoe);
//! - generated non-digits ([`nondigits`]) through the preprocessing, per kind.
//!
//! No set here is trained on: the limits are [`Limits::MNIST`], the detector the embedded one
//! (trained on training splits and other seeds, [`super::detector`]).

use std::path::Path;

use anyhow::{Context, Result};
use digits_core::Classifier;
use digits_core::verdict::{InkShape, Limits, Reason, Verdict};
use image::GrayImage;
use rayon::prelude::*;

use super::nondigits::{self, Kind};
use super::photo;
use super::predict::{classify, see};
use crate::data::command::{DataArgs, load_test};
use crate::data::{Dataset, DatasetKind, Split, resolve_dir};
use crate::model_io;

/// Digits drawn as photos, as `predict_cli` draws them.
pub const PHOTOS: usize = 1000;
/// Generated non-digits of each kind.
pub const PER_KIND: usize = 300;
/// Confidence limits of the trade-off curve.
pub const CURVE: [f32; 10] = [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99];

/// Detector limits of the trade-off curve (above 1: the detector never flags).
pub const UNLIKE_CURVE: [f32; 9] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0];

/// What the verdict's two halves said about one picture.
#[derive(Clone, Copy, Debug)]
pub struct Judged {
    /// The reason the ink (or the preprocessing) gave, if any.
    pub ink: Option<Reason>,
    /// The most probable digit's probability (1 when there was no picture to classify, so the
    /// confidence limit never adds to an ink reason).
    pub confidence: f32,
    /// The detector's probability of "not a digit" (0 when there was no picture).
    pub unlikeness: f32,
}

impl Judged {
    /// Flagged as not a digit with this confidence limit.
    pub fn flagged(&self, min_confidence: f32) -> bool {
        self.flagged_at(min_confidence, Limits::MNIST.max_unlike)
    }

    /// Flagged with this confidence limit and this detector limit.
    pub fn flagged_at(&self, min_confidence: f32, max_unlike: f32) -> bool {
        self.ink.is_some() || self.unlikeness > max_unlike || self.confidence < min_confidence
    }

    /// The reason the verdict gives with this confidence limit.
    pub fn reason(&self, min_confidence: f32) -> Option<&'static str> {
        match self.ink {
            Some(r) => Some(r.code()),
            None if self.unlikeness > Limits::MNIST.max_unlike => Some("unlike"),
            None => (self.confidence < min_confidence).then_some("unsure"),
        }
    }
}

/// A 28x28 picture, judged.
pub fn judge_pixels(model: &dyn Classifier<784, 10>, pixels: &[u8; 784]) -> Judged {
    let p = classify(model, pixels);
    Judged {
        ink: Verdict::judge_ink(&InkShape::measure(pixels), &Limits::MNIST).reason(),
        confidence: p.iter().copied().fold(0.0, f32::max),
        unlikeness: super::detector::embedded().unlikeness(pixels),
    }
}

/// A photo, through `predict`'s preprocessing, judged.
pub fn judge_photo(model: &dyn Classifier<784, 10>, gray: &GrayImage) -> Judged {
    match see(model, gray) {
        Ok(seen) => match seen.pixels {
            Some(pixels) => judge_pixels(model, &pixels),
            None => Judged {
                ink: seen.verdict.reason(),
                confidence: 1.0,
                unlikeness: 0.0,
            },
        },
        // A picture with no pixels cannot come from the generators.
        Err(e) => unreachable!("generated pictures have pixels: {e}"),
    }
}

/// One set's results.
pub struct SetResult {
    /// The set's name.
    pub name: String,
    /// Whether it holds digits (flags are mistakes) or not (flags are wanted).
    pub digits: bool,
    /// Each picture, judged.
    pub judged: Vec<Judged>,
}

impl SetResult {
    /// Share of the set flagged at this confidence limit, in percent.
    pub fn flagged_percent(&self, min_confidence: f32) -> f64 {
        let n = self
            .judged
            .iter()
            .filter(|j| j.flagged(min_confidence))
            .count();
        100.0 * n as f64 / self.judged.len().max(1) as f64
    }

    /// Counts of each reason at this confidence limit, most frequent first.
    pub fn reasons(&self, min_confidence: f32) -> Vec<(&'static str, usize)> {
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        for r in self.judged.iter().filter_map(|j| j.reason(min_confidence)) {
            match counts.iter_mut().find(|(c, _)| *c == r) {
                Some((_, n)) => *n += 1,
                None => counts.push((r, 1)),
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        counts
    }
}

/// The sets judged by the bench.
pub fn measure(
    model: &(dyn Classifier<784, 10> + Sync),
    mnist_test: &Split,
    fashion_test: &Split,
    seed: u64,
) -> Vec<SetResult> {
    let raw = |images: &[[u8; 784]]| -> Vec<Judged> {
        images.par_iter().map(|p| judge_pixels(model, p)).collect()
    };
    let photos = |images: &[[u8; 784]]| -> Vec<Judged> {
        images
            .par_iter()
            .enumerate()
            .map(|(i, p)| judge_photo(model, &photo::render_digit(p, i as u64)))
            .collect()
    };
    let photo_count = PHOTOS.min(mnist_test.images.len());
    let fashion_photos = PHOTOS.min(fashion_test.images.len());
    let mut sets = vec![
        SetResult {
            name: format!("MNIST test digits ({})", mnist_test.images.len()),
            digits: true,
            judged: raw(&mnist_test.images),
        },
        SetResult {
            name: format!("MNIST test digits as photos (first {photo_count})"),
            digits: true,
            judged: photos(&mnist_test.images[..photo_count]),
        },
        SetResult {
            name: format!("Fashion-MNIST test ({})", fashion_test.images.len()),
            digits: false,
            judged: raw(&fashion_test.images),
        },
        SetResult {
            name: format!("Fashion-MNIST test as photos (first {fashion_photos})"),
            digits: false,
            judged: photos(&fashion_test.images[..fashion_photos]),
        },
    ];
    let mut all = Vec::new();
    for kind in Kind::ALL {
        let judged: Vec<Judged> = (0..PER_KIND as u64)
            .into_par_iter()
            .map(|i| judge_photo(model, &nondigits::draw(kind, i, seed)))
            .collect();
        all.extend_from_slice(&judged);
        sets.push(SetResult {
            name: format!("  generated: {} ({PER_KIND})", kind.name()),
            digits: false,
            judged,
        });
    }
    sets.insert(
        4,
        SetResult {
            name: format!("generated non-digits, seed {seed} ({})", all.len()),
            digits: false,
            judged: all,
        },
    );
    sets
}

/// Runs the bench: reads the model and both test sets, prints the table and the curve.
pub fn run(model_path: &Path, data: &DataArgs, seed: u64) -> Result<()> {
    let loaded = model_io::load_weights(model_path)
        .context("train one with `digits train`, or name one with --model FILE")?;
    let model = loaded.weights.classifier();
    let mnist_test = &load_test(data)?.test;
    let fashion_dir = resolve_dir(None, DatasetKind::Fashion);
    let fashion = Dataset::load(&fashion_dir.path, DatasetKind::Fashion)?;
    eprintln!(
        "judging {} MNIST, {} Fashion-MNIST test images and {} generated pictures...",
        mnist_test.images.len(),
        fashion.test.images.len(),
        PER_KIND * Kind::ALL.len()
    );
    let sets = measure(model, mnist_test, &fashion.test, seed);
    let limit = Limits::MNIST.min_confidence;
    println!(
        "not a digit, model {}, confidence limit {limit} (Limits::MNIST):",
        model_path.display()
    );
    println!("{:<48} {:>8}  reasons", "set", "flagged");
    for s in &sets {
        let reasons: Vec<String> = s
            .reasons(limit)
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        println!(
            "{:<48} {:>7.2}%  {}",
            s.name,
            s.flagged_percent(limit),
            reasons.join(", ")
        );
    }
    println!();
    println!("trade-off over the confidence limit (ink limits fixed), % flagged:");
    let main: Vec<&SetResult> = sets.iter().filter(|s| !s.name.starts_with(' ')).collect();
    print!("{:>6}", "limit");
    for s in &main {
        print!("  {:>10}", short(&s.name));
    }
    println!();
    for t in CURVE {
        let mark = if t == limit { "*" } else { " " };
        print!("{t:>5}{mark}");
        for s in &main {
            print!("  {:>9.2}%", s.flagged_percent(t));
        }
        println!();
    }
    println!("(* the default; digits sets should be low, the others high)");
    println!();
    println!("trade-off over the detector's limit (ink and confidence limits fixed), % flagged:");
    print!("{:>6}", "limit");
    for s in &main {
        print!("  {:>10}", short(&s.name));
    }
    println!();
    for u in UNLIKE_CURVE {
        let mark = if u == Limits::MNIST.max_unlike {
            "*"
        } else {
            " "
        };
        print!("{u:>5}{mark}");
        for s in &main {
            let n = s.judged.iter().filter(|j| j.flagged_at(limit, u)).count();
            print!(
                "  {:>9.2}%",
                100.0 * n as f64 / s.judged.len().max(1) as f64
            );
        }
        println!();
    }
    Ok(())
}

/// A column heading for a set.
fn short(name: &str) -> &'static str {
    match name {
        n if n.starts_with("MNIST test digits as") => "MNIST-photo",
        n if n.starts_with("MNIST") => "MNIST",
        n if n.starts_with("Fashion-MNIST test as") => "Fash-photo",
        n if n.starts_with("Fashion") => "Fashion",
        _ => "generated",
    }
}
