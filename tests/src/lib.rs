//! End-to-end tests live in `tests/tests/`:
//! - `firmware_boot.rs`: the firmware boots in QEMU and its forward pass, loss and SGD step are
//!   bit for bit the host's; a panic or a HardFault exits QEMU non-zero;
//! - `firmware_eval.rs`: the firmware classifies all 10,000 MNIST test images with the model
//!   in flash, with the host's bits for every logit, and counts instructions per inference;
//!   bad data blobs are rejected.
//!
//! `tests/common/mod.rs` holds what they share (find QEMU, build the firmware, run it).
//!
//! The library itself holds [`fuzz`]: the properties the fuzz targets check, which
//! `tests/fuzz_regressions.rs` replays on the committed corpora.

pub mod fuzz;
