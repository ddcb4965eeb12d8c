//! The model a device runs: the shipped one unless `--model` names another file. The device
//! reports its model's parameters digest; comparing it with the file's tells whether the
//! device runs that file, and when it does not, [`DeviceModel::check`] says what to type.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use digits_core::digest::{compact_digest, int8_digest, params_digest};

use super::attached::Attached;
use super::qemu::Board;
use crate::model_io::{self, Weights};
use crate::train::aligned::ModelBox;
use crate::workspace::{self, SHIPPED_MODEL, SHIPPED_MODEL_COMPACT, SHIPPED_MODEL_INT8};

/// A model file for the device, read and checked.
pub struct DeviceModel {
    /// The file.
    pub path: PathBuf,
    /// Its network, for the host's side of a comparison.
    pub weights: Weights,
    /// The file's bytes, verified: what a push sends.
    pub file: Vec<u8>,
    /// Its parameters digest, as the device reports it.
    pub digest: u64,
    /// Whether the firmware embeds it by default (the shipped model of its precision).
    pub shipped: bool,
}

/// How a command reached its device, for what to type when the device runs another model.
pub enum Reached<'a> {
    /// `--connect ADDR` or `--port PATH`: a device that runs without us.
    Attached(&'a Attached),
    /// `--firmware DIR`: binaries built elsewhere, for this board.
    Prebuilt(&'a Path, Board),
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
        let loaded = model_io::load_weights(&path)?;
        let (weights, file) = (loaded.weights, loaded.file);
        let digest = digest(&weights);
        let shipped = workspace::root()
            .map(|root| root.join(shipped_file(&weights)))
            .and_then(|p| model_io::load_weights(&p).ok())
            .is_some_and(|s| digest_and_kind(&s.weights) == digest_and_kind(&weights));
        Ok(Self {
            path,
            weights,
            file,
            digest,
            shipped,
        })
    }

    /// Its kind, as the firmware's binaries and builds tell them apart: `f32`, `int8` or
    /// `compact`.
    pub fn kind(&self) -> &'static str {
        kind(&self.weights)
    }

    /// Whether it is an f32 model, the only kind too large for the Cortex-M3's flash.
    pub fn is_f32(&self) -> bool {
        matches!(self.weights, Weights::F32(_))
    }

    /// The `eval` firmware binary that runs a model of this kind.
    pub fn eval_binary(&self) -> &'static str {
        match self.weights {
            Weights::F32(_) => "eval",
            Weights::Int8(_) => "eval-int8",
            Weights::Compact(_) => "eval-compact",
        }
    }

    /// The firmware build's variable that embeds a model of this kind (firmware/build.rs).
    pub fn build_variable(&self) -> &'static str {
        match self.weights {
            Weights::F32(_) => "DIGITS_MODEL",
            Weights::Int8(_) => "DIGITS_MODEL_INT8",
            Weights::Compact(_) => "DIGITS_MODEL_COMPACT",
        }
    }

    /// The file, absolute (for a build that runs elsewhere, and for commands to copy).
    pub fn absolute_path(&self) -> PathBuf {
        std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone())
    }

    /// The f32 network, or an error for `digits device {command} --model`: `run` and `hex`
    /// build the model into `serve`'s slot A, which the firmware's build does for f32 models
    /// only (the other kinds are pushed).
    pub fn f32_to_build(&self, command: &str) -> Result<&ModelBox> {
        self.f32_or(|file, kind| {
            format!(
                "{file} is {kind} model, and `digits device {command} --model` builds f32 models \
                 into the firmware: start the device with the shipped model and put this one on \
                 it with `digits device push {file}`"
            )
        })
    }

    /// The f32 network, or an error for `digits device finetune`, which tunes an f32 output
    /// layer.
    pub fn f32_to_tune(&self) -> Result<&ModelBox> {
        self.f32_or(|file, kind| {
            format!(
                "{file} is {kind} model, and fine-tuning tunes an f32 model's output layer: \
                 pass an f32 model"
            )
        })
    }

    /// The f32 network, or the error `why(file, "an int8" | "a compact")`.
    fn f32_or(&self, why: impl FnOnce(&str, &str) -> String) -> Result<&ModelBox> {
        match &self.weights {
            Weights::F32(model) => Ok(model),
            Weights::Int8(_) => bail!(why(&self.path.display().to_string(), "an int8")),
            _ => bail!(why(&self.path.display().to_string(), "a compact")),
        }
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
            Reached::Attached(attached @ Attached::Tcp(_)) => bail!(
                "the device {attached} runs {which}: start one that runs it with `digits device \
                 run --model {file}`, or drop --connect and this command starts its own"
            ),
            Reached::Attached(attached @ Attached::Serial { .. }) => bail!(
                "the device {attached} runs {which}: give it firmware with that model (a board: \
                 flash `digits device hex --board netduinoplus2 --model {file}`; QEMU: `digits device run --pty \
                 --model {file}`), or drop --port and this command starts its own"
            ),
            Reached::Prebuilt(dir, board) => bail!(
                "the firmware in {} was built with {which}: drop --firmware and digits builds \
                 one with {file} in it, or build it yourself with `{}={} cargo build -p firmware \
                 --release --target {}`",
                dir.display(),
                self.build_variable(),
                self.absolute_path().display(),
                board.target()
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
        Weights::Compact(_) => SHIPPED_MODEL_COMPACT,
    }
}

fn kind(weights: &Weights) -> &'static str {
    match weights {
        Weights::F32(_) => "f32",
        Weights::Int8(_) => "int8",
        Weights::Compact(_) => "compact",
    }
}

fn digest(weights: &Weights) -> u64 {
    match weights {
        Weights::F32(m) => params_digest(m),
        Weights::Int8(q) => int8_digest(q),
        Weights::Compact(c) => compact_digest(&c.view()),
    }
}

fn digest_and_kind(weights: &Weights) -> (u64, &'static str) {
    (digest(weights), kind(weights))
}
