//! A session with a device: the protocol link to a `serve` firmware, in a QEMU of its own or
//! one that `digits device run` keeps running (`--connect`).

use std::net::SocketAddr;

use anyhow::{Context, Result};

use super::firmware::Firmware;
use super::link::Link;
use super::logs::LogPrinter;
use super::qemu::{Qemu, require_qemu};

/// A link to a device, and the QEMU behind it if we started one.
pub struct Session {
    qemu: Option<Qemu>,
    /// The protocol link.
    pub link: Link,
}

impl Session {
    /// Connects to the device at `connect`, or starts the `serve` firmware in QEMU, showing
    /// its log with `logs`; checks that it answers a ping.
    pub fn open(
        firmware: &Firmware,
        connect: Option<SocketAddr>,
        logs: LogPrinter,
    ) -> Result<Self> {
        let (qemu, mut link) = match connect {
            Some(addr) => {
                let link = Link::connect(addr).with_context(|| {
                    format!("cannot reach a device at {addr}: is `digits device run` running?")
                })?;
                (None, link)
            }
            None => {
                require_qemu()?;
                let (qemu, link) =
                    Qemu::start_with_link(&firmware.elf("serve")?, &[], logs.sink())?;
                (Some(qemu), link)
            }
        };
        link.ping(0x5EED)
            .context("the device does not answer a ping")?;
        Ok(Self { qemu, link })
    }

    /// Stops the QEMU we started, if any (a device we connected to keeps running).
    pub fn close(self) -> Result<()> {
        if let Some(qemu) = self.qemu {
            qemu.stop()?;
        }
        Ok(())
    }
}
