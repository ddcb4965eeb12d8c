//! A session with a device: the protocol link to a `serve` firmware, in a QEMU of its own or
//! one that `digits device run` keeps running (`--connect`).

use anyhow::{Context, Result};

use super::Reach;
use super::link::Link;
use super::model::{DeviceModel, Reached};
use super::qemu::{Qemu, require_qemu};

/// A link to a device, and the QEMU behind it if we started one.
pub struct Session {
    qemu: Option<Qemu>,
    /// The protocol link.
    pub link: Link,
}

impl Session {
    /// Connects to the device `reach` names, or starts the `serve` firmware with `model` (the
    /// shipped one if `None`) in QEMU; checks that it answers a ping and, unless connected
    /// without `model`, that it runs that model. `command` names the command for messages.
    pub fn open(reach: &Reach, model: Option<&DeviceModel>, command: &str) -> Result<Self> {
        if let Some(model) = model {
            model.f32(command)?;
        }
        let (qemu, mut link) = match reach.connect {
            Some(addr) => {
                let link = Link::connect(addr).with_context(|| {
                    format!("cannot reach a device at {addr}: is `digits device run` running?")
                })?;
                (None, link)
            }
            None => {
                require_qemu()?;
                let board = reach.launch.serving_board(command)?;
                let firmware = reach.launch.firmware();
                let elf = firmware.elf("serve", model)?;
                let logs = reach.launch.logs().sink();
                let (qemu, link) = Qemu::start_with_link_on(board, &elf, &[], &[], logs)?;
                (Some(qemu), link)
            }
        };
        match qemu {
            // Ours has just started: its UART may not be on yet.
            Some(_) => link.wait_ready(Link::STARTUP),
            None => link.ping(0x5EED),
        }
        .context("the device does not answer a ping")?;
        let mut session = Self { qemu, link };
        if let Some(model) = model {
            let firmware = reach.launch.firmware();
            let reached = match reach.connect {
                Some(addr) => Reached::Connected(addr),
                None => firmware.reached(),
            };
            model.check(session.link.info()?.model.params_fnv64, &reached)?;
        }
        Ok(session)
    }

    /// The QEMU's process id, if we started one.
    pub fn qemu_pid(&self) -> Option<u32> {
        self.qemu.as_ref().map(Qemu::pid)
    }

    /// Stops the QEMU we started, if any (a device we connected to keeps running).
    pub fn close(self) -> Result<()> {
        if let Some(qemu) = self.qemu {
            qemu.stop()?;
        }
        Ok(())
    }
}
