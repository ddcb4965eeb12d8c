//! Backprop against central differences (the definition), tensor by tensor.
//!
//! Three comparisons per network, all printed:
//! 1. `f64` backprop vs central differences evaluated in double-double: the check that backprop
//!    is right, to `REL_TOL` for every parameter checked;
//! 2. `f64` backprop vs `f64` central differences: limited by rounding of the loss itself
//!    (`eps * |L| / h`), asserted against that noise floor;
//! 3. the same in `f32`, reported.

mod common;

use common::dd::Dd;
use common::{random_input, test_batch, to_f32};
use digits_core::gradcheck::{TensorCheck, gradcheck};
use digits_core::params::convert;
use digits_core::{Mlp, Params, Rng};

/// Relative error bound, `|a-b| / max(|a|, |b|, 1e-8)`, for every parameter.
const REL_TOL: f64 = 1e-6;
/// Central-difference step in double-double: truncation error ~h^2, rounding ~1e-32 / h.
const H_DD: f64 = 1e-7;
/// Central-difference step in f64, near the optimum `(eps)^(1/3)` scaled for this loss.
const H_F64: f64 = 1e-5;
/// f64 central differences cannot beat ~`eps * |L| / h` in absolute terms.
const F64_NOISE_FLOOR: f64 = 1e-9;
/// Step and absolute bound in f32, where rounding dominates: reported, not the target.
const H_F32: f32 = 1e-3;
const ABS_TOL_F32: f64 = 1e-2;

fn print_report(title: &str, report: &[TensorCheck]) {
    println!("{title}");
    for t in report {
        let s = &t.stats;
        println!(
            "  {:>3}: checked {:>6}  max abs {:.3e}  max rel {:.3e}  (worst [{}]: backprop {:+.6e}, numeric {:+.6e})",
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

fn assert_rel(report: &[TensorCheck], what: &str) {
    for t in report {
        assert!(t.stats.checked > 0, "{what} {}: nothing checked", t.name);
        assert!(
            t.stats.max_rel <= REL_TOL,
            "{what} {}: max rel {:.3e} > {REL_TOL:e} at [{}]",
            t.name,
            t.stats.max_rel,
            t.stats.worst.index
        );
    }
}

fn assert_abs(report: &[TensorCheck], what: &str, tol: f64) {
    for t in report {
        assert!(
            t.stats.max_abs <= tol,
            "{what} {}: max abs {:.3e} > {tol:e}",
            t.name,
            t.stats.max_abs
        );
    }
}

/// Runs the three comparisons on one network and batch.
fn check_three_ways<const IN: usize, const H: usize, const OUT: usize>(
    model: &mut Mlp<IN, H, OUT, f64>,
    xs: &[[f64; IN]],
    labels: &[u8],
    indices: &[usize],
) -> [[TensorCheck; 4]; 3] {
    let mut grad: Box<Mlp<IN, H, OUT, f64>> = bytemuck::zeroed_box();
    model.backprop(xs, labels, &mut grad);

    // 1. Reference: the same loss in double-double (inputs and weights converted exactly).
    let mut model_dd: Box<Mlp<IN, H, OUT, Dd>> = bytemuck::zeroed_box();
    let mut grad_dd: Box<Mlp<IN, H, OUT, Dd>> = bytemuck::zeroed_box();
    convert(model, &mut *model_dd);
    convert(&*grad, &mut *grad_dd);
    let xs_dd: Vec<[Dd; IN]> = xs
        .iter()
        .map(|x| core::array::from_fn(|i| Dd::from_f64(x[i])))
        .collect();
    let h_dd = Dd::from_f64(H_DD);
    use digits_core::Scalar;
    let reference = gradcheck(
        &mut *model_dd,
        &grad_dd,
        h_dd,
        indices.iter().copied(),
        |m| m.loss(&xs_dd, labels),
    );

    // 2. Plain f64.
    let plain = gradcheck(model, &grad, H_F64, indices.iter().copied(), |m| {
        m.loss(xs, labels)
    });

    // 3. f32, same network rounded.
    let mut model32: Box<Mlp<IN, H, OUT, f32>> = bytemuck::zeroed_box();
    convert(model, &mut *model32);
    let xs32: Vec<[f32; IN]> = xs.iter().map(to_f32).collect();
    let mut grad32: Box<Mlp<IN, H, OUT, f32>> = bytemuck::zeroed_box();
    model32.backprop(&xs32, labels, &mut grad32);
    let single = gradcheck(
        &mut *model32,
        &grad32,
        H_F32,
        indices.iter().copied(),
        |m| m.loss(&xs32, labels),
    );
    [reference, plain, single]
}

#[test]
fn small_network_every_parameter() {
    const IN: usize = 24;
    let mut rng = Rng::new(11);
    let mut model = Mlp::<IN, 12, 5, f64>::zeros();
    model.init(&mut rng);
    // Non-zero biases, so every term of the gradient is exercised.
    for k in [1, 3] {
        for b in model.tensor_mut(k).data.iter_mut() {
            *b = 0.1 * rng.normal();
        }
    }
    let xs: Vec<[f64; IN]> = (0..8).map(|_| random_input(&mut rng, 0.5)).collect();
    let labels: Vec<u8> = (0..8).map(|_| rng.below(5) as u8).collect();
    let all: Vec<usize> = (0..model.num_params()).collect();

    let [reference, plain, single] = check_three_ways(&mut model, &xs, &labels, &all);
    print_report(
        "24-12-5, batch 8: f64 backprop vs double-double central differences",
        &reference,
    );
    print_report("  ... vs f64 central differences (h = 1e-5)", &plain);
    print_report(
        "  ... f32 backprop vs f32 central differences (h = 1e-3)",
        &single,
    );

    for (k, t) in reference.iter().enumerate() {
        assert_eq!(
            t.stats.checked,
            model.tensor(k).data.len(),
            "{}: every parameter",
            t.name
        );
    }
    assert_rel(&reference, "double-double");
    // On a small network even plain f64 meets the bound.
    assert_rel(&plain, "f64");
    assert_abs(&single, "f32", ABS_TOL_F32);
}

#[test]
fn mnist_network_on_real_batch() {
    let (xs, labels) = test_batch(16);
    let mut model: Box<Mlp<784, 128, 10, f64>> = bytemuck::zeroed_box();
    model.init(&mut Rng::new(42));

    // Every b1, W2, b2 and 1,500 W1 entries whose pixel is lit in some image of the batch
    // (an unlit pixel's weights have an exactly zero gradient both ways: nothing to learn).
    let lit: Vec<usize> = (0..784)
        .filter(|&i| xs.iter().any(|x| x[i] != 0.0))
        .collect();
    let mut rng = Rng::new(5);
    let w1_len = 784 * 128;
    let mut indices: Vec<usize> = (0..1500)
        .map(|_| lit[rng.below(lit.len() as u64) as usize] * 128 + rng.below(128) as usize)
        .collect();
    indices.extend(w1_len..w1_len + 128);
    indices.extend(w1_len + 128..model.num_params());

    let [reference, plain, single] = check_three_ways(&mut model, &xs, &labels, &indices);
    print_report(
        "Mlp<784,128,10>, 16 MNIST test images: f64 backprop vs double-double central differences",
        &reference,
    );
    print_report("  ... vs f64 central differences (h = 1e-5)", &plain);
    print_report(
        "  ... f32 backprop vs f32 central differences (h = 1e-3)",
        &single,
    );

    assert_rel(&reference, "double-double");
    assert_abs(&plain, "f64", F64_NOISE_FLOOR);
    assert_abs(&single, "f32", ABS_TOL_F32);
}
