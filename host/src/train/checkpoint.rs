//! Training checkpoints: everything needed to continue a run exactly where it stopped.
//!
//! ```text
//! "DIGITSCK" | version (u16) | postcard(Checkpoint) | CRC-32 of everything before it (LE)
//! ```
//! Written atomically at the end of every epoch, so a killed run loses at most that epoch.

use std::path::Path;

use anyhow::{Context, Result, bail};
use digits_core::Params;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model_io::{read_bounded, write_atomically};

/// Largest checkpoint read: far more than the largest a run writes (a batch-norm model with its
/// running statistics, velocity and best model so far), far less than would strain memory.
const MAX_CHECKPOINT_BYTES: u64 = 64 << 20;
use crate::train::EpochReport;

const MAGIC: [u8; 8] = *b"DIGITSCK";
// 2: no validation accuracy with `--validation 0`.
const VERSION: u16 = 2;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The state of a training run after a whole number of epochs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    /// The run's options (JSON); a resume must use the same.
    pub config: String,
    /// Epochs completed.
    pub epochs_done: u32,
    /// Shuffling generator state.
    pub rng: [u64; 4],
    /// Parameters of the network being trained, tensor by tensor.
    pub model: Vec<Vec<f32>>,
    /// Batch-norm running mean and variance (empty without batch norm).
    pub running: Vec<Vec<f32>>,
    /// Momentum buffers, tensor by tensor.
    pub velocity: Vec<Vec<f32>>,
    /// Best validation accuracy so far, its epoch, and that model (deployable form); no
    /// accuracy without a validation split (the model is the last epoch's).
    pub best_accuracy: Option<f64>,
    /// Epoch of the best model.
    pub best_epoch: u32,
    /// The best model's tensors.
    pub best_model: Vec<Vec<f32>>,
    /// Metrics of the epochs done.
    pub history: Vec<EpochReport>,
}

