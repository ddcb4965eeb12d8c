//! `digits`: train, evaluate and check the handwritten-digit network of `digits-core`.
//!
//! This file parses the command line and hands each command to its module (see `lib.rs`).

use anyhow::Result;
use clap::{Parser, Subcommand};
use host::{data, device, evaluate, tools, train, web};

/// Handwritten-digit recognition with a small network written once for PC and microcontroller.
#[derive(Parser)]
#[command(name = "digits", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the 784-128-10 network and write the best model (by validation accuracy).
    Train(train::command::TrainArgs),
    /// Compare numerical gradients with backprop, per tensor, in f64 and f32.
    Gradcheck(tools::gradcheck::GradcheckArgs),
    /// Measure: one full numerical gradient (definition vs structured), or `--mode speed`:
    /// training and inference throughput.
    Bench(tools::bench::BenchArgs),
    /// Evaluate a model on the test split: accuracy, per-class precision/recall/F1, confusion matrix.
    Eval(evaluate::metrics::EvalArgs),
    /// Recognize your own pictures of digits (PNG/JPEG), preprocessed the way MNIST was made.
    Predict(evaluate::predict::PredictArgs),
    /// Work with the dataset files.
    Data {
        #[command(subcommand)]
        command: data::command::DataCommand,
    },
    /// Run the firmware in QEMU and talk to it (run, info, predict, eval, finetune), or write it
    /// for a real board (hex).
    Device(device::DeviceArgs),
    /// Quantize an f32 model file to int8 (4x smaller): per-channel weight scales, hidden
    /// activations calibrated on training images; prints f32 vs int8 test accuracy.
    Quantize(tools::quantize::QuantizeArgs),
    /// Print what a model file holds (`--json` for scripts).
    Inspect(tools::inspect::InspectArgs),
    /// Serve the page where you draw a digit, see what the network sees, and teach it your
    /// handwriting (in the browser, offline).
    Web(web::WebArgs),
}

fn main() -> std::process::ExitCode {
    // `digits inspect | head -1`: a closed reader ends any command quietly.
    host::cli::broken_pipe::quiet_on_broken_pipe(|| match run(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes, without a backtrace: messages are written for users.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    })
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(args) => train::command::run(args),
        Command::Gradcheck(args) => tools::gradcheck::run(args),
        Command::Bench(args) => tools::bench::run(args),
        Command::Eval(args) => evaluate::metrics::run(args),
        Command::Predict(args) => evaluate::predict::run(args),
        Command::Data { command } => data::command::run(command),
        Command::Device(args) => device::run(args),
        Command::Quantize(args) => tools::quantize::run(&args),
        Command::Inspect(args) => tools::inspect::run(&args),
        Command::Web(args) => web::run(args),
    }
}
