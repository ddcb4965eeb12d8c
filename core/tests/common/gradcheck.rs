//! What the gradient checks share: the reference in double-double, the printed report and the
//! bounds asserted.

use digits_core::gradcheck::{TensorCheck, gradcheck};
use digits_core::params::convert;
use digits_core::{Params, Rng, Scalar};

use super::dd::Dd;

/// Relative error bound, `|a-b| / max(|a|, |b|, 1e-8)`, against double-double differences,
/// for every parameter checked.
pub const REL_TOL: f64 = 1e-6;
/// Central-difference step in double-double: truncation error ~h^2, rounding ~1e-32 / h.
pub const H_DD: f64 = 1e-7;

/// Gives the tensors `biases` of `model` small random values, so that every term of the
/// gradient is exercised.
pub fn randomize_biases(model: &mut impl Params<f64>, biases: &[usize], rng: &mut Rng) {
    for &k in biases {
        for b in model.tensor_mut(k).data.iter_mut() {
            *b = 0.1 * rng.normal();
        }
    }
}

/// The `f64` inputs as double-double, exactly.
pub fn inputs_dd<const N: usize>(xs: &[[f64; N]]) -> Vec<[Dd; N]> {
    xs.iter()
        .map(|x| core::array::from_fn(|i| Dd::from_f64(x[i])))
        .collect()
}

/// Compares backprop's `grad` of `model` with central differences of the same loss in
/// double-double (`loss_dd`, on `model` converted exactly into `model_dd`) at `indices`.
pub fn against_double_double<P, R, const T: usize>(
    model: &P,
    grad: &P,
    model_dd: &mut R,
    grad_dd: &mut R,
    indices: &[usize],
    loss_dd: impl FnMut(&R) -> Dd,
) -> [TensorCheck; T]
where
    P: Params<f64> + ?Sized,
    R: Params<Dd> + ?Sized,
{
    convert(model, model_dd);
    convert(grad, grad_dd);
    gradcheck(
        model_dd,
        grad_dd,
        Dd::from_f64(H_DD),
        indices.iter().copied(),
        loss_dd,
    )
}

/// Prints one line per tensor: parameters checked, worst errors and where.
pub fn print_report(title: &str, report: &[TensorCheck]) {
    println!("{title}");
    for t in report {
        let s = &t.stats;
        println!(
            "  {:>5}: checked {:>6}  max abs {:.3e}  max rel {:.3e}  (worst [{}]: backprop {:+.6e}, numeric {:+.6e})",
            t.name,
            s.checked,
            s.max_abs,
            s.max_rel,
            s.worst.index,
            s.worst.analytic,
            s.worst.numeric
        );
    }
}

/// Asserts that every tensor of `report` had parameters checked, all within `max_abs` and
/// `max_rel` (`f64::INFINITY` for no bound; a NaN error fails either way).
pub fn assert_within(report: &[TensorCheck], what: &str, max_abs: f64, max_rel: f64) {
    for t in report {
        assert!(t.stats.checked > 0, "{what} {}: nothing checked", t.name);
        assert!(
            t.stats.within(max_abs, max_rel),
            "{what} {}: max abs {:.3e}, max rel {:.3e} at [{}] (bounds {max_abs:e}, {max_rel:e})",
            t.name,
            t.stats.max_abs,
            t.stats.max_rel,
            t.stats.worst.index
        );
    }
}
