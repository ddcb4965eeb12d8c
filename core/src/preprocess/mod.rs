//! From a photo or scan of one digit to the 28x28 picture the network was trained on.
//!
//! MNIST was made like this: white ink (255) on black (0), the digit scaled to fit a 20x20 box
//! keeping its aspect ratio (anti-aliased, so edges are gray), then placed in a 28x28 field so
//! that the center of mass of the ink falls on the center. (Measured on the test set: the mean
//! center of mass is (14.00, 13.99) in pixel-index coordinates.) A person's own picture is
//! anything but: any size, usually dark ink on light paper, with paper that is not quite white,
//! uneven lighting, JPEG noise, the digit anywhere. [`to_mnist`] undoes all that:
//!
//! 1. very large pictures are first averaged down to at most [`WORK_SIDE`] pixels a side (the
//!    result is 20 pixels tall; more detail only costs time and memory);
//! 2. the paper's brightness is estimated from the border of the picture as a plane (a robust
//!    fit, so a slight lighting gradient is removed and ink touching the border is ignored);
//! 3. the ink is whatever differs from the paper, on the side (darker or lighter) where most of
//!    the difference is: dark ink on light paper and light chalk on a dark board both work;
//! 4. the difference is stretched: below the noise level (measured on the border) it is 0, and
//!    the strongest third of the ink becomes full intensity, as in MNIST;
//! 5. small specks far from the digit (dust, noise) are dropped;
//! 6. strokes much thinner than MNIST's (a fine pen on a large digit: after shrinking to 20
//!    pixels they would be faint hairlines the network never saw) are thickened to MNIST's
//!    typical width with a round brush;
//! 7. the ink is cropped, scaled to fit 20x20 (area averaging when shrinking, linear
//!    interpolation when enlarging) and placed so its center of mass is at (14, 14).
//!
//! It needs a heap (the picture's size is the person's), so it is behind the feature `alloc`;
//! the same code runs in `digits predict` and in the browser page, bit for bit: rounding goes
//! through `libm`, which is exact, as `std`'s is.

mod paper;
mod shape;

use alloc::vec::Vec;
use core::fmt;

use libm::round;

use crate::decimal::Whole;
use crate::verdict::Reason;
use paper::{Plane, ink};
pub use shape::stroke_width;
use shape::{drop_specks, resample, thicken};

/// Side of the network's input picture.
pub const SIDE: usize = 28;
/// Side of the box the digit is scaled to fit, as in MNIST.
pub const BOX: usize = 20;
/// Larger pictures are averaged down to this many pixels a side before the analysis.
pub const WORK_SIDE: usize = 1024;

/// Least difference from the paper (of 255) that counts as ink at all: below it the picture is
/// taken to be blank rather than stretching noise into a "digit".
const MIN_CONTRAST: f32 = 40.0;
/// Most noise (robust standard deviation of the border, levels of 255) of a picture of paper:
/// above it the picture is noise, with nothing to tell ink from. A phone photo's is a few levels.
const MAX_NOISE: f32 = 30.0;
/// Share of the ink that ends at full intensity: in MNIST about a third of the ink pixels are
/// 253 or more, the rest are anti-aliased edges.
const SATURATED_SHARE: f32 = 0.35;
/// Ink weaker than this share of the strongest ink is dropped: faint shadows and halos.
const FAINT_SHARE: f32 = 0.12;
/// Connected pieces of ink with less than this share of the largest piece's ink are specks.
const SPECK_SHARE: f32 = 0.03;
/// Stroke widths in pixels of the 20-pixel box, measured as 2 x area / perimeter of the
/// half-intensity ink (see [`stroke_width`]). On the MNIST test set: 5th percentile 1.23,
/// median 1.84. Thinner than `THIN_STROKE` is thickened to `TARGET_STROKE`; anything MNIST-like
/// is left alone.
const THIN_STROKE: f32 = 1.2;
/// See [`THIN_STROKE`].
const TARGET_STROKE: f32 = 1.8;

/// Why a picture has no digit in it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PreprocessError {
    /// The picture has no pixels.
    Empty,
    /// Nothing differs enough from the background to be ink.
    NoInk {
        /// The strongest difference from the background that was found (of 255).
        contrast: f32,
    },
    /// The picture is noise: its border varies too much to tell ink from paper.
    Noisy {
        /// The border's robust standard deviation (of 255).
        noise: f32,
    },
}

