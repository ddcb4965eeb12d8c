//! The double-double reference type is itself checked before it is trusted.

mod common;

use common::dd::Dd;
use digits_core::Scalar;

/// Double-double should be good to about 1e-30, relative to `max(|value|, 1)` (what matters
/// for a loss is the absolute error of values of order 1).
const DD_TOL: f64 = 1e-29;

fn rel(a: Dd, b: Dd) -> f64 {
    ((a - b) / b.abs().max(Dd::ONE)).abs().to_f64()
}

#[test]
fn exp_ln_sqrt_and_division_are_double_double_accurate() {
    // e to 32 digits: 2.71828182845904523536028747135266...
    let e = Dd::ONE.exp();
    let e_ref = Dd::from_f64(core::f64::consts::E) + Dd::from_f64(1.445_646_891_729_250_2e-16);
    let mut worst = rel(e, e_ref);
    let seven = Dd::from_f64(7.0);
    let third = Dd::ONE / Dd::from_f64(3.0);
    worst = worst.max(rel(third * Dd::from_f64(3.0), Dd::ONE));
    worst = worst.max(rel(seven.sqrt() * seven.sqrt(), seven));
    for x in [-30.0, -2.5, -1e-7, 1e-9, 0.3, 1.0, 4.0, 50.0] {
        let x = Dd::from_f64(x) / Dd::from_f64(3.0);
        worst = worst.max(rel(x.exp().ln(), x));
        worst = worst.max(rel(x.exp() * (-x).exp(), Dd::ONE));
    }
    println!("double-double worst relative error: {worst:.3e}");
    assert!(worst <= DD_TOL, "worst {worst:e}");
}
