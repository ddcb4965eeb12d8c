//! Classifying images on the host as fast as the machine allows: the core's
//! [`logits_from_pixels`](digits_core::Mlp::logits_from_pixels) compiled for the CPU's widest
//! vectors ([`dispatch`]), and a batch spread over rayon's threads. The logits are
//! bit-identical to `normalize` + [`Mlp::logits`](digits_core::Mlp::logits), the path the
//! firmware runs, on any number of threads and any vector width.

use digits_core::MnistMlp;
use rayon::prelude::*;

use crate::simd::dispatch;

/// Images per piece of a batch handed to a thread: large enough that the hand-off (and the
/// dispatch) costs nothing next to it, small enough to balance two threads.
const PIECE: usize = 512;

/// The logits of one image.
pub fn logits(model: &MnistMlp, pixels: &[u8; 784]) -> [f32; 10] {
    dispatch(
        #[inline(always)]
        || model.logits_from_pixels(pixels),
    )
}

/// The logits of every image of `images` into `out` (as long), on all of rayon's threads.
pub fn logits_batch(model: &MnistMlp, images: &[[u8; 784]], out: &mut [[f32; 10]]) {
    assert_eq!(
        images.len(),
        out.len(),
        "images and logits differ in number"
    );
    out.par_chunks_mut(PIECE)
        .zip(images.par_chunks(PIECE))
        .for_each(|(out, images)| {
            dispatch(
                #[inline(always)]
                || {
                    for (o, img) in out.iter_mut().zip(images) {
                        *o = model.logits_from_pixels(img);
                    }
                },
            )
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::aligned::ModelBox;
    use digits_core::Rng;
    use digits_core::pixels::normalize;

    /// Against `normalize` + `Mlp::logits` bit for bit, on random MNIST-like images (a fifth
    /// lit), a dark and a fully lit one, in a batch that leaves a partial piece, on one thread
    /// and on all.
    #[test]
    fn batch_and_single_are_the_reference_bit_for_bit() {
        let mut rng = Rng::new(4);
        let mut model = ModelBox::zeroed();
        model.init(&mut rng);
        let mut images = testkit::random_images(rng.next_u64(), 2 * PIECE + 37);
        images[3] = [0; 784];
        images[PIECE + 1] = [255; 784];
        let reference: Vec<[u32; 10]> = images
            .iter()
            .map(|img| {
                let mut x = [0.0f32; 784];
                normalize(img, &mut x);
                model.logits(&x).map(f32::to_bits)
            })
            .collect();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool");
            let mut out = vec![[0.0f32; 10]; images.len()];
            pool.install(|| logits_batch(&model, &images, &mut out));
            for (n, (o, r)) in out.iter().zip(&reference).enumerate() {
                assert_eq!(o.map(f32::to_bits), *r, "image {n}, {threads} threads");
            }
        }
        for (n, (img, r)) in images.iter().zip(&reference).enumerate().step_by(97) {
            assert_eq!(logits(&model, img).map(f32::to_bits), *r, "image {n} alone");
        }
    }
}
