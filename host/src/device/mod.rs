//! `digits device`: the firmware in QEMU, driven from the host.
//!
//! Each command starts its own QEMU (the `serve` firmware, UART0 on a local socket) and stops
//! it when done, or talks to one that `digits device run` keeps running (`--connect`).
//! `device eval` classifies the whole test set through the bulk path (the `eval` firmware,
//! images loaded into the PSRAM by QEMU) unless `--uart` asks for the protocol, whose every
//! byte crosses QEMU's slow emulated UART (figures in `docs/figures.md`).
//!
//! The host's side of the device, also used by the end-to-end tests:
//! - [`qemu`]: QEMU as a process (machine, UART wiring, start, wait, stop);
//! - [`logs`]: the device's defmt log, decoded and shown;
//! - [`link`]: the protocol's client over the UART;
//! - [`firmware`]: where the firmware binaries are, and building them;
//! - [`psram`]: data blobs loaded into the device's PSRAM;
//! - [`session`]: a link to a device, in a QEMU of our own or one already running;
//! - [`error`]: what can go wrong on the way.
//!
//! One module per command: [`run`](mod@run), [`info`], [`predict`], [`eval`], [`finetune`] (with the
//! host's run of the same fine-tuning in [`tuner`]). The formats both sides speak (protocol,
//! frames, data blob, digests) are `digits-core`'s.

pub mod error;
pub mod eval;
pub mod finetune;
pub mod firmware;
pub mod info;
pub mod link;
pub mod logs;
pub mod predict;
pub mod psram;
pub mod qemu;
pub mod run;
pub mod session;
pub mod tuner;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use self::firmware::Firmware;
use self::logs::LogPrinter;

/// Options of `digits device`.
#[derive(Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    command: DeviceCommand,
    /// Directory with the firmware binaries `serve` and `eval`.
    #[arg(long, value_name = "DIR", global = true)]
    firmware: Option<PathBuf>,
    /// Talk to a device that `digits device run` keeps running at ADDR instead of starting one.
    #[arg(long, value_name = "ADDR", global = true)]
    connect: Option<SocketAddr>,
    /// Show the device's INFO and DEBUG log lines too, not only warnings and errors.
    #[arg(long, short, global = true)]
    verbose: bool,
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Start the device and keep it running, its UART listening at --listen, its log printed,
    /// until Ctrl-C.
    Run {
        /// Where the device's UART listens for `digits device ... --connect ADDR`.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
        listen: SocketAddr,
    },
    /// Print what the device reports about itself: firmware, model, memory, counters.
    Info,
    /// Recognize pictures of digits on the device (preprocessed on the host like `digits
    /// predict`).
    Predict {
        /// Pictures of one digit each (PNG or JPEG).
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
    },
    /// Classify test images on the device; print its accuracy and its agreement with the host.
    Eval(eval::DeviceEvalArgs),
    /// Teach the device a new writer (`digits data shift`): fine-tune its output layer on a
    /// few labeled samples; print accuracy before and after, on the shifted and the original
    /// test sets, checking every step against the host.
    Finetune(finetune::FinetuneArgs),
}

/// What the host compares a device run with: the model the firmware was built from and MNIST.
#[derive(Args)]
pub struct HostSide {
    /// The model file the firmware was built from, for the host's side of the comparison.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "firmware/models/mnist.digits"
    )]
    pub model: PathBuf,
    /// Directory with the MNIST IDX files [default: $MNIST_DIR, else
    /// $XDG_DATA_HOME/digits/mnist, else ~/.local/share/digits/mnist].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Runs `digits device`.
pub fn run(args: DeviceArgs) -> Result<()> {
    let firmware = Firmware::new(args.firmware.as_deref());
    let logs = LogPrinter::new(args.verbose);
    match args.command {
        DeviceCommand::Run { listen } => run::run(&firmware, listen),
        DeviceCommand::Info => info::run(&firmware, args.connect, logs),
        DeviceCommand::Predict { images } => predict::run(&firmware, args.connect, logs, &images),
        DeviceCommand::Eval(eval) => eval::run(&firmware, args.connect, logs, &eval),
        DeviceCommand::Finetune(finetune) => {
            if args.connect.is_some() {
                bail!(
                    "device finetune starts its own device, with the evaluation images in its \
                     memory: drop --connect"
                );
            }
            finetune::run(&firmware, logs, &finetune)
        }
    }
}
