//! `digits device eval --uart`: each test image sent to a `serve` device with the protocol,
//! its logits back.

use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::{DeviceEvalArgs, EvalReport, Reference, Tally};
use crate::device::session::Session;

/// Classifies the test images one request each; reports the time per image.
pub(super) fn run(args: &DeviceEvalArgs, reference: &Reference) -> Result<EvalReport> {
    // The session checks that the device runs the reference's model.
    let mut session = Session::open(&args.reach, Some(&reference.model), "eval --uart")?;
    let n = reference.images.len();
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("device eval [{bar:30}] {pos}/{len}  {per_sec}  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let mut tally = Tally::default();
    for i in 0..n {
        let c = session
            .link
            .classify(&reference.images[i])
            .with_context(|| format!("test image {i}"))?;
        tally.add(i, &c.logits, &reference.host_logits(i), reference.labels[i]);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    session.close()?;
    Ok(tally.report("uart", seconds, reference))
}
