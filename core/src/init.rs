//! Weight initialization: He (for layers followed by ReLU) and Xavier (for the output layer).
//!
//! Values are drawn in `f64` and rounded to the scalar, so an `f32` and an `f64` network made
//! from the same seed are the same network up to rounding.

use crate::{Rng, Scalar};

/// How to draw a layer's initial weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Normal with standard deviation `sqrt(2 / fan_in)` (He et al., 2015).
    He,
    /// Uniform in `+-sqrt(6 / (fan_in + fan_out))` (Glorot and Bengio, 2010).
    Xavier,
}

impl Init {
    /// Fills `weights` for a layer with the given fan-in and fan-out.
    pub fn fill<S: Scalar>(self, weights: &mut [S], fan_in: usize, fan_out: usize, rng: &mut Rng) {
        match self {
            Init::He => {
                let std = libm::sqrt(2.0 / fan_in as f64);
                for w in weights {
                    *w = S::from_f64(std * rng.normal());
                }
            }
            Init::Xavier => {
                let limit = libm::sqrt(6.0 / (fan_in + fan_out) as f64);
                for w in weights {
                    *w = S::from_f64(rng.uniform_in(-limit, limit));
                }
            }
        }
    }
}
