//! What differs between the boards the firmware runs on, one module each; `build.rs` picks the
//! board from the target and a feature, and its `memory/BOARD.x`:
//!
//! | board | target | core |
//! |---|---|---|
//! | `mps2-an386` (QEMU's FPGA image) | `thumbv7em-none-eabihf` | Cortex-M4F |
//! | `netduinoplus2` (STM32F405), `--features netduinoplus2` | `thumbv7em-none-eabihf` | Cortex-M4F |
//! | `lm3s6965evb` (Stellaris LM3S6965) | `thumbv7m-none-eabi` | Cortex-M3, no FPU or DSP |
//! | `microbit` (BBC micro:bit v1, nRF51822) | `thumbv6m-none-eabi` | Cortex-M0, no FPU or DSP |
//!
//! Each module has `NAME` and `eval_source()`, where the `eval` programs find their data blob
//! (the PSRAM, or a file read over semihosting, [`host_blob`], where there is none). A board
//! that serves the protocol also has `Uart` (`take`, `read`, `write`), `BAUD` and
//! `serve_data()`, the blob its evaluate request reads. `stopwatch()` gives the clock that
//! counts instructions under `qemu -icount`: SysTick, except on the micro:bit.

#[cfg(not(board = "mps2-an386"))]
pub mod host_blob;

#[cfg(board = "mps2-an386")]
mod mps2_an386;
#[cfg(board = "mps2-an386")]
pub use mps2_an386::*;

#[cfg(board = "netduinoplus2")]
mod netduinoplus2;
#[cfg(board = "netduinoplus2")]
pub use netduinoplus2::*;

#[cfg(board = "lm3s6965evb")]
mod lm3s6965evb;
#[cfg(board = "lm3s6965evb")]
pub use lm3s6965evb::*;

#[cfg(board = "microbit")]
mod microbit;
#[cfg(board = "microbit")]
pub use microbit::*;

/// SysTick, on every board whose core has one (the nRF51's Cortex-M0 has none).
#[cfg(not(board = "microbit"))]
pub fn stopwatch() -> Option<crate::device::SysTick> {
    crate::device::SysTick::take()
}
