//! `digits device run`: a device that keeps running, its UART listening for `digits device
//! ... --connect` (or on a pseudo-terminal for `--port`, with `--pty`), its whole log printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use super::firmware::Firmware;
use super::logs::LogPrinter;
use super::model::DeviceModel;
use super::qemu::{Board, Qemu, Serial, require_qemu};

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
}

/// Runs `digits device run` until QEMU ends or a signal ends us (and QEMU with us).
pub fn run(args: &RunArgs) -> Result<()> {
    let model = args
        .model
        .as_deref()
        .map(|path| DeviceModel::load(Some(path)))
        .transpose()?;
    if let Some(model) = &model {
        model.f32("run")?;
    }
    super::serving(args.board, "run")?;
    require_qemu()?;
    let firmware = Firmware::new(args.firmware.as_deref()).for_board(args.board);
    let elf = firmware.elf("serve", model.as_ref())?;
    let logs = LogPrinter::new(true).sink();
    let (mut qemu, uart, option) = if args.pty {
        // The monitor is only asked where the pty is.
        let (qemu, _monitor, pts) = Qemu::start_pty_on(args.board, &elf, &[], logs)?;
        let pts = pts.display().to_string();
        (
            qemu,
            format!("on the serial port {pts}"),
            format!("--port {pts}"),
        )
    } else {
        let listen = args.listen;
        let serial = Serial::Listen(listen);
        let qemu = Qemu::start_on(args.board, &elf, &serial, &[], &[], logs)?;
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
