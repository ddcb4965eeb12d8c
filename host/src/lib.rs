//! The parts of `digits` that read bytes from outside, as a library: the IDX data loader and
//! the preprocessing of users' pictures, so that the fuzz targets (`fuzz/`) reach the very code
//! the command runs. Everything else lives in the binary (`src/main.rs`).

pub mod data;
pub mod preprocess;
