//! `digits gradcheck`: numerical gradients against backprop, per tensor, in f64 and f32.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use digits_core::gradcheck::ErrorStats;
use digits_core::numgrad::central_difference_at;
use digits_core::params::convert;
use digits_core::pixels::normalize;
use digits_core::structured_numgrad::SampleState;
use digits_core::{Mlp, MnistMlp, Params, Rng, Scalar};
use serde::Serialize;

use crate::data::command::{DataArgs, load_test};
use crate::model_io;
use crate::train::aligned::ModelBox;

/// Tolerances in the manner of `torch.autograd.gradcheck`: every element must satisfy
/// `|backprop - numeric| <= atol + rtol * |numeric|`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Tolerance {
    /// Central-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

/// torch's defaults for double precision.
pub const F64_TOLERANCE: Tolerance = Tolerance {
    eps: 1e-6,
    atol: 1e-5,
    rtol: 1e-3,
};

/// For single precision the step must be larger (rounding of a loss of order 1 is ~1e-7) and
/// the bounds looser.
pub const F32_TOLERANCE: Tolerance = Tolerance {
    eps: 1e-4,
    atol: 1e-3,
    rtol: 1e-2,
};

/// One tensor's comparison.
#[derive(Clone, Debug, Serialize)]
pub struct TensorResult {
    /// Tensor name.
    pub name: &'static str,
    /// Parameters compared.
    pub checked: usize,
    /// Largest absolute difference.
    pub max_abs: f64,
    /// Largest relative difference `|a-b| / max(|a|, |b|, 1e-8)`.
    pub max_rel: f64,
    /// Parameters outside `atol + rtol * |numeric|`.
    pub failures: usize,
    /// Index (within the tensor) of the parameter furthest outside (or closest to) its bound.
    pub worst_index: usize,
    /// Backprop value there.
    pub worst_backprop: f64,
    /// Numerical value there.
    pub worst_numeric: f64,
}

/// A full check in one precision.
#[derive(Clone, Debug, Serialize)]
pub struct PrecisionResult {
    /// "f64" or "f32".
    pub precision: &'static str,
    /// What numerical method was compared.
    pub method: &'static str,
    /// Tolerances applied.
    pub tolerance: Tolerance,
    /// Per tensor.
    pub tensors: Vec<TensorResult>,
}

impl PrecisionResult {
    /// True when no parameter is outside its bound.
    pub fn passed(&self) -> bool {
        self.tensors.iter().all(|t| t.failures == 0)
    }
}

struct Accumulator {
    stats: ErrorStats,
    failures: usize,
    worst_ratio: f64,
    worst: (usize, f64, f64),
}

fn compare<S: Scalar, P: Params<S>>(
    backprop: &P,
    numeric: impl Fn(usize) -> Option<f64>,
    tol: Tolerance,
) -> Vec<TensorResult> {
    let mut acc: Vec<Accumulator> = (0..backprop.tensor_count())
        .map(|_| Accumulator {
            stats: ErrorStats::default(),
            failures: 0,
            worst_ratio: -1.0,
            worst: (0, 0.0, 0.0),
        })
        .collect();
    let mut flat = 0;
    for (k, a) in acc.iter_mut().enumerate() {
        let t = backprop.tensor(k);
        for (j, &b) in t.data.iter().enumerate() {
            if let Some(n) = numeric(flat + j) {
                let b = b.to_f64();
                a.stats.record(j, b, n);
                let ratio = (b - n).abs() / (tol.atol + tol.rtol * n.abs());
                // NaN counts as a failure.
                if ratio.is_nan() || ratio > 1.0 {
                    a.failures += 1;
                }
                if ratio > a.worst_ratio || ratio.is_nan() {
                    a.worst_ratio = if ratio.is_nan() { f64::INFINITY } else { ratio };
                    a.worst = (j, b, n);
                }
            }
        }
        flat += t.data.len();
    }
    acc.into_iter()
        .enumerate()
        .map(|(k, a)| TensorResult {
            name: backprop.tensor(k).name,
            checked: a.stats.checked,
            max_abs: a.stats.max_abs,
            max_rel: a.stats.max_rel,
            failures: a.failures,
            worst_index: a.worst.0,
            worst_backprop: a.worst.1,
            worst_numeric: a.worst.2,
        })
        .collect()
}

