//! Double-double arithmetic (about 32 significant digits), the reference precision for gradient
//! checks: central differences in `f64` bottom out at `eps * |L| / h ~ 1e-10`, which is larger
//! than 1e-6 of the smallest gradients of a real network; in double-double they do not.
//!
//! Algorithms from Hida, Li and Bailey's QD library and Joldes, Muller and Popescu (2017).

use core::cmp::Ordering;
use core::fmt;
use core::iter::Sum;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use digits_core::Scalar;

/// `hi + lo` with `|lo| <= ulp(hi) / 2`.
#[derive(Clone, Copy, Default, Debug, PartialEq, bytemuck::Zeroable)]
pub struct Dd {
    hi: f64,
    lo: f64,
}

const LN_2: Dd = Dd {
    hi: core::f64::consts::LN_2,
    lo: 2.319_046_813_846_299_6e-17,
};

fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

fn quick_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl Dd {
    fn new(hi: f64, lo: f64) -> Self {
        let (hi, lo) = quick_two_sum(hi, lo);
        Self { hi, lo }
    }

    /// Multiplies by a power of two, exactly.
    fn scale(self, factor: f64) -> Self {
        Self {
            hi: self.hi * factor,
            lo: self.lo * factor,
        }
    }
}

impl PartialOrd for Dd {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.hi.partial_cmp(&other.hi) {
            Some(Ordering::Equal) => self.lo.partial_cmp(&other.lo),
            o => o,
        }
    }
}

impl fmt::Display for Dd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:e}{:+e}", self.hi, self.lo)
    }
}

impl Add for Dd {
    type Output = Dd;
    fn add(self, b: Dd) -> Dd {
        let (s, e) = two_sum(self.hi, b.hi);
        let (t, f) = two_sum(self.lo, b.lo);
        let (s, e) = quick_two_sum(s, e + t);
        Dd::new(s, e + f)
    }
}

impl Neg for Dd {
    type Output = Dd;
    fn neg(self) -> Dd {
        Dd {
            hi: -self.hi,
            lo: -self.lo,
        }
    }
}

impl Sub for Dd {
    type Output = Dd;
    fn sub(self, b: Dd) -> Dd {
        self + (-b)
    }
}

impl Mul for Dd {
    type Output = Dd;
    fn mul(self, b: Dd) -> Dd {
        let (p, e) = two_prod(self.hi, b.hi);
        Dd::new(p, e + (self.hi * b.lo + self.lo * b.hi))
    }
}

impl Div for Dd {
    type Output = Dd;
    fn div(self, b: Dd) -> Dd {
        let q1 = self.hi / b.hi;
        let r = self - b * Dd::from_f64(q1);
        let q2 = r.hi / b.hi;
        let r = r - b * Dd::from_f64(q2);
        let q3 = r.hi / b.hi;
        Dd::new(q1, q2) + Dd::from_f64(q3)
    }
}

macro_rules! assign_ops {
    ($($tr:ident $m:ident $op:tt),*) => {$(
        impl $tr for Dd {
            fn $m(&mut self, b: Dd) {
                *self = *self $op b;
            }
        }
    )*};
}
assign_ops!(AddAssign add_assign +, SubAssign sub_assign -, MulAssign mul_assign *, DivAssign div_assign /);

impl Sum for Dd {
    fn sum<I: Iterator<Item = Dd>>(iter: I) -> Dd {
        iter.fold(Dd::ZERO, |a, b| a + b)
    }
}

impl Scalar for Dd {
    const ZERO: Self = Dd { hi: 0.0, lo: 0.0 };
    const ONE: Self = Dd { hi: 1.0, lo: 0.0 };
    const EPSILON: Self = Dd {
        hi: 4.930_380_657_631_324e-32,
        lo: 0.0,
    };
    const NAME: &'static str = "double-double";

    fn from_f64(v: f64) -> Self {
        Dd { hi: v, lo: 0.0 }
    }

    fn to_f64(self) -> f64 {
        self.hi + self.lo
    }

    fn exp(self) -> Self {
        if self.hi < -745.0 {
            return Dd::ZERO;
        }
        assert!(self.hi < 709.0, "exp overflow");
        // e^x = 2^k e^r with |r| <= ln2/2; e^r from a Taylor series of expm1(r / 1024),
        // squared back up ten times through expm1(2y) = 2 expm1(y) + expm1(y)^2.
        let k = libm::round(self.hi / LN_2.hi);
        let r = (self - LN_2 * Dd::from_f64(k)).scale(1.0 / 1024.0);
        let mut term = r;
        let mut s = r;
        for n in 2..=12 {
            term = term * r / Dd::from_f64(n as f64);
            s += term;
        }
        for _ in 0..10 {
            s = s.scale(2.0) + s * s;
        }
        (s + Dd::ONE).scale(libm::pow(2.0, k))
    }

    fn ln(self) -> Self {
        assert!(self.hi > 0.0, "ln of a non-positive value");
        // Newton's method on e^y = x, from the f64 logarithm: each step doubles the digits.
        let mut y = Dd::from_f64(libm::log(self.hi));
        for _ in 0..2 {
            y = y + self * (-y).exp() - Dd::ONE;
        }
        y
    }

    fn exp_m1(self) -> Self {
        if self.hi.abs() < 1e-3 {
            // Taylor series: no cancellation for small arguments.
            let mut term = self;
            let mut sum = self;
            for n in 2..=14 {
                term = term * self / Dd::from_f64(n as f64);
                sum += term;
            }
            sum
        } else {
            self.exp() - Dd::ONE
        }
    }

    fn ln_1p(self) -> Self {
        // 1 + x keeps every digit of a small x in double-double (down to 1e-32 absolute).
        (Dd::ONE + self).ln()
    }

    fn sqrt(self) -> Self {
        if self.hi <= 0.0 {
            return Dd::ZERO;
        }
        let y = Dd::from_f64(libm::sqrt(self.hi));
        y + (self - y * y) / y.scale(2.0)
    }

    fn abs(self) -> Self {
        if self.hi < 0.0 { -self } else { self }
    }

    fn is_finite(self) -> bool {
        self.hi.is_finite() && self.lo.is_finite()
    }
}
