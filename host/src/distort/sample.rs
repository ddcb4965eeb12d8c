//! The resampler: each output pixel reads the source at a point (a linear map of its position,
//! plus an optional displacement field), bilinearly. Coordinates and weights are fixed point
//! (16 fractional bits, weights of 8), so the result is integers only: the same bytes on every
//! machine, and cheap enough to distort every training image every epoch.

use crate::distort::elastic::Field;

/// Fractional bits of a coordinate.
const FRAC: u32 = 16;
/// One pixel in coordinate units.
const ONE: i32 = 1 << FRAC;
/// The image's centre, in pixels: (27 / 2, 27 / 2).
const CENTRE: f64 = 13.5;
/// Image side.
const SIDE: usize = 28;
/// The padded source's side: one zero pixel around, so a bilinear read needs no bounds checks.
const PADDED: usize = SIDE + 2;

/// Where output pixel `(x, y)` reads the source: `m (p - c - t) + c` (plus a [`Field`]'s
/// displacement at `p`), `m` the inverse of the distortion's linear part and `t` its shift.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warp {
    /// The source point of output pixel (0, 0), fixed point.
    origin: [i32; 2],
    /// How the source point moves per output pixel right (`[0]`) and down (`[1]`).
    step: [[i32; 2]; 2],
}

/// `v` pixels in coordinate units, rounded to nearest.
fn fixed(v: f64) -> i32 {
    (v * ONE as f64).round() as i32
}

impl Warp {
    /// The warp reading the source at `inv (p - c - shift) + c`.
    pub fn new(inv: [[f64; 2]; 2], shift: [f64; 2]) -> Self {
        let (u, v) = (-CENTRE - shift[0], -CENTRE - shift[1]);
        let origin = [
            inv[0][0] * u + inv[0][1] * v + CENTRE,
            inv[1][0] * u + inv[1][1] * v + CENTRE,
        ];
        Self {
            origin: origin.map(fixed),
            step: [
                [fixed(inv[0][0]), fixed(inv[1][0])],
                [fixed(inv[0][1]), fixed(inv[1][1])],
            ],
        }
    }

    /// No change.
    pub fn identity() -> Self {
        Self::new([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    }

    /// `image` resampled through this warp, displaced by `field` if given.
    pub fn apply(&self, image: &[u8; 784], field: Option<&Field>) -> [u8; 784] {
        let mut padded = [0u8; PADDED * PADDED];
        for (y, row) in image.chunks_exact(SIDE).enumerate() {
            padded[(y + 1) * PADDED + 1..(y + 1) * PADDED + 1 + SIDE].copy_from_slice(row);
        }
        let mut out = [0u8; 784];
        let mut line = self.origin;
        for y in 0..SIDE {
            let mut at = line;
            for x in 0..SIDE {
                let i = y * SIDE + x;
                let (sx, sy) = match field {
                    Some(f) => (at[0] + f.dx[i], at[1] + f.dy[i]),
                    None => (at[0], at[1]),
                };
                out[i] = bilinear(&padded, sx, sy);
                at[0] += self.step[0][0];
                at[1] += self.step[0][1];
            }
            line[0] += self.step[1][0];
            line[1] += self.step[1][1];
        }
        out
    }
}

/// The padded source read bilinearly at the fixed-point point (`x`, `y`); zero outside.
#[inline(always)]
fn bilinear(padded: &[u8; PADDED * PADDED], x: i32, y: i32) -> u8 {
    // Outside (-1, 28) no source pixel contributes.
    if x <= -ONE || y <= -ONE || x >= SIDE as i32 * ONE || y >= SIDE as i32 * ONE {
        return 0;
    }
    // Floor (arithmetic shift), 8 bits of fraction for the weights.
    let (x0, y0) = (x >> FRAC, y >> FRAC);
    let (fx, fy) = (
        ((x & (ONE - 1)) >> (FRAC - 8)) as u32,
        ((y & (ONE - 1)) >> (FRAC - 8)) as u32,
    );
    let i = (y0 + 1) as usize * PADDED + (x0 + 1) as usize;
    let p = |k: usize| u32::from(padded[k]);
    let top = p(i) * (256 - fx) + p(i + 1) * fx;
    let bottom = p(i + PADDED) * (256 - fx) + p(i + PADDED + 1) * fx;
    ((top * (256 - fy) + bottom * fy + (1 << 15)) >> 16) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distort::Affine;

    fn digit() -> [u8; 784] {
        testkit::slice().test.images[0]
    }

    #[test]
    fn the_identity_keeps_every_byte() {
        let img = digit();
        assert_eq!(Warp::identity().apply(&img, None), img);
        assert_eq!(Affine::IDENTITY.warp().apply(&img, None), img);
    }

    #[test]
    fn whole_pixel_shifts_move_pixels_exactly() {
        let img = digit();
        let out = Affine::shift(2.0, -3.0).warp().apply(&img, None);
        for y in 0..28i32 {
            for x in 0..28i32 {
                let (sx, sy) = (x - 2, y + 3);
                let want = if (0..28).contains(&sx) && (0..28).contains(&sy) {
                    img[(sy * 28 + sx) as usize]
                } else {
                    0
                };
                assert_eq!(out[(y * 28 + x) as usize], want, "({x}, {y})");
            }
        }
    }

    #[test]
    fn four_quarter_turns_come_back() {
        let img = digit();
        let quarter = Affine::rotation(90.0).warp();
        let mut turned = img;
        for _ in 0..4 {
            turned = quarter.apply(&turned, None);
        }
        assert_eq!(turned, img);
        assert_ne!(quarter.apply(&img, None), img);
    }
}
