//! A session with a device: the protocol link to a `serve` firmware, in a QEMU of its own or
//! one that runs without us (`--connect`, `--port`: [`super::attached`]).

use anyhow::{Context, Result};

use digits_core::update::SlotSummary;

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
    /// Reaches the device `reach` names, or starts the `serve` firmware in QEMU (with `model`
    /// in its slot A if it is an f32 model, else the shipped one); checks that it answers a
    /// ping and speaks this host's protocol, and, given `model`, pushes it unless the device
    /// runs it already. `command` names the command for messages.
    pub fn open(reach: &Reach, model: Option<&DeviceModel>, command: &str) -> Result<Self> {
        let attached = reach.attached();
        let (qemu, link) = match &attached {
            Some(attached) => (None, attached.open()?),
            None => {
                require_qemu()?;
                let board = reach.launch.serving_board(command)?;
                let firmware = reach.launch.firmware();
                // An f32 model is built into slot A (once per model): faster than a push.
                let elf = firmware.elf("serve", model.filter(|m| m.is_f32()))?;
                let logs = reach.launch.logs().sink();
                let (qemu, mut link) = Qemu::start_with_link_on(board, &elf, &[], &[], logs)?;
                // It has just started: its UART may not be on yet.
                link.wait_ready(Link::STARTUP)
                    .context("the device does not answer a ping")?;
                (Some(qemu), link)
            }
        };
        let mut session = Self { qemu, link };
        session.link.hello()?;
        if let Some(model) = model {
            let runs = session.link.info()?.model.map(|m| m.params_fnv64);
            if runs != Some(model.digest) {
                session.push(model)?;
            }
            let firmware = reach.launch.firmware();
            let reached = match &attached {
                Some(attached) => Reached::Attached(attached),
                None => firmware.reached(),
            };
            let runs = session.link.info()?.model.map_or(0, |m| m.params_fnv64);
            model.check(runs, &reached)?;
        }
        Ok(session)
    }

    /// Pushes `model` to the device and commits it, with a progress line on stderr.
    pub fn push(&mut self, model: &DeviceModel) -> Result<SlotSummary> {
        let file = &model.file;
        let bar = indicatif::ProgressBar::new(file.len() as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "pushing {msg} {bar:30} {bytes}/{total_bytes} ({bytes_per_sec})",
            )
            .expect("a valid template"),
        );
        bar.set_message(model.path.display().to_string());
        let summary = self
            .link
            .push(file, |sent, _| bar.set_position(u64::from(sent)))
            .with_context(|| format!("the device refused {}", model.path.display()))?;
        bar.finish_and_clear();
        Ok(summary)
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
