//! # firmware
//!
//! `digits-core` on a Cortex-M4F: QEMU's `mps2-an386` (`thumbv7em-none-eabihf`), held to an
//! STM32F4-class budget of 1 MiB flash and 192 KiB RAM (`memory.x`).
//!
//! The `boot` binary initializes a `784-16-10` network from [`SEED`], computes the logits and
//! the loss of the built-in [`DIGIT_7`], takes one SGD step on a batch of [`DIGIT_7`] and
//! [`DIGIT_1`], computes the logits again, checks them and prints every number as the hex bits
//! of its `f32` over semihosting ([`BootReport::write`]).
//!
//! The `eval` binary classifies a batch of images, loaded by QEMU into the PSRAM, with the
//! project's MNIST model ([`model::MODEL`], embedded at build time and read in place from
//! flash) and reports every prediction, a digest of all logits and the instructions per
//! inference ([`eval`]).
//!
//! This library also compiles on the host, where `tests/tests/firmware_boot.rs` redoes the same
//! computation with `digits-core` and asserts that QEMU printed the very same bits. The glue that
//! only makes sense on the device (semihosting, exit status, panic and fault reporting) is in
//! `device`, built for `target_os = "none"` only. The host's side of the device (QEMU, the UART
//! link, defmt decoding) is in the `host` crate, `host::device`; the formats both sides speak
//! (data blob, digests, protocol) are in `digits-core`.
// On the host the library has std, for the `eval` binaries' host side (`eval::host_main`); the
// device build proves the rest needs none.
#![cfg_attr(target_os = "none", no_std)]
#![warn(missing_docs)]

#[cfg(target_os = "none")]
pub mod board;
#[cfg(target_os = "none")]
pub mod device;
pub mod digits;
#[cfg(dsp)]
pub mod dsp;
pub mod eval;
mod flag;
#[cfg(all(target_os = "none", not(feature = "rtt")))]
mod logger;
pub mod model;
pub mod running;
pub mod selftest;
pub mod serve;
pub mod slots;

// defmt over RTT, for a debug probe on a real board (see `logger` for QEMU's).
#[cfg(all(target_os = "none", feature = "rtt"))]
use defmt_rtt as _;

pub use digits::{DIGIT_1, DIGIT_7};
use flag::Flag;

use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use digits_core::pixels::normalize;
use digits_core::softmax::{argmax, softmax};
use digits_core::{Dense, Mlp, Params, Rng, Sgd};

/// Seed of the network's initialization (the same on host and device).
pub const SEED: u64 = 2026;
/// Hidden units: 784-16-10 is 12,730 parameters, 50,920 bytes per network in `f32`.
pub const HIDDEN: usize = 16;
/// The network run at boot.
pub type BootMlp = Mlp<784, HIDDEN, 10, f32>;
/// The optimizer of the training step.
pub const SGD: Sgd = Sgd {
    momentum: 0.9,
    weight_decay: 1e-4,
};
/// Learning rate of the training step.
pub const LEARNING_RATE: f64 = 0.1;
/// The batch of the training step; its first sample is the one whose logits are reported.
pub const BATCH: [(&[u8; 784], u8); 2] = [(&DIGIT_7, 7), (&DIGIT_1, 1)];

/// An all-zero network, as a constant so that a static of it lands in `.bss` without ever
/// being built on the stack.
const ZERO_MLP: BootMlp = Mlp {
    hidden: Dense {
        w: [[0.0; HIDDEN]; 784],
        b: [0.0; HIDDEN],
    },
    output: Dense {
        w: [[0.0; 10]; HIDDEN],
        b: [0.0; 10],
    },
};

/// The model, its gradient and its momentum: about 150 KB together, which belongs in a static
/// rather than on a stack (see [`take_nets`]).
pub struct Nets {
    /// The network being trained.
    pub model: BootMlp,
    /// Gradient buffer.
    pub grad: BootMlp,
    /// SGD momentum buffer.
    pub velocity: BootMlp,
}

/// [`Nets`] in a static, lent out once by [`take_nets`].
struct NetsCell {
    taken: Flag,
    nets: UnsafeCell<Nets>,
}

// SAFETY: `take_nets` hands out at most one reference to the contents, whichever thread asks.
unsafe impl Sync for NetsCell {}

