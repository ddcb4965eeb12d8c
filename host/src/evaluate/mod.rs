//! From a model to answers: classifying on the host as fast as the machine allows, `digits eval`
//! (metrics, tables, plots) and `digits predict` (people's own pictures, preprocessed the way
//! MNIST was made).

pub mod infer;
pub mod metrics;
pub mod plots;
pub mod predict;
pub mod preprocess;