/// Whether `bytes` are a checkpoint's (by its first bytes, before any check of the rest).
pub fn is_checkpoint(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// The options that differ between two runs' settings (the JSON of their `TrainConfig`), each
/// as `--lr 0.05 (now 0.2)`.
fn differences(then: &str, now: &str) -> Vec<String> {
    let (Ok(Value::Object(then)), Ok(Value::Object(now))) =
        (serde_json::from_str(then), serde_json::from_str(now))
    else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = then.keys().chain(now.keys()).collect();
    // In one order whatever the map's.
    keys.sort();
    keys.dedup();
    let mut differ = Vec::new();
    for key in keys {
        let (a, b) = (then.get(key), now.get(key));
        let (a, b) = if key == "schedule" {
            // Its length follows --epochs, which is named by itself.
            (a.map(schedule_name), b.map(schedule_name))
        } else {
            (a.map(shown), b.map(shown))
        };
        if a != b {
            let none = || "not given".to_string();
            differ.push(format!(
                "--{} {} (now {})",
                key.replace('_', "-"),
                a.unwrap_or_else(none),
                b.unwrap_or_else(none)
            ));
        }
    }
    differ
}

/// A setting as it was given on the command line.
fn shown(v: &Value) -> String {
    match v {
        Value::Null | Value::Bool(false) => "not given".into(),
        Value::Bool(true) => "given".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        // --augment: its parameters are not options.
        Value::Object(_) | Value::Array(_) => "given".into(),
    }
}

/// `--schedule` as named on the command line.
fn schedule_name(v: &Value) -> String {
    let variant = match v {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.keys().next().map_or("", String::as_str),
        _ => "",
    };
    match variant {
        "Exponential" => "exp".into(),
        other => other.to_lowercase(),
    }
}

/// Copies out every tensor.
pub fn tensors_of<P: Params<f32> + ?Sized>(p: &P) -> Vec<Vec<f32>> {
    (0..p.tensor_count())
        .map(|k| p.tensor(k).data.to_vec())
        .collect()
}

/// Copies tensors back in, checking their number and sizes first.
pub fn restore<P: Params<f32> + ?Sized>(p: &mut P, tensors: &[Vec<f32>]) -> Result<()> {
    if tensors.len() != p.tensor_count()
        || (0..p.tensor_count()).any(|k| p.tensor(k).data.len() != tensors[k].len())
    {
        bail!("the checkpoint's tensors do not fit this network");
    }
    for (k, t) in tensors.iter().enumerate() {
        p.tensor_mut(k).data.copy_from_slice(t);
    }
    Ok(())
}

impl Checkpoint {
    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend(postcard::to_stdvec(self).context("cannot encode the checkpoint")?);
        let crc = CRC.checksum(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        write_atomically(path, &bytes)
    }

    /// Reads and verifies a checkpoint.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = read_bounded(path, MAX_CHECKPOINT_BYTES, "checkpoint")?;
        Self::decode(&bytes).with_context(|| format!("checkpoint {}", path.display()))
    }

    /// Refuses to continue a run with other options than it started with, naming each that
    /// differs with both values.
    pub fn require_options(&self, config: &str, path: &Path) -> Result<()> {
        let differ = differences(&self.config, config);
        if differ.is_empty() && self.config != config {
            // Not an option a person sets (a newer build's defaults): say what the two are.
            bail!(
                "checkpoint {} was made with other settings ({} now {config}); start again \
                 without --resume",
                path.display(),
                self.config
            );
        }
        if !differ.is_empty() {
            bail!(
                "checkpoint {} was made with other options: {}; resume with the checkpoint's \
                 options, or start again without --resume",
                path.display(),
                differ.join(", ")
            );
        }
        Ok(())
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.starts_with(&digits_core::model_file::MAGIC) {
            bail!(
                "this is a model file (what a finished run writes), not a checkpoint; --resume \
                 continues an interrupted run from its checkpoint (--checkpoint FILE, by \
                 default the --out file + .ckpt)"
            );
        }
        if bytes.len() < 14 || bytes[..8] != MAGIC {
            bail!("not a digits training checkpoint; start without --resume");
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != VERSION {
            bail!(
                "checkpoint format version {version}, this build reads {VERSION}; \
                 start the run again without --resume"
            );
        }
        let (content, crc) = bytes.split_at(bytes.len() - 4);
        if CRC.checksum(content) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            bail!("checksum mismatch: the checkpoint is damaged; start again without --resume");
        }
        postcard::from_bytes(&content[10..])
            .context("the checkpoint does not decode; start again without --resume")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            config: "{}".into(),
            epochs_done: 3,
            rng: [1, 2, 3, 4],
            model: vec![vec![1.0, -2.5], vec![0.25]],
            running: vec![],
            velocity: vec![vec![0.0, 0.1], vec![0.2]],
            best_accuracy: Some(0.97),
            best_epoch: 2,
            best_model: vec![vec![1.0, 2.0], vec![3.0]],
            history: vec![],
        }
    }

    #[test]
    fn round_trip_and_damage_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        sample().save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), sample());
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 9, bytes.len() / 2, bytes.len() - 1] {
            assert!(Checkpoint::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 4;
        let err = Checkpoint::decode(&flipped).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }

    #[test]
    fn the_options_that_differ_are_named_with_both_values() {
        let then = r#"{"epochs":30,"batch":32,"lr":0.05,"schedule":{"Cosine":{"total":30,"floor":0.0}},"batchnorm":false,"augment":null,"grad":"backprop"}"#;
        assert!(differences(then, then).is_empty());
        let now = r#"{"epochs":10,"batch":32,"lr":0.2,"schedule":{"Cosine":{"total":10,"floor":0.0}},"batchnorm":true,"augment":{"max_rotation_deg":12.0},"grad":"numeric"}"#;
        assert_eq!(
            differences(then, now),
            [
                "--augment not given (now given)",
                "--batchnorm not given (now given)",
                "--epochs 30 (now 10)",
                "--grad backprop (now numeric)",
                "--lr 0.05 (now 0.2)",
            ]
        );
        let exp = then.replace(
            r#"{"Cosine":{"total":30,"floor":0.0}}"#,
            r#"{"Exponential":{"gamma":0.9}}"#,
        );
        assert_eq!(differences(then, &exp), ["--schedule cosine (now exp)"]);
        let constant = then.replace(r#"{"Cosine":{"total":30,"floor":0.0}}"#, r#""Constant""#);
        assert_eq!(
            differences(&constant, then),
            ["--schedule constant (now cosine)"]
        );
        let mut ckpt = sample();
        ckpt.config = then.into();
        let err = ckpt
            .require_options(now, Path::new("m.ckpt"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("checkpoint m.ckpt was made with other options: --augment not given (now given), --batchnorm")
                && !err.contains('\n'),
            "{err}"
        );
        assert!(ckpt.require_options(then, Path::new("m.ckpt")).is_ok());
    }

    #[test]
    fn a_model_file_is_not_taken_for_a_checkpoint() {
        let mut bytes = digits_core::model_file::MAGIC.to_vec();
        bytes.extend([0u8; 64]);
        let err = Checkpoint::decode(&bytes).unwrap_err().to_string();
        assert!(err.starts_with("this is a model file"), "{err}");
        assert!(!is_checkpoint(&bytes));
    }
}
