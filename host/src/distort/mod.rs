//! Distortions of a 28x28 digit, one place for each: what training augments with and what
//! `digits eval --robustness` measures a model against, so the two can never drift apart.
//!
//! - [`affine`]: rotation, scale, shear and shift about the image's centre;
//! - [`elastic`]: smooth random displacement fields (Simard, Steinkraus, Platt 2003);
//! - [`sample`]: the one resampler both feed, bilinear in fixed point, so a distorted image is
//!   the same bytes on every machine;
//! - [`stroke`]: thicker or thinner strokes (grayscale dilation and erosion).

pub mod affine;
pub mod elastic;
pub mod sample;
pub mod stroke;

pub use affine::Affine;
pub use elastic::{Elastic, Field};
pub use sample::Warp;
