//! From a model to answers: classifying on the host as fast as the machine allows, `digits eval`
//! (metrics, tables, plots) and `digits predict` (people's own pictures, preprocessed the way
//! MNIST was made, with the verdict "not a digit" when a picture holds none).
//!
//! Both `predict`s, the host's and the device's, answer in the same words ([`answer`]).
//!
//! The verdict is measured (`digits bench --mode not-a-digit`, [`verdict_bench`]) on digits and
//! on non-digits drawn as photos ([`photo`], [`nondigits`]).

pub mod answer;
pub mod detector;
pub mod infer;
pub mod metrics;
pub mod nondigits;
pub mod photo;
pub mod plots;
pub mod predict;
pub mod preprocess;
pub mod robustness;
pub mod verdict_bench;
