//! Is there a digit at all? The verdict on a 28x28 picture, next to the network's answer.
//!
//! A classifier answers every picture with a digit: a dot, a bar or a shoe get a confident "8".
//! The verdict looks at the picture the network sees (white ink on black, the ink fitted to a
//! 20x20 box and centred by mass, as MNIST was made, and as `digits predict` prepares a photo)
//! and says "not a digit" when the ink is unlike any MNIST digit's, with the reason a person
//! understands, or when the network itself is unsure. The limits ([`Limits::MNIST`]) are
//! properties of MNIST's digits, the same for every model trained on them, so no model file
//! needs to carry anything; the one model-side limit is the least confidence of the top digit.
//!
//! The ink's shape is measured on the half-intensity ink (pixels of 128 and more), as MNIST's
//! stroke figures are: its area, its perimeter (edges between ink and no ink), their ratio (the
//! stroke width, `2 x area / perimeter`: for long strokes the area is length x width and the
//! perimeter twice the length), its bounding box and its 8-connected pieces.

use core::fmt;

use crate::decimal::Whole;
use crate::detector::Detector;

/// Side of the picture.
pub const SIDE: usize = 28;
/// Pixels at or above this level are the half-intensity ink that shapes are measured on.
pub const HALF: u8 = 128;

/// The shape of the ink of one 28x28 picture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InkShape {
    /// Sum of all pixels, in full-intensity pixels (`sum p / 255`).
    pub mass: f32,
    /// Pixels of half-intensity ink.
    pub area: u32,
    /// Edges between a half-intensity ink pixel and a pixel that is not (or the picture's edge).
    pub perimeter: u32,
    /// Width of the half-intensity ink's bounding box, in pixels (0 when there is none).
    pub width: u32,
    /// Height of the same box.
    pub height: u32,
    /// 8-connected pieces of half-intensity ink.
    pub pieces: u32,
}

impl InkShape {
    /// Measures the ink of `pixels` (row by row).
    pub fn measure(pixels: &[u8; SIDE * SIDE]) -> InkShape {
        let on = |x: isize, y: isize| {
            (0..SIDE as isize).contains(&x)
                && (0..SIDE as isize).contains(&y)
                && pixels[y as usize * SIDE + x as usize] >= HALF
        };
        let mut mass = 0u32;
        let (mut area, mut perimeter) = (0u32, 0u32);
        let (mut x0, mut y0, mut x1, mut y1) = (SIDE, SIDE, 0, 0);
        for (i, &p) in pixels.iter().enumerate() {
            mass += u32::from(p);
            let (x, y) = ((i % SIDE) as isize, (i / SIDE) as isize);
            if !on(x, y) {
                continue;
            }
            area += 1;
            perimeter += [(-1, 0), (1, 0), (0, -1), (0, 1)]
                .iter()
                .filter(|(dx, dy)| !on(x + dx, y + dy))
                .count() as u32;
            let (ux, uy) = (x as usize, y as usize);
            (x0, y0, x1, y1) = (x0.min(ux), y0.min(uy), x1.max(ux + 1), y1.max(uy + 1));
        }
        InkShape {
            mass: mass as f32 / 255.0,
            area,
            perimeter,
            width: x1.saturating_sub(x0) as u32,
            height: y1.saturating_sub(y0) as u32,
            pieces: pieces(pixels),
        }
    }

    /// Width of the strokes in pixels, `2 x area / perimeter` (0 without ink).
    pub fn stroke_width(&self) -> f32 {
        if self.perimeter == 0 {
            return 0.0;
        }
        2.0 * self.area as f32 / self.perimeter as f32
    }
}

/// Counts the 8-connected pieces of half-intensity ink with a flood fill on a fixed stack.
fn pieces(pixels: &[u8; SIDE * SIDE]) -> u32 {
    let mut seen = [false; SIDE * SIDE];
    let mut stack = [0u16; SIDE * SIDE];
    let mut count = 0;
    for start in 0..SIDE * SIDE {
        if pixels[start] < HALF || seen[start] {
            continue;
        }
        count += 1;
        seen[start] = true;
        stack[0] = start as u16;
        let mut top = 1;
        while top > 0 {
            top -= 1;
            let i = usize::from(stack[top]);
            let (x, y) = (i % SIDE, i / SIDE);
            for ny in y.saturating_sub(1)..(y + 2).min(SIDE) {
                for nx in x.saturating_sub(1)..(x + 2).min(SIDE) {
                    let j = ny * SIDE + nx;
                    if pixels[j] >= HALF && !seen[j] {
                        // Each pixel is pushed once, so the stack never holds more than 784.
                        seen[j] = true;
                        stack[top] = j as u16;
                        top += 1;
                    }
                }
            }
        }
    }
    count
}

/// Where the verdict draws the line. [`Limits::MNIST`] holds for MNIST's digits; each limit
/// flags only what MNIST's test digits almost never are (see `digits bench --mode not-a-digit`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Least ink mass (full-intensity pixels) that is anything at all.
    pub blank_mass: f32,
    /// Least half-intensity ink area of a digit, in pixels.
    pub min_area: u32,
    /// Most half-intensity ink area of a digit, in pixels.
    pub max_area: u32,
    /// Widest strokes of a digit, in pixels.
    pub max_stroke: f32,
    /// Least height of a digit's ink, in pixels (the box is 20 high for all but wide digits).
    pub min_height: u32,
    /// Most pieces of ink a digit is drawn in.
    pub max_pieces: u32,
    /// Least probability of the most probable digit.
    pub min_confidence: f32,
    /// Most probability of "not a digit" the [`Detector`] may give a digit.
    pub max_unlike: f32,
}

