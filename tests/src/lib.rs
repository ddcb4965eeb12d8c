//! End-to-end tests live in `tests/tests/`:
//! - `firmware_boot.rs`: the firmware boots in QEMU and its forward pass, loss and SGD step are
//!   bit for bit the host's; a panic or a HardFault exits QEMU non-zero;
//! - `firmware_eval.rs`: the firmware classifies all 10,000 MNIST test images with the model
//!   in flash, in f32 and in int8, with the host's bits for every logit, and counts
//!   instructions per inference; a missing or truncated data blob is an error;
//! - `firmware_lm3s.rs`: the same for the int8 model on a Cortex-M3 without FPU, reading the
//!   images over semihosting;
//! - `firmware_serve.rs`: the `serve` firmware over its emulated UART: ping, info, real MNIST
//!   digits classified with the host's bits, a session that survives noise and damaged frames;
//! - `serve_logic.rs`: the same request handling (`firmware::serve`) on the host, byte by byte,
//!   fine-tuning included, checked against the host's run of the core code;
//! - `fuzz_regressions.rs`: the fuzz corpora replayed through [`fuzz`]'s properties.
//!
//! `tests/common/` holds what they share: QEMU and the firmware build (through `host::device`,
//! the same runner `digits device` uses), the data blob and the report of `eval`, the MNIST
//! test set and the models read independently of the device code. Every test that needs QEMU
//! or the full MNIST follows `testkit`'s one skip rule.
//!
//! The library itself holds [`fuzz`]: the properties the fuzz targets check, which
//! `tests/fuzz_regressions.rs` replays on the committed corpora.

pub mod fuzz;
