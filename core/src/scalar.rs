//! The scalar the network computes in: `f32` for training and the device, `f64` for gradient checks.

use core::fmt::{Debug, Display};
use core::iter::Sum;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point scalar backed by `libm`, so the same code runs with and without `std`
/// and gives the same bits on every platform.
///
/// `Zeroable` (all-zero bits is the value 0): then so is every model made of scalars, by
/// derive, and a model too large for the stack is allocated zeroed straight on the heap
/// (`bytemuck::zeroed_box`) without a line of unsafe code.
pub trait Scalar:
    Copy
    + bytemuck::Zeroable
    + Default
    + Debug
    + Display
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Send
    + Sync
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Machine epsilon.
    const EPSILON: Self;
    /// Name of the type, for reports ("f32", "f64").
    const NAME: &'static str;

    /// Converts from `f64`, rounding to nearest.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// `e^self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// `e^self - 1`, accurate for small arguments.
    fn exp_m1(self) -> Self;
    /// `ln(1 + self)`, accurate for small arguments.
    fn ln_1p(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Larger of two values; NaN-propagating is not required, callers check finiteness.
    fn max(self, other: Self) -> Self {
        if other > self { other } else { self }
    }
    /// Smaller of two values.
    fn min(self, other: Self) -> Self {
        if other < self { other } else { self }
    }
    /// True unless NaN or infinite.
    fn is_finite(self) -> bool;
}

macro_rules! impl_scalar {
    ($t:ty, $name:literal, $exp:path, $ln:path, $expm1:path, $log1p:path, $sqrt:path, $abs:path) => {
        impl Scalar for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const EPSILON: Self = <$t>::EPSILON;
            const NAME: &'static str = $name;
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                $ln(self)
            }
            #[inline]
            fn exp_m1(self) -> Self {
                $expm1(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                $log1p(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                $sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                $abs(self)
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}

impl_scalar!(
    f32,
    "f32",
    libm::expf,
    libm::logf,
    libm::expm1f,
    libm::log1pf,
    libm::sqrtf,
    libm::fabsf
);
impl_scalar!(
    f64,
    "f64",
    libm::exp,
    libm::log,
    libm::expm1,
    libm::log1p,
    libm::sqrt,
    libm::fabs
);
