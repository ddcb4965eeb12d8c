//! `digits device`: the firmware in QEMU, driven from the host.
//!
//! Each command starts its own QEMU (the `serve` firmware, UART0 on a local socket) and stops
//! it when done, or talks to a device that runs without it ([`attached`]): one that `digits
//! device run` keeps running (`--connect`), or any on a serial port (`--port`). The
//! device runs the shipped model unless `--model FILE` names another: the firmware is then
//! built with that model in it, once per model ([`firmware`]).
//! `device eval` classifies the whole test set through the bulk path (the `eval` firmware,
//! images loaded into the PSRAM by QEMU) unless `--uart` asks for the protocol, whose every
//! byte crosses QEMU's slow emulated UART (figures in `docs/figures.md`). Every command that
//! reports something prints one JSON document on stdout with `--json`, and nothing else there.
//!
//! The host's side of the device, also used by the end-to-end tests:
//! - [`qemu`]: QEMU as a process (machine, UART wiring, start, wait, stop), none outliving
//!   us ([`children`], and [`death_watch`] for SIGKILL);
//! - [`logs`]: the device's defmt log, decoded and shown;
//! - [`qmp`]: QEMU's monitor (where the UART's pty went, stop, memory dumps, quit);
//! - [`link`]: the protocol's client over the UART, its bytes carried by a [`transport`]: a
//!   socket or a [`serial`] port;
//! - [`attached`]: a device that runs without us, over TCP or a serial port;
//! - [`firmware`]: where the firmware binaries are, and building them;
//! - [`model`]: the model a device runs, and what to type when it runs another;
//! - [`psram`]: data blobs loaded into the device's PSRAM;
//! - [`session`]: a link to a device, in a QEMU of our own or one already running;
//! - [`error`]: what can go wrong on the way.
//!
//! One module per command: [`run`](mod@run), [`info`], [`predict`], [`eval`], [`finetune`] (with the
//! host's run of the same fine-tuning in [`tuner`]), [`hex`] (the firmware for a real board). The formats both sides speak (protocol,
//! frames, data blob, digests) are `digits-core`'s.

pub mod attached;
pub mod children;
pub mod death_watch;
pub mod error;
pub mod eval;
pub mod finetune;
pub mod firmware;
pub mod hex;
pub mod info;
pub mod link;
pub mod logs;
pub mod model;
pub mod predict;
pub mod psram;
pub mod push;
pub mod qemu;
pub mod qmp;
pub mod run;
pub mod serial;
pub mod session;
pub mod transport;
pub mod tuner;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use self::attached::Attached;
use self::firmware::Firmware;
use self::logs::LogPrinter;
use self::model::DeviceModel;
use self::qemu::Board;
use self::session::Session;

/// Options of `digits device`.
#[derive(Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Start a device and keep it running, its UART listening at --listen for `digits device
    /// ... --connect` (or with --pty on a pseudo-terminal for `--port`), its log printed,
    /// until Ctrl-C.
    Run(run::RunArgs),
    /// Print what the device reports about itself: firmware, model, memory, counters.
    Info(info::InfoArgs),
    /// Recognize pictures of digits on the device (preprocessed and judged on the host like
    /// `digits predict`: "not a digit", and why, when a picture holds none).
    Predict(predict::DevicePredictArgs),
    /// Classify test images on the device; print its accuracy and its agreement with the host.
    Eval(eval::DeviceEvalArgs),
    /// Teach the device a new writer (`digits data shift`): fine-tune its output layer on a
    /// few labeled samples; print accuracy before and after, on the shifted and the original
    /// test sets, checking every step against the host.
    Finetune(finetune::FinetuneArgs),
    /// Put a model file onto the running device: into its free flash slot, checked whole by the
    /// device before it runs it; the model it ran stays for `digits device rollback`.
    Push(push::PushArgs),
    /// Return the device to the model it ran before the last push.
    Rollback(push::RollbackArgs),
    /// Write the firmware for a real board as an Intel HEX file: the micro:bit's self-test
    /// (copy it onto the board's USB drive) or the STM32F405's `serve`.
    Hex(hex::HexArgs),
}

/// How a command starts a device of its own.
#[derive(Args)]
pub struct Launch {
    /// The QEMU machine. `info`, `predict`, `finetune` and `eval --uart` need a board that
    /// serves the protocol (its flash holds the f32 model): the mps2-an386 or the netduinoplus2.
    #[arg(long, value_enum, default_value = "mps2-an386")]
    board: Board,
    /// Directory with prebuilt firmware binaries (serve, eval, eval-int8); by default digits
    /// builds them from the project's source with the model in them.
    #[arg(long, value_name = "DIR")]
    firmware: Option<PathBuf>,
    /// Show the device's INFO and DEBUG log lines too, not only warnings and errors.
    #[arg(long, short)]
    verbose: bool,
}

