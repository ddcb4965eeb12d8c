//! `digits device eval` by the bulk path: all test images in one data blob that QEMU loads into
//! the device's PSRAM (mps2-an386) or that the device reads from a host file over semihosting
//! (lm3s6965evb), classified by the `eval` firmware (`eval-int8` for an int8 model,
//! `eval-compact` for a compact one), whose report carries every image's logits, the
//! instructions per inference (`qemu -icount`) and the RAM.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use digits_core::blob::Contents;

use super::{DeviceEvalArgs, EvalReport, Reference, Tally};
use crate::device::logs::LogLine;
use crate::device::psram::PsramBlob;
use crate::device::qemu::{Qemu, Serial, require_qemu};

/// What the `eval` firmware's report says, beside the logits.
#[derive(Default)]
struct BulkReport {
    /// The model's parameters digest, hex.
    model_digest: Option<String>,
    instructions: Option<String>,
    stack_peak: Option<String>,
    static_ram: Option<String>,
    inference_stack: Option<String>,
}

/// Runs the `eval` firmware on the test images and compares its report with the host.
pub(super) fn run(args: &DeviceEvalArgs, reference: &Reference) -> Result<EvalReport> {
    require_qemu()?;
    let firmware = args.reach.launch.firmware();
    let logs = args.reach.launch.logs();
    let name = reference.model.eval_binary();
    let elf = firmware.elf(name, Some(&reference.model))?;
    let n = reference.images.len();
    let contents = Contents {
        images: &[&reference.images],
        labels: Some(&[&reference.labels]),
        print_logits: true,
    };
    let blob = PsramBlob::write("digits-eval-", &contents)?;

    // Console lines are the report; log lines are shown as the user asked.
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let mut show = logs.sink();
    let start = Instant::now();
    let board = args.reach.launch.board;
    let given = blob.for_board(board, name)?;
    let extra = [&["-icount", "shift=0"][..], &given.qemu].concat();
    let mut qemu = Qemu::start_on(
        board,
        &elf,
        &Serial::None,
        &extra,
        &given.semihosting,
        move |line: LogLine| match line.level {
            None => sink.lock().expect("lines").push(line.text),
            Some(_) => show(line),
        },
    )?;
    let code = qemu.wait(Duration::from_secs(600))?;
    let seconds = start.elapsed().as_secs_f64();
    if code != Some(0) {
        bail!(
            "the eval firmware failed (status {code:?}); its errors are above. {}",
            qemu.stderr_text()
        );
    }
    let lines = lines.lock().expect("lines");

    let mut tally = Tally::default();
    let mut report = BulkReport::default();
    for line in lines.iter() {
        let mut words = line.split('#').next().unwrap_or("").split_whitespace();
        match words.next() {
            Some("model") => report.model_digest = words.last().map(str::to_owned),
            Some("logits") => {
                let i: usize = words.next().context("logits line")?.parse()?;
                let mut z = [0.0f32; 10];
                for v in &mut z {
                    let bits = words.next().context("logits line too short")?;
                    *v = f32::from_bits(u32::from_str_radix(bits, 16)?);
                }
                tally.add(i, &z, &reference.host_logits(i), reference.labels[i]);
            }
            Some("instructions_per_inference") => {
                report.instructions = words.next().map(str::to_owned)
            }
            Some("stack_peak_bytes") => report.stack_peak = words.next().map(str::to_owned),
            Some("static_ram_bytes") => report.static_ram = words.next().map(str::to_owned),
            Some("inference_stack_bytes") => {
                report.inference_stack = words.next().map(str::to_owned)
            }
            _ => {}
        }
    }
    let digest = report
        .model_digest
        .context("the device did not report its model")?;
    reference
        .model
        .check(u64::from_str_radix(&digest, 16)?, &firmware.reached())?;
    if tally.images != n {
        bail!("the device reported {} of {n} images", tally.images);
    }
    let mut eval = tally.report(given.how, seconds, reference);
    eval.board = Some(board.name());
    eval.instructions_per_inference = report
        .instructions
        .map(|s| s.parse())
        .transpose()
        .context("the device's instructions_per_inference")?;
    eval.stack_peak_bytes = report
        .stack_peak
        .map(|s| s.parse())
        .transpose()
        .context("the device's stack_peak_bytes")?;
    let number = |s: Option<String>, what: &str| -> Result<Option<u64>> {
        s.map(|s| s.parse())
            .transpose()
            .with_context(|| format!("the device's {what}"))
    };
    eval.static_ram_bytes = number(report.static_ram, "static_ram_bytes")?;
    eval.inference_stack_bytes = number(report.inference_stack, "inference_stack_bytes")?;
    Ok(eval)
}
