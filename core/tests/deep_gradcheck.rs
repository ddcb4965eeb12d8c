//! The deep network's backprop (three hidden layers, ReLU and clipped ReLU; dense or with
//! convolution layers) against central differences, every parameter, in f64 and against a
//! double-double reference.

mod common;

use common::dd::Dd;
use common::gradcheck::{
    REL_TOL, against_double_double, assert_within, inputs_dd, print_report, randomize_biases,
};
use common::random_input;
use digits_core::conv::ConvKind;
use digits_core::deep::{Ceilings, Deep};
use digits_core::gradcheck::{TensorCheck, gradcheck};
use digits_core::layer::LayerKind;
use digits_core::{Params, Rng, Scalar};

/// Relative error bound against plain f64 central differences (rounding of the loss limits it).
const REL_TOL_F64: f64 = 1e-4;
/// Absolute error bound against plain f64 central differences: `eps * |L| / h`.
const ABS_TOL_F64: f64 = 1e-9;
/// Central-difference step in f64.
const H_F64: f64 = 1e-5;

type Net<S> = Deep<20, 9, 8, 7, 5, S>;

/// First layer: 4x4 windows every 2 pixels of a 6x6 image (4 windows), 3 units each.
type Conv1 = ConvKind<6, 1, 4, 2, 16, 3>;
/// Second: 1x1 windows of those, 2 units each.
type Conv2 = ConvKind<2, 3, 1, 1, 3, 2>;
/// Convolutions, then dense layers of 7 and 5.
type ConvNet<S> = Deep<36, 12, 8, 7, 5, S, Conv1, Conv2>;

fn network(seed: u64) -> (Net<f64>, Vec<[f64; 20]>, Vec<u8>) {
    any_network(seed)
}

#[allow(clippy::type_complexity, reason = "a network, its inputs and labels")]
fn any_network<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
>(
    seed: u64,
) -> (Deep<IN, H1, H2, 7, 5, f64, K1, K2>, Vec<[f64; IN]>, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let mut model = Deep::<IN, H1, H2, 7, 5, f64, K1, K2>::zeros();
    model.init(&mut rng);
    randomize_biases(&mut model, &[1, 3, 5, 7], &mut rng);
    let xs: Vec<[f64; IN]> = (0..6).map(|_| random_input(&mut rng, 0.4)).collect();
    let labels: Vec<u8> = (0..6).map(|_| rng.below(5) as u8).collect();
    (model, xs, labels)
}

/// Checks every parameter; returns the double-double and the f64 reports.
fn check<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
>(
    model: &mut Deep<IN, H1, H2, 7, 5, f64, K1, K2>,
    xs: &[[f64; IN]],
    labels: &[u8],
    ceilings: Ceilings<f64>,
) -> [[TensorCheck; 8]; 2] {
    let mut grad = Deep::zeros();
    model.backprop(xs, labels, &ceilings, &mut grad);
    let all: Vec<usize> = (0..model.num_params()).collect();

    let xs_dd = inputs_dd(xs);
    let ceilings_dd = Ceilings(ceilings.0.map(Dd::from_f64));
    let reference = against_double_double(
        model,
        &grad,
        &mut Deep::<IN, H1, H2, 7, 5, Dd, K1, K2>::zeros(),
        &mut Deep::zeros(),
        &all,
        |m| m.loss(&xs_dd, labels, &ceilings_dd),
    );
    let plain = gradcheck(model, &grad, H_F64, all.iter().copied(), |m| {
        m.loss(xs, labels, &ceilings)
    });
    [reference, plain]
}

#[test]
fn convolution_layers_every_parameter() {
    // Shared weights: each first-layer weight meets all 4 windows, each pixel up to 4 of them.
    let (mut model, xs, labels) = any_network::<36, 12, 8, Conv1, Conv2>(5);
    for ceilings in [Ceilings([1e300; 3]), Ceilings([0.6, 0.3, 0.2])] {
        let [reference, plain] = check(&mut model, &xs, &labels, ceilings);
        print_report(
            &format!(
                "6x6-w4s2-3-2-7-5, ceilings {:?}, batch 6: f64 backprop vs double-double central differences",
                ceilings.0
            ),
            &reference,
        );
        print_report("  ... vs f64 central differences", &plain);
        assert_within(&reference, "double-double", f64::INFINITY, REL_TOL);
        assert_within(&plain, "f64", ABS_TOL_F64, REL_TOL_F64);
    }
}