impl Launch {
    fn firmware(&self) -> Firmware {
        Firmware::new(self.firmware.as_deref()).for_board(self.board)
    }

    /// The board, if it runs `serve`, which `command` needs.
    fn serving_board(&self, command: &str) -> Result<Board> {
        serving(self.board, command)
    }

    fn logs(&self) -> LogPrinter {
        LogPrinter::new(self.verbose)
    }
}

/// A device of the command's own, or one that runs without it: `digits device run`'s, or
/// one on a serial port.
#[derive(Args)]
pub struct Reach {
    /// Talk to the device that `digits device run` keeps running at ADDR instead of starting
    /// one (its firmware and log are that command's).
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["firmware", "verbose", "board", "port"])]
    connect: Option<SocketAddr>,
    /// Talk to a device on the serial port PATH instead of starting one: a board running the
    /// `serve` firmware on a USB-UART (/dev/ttyUSB0, /dev/ttyACM0), or `digits device run
    /// --pty`'s.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["firmware", "verbose", "board"])]
    port: Option<PathBuf>,
    /// The serial port's speed (8 data bits, no parity, one stop bit).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 115_200,
        requires = "port",
        value_parser = crate::cli::number::Within::at_least(1u32)
    )]
    baud: u32,
    #[command(flatten)]
    launch: Launch,
}

impl Reach {
    /// The device named by --connect or --port, if any (else the command starts its own).
    pub fn attached(&self) -> Option<Attached> {
        match (&self.connect, &self.port) {
            (Some(addr), _) => Some(Attached::Tcp(*addr)),
            (None, Some(path)) => Some(Attached::Serial {
                path: path.clone(),
                baud: self.baud,
            }),
            (None, None) => None,
        }
    }
}

/// The model a command's device runs, when only the device needs it.
#[derive(Args)]
pub struct ModelChoice {
    /// The model the device runs: pushed to it if it runs another (an f32 model is built into
    /// the firmware of a device this command starts, once per model); default: the shipped
    /// firmware/models/mnist.digits.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
}

/// What a command that asks a device about itself or about pictures takes: which device, the
/// model it must run, and how to print the answer (`device info`, `device predict`).
#[derive(Args)]
pub struct Query {
    #[command(flatten)]
    reach: Reach,
    #[command(flatten)]
    model: ModelChoice,
    /// Print one JSON document on stdout (the same figures) instead of lines of text.
    #[arg(long)]
    json: bool,
}

impl Query {
    /// Reaches the device (started with the model, or the one running), for `command`.
    fn open(&self, command: &str) -> Result<Session> {
        let model = self
            .model
            .model
            .as_deref()
            .map(|path| DeviceModel::load(Some(path)))
            .transpose()?;
        Session::open(&self.reach, model.as_ref(), command)
    }
}

/// The model the device runs and the data the host compares it on.
#[derive(Args)]
pub struct HostSide {
    /// The model the device runs and the host compares it with (f32 or int8; digits builds the
    /// firmware with it, once per model); default: the shipped firmware/models/mnist.digits.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Directory with the MNIST IDX files [default: $MNIST_DIR, else
    /// $XDG_DATA_HOME/digits/mnist, else ~/.local/share/digits/mnist].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// `board`, if it runs `serve`, which `command` needs; else what to use instead.
fn serving(board: Board, command: &str) -> Result<Board> {
    if !board.serves() {
        anyhow::bail!(
            "`digits device {command}` talks to the `serve` firmware, which needs the f32 model \
             in flash: the {} has 256 KiB, too little. Use --board mps2-an386 or --board \
             netduinoplus2 (`device eval --board {}` runs there)",
            board.name(),
            board.name()
        );
    }
    Ok(board)
}

/// Runs `digits device`.
pub fn run(args: DeviceArgs) -> Result<()> {
    match args.command {
        DeviceCommand::Run(run) => run::run(&run),
        DeviceCommand::Info(info) => info::run(&info),
        DeviceCommand::Predict(predict) => predict::run(&predict),
        DeviceCommand::Eval(eval) => eval::run(&eval),
        DeviceCommand::Finetune(finetune) => finetune::run(&finetune),
        DeviceCommand::Hex(hex) => hex::run(&hex),
        DeviceCommand::Push(push) => push::run_push(&push),
        DeviceCommand::Rollback(rollback) => push::run_rollback(&rollback),
    }
}