impl Limits {
    /// The limits for pictures prepared as MNIST was (28x28, fitted to 20x20, centred by mass).
    pub const MNIST: Limits = Limits {
        blank_mass: 1.0,
        min_area: 20,
        max_area: 260,
        max_stroke: 4.2,
        min_height: 9,
        max_pieces: 4,
        min_confidence: 0.5,
        max_unlike: 0.5,
    };
}

/// Why a picture is not a digit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reason {
    /// There is (almost) no ink.
    Blank,
    /// The picture is noise: nothing stands out of it as ink (found by a photo's
    /// preprocessing, before there is a 28x28 picture).
    Noise,
    /// A few pixels of ink: a dot, a speck.
    TooLittleInk,
    /// The ink is a solid shape, not pen strokes: a blob, a filled area, a thing.
    Solid,
    /// More ink than any digit, in strokes: a page of lines, a texture.
    TooMuchInk,
    /// The ink is flat: a horizontal line or a dash.
    Flat,
    /// The ink is in many separate pieces: noise, scattered marks.
    Scattered,
    /// The detector finds the picture unlike the digits it has seen.
    Unlike {
        /// The detector's probability of "not a digit".
        probability: f32,
    },
    /// The network's best digit has a probability below the limit.
    Unsure {
        /// The best digit.
        digit: u8,
        /// Its probability.
        probability: f32,
    },
}

impl Reason {
    /// A short name for scripts (`"blank"`, `"unsure"`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Blank => "blank",
            Reason::Noise => "noise",
            Reason::TooLittleInk => "too-little-ink",
            Reason::Solid => "solid",
            Reason::TooMuchInk => "too-much-ink",
            Reason::Flat => "flat",
            Reason::Scattered => "scattered",
            Reason::Unlike { .. } => "unlike",
            Reason::Unsure { .. } => "unsure",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Blank => f.write_str("the picture is blank"),
            Reason::Noise => f.write_str("the picture is noise: no marks stand out of it"),
            Reason::TooLittleInk => f.write_str("too little ink for a digit (a dot?)"),
            Reason::Solid => f.write_str("a solid shape, not pen strokes (a blob? a thing?)"),
            Reason::TooMuchInk => f.write_str("more ink than any digit"),
            Reason::Flat => f.write_str("a flat mark (a horizontal line or dash?)"),
            Reason::Scattered => f.write_str("scattered marks (noise?)"),
            Reason::Unlike { probability } => write!(
                f,
                "unlike any digit the detector has seen ({}% not a digit)",
                Whole(100.0 * probability)
            ),
            Reason::Unsure { digit, probability } => write!(
                f,
                "the network is unsure (at best {digit}, {}%)",
                Whole(100.0 * probability)
            ),
        }
    }
}

/// The verdict on one picture: a digit, or not and why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Nothing speaks against a digit.
    Digit,
    /// Not a digit.
    NotADigit(Reason),
}

impl Verdict {
    /// Judges a 28x28 picture and the network's probabilities for it. The ink is judged first
    /// (its reasons say more than the network's doubt), in the order of [`Reason`].
    pub fn judge(pixels: &[u8; SIDE * SIDE], probabilities: &[f32; 10], limits: &Limits) -> Self {
        match Self::judge_ink(&InkShape::measure(pixels), limits) {
            Verdict::Digit => Self::judge_confidence(probabilities, limits),
            not => not,
        }
    }

    /// Judges as [`Verdict::judge`] does, and asks the [`Detector`] after the ink and before
    /// the network's confidence.
    pub fn judge_with(
        pixels: &[u8; SIDE * SIDE],
        probabilities: &[f32; 10],
        detector: &Detector,
        limits: &Limits,
    ) -> Self {
        match Self::judge_ink(&InkShape::measure(pixels), limits) {
            Verdict::Digit => match Self::judge_unlikeness(detector.unlikeness(pixels), limits) {
                Verdict::Digit => Self::judge_confidence(probabilities, limits),
                not => not,
            },
            not => not,
        }
    }

    /// The verdict on the detector's probability of "not a digit" alone.
    pub fn judge_unlikeness(probability: f32, limits: &Limits) -> Self {
        if probability > limits.max_unlike {
            Verdict::NotADigit(Reason::Unlike { probability })
        } else {
            Verdict::Digit
        }
    }

    /// The verdict on the ink alone.
    pub fn judge_ink(ink: &InkShape, limits: &Limits) -> Self {
        let reason = if ink.mass < limits.blank_mass {
            Reason::Blank
        } else if ink.area < limits.min_area {
            Reason::TooLittleInk
        } else if ink.stroke_width() > limits.max_stroke {
            Reason::Solid
        } else if ink.area > limits.max_area {
            Reason::TooMuchInk
        } else if ink.height < limits.min_height {
            Reason::Flat
        } else if ink.pieces > limits.max_pieces {
            Reason::Scattered
        } else {
            return Verdict::Digit;
        };
        Verdict::NotADigit(reason)
    }

    /// The verdict on the network's confidence alone.
    pub fn judge_confidence(probabilities: &[f32; 10], limits: &Limits) -> Self {
        let best = crate::softmax::argmax(probabilities);
        let probability = probabilities[best];
        if probability < limits.min_confidence {
            Verdict::NotADigit(Reason::Unsure {
                digit: best as u8,
                probability,
            })
        } else {
            Verdict::Digit
        }
    }

    /// The reason, when it is not a digit.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Verdict::Digit => None,
            Verdict::NotADigit(r) => Some(*r),
        }
    }
}
