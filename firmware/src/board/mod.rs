//! What differs between the boards the firmware runs on, one module each; `build.rs` picks the
//! board from the target (`thumbv7em-none-eabihf`: mps2-an386, Cortex-M4F; `thumbv7m-none-eabi`:
//! lm3s6965evb, Cortex-M3 without FPU or DSP instructions) and its `memory-BOARD.x`.
//!
//! Each module has: `NAME`, and `eval_source()`, where the `eval` programs find their data blob
//! (the PSRAM, or a file read over semihosting where there is none).

#[cfg(board = "mps2-an386")]
mod mps2_an386;
#[cfg(board = "mps2-an386")]
pub use mps2_an386::*;

#[cfg(board = "lm3s6965evb")]
mod lm3s6965evb;
#[cfg(board = "lm3s6965evb")]
pub use lm3s6965evb::*;
