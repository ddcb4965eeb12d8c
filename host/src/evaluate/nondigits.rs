//! Pictures of things that are not digits, drawn from a seed on the same paper as
//! [`render_digit`](super::photo::render_digit)'s digits: blank pages, dots, lines, letters,
//! shapes, noise and scribbles. They check that `digits predict` says "not a digit" (`digits bench --mode
//! not-a-digit`). The same kind, index and seed give the same picture.
//!
//! Lines stay within 25 degrees of horizontal and the letters are ones no digit resembles
//! (A E F H K M N W X): a vertical stroke is a 1, an O a 0, an S a 5.

use image::GrayImage;

use super::photo::{Lcg, Paper};

/// Side of the square canvas.
pub const CANVAS: u32 = 240;

/// What is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Paper only.
    Blank,
    /// A round dot, 2-12 pixels in radius.
    Dot,
    /// A straight line within 25 degrees of horizontal.
    Line,
    /// A capital letter drawn in strokes.
    Letter,
    /// A filled disk, rectangle or triangle, or an outlined rectangle or triangle.
    Shape,
    /// Noise over the whole page: uniform, or ink specks.
    Noise,
    /// A pen wandering through 8-14 random points.
    Scribble,
}

impl Kind {
    /// Every kind, in the order reported.
    pub const ALL: [Kind; 7] = [
        Kind::Blank,
        Kind::Dot,
        Kind::Line,
        Kind::Letter,
        Kind::Shape,
        Kind::Noise,
        Kind::Scribble,
    ];

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Blank => "blank",
            Kind::Dot => "dot",
            Kind::Line => "line",
            Kind::Letter => "letter",
            Kind::Shape => "shape",
            Kind::Noise => "noise",
            Kind::Scribble => "scribble",
        }
    }
}

/// Letters as strokes (polylines) in a unit box, y down.
const LETTERS: [&[&[(f32, f32)]]; 9] = [
    // A
    &[
        &[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)],
        &[(0.22, 0.6), (0.78, 0.6)],
    ],
    // E
    &[
        &[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0), (1.0, 1.0)],
        &[(0.0, 0.5), (0.75, 0.5)],
    ],
    // F
    &[
        &[(1.0, 0.0), (0.0, 0.0), (0.0, 1.0)],
        &[(0.0, 0.5), (0.75, 0.5)],
    ],
    // H
    &[
        &[(0.0, 0.0), (0.0, 1.0)],
        &[(1.0, 0.0), (1.0, 1.0)],
        &[(0.0, 0.5), (1.0, 0.5)],
    ],
    // K
    &[
        &[(0.0, 0.0), (0.0, 1.0)],
        &[(1.0, 0.0), (0.0, 0.55), (1.0, 1.0)],
    ],
    // M
    &[&[(0.0, 1.0), (0.0, 0.0), (0.5, 0.6), (1.0, 0.0), (1.0, 1.0)]],
    // N
    &[&[(0.0, 1.0), (0.0, 0.0), (1.0, 1.0), (1.0, 0.0)]],
    // W
    &[&[
        (0.0, 0.0),
        (0.25, 1.0),
        (0.5, 0.35),
        (0.75, 1.0),
        (1.0, 0.0),
    ]],
    // X
    &[&[(0.0, 0.0), (1.0, 1.0)], &[(1.0, 0.0), (0.0, 1.0)]],
];

