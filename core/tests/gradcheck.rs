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
use common::gradcheck::{
    REL_TOL, against_double_double, assert_within, inputs_dd, print_report, randomize_biases,
};
use common::{random_input, test_batch, to_f32};
use digits_core::gradcheck::{TensorCheck, gradcheck};
use digits_core::params::convert;
use digits_core::{Mlp, Params, Rng};

/// Central-difference step in f64, near the optimum `(eps)^(1/3)` scaled for this loss.
const H_F64: f64 = 1e-5;
/// f64 central differences cannot beat ~`eps * |L| / h` in absolute terms.
const F64_NOISE_FLOOR: f64 = 1e-9;
/// Step and absolute bound in f32, where rounding dominates: reported, not the target.
const H_F32: f32 = 1e-3;
const ABS_TOL_F32: f64 = 1e-2;

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
    let xs_dd = inputs_dd(xs);
    let reference = against_double_double(
        model,
        &*grad,
        &mut *bytemuck::zeroed_box::<Mlp<IN, H, OUT, Dd>>(),
        &mut *bytemuck::zeroed_box::<Mlp<IN, H, OUT, Dd>>(),
        indices,
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
    randomize_biases(&mut model, &[1, 3], &mut rng);
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
    assert_within(&reference, "double-double", f64::INFINITY, REL_TOL);
    // On a small network even plain f64 meets the bound.
    assert_within(&plain, "f64", f64::INFINITY, REL_TOL);
    assert_within(&single, "f32", ABS_TOL_F32, f64::INFINITY);
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

    assert_within(&reference, "double-double", f64::INFINITY, REL_TOL);
    assert_within(&plain, "f64", F64_NOISE_FLOOR, f64::INFINITY);
    assert_within(&single, "f32", ABS_TOL_F32, f64::INFINITY);
}
