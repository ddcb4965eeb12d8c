//! `digits device predict`: people's pictures of digits, preprocessed on the host as `digits
//! predict` does, classified on the device, and judged and answered as `digits predict` does
//! (the verdict "not a digit", and why).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use digits_core::softmax::softmax;

use super::Query;
use crate::evaluate::answer::Answer;
use crate::evaluate::predict::{Prepared, Seen, prepare};
use crate::evaluate::preprocess;

/// Options of `digits device predict`.
#[derive(Args)]
pub struct DevicePredictArgs {
    /// Pictures of one digit each (PNG or JPEG).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    // `--json`: one array, an object per image.
    #[command(flatten)]
    query: Query,
}

/// Runs `digits device predict`; a picture that cannot be read is reported and skipped, and
/// makes the command fail at the end.
pub fn run(args: &DevicePredictArgs) -> Result<()> {
    let json = args.query.json;
    let mut session = args.query.open("predict")?;
    let mut answers = Vec::new();
    for path in &args.images {
        let file = path.display().to_string();
        let prepared = preprocess::load_gray(path)
            .map_err(anyhow::Error::from)
            .and_then(|gray| Ok(prepare(&gray)?));
        let seen = match prepared.with_context(|| file.clone()) {
            Ok(Prepared::Picture(pixels)) => {
                let c = session.link.classify(&pixels)?;
                let mut p = [0.0f32; 10];
                softmax(&c.logits, &mut p);
                Seen::judge(pixels, p)
            }
            Ok(Prepared::Nothing(reason)) => Seen::nothing(reason),
            Err(e) => {
                eprintln!("error: {e:#}");
                answers.push(Answer::failed(file, format!("{e:#}")));
                continue;
            }
        };
        let answer = Answer::seen(file, &seen, None);
        if !json {
            println!("{}", answer.line("on the device; "));
        }
        answers.push(answer);
    }
    session.close()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answers)?);
    }
    let failed = answers.iter().filter(|a| a.error().is_some()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} images could not be recognized",
            args.images.len()
        );
    }
    Ok(())
}
