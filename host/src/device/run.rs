//! `digits device run`: a device that keeps running, its UART listening for `digits device
//! ... --connect` (or on a pseudo-terminal for `--port`, with `--pty`), its whole log printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use digits_core::blob::Contents;

use super::firmware::Firmware;
use super::logs::LogPrinter;
use super::model::DeviceModel;
use super::psram::PsramBlob;
use super::qemu::{Board, Qemu, Serial, require_qemu};
use crate::data::command::{DataArgs, load_test};

/// Options of `digits device run`.
#[derive(Args)]
pub struct RunArgs {
    /// Where the device's UART listens for `digits device ... --connect ADDR`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Put the device's UART on a pseudo-terminal instead, a serial port for `digits device
    /// ... --port PATH` (its path is printed): the host talks to it as to a board on a USB-UART.
    #[arg(long, conflicts_with = "listen")]
    pty: bool,
    /// The model the device runs (f32; digits builds the firmware with it, once per model);
    /// default: the shipped firmware/models/mnist.digits.
    #[arg(long, value_name = "FILE", conflicts_with = "firmware")]
    model: Option<PathBuf>,
    /// Directory with prebuilt firmware binaries (serve); by default digits builds them from
    /// the project's source with the model in them.
    #[arg(long, value_name = "DIR")]
    firmware: Option<PathBuf>,
    /// The QEMU machine: one whose flash holds the f32 model, which `serve` runs
    /// (mps2-an386, netduinoplus2).
    #[arg(long, value_enum, default_value = "mps2-an386")]
    board: Board,
    /// Load MNIST's test set into the device's memory, for `digits device eval --connect`.
    #[arg(long)]
    test_set: bool,
    /// Directory with the MNIST IDX files, for --test-set [default: $MNIST_DIR, else
    /// $XDG_DATA_HOME/digits/mnist, else ~/.local/share/digits/mnist].
    #[arg(long, value_name = "DIR", requires = "test_set")]
    data: Option<PathBuf>,
}

/// Runs `digits device run` until QEMU ends or a signal ends us (and QEMU with us).
pub fn run(args: &RunArgs) -> Result<()> {
    let model = args
        .model
        .as_deref()
        .map(|path| DeviceModel::load(Some(path)))
        .transpose()?;
    if let Some(model) = &model {
        model.f32_to_build("run")?;
    }
    super::serving(args.board, "run")?;
    require_qemu()?;
    let firmware = Firmware::new(args.firmware.as_deref()).for_board(args.board);
    let elf = firmware.elf("serve", model.as_ref())?;
    let blob = match args.test_set {
        true => Some(test_set_blob(args.data.clone())?),
        false => None,
    };
    let given = match &blob {
        Some(blob) => Some(blob.for_board(args.board, "serve")?),
        None => None,
    };
    let (extra, semihosting): (&[&str], &[&str]) = match &given {
        Some(g) => (&g.qemu, &g.semihosting),
        None => (&[], &[]),
    };
    let logs = LogPrinter::new(true).sink();
    let (mut qemu, uart, option) = if args.pty {
        // The monitor is only asked where the pty is.
        let (qemu, _monitor, pts) = Qemu::start_pty_on(args.board, &elf, extra, semihosting, logs)?;
        let pts = pts.display().to_string();
        (
            qemu,
            format!("on the serial port {pts}"),
            format!("--port {pts}"),
        )
    } else {
        let listen = args.listen;
        let serial = Serial::Listen(listen);
        let qemu = Qemu::start_on(args.board, &elf, &serial, extra, semihosting, logs)?;
        (qemu, format!("at {listen}"), format!("--connect {listen}"))
    };
    eprintln!(
        "device: {} on the {} in QEMU (pid {}), its UART {uart}; try `digits device info \
         {option}`; Ctrl-C stops it",
        elf.display(),
        args.board.name(),
        qemu.pid()
    );
    let code = qemu.wait(Duration::MAX)?;
    match code {
        Some(0) => Ok(()),
        Some(code) => bail!(
            "the device stopped with status {code}: {}",
            qemu.stderr_text()
        ),
        None => Ok(()),
    }
}

/// MNIST's test set as a data blob for the device's memory.
fn test_set_blob(data: Option<PathBuf>) -> Result<PsramBlob> {
    let dataset = load_test(&DataArgs::mnist_at(data))?;
    let test = &dataset.test;
    let images = [test.images.as_slice()];
    let labels = [test.labels.as_slice()];
    PsramBlob::write(
        "digits-run-",
        &Contents {
            images: &images,
            labels: Some(&labels),
            print_logits: false,
        },
    )
}
