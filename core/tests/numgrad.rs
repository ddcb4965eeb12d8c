//! The generic central differences on a plain slice, against functions with known gradients.

use digits_core::numgrad::{central_difference_at, central_differences};

/// Truncation error of central differences on a cubic is exactly h^2 * f''' / 6.
const TOL: f64 = 1e-8;

#[test]
fn gradient_of_known_functions() {
    // f(w) = sum_i (i + 1) w_i^2 + w_0 w_1 + w_2^3: df/dw_i = 2 (i + 1) w_i + ..., exact.
    let f = |w: &[f64]| {
        w.iter()
            .enumerate()
            .map(|(i, v)| (i + 1) as f64 * v * v)
            .sum::<f64>()
            + w[0] * w[1]
            + w[2].powi(3)
    };
    let mut w = vec![0.5, -1.25, 2.0, 0.75];
    let before = w.clone();
    let mut g = vec![0.0; 4];
    let h = 1e-5;
    central_differences(&mut w[..], h, f, &mut g[..]);
    let exact = [
        2.0 * w[0] + w[1],
        4.0 * w[1] + w[0],
        6.0 * w[2] + 3.0 * w[2] * w[2],
        8.0 * w[3],
    ];
    let worst = g
        .iter()
        .zip(exact)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("worst |numeric - exact| = {worst:.3e}");
    assert!(worst <= TOL, "{g:?} vs {exact:?}");
    // Parameters are restored bit for bit.
    assert_eq!(w, before);
    // One parameter alone gives the same number as the full sweep.
    let mut f = f;
    assert_eq!(central_difference_at(&mut w[..], 2, h, &mut f), g[2]);
}

#[test]
fn evaluates_the_loss_exactly_twice_per_parameter() {
    let mut calls = 0;
    let mut w = [1.0f32; 7];
    let mut g = [0.0f32; 7];
    central_differences(
        &mut w[..],
        1e-2,
        |p: &[f32]| {
            calls += 1;
            p.iter().sum()
        },
        &mut g[..],
    );
    assert_eq!(calls, 14);
    assert!(g.iter().all(|&d| (d - 1.0).abs() < 1e-4), "{g:?}");
}
