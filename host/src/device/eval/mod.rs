//! `digits device eval`: the test images classified on the device, compared with the host's
//! run of the same model image by image, bit for bit. Two ways to get the images there: all at
//! once into the device's memory before it starts (`bulk.rs`, the default) or one by one with the
//! protocol (`uart.rs`, which is slow under QEMU but runs against any `serve` device).

mod bulk;
mod running;
mod uart;

use anyhow::{Result, bail};
use clap::Args;
use digits_core::blob::IMAGE_LEN;
use digits_core::softmax::argmax;
use serde::Serialize;

use super::model::DeviceModel;
use super::{HostSide, Reach};
use crate::data::command::{DataArgs, load_test};

/// Options of `digits device eval`.
#[derive(Args)]
pub struct DeviceEvalArgs {
    /// Only the first N test images.
    #[arg(long, value_name = "N", value_parser = crate::cli::number::Within::at_least(1usize))]
    limit: Option<usize>,
    /// Send the images one by one over the UART with the protocol (slow under QEMU) instead of
    /// loading them all into the device's memory at start.
    #[arg(long)]
    uart: bool,
    #[command(flatten)]
    host: HostSide,
    #[command(flatten)]
    reach: Reach,
    /// Print one JSON object (the same figures) instead of the text report.
    #[arg(long)]
    json: bool,
}

/// Runs `digits device eval`.
pub fn run(args: &DeviceEvalArgs) -> Result<()> {
    let attached = args.reach.attached();
    if let Some(attached) = &attached {
        attached.check()?;
    }
    if args.uart {
        args.reach.launch.serving_board("eval --uart")?;
    }
    let reference = Reference::load(args)?;
    let report = match (args.uart, attached) {
        (true, _) => uart::run(args, &reference)?,
        (false, Some(_)) => running::run(args, &reference)?,
        (false, None) => bulk::run(args, &reference)?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print();
    }
    report.verdict()
}

/// The test images, the host's model and its logits for them.
struct Reference {
    images: Vec<[u8; IMAGE_LEN]>,
    labels: Vec<u8>,
    model: DeviceModel,
}

impl Reference {
    fn load(args: &DeviceEvalArgs) -> Result<Self> {
        let model = DeviceModel::load(args.host.model.as_deref())?;
        if !args.reach.launch.board.fits_f32() && model.is_f32() {
            bail!(
                "{} is an f32 model (407 KB of weights), which does not fit the {}'s 256 KiB of \
                 flash: pass --model with an int8 model (`digits quantize`) or a compact one \
                 (`digits train --arch`), or another --board",
                model.path.display(),
                args.reach.launch.board.name()
            );
        }
        let dataset = load_test(&DataArgs::mnist_at(args.host.data.clone()))?;
        let n = args
            .limit
            .unwrap_or(dataset.test.labels.len())
            .min(dataset.test.labels.len());
        if n == 0 {
            bail!("--limit must be at least 1");
        }
        Ok(Self {
            images: dataset.test.images[..n].to_vec(),
            labels: dataset.test.labels[..n].to_vec(),
            model,
        })
    }

    fn host_logits(&self, i: usize) -> [f32; 10] {
        self.model.weights.classifier().classify(&self.images[i])
    }
}

/// Agreement between the device and the host, image by image.
#[derive(Default)]
struct Tally {
    images: usize,
    correct: usize,
    same_digit: usize,
    same_bits: usize,
    first_difference: Option<usize>,
}

impl Tally {
    fn add(&mut self, i: usize, device: &[f32; 10], host: &[f32; 10], label: u8) {
        let digit = argmax(device);
        self.images += 1;
        self.correct += (digit == label as usize) as usize;
        self.same_digit += (digit == argmax(host)) as usize;
        let same = device.map(f32::to_bits) == host.map(f32::to_bits);
        self.same_bits += same as usize;
        if !same && self.first_difference.is_none() {
            self.first_difference = Some(i);
        }
    }

