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
//!
//! The network is 784-128-10, or with `--arch` a compact one ([`compact`]): the same checks,
//! through [`subject::Subject`].

pub mod bound;
pub mod check;
pub mod compact;
pub mod subject;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use digits_core::deep::TENSOR_NAMES;
use serde::Serialize;

use crate::cli::number::Within;
use crate::data::command::{DataArgs, load_test};
use crate::model_io::{self, Weights};
use crate::train::aligned::ModelBox;
use crate::train::compact::arch::Arch;
use check::{CheckReport, PlantedFault, Role, Verdict};
use subject::{MlpSubject, Subject};

#[derive(Args)]
pub struct GradcheckArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Model file to check: 784-128-10 (f32) or a compact network (`train --arch`, checked at
    /// its dequantized weights); a freshly initialized network when absent.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Check a compact network of this shape instead of 784-128-10 (a fresh one, at clipping
    /// ceilings of half each hidden layer's largest activation on the batch), e.g.
    /// 16x16-32-32-32-10; with --model, the model's own shape.
    #[arg(long, value_name = "SIDExSIDE-H1-H2-H3-10")]
    arch: Option<Arch>,
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
    /// (e.g. `f32:W1`, `f64:W3` for a compact network). It exists to prove that the checker
    /// fails on a wrong gradient.
    #[arg(long, hide = true, value_name = "PRECISION:TENSOR", value_parser = parse_fault)]
    plant_fault_for_test: Option<PlantedFaultArg>,
}

/// The hidden `--plant-fault-for-test` value.
#[derive(Clone, Copy, Debug)]
pub struct PlantedFaultArg(PlantedFault);

fn parse_fault(s: &str) -> Result<PlantedFaultArg, String> {
    let usage = || {
        format!(
            "expected f32|f64:TENSOR, TENSOR one of {}, got {s:?}",
            TENSOR_NAMES.join(", ")
        )
    };
    let (p, t) = s.split_once(':').ok_or_else(usage)?;
    let precision = match p {
        "f32" => "f32",
        "f64" => "f64",
        _ => return Err(usage()),
    };
    let tensor = TENSOR_NAMES
        .iter()
        .position(|&n| n == t)
        .ok_or_else(usage)?;
    Ok(PlantedFaultArg(PlantedFault { precision, tensor }))
}

/// Everything `digits gradcheck --json` prints.
#[derive(Serialize)]
pub struct Report {
    /// The network checked, e.g. `784-128-10` or `16x16-32-32-32-10`.
    pub network: String,
    /// The clipping ceiling of each hidden layer (compact networks; ReLU otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ceilings: Vec<f64>,
    /// The checks, in the order printed.
    pub checks: Vec<CheckReport>,
    /// Checks and tensors that failed or could not decide, e.g. "f64 W1".
    pub failed: Vec<String>,
    /// True when the gradient passed.
    pub passed: bool,
}

/// All checks on a network and a batch.
pub fn check_all<N: Subject>(
    subject: &N,
    pixels: &[[u8; 784]],
    labels: &[u8],
    sample: usize,
    seed: u64,
    fault: Option<PlantedFault>,
) -> Report {
    let indices = check::sampled(&*subject.network::<f32>(), sample, seed);
    let checks = vec![
        check::central_differences::<N, f64>(
            subject,
            pixels,
            labels,
            &indices,
            fault,
            Role::Decides,
        ),
        check::f32_against_f64(subject, pixels, labels, fault),
        check::central_differences::<N, f32>(
            subject,
            pixels,
            labels,
            &indices,
            fault,
            Role::Judged,
        ),
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
        network: String::from("784-128-10"),
        ceilings: Vec::new(),
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

/// Which network was checked, and its ceilings.
fn network_line(r: &Report) -> String {
    if r.ceilings.is_empty() {
        format!("network {} (ReLU)", r.network)
    } else {
        let c: Vec<String> = r.ceilings.iter().map(|c| format!("{c:.4}")).collect();
        format!(
            "network {} (clipped ReLU, ceilings {})",
            r.network,
            c.join(", ")
        )
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

/// What is checked.
enum Network {
    /// 784-128-10.
    Mlp(ModelBox),
    /// A compact network: a model's, or fresh.
    Compact {
        arch: Arch,
        model: Option<Box<crate::train::compact::store::QuantizedNet>>,
    },
}

/// The network the options name, refused before any work if it cannot be checked.
fn network(args: &GradcheckArgs) -> Result<Network> {
    let Some(path) = &args.model else {
        return Ok(match args.arch {
            Some(arch) => Network::Compact { arch, model: None },
            None => {
                let mut m = ModelBox::zeroed();
                m.init(&mut digits_core::Rng::new(args.seed));
                Network::Mlp(m)
            }
        });
    };
    let shown = path.display();
    match model_io::load_weights(path)?.weights {
        Weights::F32(m) => match args.arch {
            Some(arch) => bail!(
                "--arch {arch} checks a compact network, but {shown} is 784-128-10: drop --arch"
            ),
            None => Ok(Network::Mlp(m)),
        },
        Weights::Int8(_) => bail!(
            "{shown} is an int8 model, which is not trained by gradients: check the f32 model \
             it was quantized from"
        ),
        Weights::Compact(q) => {
            let arch: Arch = q.arch().parse().map_err(|e| {
                anyhow::anyhow!("{shown}: {e} (the architectures gradcheck compiles)")
            })?;
            if let Some(asked) = args.arch.filter(|&a| a != arch) {
                bail!("--arch {asked} does not match {shown}, which is {arch}: drop --arch");
            }
            Ok(Network::Compact {
                arch,
                model: Some(q),
            })
        }
    }
}

/// Runs `digits gradcheck`.
pub fn run(args: GradcheckArgs) -> Result<()> {
    let network = network(&args)?;
    let fault = args.plant_fault_for_test.map(|f| f.0);
    if let (Network::Mlp(_), Some(f)) = (&network, fault)
        && f.tensor >= 4
    {
        bail!(
            "--plant-fault-for-test: 784-128-10 has the tensors W1, b1, W2, b2 (W3 and up are a \
             compact network's: add --arch)"
        );
    }
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
    let report = match network {
        Network::Mlp(model) => check_all(
            &MlpSubject(&model),
            pixels,
            labels,
            args.sample,
            args.seed,
            fault,
        ),
        Network::Compact { arch, model } => compact::check(
            arch,
            model.as_deref(),
            pixels,
            labels,
            args.sample,
            args.seed,
            fault,
        )?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", network_line(&report));
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
