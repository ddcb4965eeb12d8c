//! Helpers shared by the core's integration tests.
#![allow(dead_code)]

pub mod dd;

use std::io::Read;
use std::path::PathBuf;

use digits_core::Rng;

/// Allocates a value whose all-zero bit pattern is valid (arrays of floats) directly on the heap:
/// `Mlp<784, 128, 10, f64>` is 814 KB, more than a test thread's stack should carry.
pub fn boxed_zeroed<T>() -> Box<T> {
    // SAFETY: only used for structs made of float arrays, for which all-zero bits is 0.0.
    unsafe { Box::<T>::new_zeroed().assume_init() }
}

/// The real MNIST, shipped next to the repository.
pub fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist")
}

/// The first `n` test images (as pixels) and labels of the real MNIST.
pub fn mnist_test_pixels(n: usize) -> (Vec<[u8; 784]>, Vec<u8>) {
    let read = |name: &str| {
        let file = std::fs::File::open(mnist_dir().join(name)).unwrap_or_else(|e| {
            panic!("{name}: {e} (the real MNIST is expected in ../shared/data/mnist)")
        });
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    };
    let images = read("t10k-images-idx3-ubyte.gz");
    let labels = read("t10k-labels-idx1-ubyte.gz");
    let pixels = (0..n)
        .map(|k| images[16 + k * 784..16 + (k + 1) * 784].try_into().unwrap())
        .collect();
    (pixels, labels[8..8 + n].to_vec())
}

/// The first `n` test images (scaled to [0, 1]) and labels of the real MNIST.
pub fn mnist_test_batch(n: usize) -> (Vec<[f64; 784]>, Vec<u8>) {
    let (pixels, labels) = mnist_test_pixels(n);
    (pixels.iter().map(normalized).collect(), labels)
}

/// Pixels scaled as the network sees them.
pub fn normalized<const N: usize>(pixels: &[u8; N]) -> [f64; N] {
    let mut x = [0.0; N];
    digits_core::input::normalize(pixels, &mut x);
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
