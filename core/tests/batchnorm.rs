//! Batch normalization: backprop against double-double central differences, train/eval modes,
//! and folding into the dense layer.

mod common;

use common::dd::Dd;
use common::gradcheck::{REL_TOL, against_double_double, assert_within, inputs_dd, print_report};
use common::{random_input, to_f32};
use digits_core::batchnorm::BatchNorm;
use digits_core::gradcheck::TensorCheck;
use digits_core::{BnScratch, Mlp, MlpBn, Params, Rng, Scalar, Sgd};

/// Folding may change eval outputs by rounding only.
const FOLD_TOL_F32: f32 = 1e-5;

const IN: usize = 20;
const H: usize = 8;
const OUT: usize = 4;

fn batch(rng: &mut Rng, n: usize) -> (Vec<[f64; IN]>, Vec<u8>) {
    let xs = (0..n).map(|_| random_input(rng, 0.4)).collect();
    let labels = (0..n).map(|_| rng.below(OUT as u64) as u8).collect();
    (xs, labels)
}

#[test]
fn backprop_through_batchnorm_matches_central_differences() {
    let mut rng = Rng::new(21);
    let mut model = MlpBn::<IN, H, OUT, f64>::zeros();
    model.init(&mut rng);
    for j in 0..H {
        model.norm.gamma[j] = 1.0 + 0.3 * rng.normal();
        model.norm.beta[j] = 0.2 * rng.normal();
    }
    let (xs, labels) = batch(&mut rng, 10);
    let mut xhat = vec![[0.0; H]; xs.len()];
    let mut y = vec![[0.0; H]; xs.len()];
    let mut grad = MlpBn::zeros();
    let mut scratch = BnScratch {
        xhat: &mut xhat,
        y: &mut y,
    };
    let (loss, _) = model.backprop(&xs, &labels, &mut grad, &mut scratch);
    assert_eq!(loss, model.loss_train(&xs, &labels, &mut scratch));

    let xs_dd = inputs_dd(&xs);
    let mut xhat_dd = vec![[Dd::ZERO; H]; xs.len()];
    let mut y_dd = vec![[Dd::ZERO; H]; xs.len()];
    let all: Vec<usize> = (0..model.num_params()).collect();
    let report: [TensorCheck; 6] = against_double_double(
        &model,
        &grad,
        &mut MlpBn::<IN, H, OUT, Dd>::zeros(),
        &mut MlpBn::zeros(),
        &all,
        |m| {
            let mut s = BnScratch {
                xhat: &mut xhat_dd,
                y: &mut y_dd,
            };
            m.loss_train(&xs_dd, &labels, &mut s)
        },
    );
    print_report(
        "batch norm 20-8(bn)-4, batch 10: f64 backprop vs double-double central differences",
        &report,
    );
    assert_within(&report, "double-double", f64::INFINITY, REL_TOL);
    // The batch-norm bias makes b1 redundant: its gradient is exactly cancelled by the mean.
    assert!(
        grad.hidden.b.iter().all(|g| g.abs() < 1e-15),
        "{:?}",
        grad.hidden.b
    );
}

#[test]
fn train_mode_normalizes_and_running_statistics_follow() {
    let mut rng = Rng::new(3);
    let x: Vec<[f64; 6]> = (0..50)
        .map(|_| core::array::from_fn(|j| 3.0 * j as f64 + (1.0 + j as f64) * rng.normal()))
        .collect();
    let norm = BatchNorm::<6, f64>::new();
    let mut xhat = x.clone();
    let mut y = vec![[0.0; 6]; x.len()];
    let stats = norm.forward_train(&mut xhat, &mut y);
    let after = BatchNorm::<6, f64>::batch_stats(&y);
    for j in 0..6 {
        assert!(after.mean[j].abs() < 1e-12, "mean {}", after.mean[j]);
        assert!((after.var[j] * (stats.var[j] + 1e-5) / stats.var[j] - 1.0).abs() < 1e-9);
    }
    let mut tracked = norm.clone();
    for _ in 0..200 {
        tracked.update_running(&stats);
    }
    for j in 0..6 {
        assert!((tracked.running_mean[j] - stats.mean[j]).abs() < 1e-6);
        let unbiased = stats.var[j] * 50.0 / 49.0;
        assert!((tracked.running_var[j] - unbiased).abs() < 1e-6 * unbiased);
    }
}

#[test]
fn folding_leaves_eval_outputs_unchanged() {
    let mut rng = Rng::new(8);
    let mut model = MlpBn::<IN, H, OUT, f32>::zeros();
    model.init(&mut rng);
    // Train a little so gamma, beta and the running statistics are far from the identity.
    let mut velocity = MlpBn::zeros();
    let mut grad = MlpBn::zeros();
    let sgd = Sgd {
        momentum: 0.9,
        weight_decay: 1e-4,
    };
    for _ in 0..200 {
        let (xs, labels) = batch(&mut rng, 16);
        let xs: Vec<[f32; IN]> = xs.iter().map(to_f32).collect();
        let mut xhat = vec![[0.0; H]; 16];
        let mut y = vec![[0.0; H]; 16];
        let mut scratch = BnScratch {
            xhat: &mut xhat,
            y: &mut y,
        };
        let (_, stats) = model.backprop(&xs, &labels, &mut grad, &mut scratch);
        sgd.step(&mut model, &grad, &mut velocity, 0.05);
        model.norm.update_running(&stats);
    }
    assert!(model.norm.gamma.iter().any(|g| (g - 1.0).abs() > 0.01));
    assert!(model.norm.running_mean.iter().any(|m| m.abs() > 0.01));

    let mut folded = Mlp::<IN, H, OUT, f32>::zeros();
    model.fold(&mut folded);
    let mut worst = 0.0f32;
    for _ in 0..500 {
        let x = to_f32(&random_input::<IN>(&mut rng, 0.4));
        let a = model.logits_eval(&x);
        let b = folded.logits(&x);
        for (a, b) in a.iter().zip(&b) {
            worst = worst.max((a - b).abs());
        }
    }
    println!("batch-norm folding: worst |eval - folded| over 500 inputs = {worst:.3e}");
    assert!(worst <= FOLD_TOL_F32, "worst {worst:e}");
}
