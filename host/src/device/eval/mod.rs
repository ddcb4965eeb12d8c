//! `digits device eval`: the test images classified on the device, compared with the host's
//! run of the same model image by image, bit for bit. Two ways to get the images there: all at
//! once into the device's memory before it starts (`bulk.rs`, the default) or one by one with the
//! protocol (`uart.rs`, which is slow under QEMU but runs against any `serve` device).

mod bulk;
mod uart;

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use clap::Args;
use digits_core::blob::IMAGE_LEN;
use digits_core::digest::{int8_digest, params_digest};
use digits_core::softmax::argmax;

use super::HostSide;
use super::firmware::Firmware;
use super::logs::LogPrinter;
use crate::data::{self, Dataset, DatasetKind};
use crate::model_io::{self, Weights};

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
}

/// Runs `digits device eval`.
pub fn run(
    firmware: &Firmware,
    connect: Option<SocketAddr>,
    logs: LogPrinter,
    args: &DeviceEvalArgs,
) -> Result<()> {
    if args.uart {
        return uart::run(firmware, connect, logs, args);
    }
    if connect.is_some() {
        bail!(
            "--connect talks to a running `serve` device; the bulk path starts its \
             own `eval` firmware: add --uart to evaluate over the connection"
        );
    }
    bulk::run(firmware, logs, args)
}

/// The test images, the host's model and its logits for them.
struct Reference {
    images: Vec<[u8; IMAGE_LEN]>,
    labels: Vec<u8>,
    weights: Weights,
}

impl Reference {
    fn load(args: &DeviceEvalArgs) -> Result<Self> {
        let dir = data::resolve_dir(args.host.data.as_deref(), DatasetKind::Mnist);
        let dataset = Dataset::load(&dir.path, DatasetKind::Mnist)?;
        let n = args
            .limit
            .unwrap_or(dataset.test.labels.len())
            .min(dataset.test.labels.len());
        if n == 0 {
            bail!("--limit must be at least 1");
        }
        let weights = model_io::load_weights(&args.host.model)
            .context("name the model file the firmware was built from with --model FILE")?
            .weights;
        Ok(Self {
            images: dataset.test.images[..n].to_vec(),
            labels: dataset.test.labels[..n].to_vec(),
            weights,
        })
    }

    fn check_model(&self, device_digest: u64, args: &DeviceEvalArgs) -> Result<()> {
        let host = match &self.weights {
            Weights::F32(m) => params_digest(m),
            Weights::Int8(q) => int8_digest(q),
        };
        if host != device_digest {
            bail!(
                "the device runs another model (parameters digest {device_digest:016x}) than \
                 {} ({host:016x}): pass the model file the firmware was built from with --model",
                args.host.model.display()
            );
        }
        Ok(())
    }

    fn host_logits(&self, i: usize) -> [f32; 10] {
        self.weights.classifier().classify(&self.images[i])
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

    fn report(&self, how: &str) -> Result<()> {
        let n = self.images;
        println!(
            "device accuracy   {:.2}% ({} of {n} test images, {how})",
            100.0 * self.correct as f64 / n as f64,
            self.correct
        );
        println!(
            "agreement         {} of {n} predictions as on the host, {} of {n} with bit-identical logits",
            self.same_digit, self.same_bits
        );
        if let Some(i) = self.first_difference {
            bail!("the device's logits differ from the host's (first at test image {i})");
        }
        Ok(())
    }
}
