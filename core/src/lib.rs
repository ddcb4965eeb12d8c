//! # digits-core
//!
//! A small neural network for handwritten digits, written once for every platform: `#![no_std]`,
//! no allocator, fixed-size arrays whose shapes are in the types, and `libm` for the math, so the
//! same code (and the same bits) trains on a PC and runs on a microcontroller.
//!
//! - [`Mlp`]: dense -> ReLU -> dense, softmax cross-entropy; [`MnistMlp`] is `Mlp<784, 128, 10>`.
//! - Gradients by [`Mlp::backprop`] and by central differences: [`numgrad`] is the definition
//!   for any loss and parameters, [`structured_numgrad`] the same differences for an [`Mlp`]
//!   re-evaluated only where each perturbation reaches (so a whole numerical gradient is
//!   affordable, and as accurate as backprop); [`gradcheck`] compares them tensor by tensor.
//! - Training parts: [`Rng`] (seeded, platform-independent), [`Init`], [`Sgd`] with momentum
//!   and weight decay, [`Schedule`], batch normalization ([`MlpBn`], foldable into an [`Mlp`]).
//! - [`Deep`]: three hidden layers of (clipped) ReLU, trained with [`Adam`] or [`Muon`] (orthogonalized
//!   momentum for the hidden weight matrices); [`downsample`]
//!   makes a 28x28 image smaller (area averaging in integers) for its input; [`qat`] trains
//!   it with low-bit weights ([`lowbit`]) as the integer network [`compact`] that runs it.
//! - `preprocess` (feature `alloc`): a person's picture of a digit, any size, to the 28x28
//!   picture MNIST would have made of it.
//! - [`pixels`]: 8-bit pixels to network inputs; [`verdict`]: whether a 28x28 picture is a
//!   digit at all ("not a digit", and why), shared by every front end and the device.
//! - [`fast`]: the same arithmetic, bit for bit, with less memory traffic, each module next to
//!   the test that proves it equal to the reference above: inputs as their lit pixels, logits
//!   straight from pixels, and one fused SGD step on a whole batch (bit-identical to
//!   [`Mlp::backprop`] + [`Sgd::step`]) whose parts may run on two threads.
//! - On the device: [`quant`] (int8 post-training quantization, integer arithmetic up to the
//!   logits) and [`finetune`] (the output layer trained on small batches in fixed memory).
//! - [`teach`]: a browser page's fine-tuning of either precision on its user's labelled
//!   drawings, kept here so that host tests replay it bit for bit.
//! - Formats both sides of the device link speak: [`model_file`] (the versioned, checksummed
//!   model file; [`compact_file`], its version 2 for compact networks), [`protocol`] and
//!   [`frame`] (the host <-> device messages and their framing), [`blob`] (the batch of images
//!   the host loads into the device's memory) and [`digest`] (the FNV-1a digests of parameters
//!   and logits that the two sides compare).
//! - [`update`]: a new model pushed onto a running device, into the one of two flash slots
//!   that does not run, committed by one word: safe against a power cut at any moment.
//!
//! Every computation is generic over [`Scalar`] (`f32` and `f64`): `f32` to train and deploy,
//! `f64` to check gradients.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod activation;
pub mod adam;
pub mod batchnorm;
pub mod blob;
pub mod compact;
pub mod compact_file;
pub mod conv;
pub mod crc32;
pub mod decimal;
pub mod deep;
pub mod dense;
pub mod detector;
pub mod digest;
pub mod downsample;
pub mod fast;
pub mod finetune;
pub mod frame;
pub mod gradcheck;
pub mod init;
pub mod layer;
pub mod loss;
pub mod lowbit;
pub mod mlp;
pub mod mlp_bn;
pub mod model_file;
pub mod muon;
pub mod numgrad;
pub mod optim;
pub mod params;
pub mod pixels;
#[cfg(feature = "alloc")]
pub mod preprocess;
pub mod protocol;
pub mod qat;
pub mod quant;
pub mod rng;
pub mod scalar;
pub mod schedule;
pub mod softmax;
pub mod structured_numgrad;
pub mod teach;
pub mod update;
pub mod verdict;

pub use adam::Adam;
pub use batchnorm::BatchNorm;
pub use conv::Conv;
pub use deep::Deep;
pub use dense::Dense;
pub use init::Init;
pub use layer::Linear;
pub use mlp::{Activations, Mlp, MnistMlp};
pub use mlp_bn::{BnScratch, MlpBn};
pub use muon::Muon;
pub use optim::Sgd;
pub use params::Params;
pub use quant::{Classifier, MnistQuant, QuantMlp};
pub use rng::Rng;
pub use scalar::Scalar;
pub use schedule::Schedule;