#[test]
fn a_convolution_gradient_from_the_wrong_window_fails_the_check() {
    // The gradient of two shared weights of the first layer swapped (a window read from the
    // wrong place would do that): the check must see it.
    let (mut model, xs, labels) = any_network::<36, 12, 8, Conv1, Conv2>(6);
    let ceilings = Ceilings([1e300; 3]);
    let mut grad = ConvNet::<f64>::zeros();
    model.backprop(&xs, &labels, &ceilings, &mut grad);
    let w = &mut grad.l1.kernel.w;
    let (a, b) = (w[0][0], w[5][0]);
    assert!(
        (a - b).abs() > 1e-6 * a.abs().max(b.abs()),
        "distinct gradients"
    );
    (w[0][0], w[5][0]) = (b, a);
    let all: Vec<usize> = (0..model.num_params()).collect();
    let report: [TensorCheck; 8] = gradcheck(&mut model, &grad, H_F64, all, |m| {
        m.loss(&xs, &labels, &ceilings)
    });
    assert!(report[0].stats.max_rel > REL_TOL_F64, "the check missed it");
    assert!(report[1..].iter().all(|t| t.stats.max_rel <= REL_TOL_F64));
}

#[test]
fn relu_layers_every_parameter() {
    let (mut model, xs, labels) = network(3);
    let ceilings = Ceilings([1e300; 3]);
    let [reference, plain] = check(&mut model, &xs, &labels, ceilings);
    print_report(
        "20-9-8-7-5 ReLU, batch 6: f64 backprop vs double-double central differences",
        &reference,
    );
    print_report("  ... vs f64 central differences", &plain);
    assert_within(&reference, "double-double", f64::INFINITY, REL_TOL);
    assert_within(&plain, "f64", ABS_TOL_F64, REL_TOL_F64);
}

#[test]
fn clipped_relu_layers_every_parameter() {
    let (mut model, xs, labels) = network(4);
    // Low ceilings, so that some units of every layer are clipped in some sample.
    let ceilings = Ceilings([0.5, 0.4, 0.2]);
    let mut act = digits_core::deep::DeepActivations::default();
    let mut clipped = [false; 3];
    for x in &xs {
        model.forward(x, &ceilings, &mut act);
        clipped[0] |= act.pre1.iter().any(|&p| p > 0.5);
        clipped[1] |= act.pre2.iter().any(|&p| p > 0.4);
        clipped[2] |= act.pre3.iter().any(|&p| p > 0.2);
    }
    assert_eq!(clipped, [true; 3], "every ceiling is reached");
    let [reference, plain] = check(&mut model, &xs, &labels, ceilings);
    print_report(
        "20-9-8-7-5 clipped ReLU, batch 6: f64 backprop vs double-double central differences",
        &reference,
    );
    print_report("  ... vs f64 central differences", &plain);
    assert_within(&reference, "double-double", f64::INFINITY, REL_TOL);
    assert_within(&plain, "f64", ABS_TOL_F64, REL_TOL_F64);
}

#[test]
fn a_planted_fault_fails_the_check() {
    // The clipped ReLU's backward pass made to ignore the ceiling: the check must see it.
    let (mut model, xs, labels) = network(4);
    let ceilings = Ceilings([0.5, 0.4, 0.2]);
    let mut grad = Net::<f64>::zeros();
    // Gradient of the unclipped network, compared with differences of the clipped one.
    model.backprop(&xs, &labels, &Ceilings([1e300; 3]), &mut grad);
    let all: Vec<usize> = (0..model.num_params()).collect();
    let report: [TensorCheck; 8] = gradcheck(&mut model, &grad, H_F64, all, |m| {
        m.loss(&xs, &labels, &ceilings)
    });
    assert!(
        report.iter().any(|t| t.stats.max_rel > REL_TOL_F64),
        "the check missed a wrong gradient"
    );
}
