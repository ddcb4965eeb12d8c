//! `digits quantize`: an `f32` model file to an int8 one (`digits_core::quant`), with the
//! hidden activations' scale calibrated on training images and chosen on held-out ones.
//!
//! The scale of a hidden activation code is a percentile of the hidden activations of the
//! first `--calibration` training images, divided by 255: the largest activations saturate, the
//! rest get finer steps. Which percentile is chosen by accuracy on the last 10,000 training
//! images, never on the test set, which is only reported.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use digits_core::softmax::argmax;
use digits_core::{Classifier, MnistMlp, MnistQuant};
use rayon::prelude::*;
use serde::Serialize;

use crate::data::Split;
use crate::model_io::{self, Provenance};

/// Percentiles of the hidden activations tried as the top of the code range.
const PERCENTILES: [f64; 4] = [99.9, 99.99, 99.999, 100.0];
/// Training images the percentile is chosen on (the last ones; calibration uses the first).
const HOLD_OUT: usize = 10_000;

/// Options of `digits quantize`.
#[derive(Args)]
pub struct QuantizeArgs {
    /// The `f32` model file.
    #[arg(long, value_name = "FILE", default_value = "model.digits")]
    model: PathBuf,
    /// Where to write the int8 model file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "model-int8.digits",
        value_parser = crate::cli::output::Output::FILE
    )]
    out: PathBuf,
    /// Training images whose hidden activations set the activation scale.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        value_parser = crate::cli::number::Within::at_least(1usize)
    )]
    calibration: usize,
    /// Print one JSON document on stdout (progress goes to stderr).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: crate::data::command::DataArgs,
}

/// One percentile tried.
#[derive(Serialize)]
struct Tried {
    percentile: f64,
    top_activation: f32,
    code_step: f32,
    held_out_accuracy: f64,
}

/// Accuracy of `model` on `split`, with the predictions.
fn predictions(model: &(dyn Classifier<784, 10> + Sync), split: &Split) -> Vec<u8> {
    split
        .images
        .par_iter()
        .map(|im| argmax(&model.classify(im)) as u8)
        .collect()
}

fn accuracy(predicted: &[u8], labels: &[u8]) -> f64 {
    let correct = predicted.iter().zip(labels).filter(|(p, y)| p == y).count();
    100.0 * correct as f64 / labels.len() as f64
}

fn slice(split: &Split, range: std::ops::Range<usize>) -> Split {
    Split {
        images: split.images[range.clone()].to_vec(),
        labels: split.labels[range].to_vec(),
    }
}

/// Runs `digits quantize`.
pub fn run(args: &QuantizeArgs) -> Result<()> {
    if args.out == args.model {
        bail!(
            "--out {} is the --model file: name another, the f32 model is kept",
            args.out.display()
        );
    }
    let loaded = model_io::load(&args.model)
        .context("digits quantize reads an f32 model file (as `digits train` writes)")?;
    let model: &MnistMlp = &loaded.model;
    let dataset = crate::data::command::load(&args.data)?;
    let train = &dataset.train;
    if train.labels.len() < HOLD_OUT + args.calibration || args.calibration == 0 {
        bail!(
            "--calibration must be 1 to {} (the training split has {} images, the last \
             {HOLD_OUT} are held out)",
            train.labels.len().saturating_sub(HOLD_OUT),
            train.labels.len()
        );
    }
    let calibration = slice(train, 0..args.calibration);
    let n = train.labels.len();
    let hold_out = slice(train, n - HOLD_OUT..n);

    let mut activations: Vec<f32> = calibration
        .images
        .par_iter()
        .flat_map_iter(|im| {
            let mut x = [0.0f32; 784];
            digits_core::pixels::normalize(im, &mut x);
            let mut h = [0.0f32; 128];
            model.hidden_activations(&x, &mut h);
            h.into_iter().filter(|&v| v > 0.0)
        })
        .collect();
    if activations.is_empty() {
        bail!("no hidden unit is ever active on the calibration images: is this a trained model?");
    }
    activations.sort_unstable_by(f32::total_cmp);

    // With --json, stdout holds only the document.
    let say = |line: String| {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say(format!(
        "calibration: {} hidden activations > 0 of {} training images; choosing on the last {HOLD_OUT}",
        activations.len(),
        args.calibration
    ));
    let mut tried = Vec::new();
    let mut best: Option<(f64, f32, Box<MnistQuant>)> = None;
    for p in PERCENTILES {
        let at = ((p / 100.0) * (activations.len() - 1) as f64).round() as usize;
        let top = activations[at];
        let scale = top / 255.0;
        let mut q: Box<MnistQuant> = bytemuck::zeroed_box();
        q.quantize_into(model, scale)
            .map_err(|e| anyhow::anyhow!("cannot quantize {}: {e}", args.model.display()))?;
        let acc = accuracy(&predictions(&*q, &hold_out), &hold_out.labels);
        say(format!(
            "  percentile {p:>7}: activations up to {top:.3}, code step {scale:.5}: held-out accuracy {acc:.2}%"
        ));
        tried.push(Tried {
            percentile: p,
            top_activation: top,
            code_step: scale,
            held_out_accuracy: acc / 100.0,
        });
        if best.as_ref().is_none_or(|(b, _, _)| acc > *b) {
            best = Some((acc, scale, q));
        }
    }
    let (_, scale, q) = best.expect("at least one percentile");

    let test = &dataset.test;
    let f32_predicted = predictions(model, test);
    let int8_predicted = predictions(&*q, test);
    let (f, i) = (
        accuracy(&f32_predicted, &test.labels),
        accuracy(&int8_predicted, &test.labels),
    );
    let agree = f32_predicted
        .iter()
        .zip(&int8_predicted)
        .filter(|(a, b)| a == b)
        .count();

    let options = serde_json::json!({
        "quantized_from": args.model.display().to_string(),
        "hidden_scale": scale,
        "calibration_images": args.calibration,
        "f32_test_accuracy": f / 100.0,
        "training": loaded.provenance.options,
    });
    let provenance = Provenance {
        test_accuracy: Some((i / 100.0) as f32),
        options: options.to_string(),
        ..loaded.provenance.clone()
    };
    let bytes = model_io::encode_int8(&q, &provenance)?;
    model_io::write_atomically(&args.out, &bytes)?;
    say(format!(
        "test accuracy: f32 {f:.2}%, int8 {i:.2}% ({:+.2} points); the same digit for {agree} of {} images",
        i - f,
        test.labels.len()
    ));
    say(format!(
        "wrote {} ({} bytes; the f32 file is {} bytes: {:.2}x smaller)",
        args.out.display(),
        bytes.len(),
        loaded.bytes,
        loaded.bytes as f64 / bytes.len() as f64
    ));
    if args.json {
        let doc = serde_json::json!({
            "model": args.model.display().to_string(),
            "out": args.out.display().to_string(),
            "calibration_images": args.calibration,
            "hold_out_images": HOLD_OUT,
            "percentiles": tried,
            "hidden_scale": scale,
            "test_images": test.labels.len(),
            "f32_test_accuracy": f / 100.0,
            "int8_test_accuracy": i / 100.0,
            "same_digit": agree,
            "bytes": bytes.len(),
            "f32_bytes": loaded.bytes,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}
