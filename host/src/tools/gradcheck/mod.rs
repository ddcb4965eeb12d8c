//! `digits gradcheck`: backprop against central differences, per tensor, each parameter against
//! the error its precision allows.
//!
//! - `f64` decides: backprop in `f64` against central differences of the loss in `f64`, each
//!   parameter within a bound derived for it ([`bound`]): the central difference's truncation
//!   error, the loss's rounding error divided by the step, and backprop's own rounding error.
//! - `f32` backprop (what training uses) is checked against `f64` backprop, every parameter,
//!   within both precisions' rounding bounds.
//! - `f32` central differences are reported against the same kind of bound in `f32`, where the
//!   loss's rounding divided by the step is far larger: judged (a parameter beyond its bound
//!   fails), but where they resolve no gradient they only report.
//!
//! A parameter is resolved when its gradient exceeds its bound: there a wrong sign could not
//! pass. A check that resolves nothing in a tensor says so instead of passing it.

pub mod bound;
pub mod check;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use crate::cli::number::Within;
use crate::data::command::{DataArgs, load_test};
use crate::model_io;
use crate::train::aligned::ModelBox;
use check::{CheckReport, PlantedFault, Role, Verdict};

/// Tensor names in the order of the network's parameters.
const TENSORS: [&str; 4] = ["W1", "b1", "W2", "b2"];

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
    /// Test images in the batch: at least 1, up to the test images from --offset on.
    #[arg(long, default_value_t = 32, allow_negative_numbers = true, value_parser = Within::at_least(1usize))]
    batch: usize,
    /// First test image of the batch (from 0).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = Within::at_least(0usize))]
    offset: usize,
    /// Parameters per tensor checked by central differences (two full losses each; a tensor
    /// with fewer is checked whole): at least 1.
    #[arg(long, default_value_t = 500, allow_negative_numbers = true, value_parser = Within::at_least(1usize))]
    sample: usize,
    /// Print one JSON document on stdout instead of the tables.
    #[arg(long)]
    json: bool,
    /// Test-only: flip the sign of one tensor of backprop's gradient, as PRECISION:TENSOR
    /// (e.g. `f32:W1`). It exists to prove that the checker fails on a wrong gradient.
    #[arg(long, hide = true, value_name = "PRECISION:TENSOR", value_parser = parse_fault)]
    plant_fault_for_test: Option<PlantedFaultArg>,
}

/// The hidden `--plant-fault-for-test` value.
#[derive(Clone, Copy, Debug)]
pub struct PlantedFaultArg(PlantedFault);

fn parse_fault(s: &str) -> Result<PlantedFaultArg, String> {
    let usage = || format!("expected f32|f64:W1|b1|W2|b2, got {s:?}");
    let (p, t) = s.split_once(':').ok_or_else(usage)?;
    let precision = match p {
        "f32" => "f32",
        "f64" => "f64",
        _ => return Err(usage()),
    };
    let tensor = TENSORS.iter().position(|&n| n == t).ok_or_else(usage)?;
    Ok(PlantedFaultArg(PlantedFault { precision, tensor }))
}

/// Everything `digits gradcheck --json` prints.
#[derive(Serialize)]
pub struct Report {
    /// The checks, in the order printed.
    pub checks: Vec<CheckReport>,
    /// Checks and tensors that failed or could not decide, e.g. "f64 W1".
    pub failed: Vec<String>,
    /// True when the gradient passed.
    pub passed: bool,
}

/// All checks on a model and a batch.
pub fn check_all(
    model: &digits_core::MnistMlp,
    pixels: &[[u8; 784]],
    labels: &[u8],
    sample: usize,
    seed: u64,
    fault: Option<PlantedFault>,
) -> Report {
    let indices = check::sampled(sample, seed);
    let checks = vec![
        check::central_differences::<f64>(model, pixels, labels, &indices, fault, Role::Decides),
        check::f32_against_f64(model, pixels, labels, fault),
        check::central_differences::<f32>(model, pixels, labels, &indices, fault, Role::Judged),
    ];
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.fails())
        .flat_map(|c| {
            c.tensors
                .iter()
                .filter(|t| t.beyond > 0 || (c.verdict == Verdict::Unresolved && t.resolved == 0))
                .map(move |t| format!("{} {} (against {})", c.precision, t.name, c.method))
        })
        .collect();
    Report {
        passed: failed.is_empty(),
        checks,
        failed,
    }
}

fn verdict_text(c: &CheckReport) -> &'static str {
    match (c.verdict, c.role) {
        (Verdict::Pass, Role::Decides) => "PASS (decides)",
        (Verdict::Pass, Role::Judged) => "PASS",
        (Verdict::Fail, _) => "FAIL",
        (Verdict::Unresolved, Role::Decides) => "UNDECIDED: some tensor has no resolved parameter",
        (Verdict::Unresolved, Role::Judged) => {
            "within bounds; informational only where no parameter is resolved"
        }
    }
}

/// Prints one check's table.
pub fn print(c: &CheckReport) {
    println!(
        "{} backprop vs {}: {}",
        c.precision,
        c.method,
        verdict_text(c)
    );
    if let Some(d) = c.loss_rounding {
        println!(
            "  loss {:.6}; its rounding error in {} is at most {d:.2e}, so a step h adds up to \
             {d:.2e} / h (bound = truncation h^2 M3 / 6 + rounding {d:.2e} / h + backprop's rounding)",
            c.loss, c.precision
        );
    } else {
        println!("  bound = backprop's rounding error in f32 + in f64");
    }
    println!(
        "  {:<6} {:>7} {:>8} {:>7} {:>7} {:>11} {:>11}   worst parameter (backprop, reference, bound{})",
        "tensor",
        "checked",
        "resolved",
        "at kink",
        "beyond",
        "max error",
        "max bound",
        if c.loss_rounding.is_some() { ", h" } else { "" }
    );
    for t in &c.tensors {
        let worst = t.worst.map_or(String::from("-"), |w| {
            format!(
                "{}[{}] ({:+.6e}, {:+.6e}, {:.2e}{})",
                t.name,
                w.index,
                w.analytic,
                w.reference,
                w.bound,
                w.step.map_or(String::new(), |h| format!(", {h:.1e}"))
            )
        });
        println!(
            "  {:<6} {:>7} {:>8} {:>7} {:>7} {:>11.3e} {:>11.3e}   {worst}",
            t.name, t.checked, t.resolved, t.at_kink, t.beyond, t.max_error, t.max_bound
        );
    }
}

/// Runs `digits gradcheck`.
pub fn run(args: GradcheckArgs) -> Result<()> {
    let dataset = load_test(&args.data)?;
    let test = &dataset.test;
    let images = test.labels.len();
    let source = format!("the test split has {images} images");
    Within::at_least(0)
        .at_most(images.saturating_sub(1))
        .require("--offset", args.offset, &source)?;
    let left = images - args.offset;
    Within::at_least(1).at_most(left).require(
        "--batch",
        args.batch,
        &format!("{source}, {left} from --offset {}", args.offset),
    )?;
    let end = args.offset + args.batch;
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
    let fault = args.plant_fault_for_test.map(|f| f.0);
    let report = check_all(&model, pixels, labels, args.sample, args.seed, fault);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for c in &report.checks {
            print(c);
        }
        if report.passed {
            println!(
                "gradient correct: every parameter within its bound, every tensor resolved in f64"
            );
        }
    }
    if report.passed {
        Ok(())
    } else {
        bail!("gradient check failed for: {}", report.failed.join("; "))
    }
}
