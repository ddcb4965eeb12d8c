//! An affine distortion about the image's centre: what a writer's hand changes from digit to
//! digit (angle, size, slant, position).

use crate::distort::sample::Warp;

/// Rotation, scale, shear and shift, applied in that order from the inside out: a point `p`
/// of the digit moves to `R S H (p - c) + c + t`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Affine {
    /// Rotation, degrees: positive turns the digit clockwise as seen on the screen.
    pub rotation_deg: f64,
    /// Size factor (1 keeps it).
    pub scale: f64,
    /// Slant, `x += shear * y` (y downwards: positive leans the top left).
    pub shear: f64,
    /// Shift right, pixels.
    pub dx: f64,
    /// Shift down, pixels.
    pub dy: f64,
}

impl Affine {
    /// No change.
    pub const IDENTITY: Self = Self {
        rotation_deg: 0.0,
        scale: 1.0,
        shear: 0.0,
        dx: 0.0,
        dy: 0.0,
    };

    /// Only a rotation.
    pub fn rotation(deg: f64) -> Self {
        Self {
            rotation_deg: deg,
            ..Self::IDENTITY
        }
    }

    /// Only a shift.
    pub fn shift(dx: f64, dy: f64) -> Self {
        Self {
            dx,
            dy,
            ..Self::IDENTITY
        }
    }

    /// Only a change of size.
    pub fn scale(scale: f64) -> Self {
        Self {
            scale,
            ..Self::IDENTITY
        }
    }

    /// The map from an output pixel to the source point it samples (the inverse of the
    /// distortion), as a [`Warp`].
    pub fn warp(&self) -> Warp {
        // libm: the same bits on every platform.
        let (s, c) = libm::sincos(self.rotation_deg.to_radians());
        // Forward linear part: rotation * shear * scale.
        let a = [
            [c * self.scale, (c * self.shear - s) * self.scale],
            [s * self.scale, (s * self.shear + c) * self.scale],
        ];
        let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
        let inv = [
            [a[1][1] / det, -a[0][1] / det],
            [-a[1][0] / det, a[0][0] / det],
        ];
        Warp::new(inv, [self.dx, self.dy])
    }
}
