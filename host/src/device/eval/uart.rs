//! `digits device eval --uart`: each test image sent to a `serve` device with the protocol,
//! its logits back.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::{DeviceEvalArgs, Reference, Tally};
use crate::device::firmware::Firmware;
use crate::device::logs::LogPrinter;
use crate::device::session::Session;

/// Classifies the test images one request each; reports the time per image.
pub(super) fn run(
    firmware: &Firmware,
    connect: Option<SocketAddr>,
    logs: LogPrinter,
    args: &DeviceEvalArgs,
) -> Result<()> {
    let reference = Reference::load(args)?;
    let mut session = Session::open(firmware, connect, logs)?;
    let digest = session.link.info()?.model.params_fnv64;
    reference.check_model(digest, args)?;
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
    tally.report(&format!(
        "over the UART in {seconds:.1} s, {:.1} ms per image",
        1e3 * seconds / n as f64
    ))
}
