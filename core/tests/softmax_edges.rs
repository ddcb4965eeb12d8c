//! Softmax and cross-entropy at the edges: huge logits, equal logits, confident labels.

use digits_core::loss::{cross_entropy, cross_entropy_backward};
use digits_core::softmax::{log_softmax, log_sum_exp, softmax};
use proptest::prelude::*;

/// Probabilities must sum to 1 within a few ulps of the type.
const SUM_TOL_F32: f32 = 1e-5;
const SUM_TOL_F64: f64 = 1e-12;

proptest! {
    #[test]
    fn softmax_is_finite_and_sums_to_one_f32(z in prop::array::uniform10(-1e4f32..1e4)) {
        let mut p = [0.0f32; 10];
        softmax(&z, &mut p);
        let sum: f32 = p.iter().sum();
        prop_assert!(p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{p:?}");
        prop_assert!((sum - 1.0).abs() <= SUM_TOL_F32, "sum {sum}");
        for label in 0..10 {
            let l = cross_entropy(&z, label);
            prop_assert!(l.is_finite() && l >= 0.0, "loss {l} for label {label} of {z:?}");
        }
    }

    #[test]
    fn softmax_is_finite_and_sums_to_one_f64(z in prop::array::uniform10(-1e4f64..1e4)) {
        let mut p = [0.0f64; 10];
        softmax(&z, &mut p);
        let sum: f64 = p.iter().sum();
        prop_assert!(p.iter().all(|v| v.is_finite()));
        prop_assert!((sum - 1.0).abs() <= SUM_TOL_F64, "sum {sum}");
        let mut lp = [0.0f64; 10];
        log_softmax(&z, &mut lp);
        for i in 0..10 {
            // log-softmax agrees with ln(softmax) wherever the probability has not underflowed.
            if p[i] > 1e-300 {
                prop_assert!((lp[i] - p[i].ln()).abs() <= 1e-9 * lp[i].abs().max(1.0));
            }
            prop_assert!(lp[i].is_finite() && lp[i] <= 0.0);
        }
    }

    #[test]
    fn gradient_sums_to_zero_and_is_bounded(z in prop::array::uniform10(-1e4f32..1e4), label in 0usize..10) {
        let mut dz = [0.0f32; 10];
        let loss = cross_entropy_backward(&z, label, &mut dz);
        prop_assert!(loss.is_finite() && loss >= 0.0);
        prop_assert!(dz.iter().all(|d| d.is_finite() && (-1.0..=1.0).contains(d)), "{dz:?}");
        prop_assert!(dz.iter().sum::<f32>().abs() <= SUM_TOL_F32);
    }
}

#[test]
fn extreme_logits_do_not_overflow() {
    let z = [1e4f32, -1e4, 0.0, 1e4, -1e4, 5.0, 0.0, 0.0, 0.0, 0.0];
    let mut p = [0.0f32; 10];
    softmax(&z, &mut p);
    assert_eq!(p[0], 0.5);
    assert_eq!(p[3], 0.5);
    assert_eq!(p[1], 0.0);
    assert!((log_sum_exp(&z) - (1e4 + 2f32.ln())).abs() <= 1e-3);
    assert!((cross_entropy(&z, 1) - (2e4 + 2f32.ln())).abs() <= 2e-3);
}

#[test]
fn equal_logits_give_uniform_probabilities() {
    for v in [-1e4f64, -3.5, 0.0, 7.25, 1e4] {
        let z = [v; 10];
        let mut p = [0.0; 10];
        softmax(&z, &mut p);
        assert!(p.iter().all(|&q| (q - 0.1).abs() < 1e-15), "{p:?}");
        let l = cross_entropy(&z, 4);
        assert!(
            (l - 10f64.ln()).abs() < 1e-12 * v.abs().max(1.0),
            "loss {l}"
        );
    }
}

#[test]
fn confident_correct_label_has_loss_near_zero() {
    let mut z = [0.0f32; 10];
    z[7] = 1e4;
    assert_eq!(cross_entropy(&z, 7), 0.0);
    z[7] = 30.0;
    // ln(1 + 9 e^-30) rounds to 0 in f32; in f64 it is 8.4e-13.
    assert_eq!(cross_entropy(&z, 7), 0.0);
    let z64: [f64; 10] = core::array::from_fn(|i| z[i] as f64);
    let l = cross_entropy(&z64, 7);
    assert!((l - 9.0 * (-30f64).exp()).abs() < 1e-15, "loss {l}");
    // ... and a confident wrong label costs the logit gap.
    assert!((cross_entropy(&z, 3) - 30.0).abs() < 1e-5);
    let mut dz = [0.0f32; 10];
    cross_entropy_backward(&z, 7, &mut dz);
    assert!(dz.iter().all(|d| d.abs() < 1e-11), "{dz:?}");
}
