//! The structured numerical gradient equals the definition and agrees with backprop.

mod common;

use common::normalized;
use digits_core::gradcheck::ErrorStats;
use digits_core::numgrad::central_difference_at;
use digits_core::structured_numgrad::SampleState;
use digits_core::{Mlp, Params, Rng};

/// Same step as the definition it is compared with.
const H: f64 = 1e-6;
/// Structured vs the definition, absolute.
const ABS_TOL_DEFINITION: f64 = 1e-9;
/// Structured vs backprop, relative `|a-b| / max(|a|, |b|, 1e-8)`.
const REL_TOL_BACKPROP: f64 = 1e-6;

/// Compares `structured` with `other` per tensor at `indices`; `other(i)` gives the value.
fn compare<P: Params<f64>>(
    structured: &P,
    indices: &[usize],
    mut other: impl FnMut(usize) -> f64,
) -> Vec<(&'static str, ErrorStats)> {
    let mut out: Vec<(&'static str, ErrorStats)> = (0..structured.tensor_count())
        .map(|k| (structured.tensor(k).name, ErrorStats::default()))
        .collect();
    for &i in indices {
        let (k, j) = structured.locate(i);
        out[k].1.record(j, other(i), structured.param(i));
    }
    out
}

fn report_and_check(title: &str, stats: &[(&str, ErrorStats)], abs: Option<f64>, rel: Option<f64>) {
    println!("{title}");
    for (name, s) in stats {
        println!(
            "  {name:>3}: checked {:>6}  max abs {:.3e}  max rel {:.3e}",
            s.checked, s.max_abs, s.max_rel
        );
        assert!(s.checked > 0);
        if let Some(tol) = abs {
            assert!(
                s.max_abs <= tol,
                "{name}: max abs {:e} > {tol:e}",
                s.max_abs
            );
        }
        if let Some(tol) = rel {
            assert!(
                s.max_rel <= tol,
                "{name}: max rel {:e} > {tol:e} at [{}]: {:?}",
                s.max_rel,
                s.worst.index,
                s.worst
            );
        }
    }
}

fn check<const IN: usize, const HID: usize, const OUT: usize>(
    title: &str,
    model: &mut Mlp<IN, HID, OUT, f64>,
    pixels: &[[u8; IN]],
    labels: &[u8],
    definition_indices: &[usize],
) {
    let xs: Vec<[f64; IN]> = pixels.iter().map(normalized).collect();
    let mut structured: Box<Mlp<IN, HID, OUT, f64>> = bytemuck::zeroed_box();
    let mut states = vec![SampleState::default(); pixels.len()];
    let loss = model.numeric_gradient(pixels, labels, H, &mut states, &mut structured);
    assert_eq!(loss, model.loss(&xs, labels));

    let mut backprop: Box<Mlp<IN, HID, OUT, f64>> = bytemuck::zeroed_box();
    model.backprop(&xs, labels, &mut backprop);
    let all: Vec<usize> = (0..model.num_params()).collect();
    let vs_backprop = compare(&*structured, &all, |i| backprop.param(i));

    let mut loss_fn = |m: &Mlp<IN, HID, OUT, f64>| m.loss(&xs, labels);
    let vs_definition = compare(&*structured, definition_indices, |i| {
        central_difference_at(model, i, H, &mut loss_fn)
    });
    report_and_check(
        &format!("{title}: structured vs the definition (h = {H:e})"),
        &vs_definition,
        Some(ABS_TOL_DEFINITION),
        None,
    );
    report_and_check(
        &format!("{title}: structured vs backprop, every parameter"),
        &vs_backprop,
        None,
        Some(REL_TOL_BACKPROP),
    );
}

#[test]
fn small_network_equals_definition_and_backprop() {
    const IN: usize = 30;
    let mut rng = Rng::new(17);
    let mut model = Mlp::<IN, 10, 4, f64>::zeros();
    model.init(&mut rng);
    for k in [1, 3] {
        for b in model.tensor_mut(k).data.iter_mut() {
            *b = 0.1 * rng.normal();
        }
    }
    let pixels: Vec<[u8; IN]> = (0..12)
        .map(|_| {
            core::array::from_fn(|_| {
                if rng.uniform() < 0.5 {
                    0
                } else {
                    rng.below(256) as u8
                }
            })
        })
        .collect();
    let labels: Vec<u8> = (0..12).map(|_| rng.below(4) as u8).collect();
    let all: Vec<usize> = (0..model.num_params()).collect();
    check("30-10-4, batch 12", &mut model, &pixels, &labels, &all);
}

#[test]
fn mnist_network_equals_definition_and_backprop() {
    let testkit::Labeled {
        images: pixels,
        labels,
    } = testkit::test_digits(16);
    let mut model: Box<Mlp<784, 128, 10, f64>> = bytemuck::zeroed_box();
    model.init(&mut Rng::new(42));
    let lit: Vec<usize> = (0..784)
        .filter(|&i| pixels.iter().any(|p| p[i] != 0))
        .collect();
    let mut rng = Rng::new(9);
    let w1_len = 784 * 128;
    let mut indices: Vec<usize> = (0..1000)
        .map(|_| lit[rng.below(lit.len() as u64) as usize] * 128 + rng.below(128) as usize)
        .collect();
    indices.extend(w1_len..model.num_params());
    check(
        "Mlp<784,128,10>, 16 MNIST test images",
        &mut model,
        &pixels,
        &labels,
        &indices,
    );
}
