//! `digits inspect`: what a model file holds, of either precision, for people (aligned
//! `key: value` lines) or, with `--json`, for scripts (one JSON document, options as nested
//! JSON, never JSON inside a string).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use digits_core::Params;
use digits_core::digest::{compact_digest, int8_digest, params_digest};
use digits_core::lowbit;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model_io;

/// Options of `digits inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The model file.
    file: PathBuf,
    /// Print one JSON document on stdout instead of the lines for people.
    #[arg(long)]
    json: bool,
}

/// One tensor's values (f32) or codes (int8).
#[derive(Serialize)]
pub struct TensorSummary {
    /// Tensor name.
    pub name: String,
    /// Number of values.
    pub len: usize,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// What `digits inspect` reports.
#[derive(Serialize)]
pub struct Inspection {
    /// The file.
    pub file: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// SHA-256 of the whole file.
    pub sha256: String,
    /// Model-file format version.
    pub format_version: u32,
    /// Layer sizes (a compact network's input as its downsampled side, `16x16-...`).
    pub architecture: String,
    /// "f32", "int8", or a compact network's bits per weight code ("4-bit").
    pub precision: String,
    /// Bytes of everything inference reads: weights or codes, biases, scales.
    pub weight_bytes: usize,
    /// FNV-1a digest of the parameters, as the device reports it.
    pub parameters_digest: String,
    /// Dataset trained on.
    pub dataset: String,
    /// Test accuracy from the file's metadata (0 to 1).
    pub test_accuracy: Option<f32>,
    /// Training seed.
    pub seed: u64,
    /// The epoch whose model was kept (best validation accuracy).
    pub best_epoch: u32,
    /// Epochs the run was asked for, when the options say.
    pub epochs_requested: Option<u64>,
    /// Whether the run held out a validation split to pick its epoch, when the options say.
    pub validated: Option<bool>,
    /// The options the model was made with, as JSON (a quantized model's training options
    /// nested under `training`).
    pub options: Value,
    /// int8 only: the hidden activations' code step.
    pub hidden_scale: Option<f32>,
    /// Per tensor.
    pub tensors: Vec<TensorSummary>,
}

/// Options stored as JSON text; text that is JSON inside becomes JSON again (a quantized
/// model stores its training options so).
fn parse_options(text: &str) -> Value {
    let mut v: Value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into()));
    if let Value::Object(map) = &mut v {
        for value in map.values_mut() {
            if let Value::String(s) = value
                && let Ok(inner @ Value::Object(_)) = serde_json::from_str::<Value>(s)
            {
                *value = inner;
            }
        }
    }
    v
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    })
}

