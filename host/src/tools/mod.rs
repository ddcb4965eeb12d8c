//! The tools around the pipeline: gradient checks, benchmarks, quantization and inspection of
//! model files.

pub mod bench;
pub mod gradcheck;
pub mod inspect;
pub mod measure;
pub mod numgrad_bench;
pub mod peak;
pub mod quantize;
pub mod speed;
