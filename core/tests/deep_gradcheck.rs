//! The deep network's backprop (three hidden layers, ReLU and clipped ReLU) against central
//! differences, every parameter, in f64 and against a double-double reference.

mod common;

use common::dd::Dd;
use common::random_input;
use digits_core::deep::{Ceilings, Deep};
use digits_core::gradcheck::{TensorCheck, gradcheck};
use digits_core::params::convert;
use digits_core::{Params, Rng, Scalar};

/// Relative error bound, `|a-b| / max(|a|, |b|, 1e-8)`, against double-double differences.
const REL_TOL: f64 = 1e-6;
/// Relative error bound against plain f64 central differences (rounding of the loss limits it).
const REL_TOL_F64: f64 = 1e-4;
/// Absolute error bound against plain f64 central differences: `eps * |L| / h`.
const ABS_TOL_F64: f64 = 1e-9;
/// Central-difference step in double-double.
const H_DD: f64 = 1e-7;
/// Central-difference step in f64.
const H_F64: f64 = 1e-5;

type Net<S> = Deep<20, 9, 8, 7, 5, S>;

fn print_report(title: &str, report: &[TensorCheck]) {
    println!("{title}");
    for t in report {
        let s = &t.stats;
        println!(
            "  {:>3}: checked {:>4}  max abs {:.3e}  max rel {:.3e}  (worst [{}]: backprop {:+.6e}, numeric {:+.6e})",
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

fn network(seed: u64) -> (Net<f64>, Vec<[f64; 20]>, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let mut model = Net::<f64>::zeros();
    model.init(&mut rng);
    // Non-zero biases, so every term of the gradient is exercised.
    for k in [1, 3, 5, 7] {
        for b in model.tensor_mut(k).data.iter_mut() {
            *b = 0.1 * rng.normal();
        }
    }
    let xs: Vec<[f64; 20]> = (0..6).map(|_| random_input(&mut rng, 0.4)).collect();
    let labels: Vec<u8> = (0..6).map(|_| rng.below(5) as u8).collect();
    (model, xs, labels)
}

/// Checks every parameter; returns the double-double and the f64 reports.
fn check(
    model: &mut Net<f64>,
    xs: &[[f64; 20]],
    labels: &[u8],
    ceilings: Ceilings<f64>,
) -> [[TensorCheck; 8]; 2] {
    let mut grad = Net::<f64>::zeros();
    model.backprop(xs, labels, &ceilings, &mut grad);
    let all: Vec<usize> = (0..model.num_params()).collect();

    let mut model_dd = Net::<Dd>::zeros();
    let mut grad_dd = Net::<Dd>::zeros();
    convert(model, &mut model_dd);
    convert(&grad, &mut grad_dd);
    let xs_dd: Vec<[Dd; 20]> = xs
        .iter()
        .map(|x| core::array::from_fn(|i| Dd::from_f64(x[i])))
        .collect();
    let ceilings_dd = Ceilings(ceilings.0.map(Dd::from_f64));
    let reference = gradcheck(
        &mut model_dd,
        &grad_dd,
        Dd::from_f64(H_DD),
        all.iter().copied(),
        |m| m.loss(&xs_dd, labels, &ceilings_dd),
    );
    let plain = gradcheck(model, &grad, H_F64, all.iter().copied(), |m| {
        m.loss(xs, labels, &ceilings)
    });
    for t in &reference {
        assert!(t.stats.checked > 0, "{}: nothing checked", t.name);
    }
    [reference, plain]
}

fn assert_within(report: &[TensorCheck], what: &str, max_abs: f64, max_rel: f64) {
    for t in report {
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
