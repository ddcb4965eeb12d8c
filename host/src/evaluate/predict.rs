//! `digits predict`: recognizes a person's own pictures of digits (PNG or JPEG, any size), and
//! says "not a digit", and why, when a picture holds none (the core's [`Verdict`]).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use digits_core::Classifier;
use digits_core::softmax::softmax;
use digits_core::verdict::{Limits, Reason, Verdict};
use image::GrayImage;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::evaluate::answer::Answer;
use crate::evaluate::preprocess::{self, PreprocessError, SIDE};
use crate::model_io;

/// Options of `digits predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// Pictures of one digit each: PNG or JPEG, any size, dark ink on light paper or the reverse.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    /// The model file.
    #[arg(long, value_name = "FILE", default_value = "model.digits")]
    model: PathBuf,
    /// Save the 28x28 picture the network saw as DIR/STEM.28x28.png, and enlarged 8 times as
    /// DIR/STEM.28x28@8x.png (STEM: the image's file name without its extension).
    #[arg(long, value_name = "DIR", value_parser = crate::cli::output::Output::DIR)]
    show: Option<PathBuf>,
    /// Print a JSON array (one object per image) instead of lines of text.
    #[arg(long)]
    json: bool,
}

/// Runs `digits predict`. Each image succeeds or fails on its own; the result is an error
/// (non-zero exit status) if any failed.
pub fn run(args: PredictArgs) -> Result<()> {
    let loaded = model_io::load_weights(&args.model)
        .context("train one with `digits train`, or name one with --model FILE")?;
    let model = loaded.weights.classifier();
    if let Some(dir) = &args.show {
        crate::cli::output::create_dir("--show", dir)?;
    }
    let names = show_names(&args.images);
    let bar = progress_bar(args.images.len(), args.json);
    // Decoding dominates and the images are independent; collect keeps the order.
    let outcomes: Vec<Answer> = args
        .images
        .par_iter()
        .zip(&names)
        .map(|(path, name)| {
            let show = args.show.as_deref().map(|dir| (dir, name.as_str()));
            let file = path.display().to_string();
            let outcome = match predict_file(model, path, show) {
                Ok((seen, shown)) => Answer::seen(file, &seen, shown),
                Err(e) => Answer::failed(file, format!("{e:#}")),
            };
            bar.inc(1);
            outcome
        })
        .collect();
    bar.finish_and_clear();

    for o in &outcomes {
        if let Some(e) = o.error() {
            eprintln!("error: {e}");
        } else if !args.json {
            println!("{}", o.line(""));
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    }
    let failed = outcomes.iter().filter(|o| o.error().is_some()).count();
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} images could not be recognized",
            outcomes.len()
        );
    }
    Ok(())
}

/// A bar on stderr, counting pictures; hidden for `--json` and when stderr is not a terminal.
fn progress_bar(len: usize, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("predict [{bar:30}] {pos}/{len}  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// What `predict` made of one picture.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    /// The 28x28 picture the network saw (none when there was no ink to fit).
    pub pixels: Option<[u8; SIDE * SIDE]>,
    /// The probability of each digit (none without a picture).
    pub probabilities: Option<[f32; 10]>,
    /// A digit, or not and why.
    pub verdict: Verdict,
}

pub use digits_core::preprocess::Prepared;

/// Preprocesses one picture ([`digits_core::preprocess::prepare`]).
pub fn prepare(gray: &GrayImage) -> Result<Prepared, PreprocessError> {
    digits_core::preprocess::prepare(preprocess::gray_of(gray))
}

impl Seen {
    /// Judges the prepared `pixels` that a network (on the host or the device) gave these
    /// `probabilities`: the core's verdict with the embedded detector.
    pub fn judge(pixels: [u8; SIDE * SIDE], probabilities: [f32; 10]) -> Self {
        Seen {
            pixels: Some(pixels),
            probabilities: Some(probabilities),
            verdict: Verdict::judge_with(
                &pixels,
                &probabilities,
                super::detector::embedded(),
                &Limits::MNIST,
            ),
        }
    }

    /// A picture with nothing to classify, not a digit for `reason`.
    pub fn nothing(reason: Reason) -> Self {
        Seen {
            pixels: None,
            probabilities: None,
            verdict: Verdict::NotADigit(reason),
        }
    }
}

/// Preprocesses, classifies and judges one picture (see [`prepare`]).
pub fn see(model: &dyn Classifier<784, 10>, gray: &GrayImage) -> Result<Seen, PreprocessError> {
    Ok(match prepare(gray)? {
        Prepared::Picture(pixels) => Seen::judge(pixels, classify(model, &pixels)),
        Prepared::Nothing(reason) => Seen::nothing(reason),
    })
}

/// Reads, preprocesses, classifies and judges one image; saves what the network saw when asked.
fn predict_file(
    model: &dyn Classifier<784, 10>,
    path: &Path,
    show: Option<(&Path, &str)>,
) -> Result<(Seen, Option<String>)> {
    let gray = preprocess::load_gray(path)?;
    let seen = see(model, &gray).with_context(|| path.display().to_string())?;
    let shown = match (show, &seen.pixels) {
        (Some((dir, name)), Some(pixels)) => Some(save_view(pixels, dir, name)?),
        _ => None,
    };
    Ok((seen, shown))
}

/// Probabilities of the ten digits for a 28x28 picture.
pub fn classify(model: &dyn Classifier<784, 10>, pixels: &[u8; SIDE * SIDE]) -> [f32; 10] {
    let mut p = [0.0f32; 10];
    softmax(&model.classify(pixels), &mut p);
    p
}

/// File stems for `--show`, made unique (`7`, `7-2`, ...) when two images share one.
fn show_names(images: &[PathBuf]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    images
        .iter()
        .map(|p| {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            let n = seen.entry(stem.clone()).or_default();
            *n += 1;
            if *n == 1 { stem } else { format!("{stem}-{n}") }
        })
        .collect()
}

/// Writes the 28x28 picture and an 8x enlargement (each pixel a sharp 8x8 square, so the
/// pixels can be seen); returns the path of the 28x28 one.
fn save_view(pixels: &[u8; SIDE * SIDE], dir: &Path, name: &str) -> Result<String> {
    let small = GrayImage::from_raw(SIDE as u32, SIDE as u32, pixels.to_vec())
        .expect("784 pixels make 28x28");
    let path = dir.join(format!("{name}.28x28.png"));
    let big = image::imageops::resize(
        &small,
        8 * SIDE as u32,
        8 * SIDE as u32,
        image::imageops::FilterType::Nearest,
    );
    let big_path = dir.join(format!("{name}.28x28@8x.png"));
    for (img, p) in [(&small, &path), (&big, &big_path)] {
        img.save(p)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_names_are_unique() {
        let names = show_names(&[
            PathBuf::from("a/7.png"),
            PathBuf::from("b/7.jpg"),
            PathBuf::from("c/3.png"),
            PathBuf::from("7.png"),
        ]);
        assert_eq!(names, ["7", "7-2", "3", "7-3"]);
    }
}
