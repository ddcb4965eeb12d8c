//! The MNIST data layer: finds, reads and validates the four IDX files of MNIST or
//! Fashion-MNIST, and verifies them against the official SHA-256 checksums.
//!
//! Layout of a data directory: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each raw or gzipped with a `.gz`
//! suffix. When both forms of a file exist the raw one is read (see [`Dataset::load`]).
//! Whether a file is gzipped is decided by its first bytes, not by its name.
//!
//! Every file is validated completely before it is used: IDX magic number, 28x28 images,
//! exact length (neither truncated nor followed by extra bytes), labels 0-9, and as many
//! labels as images. No file may exceed 100 MiB once decompressed, so a corrupt header or a
//! gzip bomb is refused instead of exhausting memory.

mod checksum;
pub mod command;
mod dir;
mod error;
pub mod fetch;
mod idx;
mod mnist;
pub mod shift;
mod source;
#[cfg(test)]
mod tests;

pub use {
    checksum::{FileCheck, FileReport, FileState, check, check_one, expected_sha256},
    dir::{DataDir, resolve_dir},
    error::DataError,
    idx::{IMAGE_PIXELS, idx_images_bytes, idx_labels_bytes, read_idx_images, read_idx_labels},
    mnist::{Dataset, DatasetKind, FILES, Split, Splits, TestSet},
};
