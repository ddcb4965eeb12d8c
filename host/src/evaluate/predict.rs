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
use serde::Serialize;

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
    #[arg(long, value_name = "DIR", value_parser = crate::cli::output::OutputDir)]
    show: Option<PathBuf>,
    /// Print a JSON array (one object per image) instead of lines of text.
    #[arg(long)]
    json: bool,
}

/// One digit and its probability.
#[derive(Clone, Copy, Serialize)]
pub struct Guess {
    pub digit: u8,
    pub probability: f32,
}

/// Whether a picture holds a digit, for the JSON output.
#[derive(Serialize)]
pub struct VerdictOut {
    /// False when the picture is not a digit.
    pub is_digit: bool,
    /// Why not, for scripts (`"blank"`, `"flat"`, `"unsure"`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Why not, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

impl From<Verdict> for VerdictOut {
    fn from(v: Verdict) -> Self {
        VerdictOut {
            is_digit: v == Verdict::Digit,
            reason: v.reason().map(|r| r.code()),
            explanation: v.reason().map(|r| r.to_string()),
        }
    }
}

/// What became of one image: JSON output, and the source of the text output.
#[derive(Serialize)]
struct FileOutcome {
    file: String,
    /// The digit, when the picture is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    digit: Option<u8>,
    /// A digit, or not a digit and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<VerdictOut>,
    /// The three most probable digits, most probable first.
    #[serde(skip_serializing_if = "Option::is_none")]
    top3: Option<[Guess; 3]>,
    /// Probability of each digit 0-9.
    #[serde(skip_serializing_if = "Option::is_none")]
    probabilities: Option<[f32; 10]>,
    /// Where the 28x28 picture was saved (`--show`).
    #[serde(skip_serializing_if = "Option::is_none")]
    shown: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Runs `digits predict`. Each image succeeds or fails on its own; the result is an error
/// (non-zero exit status) if any failed.
pub fn run(args: PredictArgs) -> Result<()> {
    let loaded = model_io::load_weights(&args.model)
        .context("train one with `digits train`, or name one with --model FILE")?;
    let model = loaded.weights.classifier();
    if let Some(dir) = &args.show {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the --show directory {}", dir.display()))?;
    }
    let names = show_names(&args.images);
    let bar = progress_bar(args.images.len(), args.json);
    // Decoding dominates and the images are independent; collect keeps the order.
    let outcomes: Vec<FileOutcome> = args
        .images
        .par_iter()
        .zip(&names)
        .map(|(path, name)| {
            let show = args.show.as_deref().map(|dir| (dir, name.as_str()));
            let file = path.display().to_string();
            let outcome = match predict_file(model, path, show) {
                Ok((seen, shown)) => {
                    let top3 = seen.probabilities.as_ref().map(top3);
                    FileOutcome {
                        file,
                        digit: match (seen.verdict, &top3) {
                            (Verdict::Digit, Some(t)) => Some(t[0].digit),
                            _ => None,
                        },
                        verdict: Some(seen.verdict.into()),
                        top3,
                        probabilities: seen.probabilities,
                        shown,
                        error: None,
                    }
                }
                Err(e) => FileOutcome {
                    file,
                    digit: None,
                    verdict: None,
                    top3: None,
                    probabilities: None,
                    shown: None,
                    error: Some(format!("{e:#}")),
                },
            };
            bar.inc(1);
            outcome
        })
        .collect();
    bar.finish_and_clear();

    for o in &outcomes {
        if let Some(e) = &o.error {
            eprintln!("error: {e}");
        } else if !args.json {
            println!("{}", outcome_line(o));
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} images could not be recognized",
            outcomes.len()
        );
    }
    Ok(())
}

/// One line of the text output: `7.png: 7  (top-3: ...)`, or `bar.png: not a digit: ...`.
fn outcome_line(o: &FileOutcome) -> String {
    let verdict = match o.verdict.as_ref().and_then(|v| v.explanation.as_deref()) {
        Some(why) => format!("not a digit: {why}"),
        None => o.digit.map(|d| d.to_string()).unwrap_or_default(),
    };
    match &o.top3 {
        Some(t) => format!("{}: {verdict}  (top-3: {})", o.file, top3_text(t)),
        None => format!("{}: {verdict}", o.file),
    }
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

/// Preprocesses, classifies and judges one picture. A blank or noisy picture is a verdict
/// ("not a digit"), not an error; a picture with no pixels is an error.
pub fn see(model: &dyn Classifier<784, 10>, gray: &GrayImage) -> Result<Seen, PreprocessError> {
    let nothing = |reason| Seen {
        pixels: None,
        probabilities: None,
        verdict: Verdict::NotADigit(reason),
    };
    match preprocess::to_mnist(gray) {
        Ok(pixels) => {
            let probabilities = classify(model, &pixels);
            Ok(Seen {
                pixels: Some(pixels),
                probabilities: Some(probabilities),
                verdict: Verdict::judge_with(
                    &pixels,
                    &probabilities,
                    super::detector::embedded(),
                    &Limits::MNIST,
                ),
            })
        }
        Err(PreprocessError::NoInk { .. }) => Ok(nothing(Reason::Blank)),
        Err(PreprocessError::Noisy { .. }) => Ok(nothing(Reason::Noise)),
        Err(e) => Err(e),
    }
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

/// The three most probable digits, most probable first (the lower digit first on ties).
pub fn top3(p: &[f32; 10]) -> [Guess; 3] {
    let mut order: Vec<u8> = (0..10).collect();
    order.sort_by(|&a, &b| p[b as usize].total_cmp(&p[a as usize]).then(a.cmp(&b)));
    order[..3]
        .iter()
        .map(|&d| Guess {
            digit: d,
            probability: p[d as usize],
        })
        .collect::<Vec<_>>()
        .try_into()
        .unwrap_or_else(|_| unreachable!("ten digits give three"))
}

/// The three guesses as the text output shows them: `7 99.1%, 2 0.5%, 3 0.2%`.
pub fn top3_text(t: &[Guess; 3]) -> String {
    let [a, b, c] = t.map(|g| format!("{} {:.1}%", g.digit, 100.0 * g.probability));
    format!("{a}, {b}, {c}")
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
    fn top3_is_sorted_and_names_digits() {
        let mut p = [0.01f32; 10];
        p[7] = 0.6;
        p[1] = 0.2;
        p[3] = 0.12;
        let t = top3(&p);
        assert_eq!([t[0].digit, t[1].digit, t[2].digit], [7, 1, 3]);
        assert_eq!(t[0].probability, 0.6);
    }

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
