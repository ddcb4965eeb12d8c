//! The model a device runs: the shipped one unless `--model` names another file. The device
//! reports its model's parameters digest; comparing it with the file's tells whether the
//! device runs that file, and when it does not, [`DeviceModel::check`] says what to type.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use digits_core::digest::{compact_digest, int8_digest, params_digest};

use super::qemu::TARGET;
use crate::model_io::{self, Weights};
use crate::train::aligned::ModelBox;
use crate::workspace::{self, SHIPPED_MODEL, SHIPPED_MODEL_INT8};

/// A model file for the device, read and checked.
pub struct DeviceModel {
    /// The file.
    pub path: PathBuf,
    /// Its network, for the host's side of a comparison.
    pub weights: Weights,
    /// Its parameters digest, as the device reports it.
    pub digest: u64,
    /// Whether the firmware embeds it by default (the shipped model of its precision).
    pub shipped: bool,
}

/// How a command reached its device, for what to type when the device runs another model.
pub enum Reached<'a> {
    /// `--connect ADDR`: a device that `digits device run` keeps running.
    Connected(SocketAddr),
    /// `--firmware DIR`: binaries built elsewhere.
    Prebuilt(&'a Path),
    /// A firmware built by `digits` with this very model.
    Built,
}

impl DeviceModel {
    /// Reads `path`, or the shipped f32 model if `None`.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let path = match path {
            Some(p) => p.to_owned(),
            None => workspace::file(SHIPPED_MODEL, "--model FILE")?,
        };
        let weights = model_io::load_weights(&path)?.weights;
        if let Weights::Compact(net) = &weights {
            bail!(
                "{} is a compact {} {} network, which this firmware does not run yet; evaluate \
                 it on the host with `digits eval --model {}`",
                path.display(),
                net.arch(),
                net.precision(),
                path.display()
            );
        }
        let digest = digest(&weights);
        let shipped = workspace::root()
            .map(|root| root.join(shipped_file(&weights)))
            .and_then(|p| model_io::load_weights(&p).ok())
            .is_some_and(|s| digest_and_precision(&s.weights) == digest_and_precision(&weights));
        Ok(Self {
            path,
            weights,
            digest,
            shipped,
        })
    }

    /// Whether it is an int8 model (`digits quantize`).
    pub fn is_int8(&self) -> bool {
        matches!(self.weights, Weights::Int8(_))
    }

    /// The firmware build's variable that embeds a model of this precision (firmware/build.rs).
    pub fn build_variable(&self) -> &'static str {
        if self.is_int8() {
            "DIGITS_MODEL_INT8"
        } else {
            "DIGITS_MODEL"
        }
    }

    /// The file, absolute (for a build that runs elsewhere, and for commands to copy).
    pub fn absolute_path(&self) -> PathBuf {
        std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone())
    }

    /// The f32 network, or an error for `digits device {command}`: the `serve` firmware (info,
    /// predict, eval --uart, finetune, run) runs f32 models only.
    pub fn f32(&self, command: &str) -> Result<&ModelBox> {
        let Weights::F32(model) = &self.weights else {
            bail!(
                "{} is an int8 model, and `digits device {command}` runs the serve firmware, \
                 which runs f32 models only: evaluate it on the device with `digits device eval \
                 --model {}`, or pass an f32 model",
                self.path.display(),
                self.path.display()
            );
        };
        Ok(model)
    }

    /// Fails with what to type unless the device, reached as `reached`, reports this model.
    pub fn check(&self, device_digest: u64, reached: &Reached<'_>) -> Result<()> {
        if device_digest == self.digest {
            return Ok(());
        }
        let file = self.path.display();
        let which = format!(
            "another model (parameters digest {device_digest:016x}) than {file} ({:016x})",
            self.digest
        );
        match reached {
            Reached::Connected(addr) => bail!(
                "the device at {addr} runs {which}: start one that runs it with `digits device \
                 run --model {file}`, or drop --connect and this command starts its own"
            ),
            Reached::Prebuilt(dir) => bail!(
                "the firmware in {} was built with {which}: drop --firmware and digits builds \
                 one with {file} in it, or build it yourself with `{}={} cargo build -p firmware \
                 --release --target {TARGET}`",
                dir.display(),
                self.build_variable(),
                self.absolute_path().display()
            ),
            Reached::Built => bail!(
                "the firmware built with {file} runs {which}: a stale build? `cargo clean` and \
                 run again"
            ),
        }
    }
}

fn shipped_file(weights: &Weights) -> &'static str {
    match weights {
        Weights::F32(_) => SHIPPED_MODEL,
        Weights::Int8(_) => SHIPPED_MODEL_INT8,
        // Refused by `DeviceModel::load`; no shipped file has its digest.
        Weights::Compact(_) => SHIPPED_MODEL,
    }
}

fn digest(weights: &Weights) -> u64 {
    match weights {
        Weights::F32(m) => params_digest(m),
        Weights::Int8(q) => int8_digest(q),
        Weights::Compact(c) => compact_digest(&c.view()),
    }
}

fn digest_and_precision(weights: &Weights) -> (u64, bool) {
    (digest(weights), matches!(weights, Weights::Int8(_)))
}
