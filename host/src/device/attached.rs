//! A device that runs without us: `digits device run` reached over TCP (`--connect ADDR`),
//! or any `serve` device on a serial port (`--port PATH`): a board on a USB-UART, or `digits
//! device run --pty`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::link::Link;
use super::serial;

/// How a command reaches a device it did not start.
#[derive(Clone, Debug)]
pub enum Attached {
    /// `--connect ADDR`: the UART socket of `digits device run`.
    Tcp(SocketAddr),
    /// `--port PATH --baud N`: a serial port.
    Serial {
        /// The port (`/dev/ttyUSB0`, `/dev/pts/3`).
        path: PathBuf,
        /// Its speed in baud.
        baud: u32,
    },
}

/// How long a device on a serial port may take to answer the first ping: QEMU's pty looks
/// for a reader about once a second (and drops what the device sent before), and a board may
/// restart when its port opens.
const SERIAL_READY: Duration = Duration::from_secs(10);

impl Attached {
    /// Fails, with what to do, if the device cannot be there: a serial port that does not
    /// exist or is no terminal. For a command to check before its other work.
    pub fn check(&self) -> Result<()> {
        match self {
            Self::Tcp(_) => Ok(()),
            Self::Serial { path, .. } => Ok(serial::check_terminal(path)?),
        }
    }

    /// A link to the device, which has answered a ping.
    pub fn open(&self) -> Result<Link> {
        match self {
            Self::Tcp(addr) => {
                let mut link = Link::connect(*addr).with_context(|| {
                    format!("cannot reach a device at {addr}: is `digits device run` running?")
                })?;
                link.ping(0x5EED)
                    .context("the device does not answer a ping")?;
                Ok(link)
            }
            Self::Serial { path, baud } => {
                let mut link = Link::open_serial(path, *baud)?;
                link.wait_ready(SERIAL_READY).with_context(|| {
                    format!(
                        "no device answers on {} at {baud} baud: is the board's `serve` \
                         firmware running, at this speed?",
                        path.display()
                    )
                })?;
                Ok(link)
            }
        }
    }

    /// The option that names it, for messages: `--connect` or `--port`.
    pub fn option(&self) -> &'static str {
        match self {
            Self::Tcp(_) => "--connect",
            Self::Serial { .. } => "--port",
        }
    }
}

/// "at ADDR" or "on PATH", after "the device".
impl fmt::Display for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "at {addr}"),
            Self::Serial { path, .. } => write!(f, "on {}", path.display()),
        }
    }
}
