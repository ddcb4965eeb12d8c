//! `digits`, the host side of the project: everything the `digits` command does, as a library
//! (so that the end-to-end tests and the fuzz targets reach the very code the command runs).
//! `main.rs` only parses the command line and dispatches.
//!
//! The folders follow the data flow:
//!
//! - [`data`]: the MNIST files, found, fetched, validated and read; `digits data`.
//! - [`train`]: the training loop, its fast step on the CPU's threads, checkpoints,
//!   augmentation; `digits train`.
//! - [`evaluate`]: inference on the host, `digits eval` with its plots, and `digits predict`
//!   with the preprocessing of people's own pictures.
//! - [`device`]: the firmware in QEMU and the link to it; `digits device`.
//! - [`tools`]: gradient checks, benchmarks, quantization, inspection of model files.
//! - [`web`]: the browser page (the core in WebAssembly) and its server; `digits web`.
//!
//! [`distort`] holds the distortions of a digit that training augments with and
//! `digits eval --robustness` measures against.
//!
//! Four modules serve every stage: [`cli`] (the command line's checks of what it accepts, and
//! its progress bars), [`model_io`] (model files on disk), [`simd`] (the vector instructions
//! the hot loops are compiled for) and [`workspace`] (the source tree, wherever the command
//! runs).

pub mod cli;
pub mod data;
pub mod device;
pub mod distort;
pub mod evaluate;
pub mod model_io;
pub mod simd;
pub mod tools;
pub mod train;
pub mod web;
pub mod workspace;