/// Reads a model file and describes it.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let loaded = model_io::load_weights(path)?;
    let bytes = model_io::read_bounded(path, model_io::MAX_MODEL_FILE_BYTES, "model file")?;
    let sha256 = Sha256::digest(&bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        });
    let p = &loaded.provenance;
    let options = parse_options(&p.options);
    let epochs_requested = options["epochs"]
        .as_u64()
        .or_else(|| options["training"]["epochs"].as_u64());
    let validated = options["validation"]
        .as_u64()
        .or_else(|| options["training"]["validation"].as_u64())
        .map(|n| n > 0);
    let mut format_version = u32::from(digits_core::model_file::FORMAT_VERSION);
    let mut architecture = String::from("784-128-10");
    let (precision, digest, hidden_scale, tensors) = match &loaded.weights {
        model_io::Weights::F32(model) => {
            let tensors = (0..model.tensor_count())
                .map(|k| {
                    let t = model.tensor(k);
                    let (min, max) = range(t.data.iter().map(|&v| f64::from(v)));
                    TensorSummary {
                        name: t.name.to_string(),
                        len: t.data.len(),
                        min,
                        max,
                    }
                })
                .collect();
            ("f32".into(), params_digest(model), None, tensors)
        }
        model_io::Weights::Int8(q) => {
            let codes = |name, c: &[i8]| {
                let (min, max) = range(c.iter().map(|&v| f64::from(v)));
                TensorSummary {
                    name: String::from(name),
                    len: c.len(),
                    min,
                    max,
                }
            };
            let tensors = vec![
                codes("W1", q.w1.as_flattened()),
                codes("W2", q.w2.as_flattened()),
            ];
            ("int8".into(), int8_digest(q), Some(q.hidden_scale), tensors)
        }
        model_io::Weights::Compact(net) => {
            let model = net.view();
            let windows = model.layers.iter().any(|l| l.windows.is_some());
            format_version = u32::from(if windows {
                digits_core::model_file::WINDOWS_VERSION
            } else {
                digits_core::model_file::COMPACT_VERSION
            });
            architecture = net.arch();
            let mut tensors = Vec::new();
            for (k, l) in model.layers.iter().enumerate() {
                let last = k + 1 == model.layers.len();
                let units = l.units();
                let codes = (0..units).flat_map(|j| {
                    let row = l.row(j);
                    (0..l.row_len()).map(move |i| f64::from(lowbit::get(row, l.bits, i)))
                });
                let (min, max) = range(codes);
                let bias = range((0..units).map(|j| f64::from(l.bias(j))));
                let rescale = if last {
                    range((0..units).map(|k| f64::from(l.logit_scale(k))))
                } else {
                    range((0..units).map(|j| {
                        let (m, shift) = l.multiplier(j);
                        f64::from(m) / 2f64.powi(shift)
                    }))
                };
                let n = k + 1;
                let shared = match l.windows {
                    Some(w) => format!(", shared by {} windows", w.positions()),
                    None => String::new(),
                };
                tensors.push(TensorSummary {
                    name: format!("codes{n} ({}{shared})", l.bits),
                    len: l.row_len() * units,
                    min,
                    max,
                });
                tensors.push(TensorSummary {
                    name: format!("bias{n}"),
                    len: units,
                    min: bias.0,
                    max: bias.1,
                });
                tensors.push(TensorSummary {
                    name: format!("rescale{n}"),
                    len: units,
                    min: rescale.0,
                    max: rescale.1,
                });
            }
            (net.precision(), compact_digest(&model), None, tensors)
        }
    };
    let weight_bytes = match &loaded.weights {
        model_io::Weights::F32(m) => 4 * m.num_params(),
        model_io::Weights::Int8(_) => digits_core::MnistQuant::stored_bytes(),
        model_io::Weights::Compact(net) => net.view().weight_bytes(),
    };
    Ok(Inspection {
        file: path.display().to_string(),
        bytes: loaded.bytes,
        sha256,
        format_version,
        architecture,
        precision,
        weight_bytes,
        parameters_digest: format!("{digest:016x}"),
        dataset: p.dataset.clone(),
        test_accuracy: p.test_accuracy,
        seed: p.seed,
        best_epoch: p.epochs,
        epochs_requested,
        validated,
        options,
        hidden_scale,
        tensors,
    })
}

/// `key: value` lines for every leaf of `v`, nested keys joined by dots.
fn option_lines(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                option_lines(&key, v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// Prints an inspection for people.
pub fn print(i: &Inspection) {
    let line = |k: &str, v: String| println!("{:<17}{v}", format!("{k}:"));
    line("file", format!("{} ({} bytes)", i.file, i.bytes));
    line("sha256", i.sha256.clone());
    line(
        "format",
        format!("digits model, version {}", i.format_version),
    );
    line("architecture", i.architecture.clone());
    line(
        "precision",
        match i.hidden_scale {
            Some(s) => format!(
                "{} (per-channel weight scales, hidden activation step {s:.5})",
                i.precision
            ),
            None if i.format_version == 2 => format!(
                "{} weight codes (per-unit scales), 8-bit activations, integer inference",
                i.precision
            ),
            None => i.precision.clone(),
        },
    );
    line("weight bytes", i.weight_bytes.to_string());
    line("parameters", format!("digest {}", i.parameters_digest));
    line("dataset", i.dataset.clone());
    line(
        "test accuracy",
        i.test_accuracy
            .map_or("not measured".into(), |a| format!("{:.2}%", 100.0 * a)),
    );
    line("seed", i.seed.to_string());
    line(
        "epochs",
        match i.epochs_requested {
            Some(n) if i.validated == Some(false) => format!(
                "epoch {} of {n} requested (trained on every training image: the model kept is \
                 the last epoch's)",
                i.best_epoch
            ),
            Some(n) => format!(
                "best epoch {} of {n} requested (the model kept is the epoch with the best \
                 validation accuracy)",
                i.best_epoch
            ),
            None => format!("best epoch {}", i.best_epoch),
        },
    );
    let mut options = Vec::new();
    option_lines("", &i.options, &mut options);
    if !options.is_empty() {
        println!("options:");
        let width = options.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in options {
            println!("  {k:<width$}  {v}");
        }
    }
    println!("tensors:");
    let what = if i.precision == "f32" {
        "values"
    } else {
        "codes"
    };
    for t in &i.tensors {
        if i.format_version == 2 {
            println!("  {:<16} {:>7} in [{}, {}]", t.name, t.len, t.min, t.max);
        } else {
            println!(
                "  {:<3} {:>7} {what} in [{:+.4}, {:+.4}]",
                t.name, t.len, t.min, t.max
            );
        }
    }
}

/// Runs `digits inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    let i = inspect(&args.file)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&i)?);
    } else {
        print(&i);
    }
    Ok(())
}
