//! Gradient check: an analytic gradient against central differences, tensor by tensor.

use crate::Scalar;
use crate::numgrad::central_difference_at;
use crate::params::Params;

/// Relative error `|a - b| / max(|a|, |b|, 1e-8)`; the floor keeps two near-zero values from
/// counting as a large relative error.
pub fn relative_error(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-8)
}

/// The parameter with the largest relative error seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Worst {
    /// Index within its tensor.
    pub index: usize,
    /// The analytic (backprop) value.
    pub analytic: f64,
    /// The numerical value.
    pub numeric: f64,
}

/// Agreement of two gradients over the parameters of one tensor that were checked.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ErrorStats {
    /// How many parameters were compared.
    pub checked: usize,
    /// Largest `|a - b|`.
    pub max_abs: f64,
    /// Largest [`relative_error`].
    pub max_rel: f64,
    /// The parameter with the largest relative error.
    pub worst: Worst,
}

impl ErrorStats {
    /// Adds one comparison.
    pub fn record(&mut self, index: usize, analytic: f64, numeric: f64) {
        self.checked += 1;
        let abs = (analytic - numeric).abs();
        let rel = relative_error(analytic, numeric);
        // NaN compares false: force it to count as the worst.
        if abs > self.max_abs || abs.is_nan() {
            self.max_abs = abs;
        }
        if rel > self.max_rel || rel.is_nan() || self.checked == 1 {
            self.max_rel = rel;
            self.worst = Worst {
                index,
                analytic,
                numeric,
            };
        }
    }

    /// Both errors within bounds (`false` if any was NaN).
    pub fn within(&self, max_abs: f64, max_rel: f64) -> bool {
        self.max_abs <= max_abs && self.max_rel <= max_rel
    }
}

/// The result of checking one tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorCheck {
    /// Tensor name, e.g. `"W1"`.
    pub name: &'static str,
    /// The errors over its checked parameters.
    pub stats: ErrorStats,
}

/// Compares `analytic` (the gradient by backprop, same shape as `params`) with central
/// differences of `loss` at the flat parameter indices `indices`, and reports per tensor.
/// `T` must equal the number of tensors.
pub fn gradcheck<S, P, F, const T: usize>(
    params: &mut P,
    analytic: &P,
    h: S,
    indices: impl IntoIterator<Item = usize>,
    mut loss: F,
) -> [TensorCheck; T]
where
    S: Scalar,
    P: Params<S> + ?Sized,
    F: FnMut(&P) -> S,
{
    assert_eq!(params.tensor_count(), T, "tensor count");
    let mut report: [TensorCheck; T] = core::array::from_fn(|k| TensorCheck {
        name: params.tensor(k).name,
        stats: ErrorStats::default(),
    });
    for i in indices {
        let (k, j) = params.locate(i);
        let numeric = central_difference_at(params, i, h, &mut loss);
        let a = analytic.tensor(k).data[j];
        report[k].stats.record(j, a.to_f64(), numeric.to_f64());
    }
    report
}
