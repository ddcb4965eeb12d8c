//! `digits device predict`: people's pictures of digits, preprocessed on the host as `digits
//! predict` does, classified on the device.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use digits_core::softmax::softmax;
use serde::Serialize;

use super::model::DeviceModel;
use super::session::Session;
use super::{ModelChoice, Reach};
use crate::evaluate::predict::{Guess, top3, top3_text};
use crate::evaluate::preprocess;

/// Options of `digits device predict`.
#[derive(Args)]
pub struct DevicePredictArgs {
    /// Pictures of one digit each (PNG or JPEG).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    #[command(flatten)]
    reach: Reach,
    #[command(flatten)]
    model: ModelChoice,
    /// Print one JSON array (an object per image) instead of a line per image.
    #[arg(long)]
    json: bool,
}

/// What became of one image, as `--json` prints it (the fields of `digits predict --json`).
#[derive(Serialize)]
struct Outcome {
    file: String,
    digit: Option<u8>,
    top3: Option<[Guess; 3]>,
    probabilities: Option<[f32; 10]>,
    error: Option<String>,
}

/// Runs `digits device predict`; a picture that cannot be read is reported and skipped, and
/// makes the command fail at the end.
pub fn run(args: &DevicePredictArgs) -> Result<()> {
    let model = args
        .model
        .model
        .as_deref()
        .map(|path| DeviceModel::load(Some(path)))
        .transpose()?;
    let mut session = Session::open(&args.reach, model.as_ref(), "predict")?;
    let mut outcomes = Vec::new();
    for path in &args.images {
        let file = path.display().to_string();
        let pixels = preprocess::load_gray(path)
            .map_err(anyhow::Error::from)
            .and_then(|gray| Ok(preprocess::to_mnist(&gray)?));
        let pixels = match pixels.with_context(|| file.clone()) {
            Ok(pixels) => pixels,
            Err(e) => {
                eprintln!("error: {e:#}");
                outcomes.push(Outcome {
                    file,
                    digit: None,
                    top3: None,
                    probabilities: None,
                    error: Some(format!("{e:#}")),
                });
                continue;
            }
        };
        let c = session.link.classify(&pixels)?;
        let mut p = [0.0f32; 10];
        softmax(&c.logits, &mut p);
        let top3 = top3(&p);
        if !args.json {
            println!(
                "{file}: {}  (on the device; top-3: {})",
                c.digit,
                top3_text(&top3)
            );
        }
        outcomes.push(Outcome {
            file,
            digit: Some(c.digit),
            top3: Some(top3),
            probabilities: Some(p),
            error: None,
        });
    }
    session.close()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} images could not be recognized",
            args.images.len()
        );
    }
    Ok(())
}
