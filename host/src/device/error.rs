//! What can go wrong between the host and the device: starting QEMU, moving bytes, and what the
//! device itself answers ([`Error::Device`], kept apart from the transport's errors).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use digits_core::protocol::DeviceError;

use super::qemu::{INSTALL_QEMU, QEMU, TARGET};
use super::serial::PortError;

/// What can go wrong between the host and the device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// QEMU is not installed.
    #[error("{QEMU} not found: {INSTALL_QEMU}")]
    NoQemu,
    /// The firmware ELF is missing or unreadable.
    #[error(
        "cannot read the firmware {path} (build it with \
         `cargo build -p firmware --release --target {TARGET}`)"
    )]
    Firmware {
        /// The ELF's path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The ELF has no defmt table (not this project's firmware?).
    #[error("{path} holds no defmt table: is it a `firmware` binary of this project? ({why})")]
    NoLogTable {
        /// The ELF's path.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// QEMU could not be started or ended before the device was up.
    #[error("QEMU failed: {0}")]
    Qemu(String),
    /// QEMU's monitor (QMP) failed or refused a command.
    #[error("QEMU's monitor (QMP): {0}")]
    Qmp(String),
    /// A serial port (`--port`) cannot be opened.
    #[error(transparent)]
    Port(#[from] PortError),
    /// Reading or writing the UART failed.
    #[error("the device's UART")]
    Io(#[from] io::Error),
    /// No reply in time.
    #[error(
        "the device did not answer within {0:?} (a damaged request is dropped without reply; \
         is the device busy or gone?)"
    )]
    Timeout(Duration),
    /// The device answered with an error.
    #[error("{0}")]
    Device(DeviceError),
    /// A reply that does not decode, or does not answer the request.
    #[error("unexpected reply from the device: {0}")]
    Unexpected(String),
}