/// Structured numerical gradient (every parameter) against backprop, in precision `S`.
pub fn structured<S: Scalar>(
    model: &MnistMlp<f32>,
    pixels: &[[u8; 784]],
    labels: &[u8],
    tol: Tolerance,
) -> PrecisionResult {
    let mut m: Box<MnistMlp<S>> = bytemuck::zeroed_box();
    convert(model, &mut *m);
    let mut numeric: Box<MnistMlp<S>> = bytemuck::zeroed_box();
    let mut states = vec![SampleState::default(); labels.len()];
    m.numeric_gradient(
        pixels,
        labels,
        S::from_f64(tol.eps),
        &mut states,
        &mut numeric,
    );
    let xs = inputs::<S>(pixels);
    let mut backprop: Box<MnistMlp<S>> = bytemuck::zeroed_box();
    m.backprop(&xs, labels, &mut backprop);
    PrecisionResult {
        precision: S::NAME,
        method: "structured central differences, every parameter",
        tolerance: tol,
        tensors: compare(&*backprop, |i| Some(numeric.param(i).to_f64()), tol),
    }
}

/// The definition (one pair of full loss evaluations per parameter) at `sample` random
/// parameters of each tensor (all of a tensor if it is smaller), against backprop.
pub fn definition<S: Scalar>(
    model: &MnistMlp<f32>,
    pixels: &[[u8; 784]],
    labels: &[u8],
    tol: Tolerance,
    sample: usize,
    seed: u64,
) -> PrecisionResult {
    let mut m: Box<MnistMlp<S>> = bytemuck::zeroed_box();
    convert(model, &mut *m);
    let xs = inputs::<S>(pixels);
    let mut backprop: Box<MnistMlp<S>> = bytemuck::zeroed_box();
    m.backprop(&xs, labels, &mut backprop);
    let mut rng = Rng::new(seed);
    let mut wanted = vec![false; m.num_params()];
    let mut start = 0;
    for k in 0..m.tensor_count() {
        let len = m.tensor(k).data.len();
        if len <= sample {
            wanted[start..start + len].fill(true);
        } else {
            for _ in 0..sample {
                wanted[start + rng.below(len as u64) as usize] = true;
            }
        }
        start += len;
    }
    let h = S::from_f64(tol.eps);
    let mut loss = |m: &Mlp<784, 128, 10, S>| m.loss(&xs, labels);
    let values: Vec<Option<f64>> = (0..wanted.len())
        .map(|i| wanted[i].then(|| central_difference_at(&mut *m, i, h, &mut loss).to_f64()))
        .collect();
    PrecisionResult {
        precision: S::NAME,
        method: "central differences by the definition, sampled parameters",
        tolerance: tol,
        tensors: compare(&*backprop, |i| values[i], tol),
    }
}

fn inputs<S: Scalar>(pixels: &[[u8; 784]]) -> Vec<[S; 784]> {
    pixels
        .iter()
        .map(|p| {
            let mut x = [S::ZERO; 784];
            normalize(p, &mut x);
            x
        })
        .collect()
}

/// Prints one precision's table.
pub fn print(result: &PrecisionResult) {
    let t = result.tolerance;
    println!(
        "{} — {} (eps {:e}, atol {:e}, rtol {:e}): {}",
        result.precision,
        result.method,
        t.eps,
        t.atol,
        t.rtol,
        if result.passed() { "PASS" } else { "FAIL" }
    );
    println!(
        "  {:<6} {:>8} {:>11} {:>11} {:>8}   worst parameter (backprop, numeric)",
        "tensor", "checked", "max abs", "max rel", "failed"
    );
    for r in &result.tensors {
        println!(
            "  {:<6} {:>8} {:>11.3e} {:>11.3e} {:>8}   {}[{}] ({:+.6e}, {:+.6e})",
            r.name,
            r.checked,
            r.max_abs,
            r.max_rel,
            r.failures,
            r.name,
            r.worst_index,
            r.worst_backprop,
            r.worst_numeric
        );
    }
}