    /// The report of a run: `path` says how the images got there.
    fn report(self, path: &'static str, seconds: f64, reference: &Reference) -> EvalReport {
        let n = self.images.max(1) as f64;
        EvalReport {
            model: reference.model.path.display().to_string(),
            model_digest: format!("{:016x}", reference.model.digest),
            path,
            images: self.images,
            correct: self.correct,
            accuracy: self.correct as f64 / n,
            same_digit: self.same_digit,
            same_bits: self.same_bits,
            first_difference: self.first_difference,
            seconds,
            board: None,
            instructions_per_inference: None,
            stack_peak_bytes: None,
            static_ram_bytes: None,
            inference_stack_bytes: None,
        }
    }
}

/// What `digits device eval` found; `--json` prints it as it is.
#[derive(Serialize)]
struct EvalReport {
    /// The model file the device runs and the host compares with.
    model: String,
    /// Its parameters digest (hex), which the device reported too.
    model_digest: String,
    /// How the images reached the device: "psram" or "semihosting" (bulk, by board), "uart",
    /// or "running" (a running device's test set).
    path: &'static str,
    /// Test images classified.
    images: usize,
    /// Of which the device classified correctly.
    correct: usize,
    /// correct / images.
    accuracy: f64,
    /// Images where the device's digit is the host's.
    same_digit: usize,
    /// Images where the device's logits are bit-identical to the host's.
    same_bits: usize,
    /// The first test image whose logits differ, if any.
    first_difference: Option<usize>,
    /// Seconds in QEMU.
    seconds: f64,
    /// The QEMU machine (bulk path).
    board: Option<&'static str>,
    /// Instructions per inference on the device (bulk path, `qemu -icount`).
    instructions_per_inference: Option<f64>,
    /// Deepest stack use on the device (bulk path), bytes.
    stack_peak_bytes: Option<u64>,
    /// The firmware's statics, .data + .bss (bulk path), bytes.
    static_ram_bytes: Option<u64>,
    /// The stack one inference takes below its caller (bulk path), bytes.
    inference_stack_bytes: Option<u64>,
}

impl EvalReport {
    fn print(&self) {
        let n = self.images;
        let how = match self.path {
            "uart" => format!(
                "over the UART in {:.1} s, {:.1} ms per image",
                self.seconds,
                1e3 * self.seconds / n.max(1) as f64
            ),
            "running" => format!(
                "in the running device's memory (digits device run --test-set), {:.1} s",
                self.seconds
            ),
            "semihosting" => format!(
                "read from a host file over semihosting on the {}, {:.1} s in QEMU",
                self.board.unwrap_or("device"),
                self.seconds
            ),
            _ => format!(
                "loaded into the {}'s PSRAM, {:.1} s in QEMU",
                self.board.unwrap_or("device"),
                self.seconds
            ),
        };
        println!(
            "device accuracy   {:.2}% ({} of {n} test images, {how})",
            100.0 * self.accuracy,
            self.correct
        );
        println!(
            "agreement         {} of {n} predictions as on the host, {} of {n} with bit-identical logits",
            self.same_digit, self.same_bits
        );
        if let Some(instructions) = self.instructions_per_inference {
            println!(
                "instructions      {instructions} per inference (qemu -icount, an image to its logits)"
            );
        }
        if let Some(stack) = self.stack_peak_bytes {
            println!("stack peak        {stack} B");
        }
        if let (Some(statics), Some(stack)) = (self.static_ram_bytes, self.inference_stack_bytes) {
            println!(
                "inference RAM     {} B: {statics} B of statics + {stack} B of stack for one \
                 inference",
                statics + stack
            );
        }
    }

    /// Fails if the device's logits differ from the host's.
    fn verdict(&self) -> Result<()> {
        if let Some(i) = self.first_difference {
            bail!("the device's logits differ from the host's (first at test image {i})");
        }
        Ok(())
    }
}
