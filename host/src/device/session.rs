//! A session with a device: the protocol link to a `serve` firmware, in a QEMU of its own or
//! one that runs without us (`--connect`, `--port`: [`super::attached`]).

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
    /// Reaches the device `reach` names, or starts the `serve` firmware with `model` (the
    /// shipped one if `None`) in QEMU; checks that it answers a ping and, unless attached
    /// without `model`, that it runs that model. `command` names the command for messages.
    pub fn open(reach: &Reach, model: Option<&DeviceModel>, command: &str) -> Result<Self> {
        if let Some(model) = model {
            model.f32(command)?;
        }
        let attached = reach.attached();
        let (qemu, link) = match &attached {
            Some(attached) => (None, attached.open()?),
            None => {
                require_qemu()?;
                let board = reach.launch.serving_board(command)?;
                let firmware = reach.launch.firmware();
                let elf = firmware.elf("serve", model)?;
                let logs = reach.launch.logs().sink();
                let (qemu, mut link) = Qemu::start_with_link_on(board, &elf, &[], &[], logs)?;
                // It has just started: its UART may not be on yet.
                link.wait_ready(Link::STARTUP)
                    .context("the device does not answer a ping")?;
                (Some(qemu), link)
            }
        };
        let mut session = Self { qemu, link };
        if let Some(model) = model {
            let firmware = reach.launch.firmware();
            let reached = match &attached {
                Some(attached) => Reached::Attached(attached),
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