impl fmt::Display for PreprocessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreprocessError::Empty => f.write_str("the image has no pixels"),
            PreprocessError::NoInk { contrast } => write!(
                f,
                "no ink found: the strongest marks differ from the background by only \
                 {} of 255 levels (at least {} needed); is the image blank?",
                Whole(*contrast),
                Whole(MIN_CONTRAST)
            ),
            PreprocessError::Noisy { noise } => write!(
                f,
                "the image is noise: its background varies by {} levels of 255 \
                 (at most {} to tell ink from paper)",
                Whole(*noise),
                Whole(MAX_NOISE)
            ),
        }
    }
}

impl core::error::Error for PreprocessError {}

/// A grayscale picture borrowed row by row: `width * height` levels, 0 black to 255 white.
#[derive(Clone, Copy, Debug)]
pub struct Gray<'a> {
    width: usize,
    height: usize,
    levels: &'a [u8],
}

impl<'a> Gray<'a> {
    /// `levels` as a `width` x `height` picture; `None` unless it holds exactly that many.
    pub fn new(width: usize, height: usize, levels: &'a [u8]) -> Option<Self> {
        (width.checked_mul(height) == Some(levels.len())).then_some(Gray {
            width,
            height,
            levels,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The levels, row by row.
    pub fn levels(&self) -> &'a [u8] {
        self.levels
    }
}

/// The picture a network is to see, or the reason there is nothing to see.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a value, so that it can leave scratch memory (no heap)"
)]
pub enum Prepared {
    /// The 28x28 picture, prepared as MNIST was.
    Picture([u8; SIDE * SIDE]),
    /// Not a digit, with no picture to classify (blank, or noise).
    Nothing(Reason),
}

/// Preprocesses one picture for a front end: a blank or noisy picture is a verdict ("not a
/// digit"), not an error; a picture with no pixels is an error.
pub fn prepare(gray: Gray<'_>) -> Result<Prepared, PreprocessError> {
    match to_mnist(gray) {
        Ok(pixels) => Ok(Prepared::Picture(pixels)),
        Err(PreprocessError::NoInk { .. }) => Ok(Prepared::Nothing(Reason::Blank)),
        Err(PreprocessError::Noisy { .. }) => Ok(Prepared::Nothing(Reason::Noise)),
        Err(e) => Err(e),
    }
}

/// The network's view of a picture of one digit: 28x28, white ink on black, the ink scaled to
/// fit 20x20 with its aspect ratio kept and its center of mass at (14, 14), as MNIST was made.
/// See the module documentation for the steps.
pub fn to_mnist(gray: Gray<'_>) -> Result<[u8; SIDE * SIDE], PreprocessError> {
    if gray.width == 0 || gray.height == 0 {
        return Err(PreprocessError::Empty);
    }
    let img = Plane::working_copy(gray);
    let mut ink = ink(&img)?;
    let (x0, y0, x1, y1) =
        drop_specks(&mut ink, img.w, img.h).ok_or(PreprocessError::NoInk { contrast: 0.0 })?;
    let (mut bw, mut bh) = (x1 - x0, y1 - y0);
    let mut crop: Vec<f32> = (y0..y1)
        .flat_map(|y| ink[y * img.w + x0..y * img.w + x1].iter().copied())
        .collect();
    let width = stroke_width(&crop, bw, bh);
    if width < THIN_STROKE {
        (crop, bw, bh) = thicken(&crop, bw, bh, width);
    }
    // The longer side becomes exactly BOX; the shorter keeps the proportion (at least a pixel).
    let scale = BOX as f64 / bw.max(bh) as f64;
    let fit = |n: usize| (round(n as f64 * scale) as usize).clamp(1, BOX);
    let (nw, nh) = (fit(bw), fit(bh));
    let small = resample(&crop, bw, bh, nw, nh);

    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in small.iter().enumerate() {
        let v = f64::from(v);
        mass += v;
        mx += v * (i % nw) as f64;
        my += v * (i / nw) as f64;
    }
    if mass <= 0.0 {
        return Err(PreprocessError::NoInk { contrast: 0.0 });
    }
    // A whole-pixel shift (no second resampling blur), kept inside the field so no ink is cut.
    let center = (SIDE / 2) as f64;
    let place = |c: f64, n: usize| (round(center - c).max(0.0) as usize).min(SIDE - n);
    let (ox, oy) = (place(mx / mass, nw), place(my / mass, nh));
    let mut out = [0u8; SIDE * SIDE];
    for y in 0..nh {
        for x in 0..nw {
            out[(y + oy) * SIDE + x + ox] =
                libm::roundf(small[y * nw + x] * 255.0).clamp(0.0, 255.0) as u8;
        }
    }
    Ok(out)
}
