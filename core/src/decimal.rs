//! Numbers in messages, written without `core`'s float formatter: that formatter (exact
//! decimal expansion of any `f32`) is most of the browser module's size, and messages only
//! need whole numbers and hundredths.

use core::fmt;

/// `value` rounded to a whole number, written exactly as `format!("{:.0}", value)` would
/// (ties to even, `-0` for small negatives), for finite values.
#[derive(Clone, Copy, Debug)]
pub struct Whole(pub f32);

impl fmt::Display for Whole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_scaled(f, self.0, 1.0, 0)
    }
}

/// `value` with two decimals, as `format!("{:.2}", value)` would, for finite values of
/// moderate size (the scaled value must be exact in `f64`, as a percentage is).
#[derive(Clone, Copy, Debug)]
pub struct Hundredths(pub f32);

impl fmt::Display for Hundredths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_scaled(f, self.0, 100.0, 2)
    }
}

/// Writes `round_ties_even(value * scale)` with `decimals` digits after the point. The
/// product is exact in `f64` for an `f32` and a small power of ten, so the rounding is that of
/// the exact decimal value, as the float formatter's.
fn write_scaled(f: &mut fmt::Formatter<'_>, value: f32, scale: f64, decimals: u32) -> fmt::Result {
    if !value.is_finite() {
        return write!(f, "{}", if value.is_nan() { "NaN" } else { "inf" });
    }
    let scaled = libm::rint(f64::from(value) * scale);
    let negative = value.is_sign_negative();
    let units = scaled.abs() as u64;
    let unit = 10u64.pow(decimals);
    let sign = if negative { "-" } else { "" };
    if decimals == 0 {
        write!(f, "{sign}{units}")
    } else {
        let width = decimals as usize;
        write!(f, "{sign}{}.{:0width$}", units / unit, units % unit)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    use super::*;

    #[test]
    fn whole_numbers_and_hundredths_read_as_the_float_formatter_writes_them() {
        let mut values: std::vec::Vec<f32> = std::vec![0.5, 1.5, 2.5, -0.4, -0.5, 254.5, 99.125];
        let mut x = 0.001f32;
        while x < 300.0 {
            values.push(x);
            values.push(x + 0.5);
            x *= 1.013;
        }
        for k in 0..=40_000 {
            values.push(k as f32 / 400.0);
        }
        let mut checked = 0;
        for &v in &values {
            assert_eq!(format!("{}", Whole(v)), format!("{v:.0}"), "{v:e}");
            assert_eq!(format!("{}", Hundredths(v)), format!("{v:.2}"), "{v:e}");
            checked += 1;
        }
        std::println!("{checked} values written the same");
    }
}
