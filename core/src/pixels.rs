//! From pixels to network inputs, the same way on every platform.

use crate::Scalar;

/// Scales 8-bit pixels to `[0, 1]` as `pixel / 255` in the scalar type (for `f32`, exactly
/// `p as f32 / 255.0`). Zero pixels stay exactly zero, which the dense layer skips.
pub fn normalize<S: Scalar, const N: usize>(pixels: &[u8; N], out: &mut [S; N]) {
    let scale = S::from_f64(255.0);
    for (o, &p) in out.iter_mut().zip(pixels) {
        *o = S::from_f64(p as f64) / scale;
    }
}
