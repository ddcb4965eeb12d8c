//! Helpers shared by the core's integration tests.
#![allow(dead_code)]

pub mod compact;
pub mod damage;
pub mod dd;
pub mod gradcheck;
pub mod sim_flash;
pub mod update;

use digits_core::Rng;

/// The first `n` test digits (scaled to [0, 1] as the network sees them) and their labels:
/// of the full MNIST when it is here, else of the slice committed in `testkit`.
pub fn test_batch(n: usize) -> (Vec<[f64; 784]>, Vec<u8>) {
    let digits = testkit::test_digits(n);
    (
        digits.images.iter().map(normalized).collect(),
        digits.labels,
    )
}

/// Pixels scaled as the network sees them.
pub fn normalized<const N: usize>(pixels: &[u8; N]) -> [f64; N] {
    let mut x = [0.0; N];
    digits_core::pixels::normalize(pixels, &mut x);
    x
}

/// A random input with about `zero_fraction` exact zeros (as MNIST's background).
pub fn random_input<const N: usize>(rng: &mut Rng, zero_fraction: f64) -> [f64; N] {
    core::array::from_fn(|_| {
        if rng.uniform() < zero_fraction {
            0.0
        } else {
            rng.uniform()
        }
    })
}

/// Converts an `f64` array to `f32`.
pub fn to_f32<const N: usize>(x: &[f64; N]) -> [f32; N] {
    core::array::from_fn(|i| x[i] as f32)
}