#[derive(Args)]
pub struct GradcheckArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Model file to check; a freshly initialized network when absent.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Seed of the fresh network and of the parameter sample.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Test images in the batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// First test image of the batch.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Parameters per tensor checked against the definition (slow: two full losses each).
    #[arg(long, default_value_t = 500)]
    sample: usize,
    /// Also write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Runs `digits gradcheck`.
pub fn run(args: GradcheckArgs) -> Result<()> {
    let dataset = load_test(&args.data)?;
    let test = &dataset.test;
    let end = args
        .offset
        .checked_add(args.batch)
        .filter(|&e| e <= test.labels.len());
    let Some(end) = end.filter(|_| args.batch > 0) else {
        anyhow::bail!(
            "--offset {} --batch {} is outside the {} test images",
            args.offset,
            args.batch,
            test.labels.len()
        );
    };
    let pixels = &test.images[args.offset..end];
    let labels = &test.labels[args.offset..end];
    let model = match &args.model {
        Some(path) => model_io::load(path)?.model,
        None => {
            let mut m = ModelBox::zeroed();
            m.init(&mut digits_core::Rng::new(args.seed));
            m
        }
    };
    let results = [
        structured::<f64>(&model, pixels, labels, F64_TOLERANCE),
        definition::<f64>(
            &model,
            pixels,
            labels,
            F64_TOLERANCE,
            args.sample,
            args.seed,
        ),
        structured::<f32>(&model, pixels, labels, F32_TOLERANCE),
        definition::<f32>(
            &model,
            pixels,
            labels,
            F32_TOLERANCE,
            args.sample,
            args.seed,
        ),
    ];
    for r in &results {
        print(r);
    }
    if let Some(path) = &args.json {
        model_io::write_atomically(path, serde_json::to_string_pretty(&results)?.as_bytes())?;
    }
    let failed: Vec<String> = results
        .iter()
        .flat_map(|r| {
            r.tensors
                .iter()
                .filter(|t| t.failures > 0)
                .map(move |t| format!("{} {} ({})", r.precision, t.name, r.method))
        })
        .collect();
    if failed.is_empty() {
        println!("all tensors within tolerance");
        Ok(())
    } else {
        anyhow::bail!("gradient check failed for: {}", failed.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> (Vec<[u8; 784]>, Vec<u8>) {
        let mut rng = Rng::new(3);
        let pixels = (0..n)
            .map(|_| {
                std::array::from_fn(|_| {
                    if rng.uniform() < 0.8 {
                        0
                    } else {
                        rng.below(256) as u8
                    }
                })
            })
            .collect();
        (pixels, (0..n).map(|i| (i % 10) as u8).collect())
    }

    #[test]
    fn a_correct_gradient_passes_in_both_precisions() {
        let (pixels, labels) = batch(8);
        let mut model: Box<MnistMlp> = bytemuck::zeroed_box();
        model.init(&mut Rng::new(1));
        for r in [
            structured::<f64>(&model, &pixels, &labels, F64_TOLERANCE),
            definition::<f64>(&model, &pixels, &labels, F64_TOLERANCE, 50, 1),
            structured::<f32>(&model, &pixels, &labels, F32_TOLERANCE),
        ] {
            assert!(r.passed(), "{r:#?}");
            assert_eq!(r.tensors.len(), 4);
        }
    }

    #[test]
    fn a_wrong_gradient_fails_and_names_the_parameter() {
        let mut backprop: Box<MnistMlp<f64>> = bytemuck::zeroed_box();
        backprop.output.w[3][7] = 0.5;
        // Numerical values all zero except where the "bug" is not: W2[3][7] disagrees.
        let r = compare(&*backprop, |_| Some(0.0), F64_TOLERANCE);
        let w2 = &r[2];
        assert_eq!(w2.name, "W2");
        assert_eq!(w2.failures, 1);
        assert_eq!(w2.worst_index, 3 * 10 + 7);
        assert!(r.iter().filter(|t| t.name != "W2").all(|t| t.failures == 0));
        // NaN is a failure, never a pass.
        let r = compare(&*backprop, |_| Some(f64::NAN), F64_TOLERANCE);
        assert!(r.iter().all(|t| t.failures == t.checked));
    }
}
