//! Helpers shared by the binary's unit tests.

use digits_core::Rng;

/// `n` random images shaped like MNIST's as far as speed and sparsity go: about a fifth of the
/// pixels lit, with full-scale and partial values.
pub fn random_images(rng: &mut Rng, n: usize) -> Vec<[u8; 784]> {
    (0..n)
        .map(|_| {
            let mut img = [0u8; 784];
            for p in img.iter_mut() {
                let r = rng.next_u64();
                if r.is_multiple_of(5) {
                    *p = (r >> 8) as u8;
                }
            }
            img
        })
        .collect()
}
