//! Opening a serial port (`--port PATH --baud N`): a board on a USB-UART, or QEMU's UART on a
//! pseudo-terminal (`digits device run --pty`). What can be wrong with the path is found out
//! here and said in words a user can act on.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serialport::{ClearBuffer, SerialPort};

/// Why a serial port cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Nothing at that path.
    #[error(
        "there is no serial port {0}: plug the board in and look for its port (`ls /dev/ttyUSB* \
         /dev/ttyACM*`), or start a device in QEMU with `digits device run --pty`, which prints \
         its port"
    )]
    Missing(PathBuf),
    /// Something that is not a terminal device.
    #[error(
        "{0} is not a serial port ({1}): pass the board's port (such as /dev/ttyUSB0 or \
         /dev/ttyACM0) or the one `digits device run --pty` prints"
    )]
    NotATerminal(PathBuf, &'static str),
    /// Another program holds it (ports are opened exclusively).
    #[error(
        "{0} is busy: another program has it open (a terminal such as screen or minicom, or \
         another digits); close that and try again"
    )]
    Busy(PathBuf),
    /// No permission.
    #[error(
        "no permission to open {0}: add yourself to the group that owns it (often `dialout`: \
         `sudo usermod -aG dialout $USER`, then log in again)"
    )]
    Denied(PathBuf),
    /// A baud rate of zero (which on a terminal means "hang up").
    #[error(
        "a baud rate of 0 is no speed: pass the board's with --baud (115200 for this firmware)"
    )]
    ZeroBaud,
    /// Anything else the system said.
    #[error("cannot open {0} as a serial port: {1}")]
    Other(PathBuf, String),
}

/// Opens `path` at `baud` (8 data bits, no parity, one stop bit, no flow control), for this
/// process alone, with whatever arrived before dropped.
pub fn open(path: &Path, baud: u32) -> Result<Box<dyn SerialPort>, PortError> {
    if baud == 0 {
        return Err(PortError::ZeroBaud);
    }
    check_terminal(path)?;
    let port = serialport::new(path.to_string_lossy(), baud)
        .timeout(Duration::from_secs(1))
        .open()
        .map_err(|e| match e.kind() {
            // serialport's name for EBUSY from TIOCEXCL: someone else holds the port.
            serialport::ErrorKind::NoDevice => PortError::Busy(path.to_owned()),
            serialport::ErrorKind::Io(io::ErrorKind::NotFound) => {
                PortError::Missing(path.to_owned())
            }
            serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => {
                PortError::Denied(path.to_owned())
            }
            _ => PortError::Other(path.to_owned(), e.description),
        })?;
    // A board may have talked before we listened (a boot banner, half a frame).
    port.clear(ClearBuffer::Input)
        .map_err(|e| PortError::Other(path.to_owned(), e.description))?;
    Ok(port)
}

/// Fails unless `path` is a terminal device: checked before the serial port library opens it,
/// whose own errors for a plain file or `/dev/null` say only "inappropriate ioctl".
pub fn check_terminal(path: &Path) -> Result<(), PortError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => PortError::Missing(path.to_owned()),
        io::ErrorKind::PermissionDenied => PortError::Denied(path.to_owned()),
        _ => PortError::Other(path.to_owned(), e.to_string()),
    })?;
    if meta.is_dir() {
        return Err(PortError::NotATerminal(path.to_owned(), "a directory"));
    }
    if meta.is_file() {
        return Err(PortError::NotATerminal(path.to_owned(), "a file"));
    }
    #[cfg(unix)]
    {
        use std::io::IsTerminal;
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

        if !meta.file_type().is_char_device() {
            return Err(PortError::NotATerminal(
                path.to_owned(),
                "not a character device",
            ));
        }
        // O_NONBLOCK: a modem port would otherwise wait for its carrier; O_NOCTTY: a terminal
        // must not become ours. Busy or forbidden ports are left to the real open.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path);
        if let Ok(file) = file
            && !file.is_terminal()
        {
            return Err(PortError::NotATerminal(
                path.to_owned(),
                "a device, but not a terminal",
            ));
        }
    }
    Ok(())
}
