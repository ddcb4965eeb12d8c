//! From a picture file of one digit to the 28x28 picture the network was trained on: the file
//! is read here ([`load_gray`]); the picture is made MNIST-like by the core's
//! [`digits_core::preprocess`], the same code the browser page runs.

mod load;
#[cfg(test)]
mod tests;

use digits_core::preprocess::Gray;
pub use digits_core::preprocess::{PreprocessError, SIDE, stroke_width};
use image::GrayImage;

pub use load::{LoadError, load_gray};

/// Largest picture accepted, in pixels (a 50-megapixel camera's full resolution).
pub const MAX_PIXELS: u64 = 50_000_000;
/// Most memory the image decoder may allocate.
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// The core's view of an image's pixels.
pub fn gray_of(image: &GrayImage) -> Gray<'_> {
    Gray::new(
        image.width() as usize,
        image.height() as usize,
        image.as_raw(),
    )
    .expect("a GrayImage holds width x height levels")
}

/// The network's view of a picture of one digit ([`digits_core::preprocess::to_mnist`]).
pub fn to_mnist(gray: &GrayImage) -> Result<[u8; SIDE * SIDE], PreprocessError> {
    digits_core::preprocess::to_mnist(gray_of(gray))
}