static NETS: NetsCell = NetsCell {
    taken: Flag::new(),
    nets: UnsafeCell::new(Nets {
        model: ZERO_MLP,
        grad: ZERO_MLP,
        velocity: ZERO_MLP,
    }),
};

/// The statically allocated [`Nets`] (zeroed, in `.bss`), handed out once; `None` on every
/// later call.
pub fn take_nets() -> Option<&'static mut Nets> {
    if NETS.taken.set() {
        return None;
    }
    // SAFETY: the flag above lets only the first caller through, so this is the only reference
    // to the contents ever created.
    Some(unsafe { &mut *NETS.nets.get() })
}

/// What the boot computation found.
#[derive(Clone, Debug, PartialEq)]
pub struct BootReport {
    /// Logits of the first batch sample before the step.
    pub logits_before: [f32; 10],
    /// `sample_loss` of the first batch sample before the step.
    pub loss_before: f32,
    /// Mean batch loss returned by `backprop`.
    pub batch_loss: f32,
    /// Logits of the first batch sample after the step.
    pub logits_after: [f32; 10],
    /// `sample_loss` of the first batch sample after the step.
    pub loss_after: f32,
}

/// Initializes `nets` from [`SEED`] and runs the boot computation on [`BATCH`].
pub fn boot_step(nets: &mut Nets) -> BootReport {
    let Nets {
        model,
        grad,
        velocity,
    } = nets;
    model.init(&mut Rng::new(SEED));
    velocity.fill_zero();

    let mut xs = [[0.0f32; 784]; BATCH.len()];
    let mut labels = [0u8; BATCH.len()];
    for ((x, label), (pixels, y)) in xs.iter_mut().zip(&mut labels).zip(BATCH) {
        normalize(pixels, x);
        *label = y;
    }
    let (x, y) = (&xs[0], labels[0]);

    let logits_before = model.logits(x);
    let loss_before = model.sample_loss(x, y);
    let batch_loss = model.backprop(&xs, &labels, grad);
    SGD.step(model, grad, velocity, LEARNING_RATE);
    BootReport {
        logits_before,
        loss_before,
        batch_loss,
        logits_after: model.logits(x),
        loss_after: model.sample_loss(x, y),
    }
}

impl BootReport {
    /// Sanity checks worth failing the run for: every number finite, softmax sums to 1.
    pub fn check(&self) -> Result<(), &'static str> {
        let scalars = [self.loss_before, self.batch_loss, self.loss_after];
        let all = self.logits_before.iter().chain(&self.logits_after);
        if !all.chain(&scalars).all(|v| v.is_finite()) {
            return Err("a logit or a loss is not finite");
        }
        for logits in [&self.logits_before, &self.logits_after] {
            let mut p = [0.0f32; 10];
            softmax(logits, &mut p);
            if (p.iter().sum::<f32>() - 1.0).abs() > 1e-5 {
                return Err("softmax does not sum to 1");
            }
        }
        Ok(())
    }

    /// Prints the report, one `key value...` line per quantity. Values are the `f32` bit
    /// patterns in hex (exact, easy to parse); after a `#` the same numbers in decimal.
    pub fn write(&self, out: &mut impl Write) -> fmt::Result {
        writeln!(out, "model 784-{HIDDEN}-10 f32 seed {SEED}")?;
        write_values(out, "logits_before", &self.logits_before)?;
        write_values(out, "loss", &[self.loss_before])?;
        write_values(out, "batch_loss", &[self.batch_loss])?;
        write_values(out, "logits_after", &self.logits_after)?;
        write_values(out, "loss_after", &[self.loss_after])?;
        writeln!(out, "predicted_before {}", argmax(&self.logits_before))?;
        writeln!(out, "predicted {}", argmax(&self.logits_after))
    }
}

fn write_values(out: &mut impl Write, key: &str, values: &[f32]) -> fmt::Result {
    write!(out, "{key}")?;
    for v in values {
        write!(out, " {:08x}", v.to_bits())?;
    }
    write!(out, " #")?;
    for v in values {
        write!(out, " {v}")?;
    }
    writeln!(out)
}

/// The whole boot job: compute, print, check.
pub fn boot(out: &mut impl Write) -> Result<(), &'static str> {
    let nets = take_nets().ok_or("boot() runs once")?;
    let report = boot_step(nets);
    report.write(out).map_err(|_| "cannot print")?;
    report.check()
}
