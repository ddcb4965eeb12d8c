//! `digits device run`: a device that keeps running, its UART listening for `digits device
//! ... --connect`, its whole log printed.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, bail};

use super::firmware::Firmware;
use super::logs::LogPrinter;
use super::qemu::{Qemu, Serial, require_qemu};

/// Runs `digits device run` until QEMU ends (Ctrl-C reaches it too).
pub fn run(firmware: &Firmware, listen: SocketAddr) -> Result<()> {
    require_qemu()?;
    let elf = firmware.elf("serve")?;
    let mut qemu = Qemu::start(
        &elf,
        &Serial::Listen(listen),
        &[],
        LogPrinter::new(true).sink(),
    )?;
    eprintln!(
        "device: {} in QEMU, UART0 at {listen}; try `digits device info --connect {listen}`; \
         Ctrl-C stops it",
        elf.display()
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
