//! `digits device eval --connect/--port` (without `--uart`): the test set that `digits device
//! run --test-set` loaded into the running device's memory, classified there in batches by the
//! model it runs (pushed first if it runs another). Each batch's digest of its logits is
//! compared with the host's; a batch that differs is classified again image by image over the
//! link, to count and find the images that differ.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use digits_core::digest::Fnv64;
use digits_core::protocol::DeviceError;

use super::{DeviceEvalArgs, EvalReport, Reference, Tally};
use crate::device::error::Error;
use crate::device::session::Session;

/// Images per evaluate request: small enough to answer well within the link's timeout.
const BATCH: usize = 250;

pub(super) fn run(args: &DeviceEvalArgs, reference: &Reference) -> Result<EvalReport> {
    // The session pushes the reference's model unless the device runs it.
    let mut session = Session::open(&args.reach, Some(&reference.model), "eval")?;
    let n = reference.images.len();
    let start = Instant::now();
    let mut tally = Tally::default();
    for first in (0..n).step_by(BATCH) {
        let count = BATCH.min(n - first);
        let host: Vec<[f32; 10]> = (first..first + count)
            .map(|i| reference.host_logits(i))
            .collect();
        let mut digest = Fnv64::new();
        host.iter().for_each(|z| digest.write_f32s(z));
        let evaluation = match session.link.evaluate(first as u32, count as u32) {
            Ok(e) => e,
            Err(Error::Device(DeviceError::NoData)) => bail!(
                "the device holds no test set: start it with `digits device run --test-set`, \
                 or add --uart to send the images over the link"
            ),
            Err(Error::Device(DeviceError::BadRange { images })) => bail!(
                "the device holds {images} test images, fewer than the {n} asked for: pass \
                 --limit {images}"
            ),
            Err(e) => return Err(e).context("evaluating on the device"),
        };
        if evaluation.logits_fnv64 == digest.finish() {
            for (k, z) in host.iter().enumerate() {
                let i = first + k;
                tally.add(i, z, z, reference.labels[i]);
            }
        } else {
            for (k, z) in host.iter().enumerate() {
                let i = first + k;
                let c = session
                    .link
                    .classify(&reference.images[i])
                    .with_context(|| format!("test image {i}"))?;
                tally.add(i, &c.logits, z, reference.labels[i]);
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    session.close()?;
    Ok(tally.report("running", seconds, reference))
}