/// Picture `index` of `kind` for `seed`.
pub fn draw(kind: Kind, index: u64, seed: u64) -> GrayImage {
    let mut rng = Lcg::new(seed ^ (index << 8) ^ kind as u64);
    let paper = Paper::random(&mut rng);
    let side = CANVAS as f32;
    match kind {
        Kind::Blank => paper.draw(CANVAS, &mut rng, |_, _| 0.0),
        Kind::Dot => {
            let r = rng.range(2.0, 12.0);
            let c = (rng.range(30.0, side - 30.0), rng.range(30.0, side - 30.0));
            paper.draw(CANVAS, &mut rng, |x, y| r - dist(x, y, c) + 0.5)
        }
        Kind::Line => {
            let len = rng.range(60.0, 180.0);
            let angle = rng.range(-25.0, 25.0).to_radians();
            let c = (rng.range(100.0, 140.0), rng.range(40.0, 200.0));
            let d = (len / 2.0 * angle.cos(), len / 2.0 * angle.sin());
            let stroke = [(c.0 - d.0, c.1 - d.1), (c.0 + d.0, c.1 + d.1)];
            let width = rng.range(3.0, 10.0);
            paper.draw(CANVAS, &mut rng, |x, y| pen(&[&stroke], width, x, y))
        }
        Kind::Letter => {
            let letter = LETTERS[rng.below(LETTERS.len())];
            let h = rng.range(60.0, 160.0);
            let w = h * rng.range(0.55, 0.9);
            let (ox, oy) = (
                rng.range(10.0, side - w - 10.0),
                rng.range(10.0, side - h - 10.0),
            );
            let mut jitter = || rng.range(-0.04, 0.04);
            let strokes: Vec<Vec<(f32, f32)>> = letter
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|&(u, v)| (ox + (u + jitter()) * w, oy + (v + jitter()) * h))
                        .collect()
                })
                .collect();
            let width = rng.range(3.0, 12.0);
            let refs: Vec<&[(f32, f32)]> = strokes.iter().map(|s| s.as_slice()).collect();
            paper.draw(CANVAS, &mut rng, |x, y| pen(&refs, width, x, y))
        }
        Kind::Shape => shape(&paper, &mut rng),
        Kind::Noise => {
            if rng.uniform() < 0.5 {
                let amplitude = rng.range(60.0, 127.0);
                let mid = (paper.level + paper.ink) / 2.0;
                GrayImage::from_fn(CANVAS, CANVAS, |_, _| {
                    image::Luma([(mid + rng.range(-amplitude, amplitude)).clamp(0.0, 255.0) as u8])
                })
            } else {
                let share = rng.range(0.02, 0.3);
                let specks: Vec<bool> = (0..CANVAS * CANVAS)
                    .map(|_| rng.uniform() < share)
                    .collect();
                paper.draw(CANVAS, &mut rng, |x, y| {
                    f32::from(u8::from(specks[y as usize * CANVAS as usize + x as usize]))
                })
            }
        }
        Kind::Scribble => {
            let n = 8 + rng.below(7);
            let (cx, cy, reach) = (
                rng.range(80.0, 160.0),
                rng.range(80.0, 160.0),
                rng.range(30.0, 75.0),
            );
            let points: Vec<(f32, f32)> = (0..n)
                .map(|_| (cx + rng.range(-reach, reach), cy + rng.range(-reach, reach)))
                .collect();
            let width = rng.range(3.0, 8.0);
            paper.draw(CANVAS, &mut rng, |x, y| pen(&[&points], width, x, y))
        }
    }
}

/// A filled disk, rectangle or triangle, or an outlined rectangle or triangle.
fn shape(paper: &Paper, rng: &mut Lcg) -> GrayImage {
    let side = CANVAS as f32;
    let (cx, cy) = (rng.range(90.0, 150.0), rng.range(90.0, 150.0));
    let (rx, ry) = (rng.range(25.0, 80.0), rng.range(25.0, 80.0));
    let width = rng.range(4.0, 12.0);
    let corners = [
        (cx - rx, cy - ry),
        (cx + rx, cy - ry),
        (cx + rx, cy + ry),
        (cx - rx, cy + ry),
    ];
    let triangle = [(cx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry)];
    let clamp = |(x, y): (f32, f32)| (x.clamp(2.0, side - 2.0), y.clamp(2.0, side - 2.0));
    let rect: Vec<(f32, f32)> = corners
        .iter()
        .chain(&corners[..1])
        .map(|&p| clamp(p))
        .collect();
    let tri: Vec<(f32, f32)> = triangle
        .iter()
        .chain(&triangle[..1])
        .map(|&p| clamp(p))
        .collect();
    match rng.below(5) {
        0 => paper.draw(CANVAS, rng, |x, y| rx.min(ry) - dist(x, y, (cx, cy)) + 0.5),
        1 => paper.draw(CANVAS, rng, |x, y| {
            f32::from(u8::from((x - cx).abs() <= rx && (y - cy).abs() <= ry))
        }),
        2 => paper.draw(CANVAS, rng, |x, y| {
            // Inside the triangle: below its top edges and above its base.
            let t = (y - (cy - ry)) / (2.0 * ry);
            f32::from(u8::from(
                (0.0..=1.0).contains(&t) && (x - cx).abs() <= t * rx,
            ))
        }),
        3 => paper.draw(CANVAS, rng, |x, y| pen(&[&rect], width, x, y)),
        _ => paper.draw(CANVAS, rng, |x, y| pen(&[&tri], width, x, y)),
    }
}

fn dist(x: f32, y: f32, c: (f32, f32)) -> f32 {
    (x - c.0).hypot(y - c.1)
}

/// Ink of a round pen of `width` drawn along the polylines, anti-aliased by half a pixel.
fn pen(strokes: &[&[(f32, f32)]], width: f32, x: f32, y: f32) -> f32 {
    let d = strokes
        .iter()
        .flat_map(|s| s.windows(2))
        .map(|seg| segment_distance((x, y), seg[0], seg[1]))
        .fold(f32::INFINITY, f32::min);
    width / 2.0 - d + 0.5
}

/// Distance from `p` to the segment `a`-`b`.
fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    };
    dist(p.0, p.1, (a.0 + t * dx, a.1 + t * dy))
}
