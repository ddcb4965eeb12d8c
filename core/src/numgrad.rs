//! Numerical differentiation by central differences: `dL/dw_i ~ (L(w + h e_i) - L(w - h e_i)) / 2h`.
//!
//! This is the definition, for any loss closure over any parameter set (a plain slice or a whole
//! network): one pair of loss evaluations per parameter. It is the reference the faster methods
//! are checked against, and costs `2 * num_params` loss evaluations.

use crate::Scalar;
use crate::params::Params;

/// The step `h` used by default for `f64` (as `torch.autograd.gradcheck`).
pub const DEFAULT_STEP_F64: f64 = 1e-6;
/// The step `h` used by default for `f32`: about the cube root of `f32::EPSILON`, which balances
/// truncation error (`~h^2`) against rounding error (`~eps / h`).
pub const DEFAULT_STEP_F32: f64 = 1e-2;

/// The default step for a scalar type.
pub fn default_step<S: Scalar>() -> S {
    if S::EPSILON.to_f64() < 1e-10 {
        S::from_f64(DEFAULT_STEP_F64)
    } else {
        S::from_f64(DEFAULT_STEP_F32)
    }
}

/// Central difference for parameter `i` alone. The parameter is restored bit for bit afterwards.
pub fn central_difference_at<S, P, F>(params: &mut P, i: usize, h: S, loss: &mut F) -> S
where
    S: Scalar,
    P: Params<S> + ?Sized,
    F: FnMut(&P) -> S,
{
    let w = params.param(i);
    params.set_param(i, w + h);
    let plus = loss(params);
    params.set_param(i, w - h);
    let minus = loss(params);
    params.set_param(i, w);
    (plus - minus) / (h + h)
}

/// Central differences for every parameter, written into `grad` (same shape as `params`).
pub fn central_differences<S, P, G, F>(params: &mut P, h: S, mut loss: F, grad: &mut G)
where
    S: Scalar,
    P: Params<S> + ?Sized,
    G: Params<S> + ?Sized,
    F: FnMut(&P) -> S,
{
    let n = params.num_params();
    assert_eq!(
        n,
        grad.num_params(),
        "gradient and parameters differ in size"
    );
    // Walk tensor by tensor so each write is a direct index, not a flat-index search.
    let mut flat = 0;
    for k in 0..grad.tensor_count() {
        let len = grad.tensor(k).data.len();
        for j in 0..len {
            let d = central_difference_at(params, flat + j, h, &mut loss);
            grad.tensor_mut(k).data[j] = d;
        }
        flat += len;
    }
}
