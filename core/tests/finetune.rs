//! Fine-tuning the output layer (`finetune::Tuner`): the numerical gradient agrees with
//! backprop, the cached path gives the model's own bits, steps lower the loss, and bad input is
//! refused without changing anything.

mod common;

use common::{random_input, to_f32};
use digits_core::finetune::{Gradient, TuneError, Tuner};
use digits_core::{Mlp, Rng, Sgd};

type Small = Mlp<64, 16, 10, f32>;
type SmallTuner = Tuner<16, 10, 8>;

/// Agreement of central differences (f32, h = 1e-2) with backprop on the output layer,
/// relative to the largest gradient entry: h^2 truncation plus f32 rounding of the loss change.
const NUMERIC_VS_BACKPROP: f32 = 2e-3;

fn setup() -> (Box<Small>, Vec<[f32; 64]>, Vec<u8>) {
    let model = Box::new(Small::seeded(7));
    let mut rng = Rng::new(11);
    let xs: Vec<[f32; 64]> = (0..8)
        .map(|_| to_f32(&random_input::<64>(&mut rng, 0.5)))
        .collect();
    let labels = (0..8).map(|i| (i * 3 % 10) as u8).collect();
    (model, xs, labels)
}

fn filled(model: &Small, xs: &[[f32; 64]], labels: &[u8]) -> Box<SmallTuner> {
    let mut tuner = Box::new(SmallTuner::zeroed());
    tuner.reset(&model.output);
    for (x, &y) in xs.iter().zip(labels) {
        tuner.add(model, x, y).unwrap();
    }
    tuner
}

#[test]
fn an_untuned_tuner_gives_the_models_bits() {
    let (model, xs, labels) = setup();
    let tuner = filled(&model, &xs, &labels);
    for x in &xs {
        assert_eq!(
            tuner.logits(&model, x).map(f32::to_bits),
            model.logits(x).map(f32::to_bits)
        );
    }
}

#[test]
fn the_numerical_gradient_agrees_with_backprop() {
    let (model, xs, labels) = setup();
    let mut tuner = filled(&model, &xs, &labels);
    let loss_b = tuner.gradient(Gradient::Backprop).unwrap();
    let backprop = tuner.last_gradient().clone();
    let loss_n = tuner.gradient(Gradient::Numeric).unwrap();
    let numeric = tuner.last_gradient().clone();
    assert_eq!(loss_b.to_bits(), loss_n.to_bits(), "same loss either way");
    // And both agree with the full model's loss.
    assert!((loss_b - model.loss(&xs, &labels)).abs() < 1e-6);

    let flat = |d: &digits_core::Dense<16, 10, f32>| -> Vec<f32> {
        d.w.as_flattened().iter().chain(&d.b).copied().collect()
    };
    let (b, n) = (flat(&backprop), flat(&numeric));
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = b
        .iter()
        .zip(&n)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    eprintln!(
        "finetune: numeric vs backprop, worst |difference| {worst:.2e} of max |g| {scale:.2e}"
    );
    assert!(scale > 1e-3, "a non-trivial gradient");
    assert!(
        worst <= NUMERIC_VS_BACKPROP * scale,
        "worst {worst:e}, scale {scale:e}"
    );
}

#[test]
fn steps_lower_the_loss_by_either_method() {
    let (model, xs, labels) = setup();
    let sgd = Sgd {
        momentum: 0.9,
        weight_decay: 0.0,
    };
    for method in [Gradient::Backprop, Gradient::Numeric] {
        let mut tuner = filled(&model, &xs, &labels);
        let first = tuner.step(method, &sgd, 0.1).unwrap();
        assert_eq!(first.samples, 8);
        assert_eq!(tuner.batch_len(), 0, "a step empties the batch");
        let mut last = first.loss;
        for _ in 0..20 {
            for (x, &y) in xs.iter().zip(&labels) {
                tuner.add(&model, x, y).unwrap();
            }
            last = tuner.step(method, &sgd, 0.1).unwrap().loss;
        }
        assert_eq!(tuner.steps(), 21);
        assert!(
            last < 0.5 * first.loss,
            "{method:?}: {} -> {last}",
            first.loss
        );
        // Reset restores the shipped layer.
        tuner.reset(&model.output);
        assert_eq!(tuner.output, model.output);
        assert_eq!(tuner.steps(), 0);
    }
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let (model, xs, labels) = setup();
    let mut tuner = filled(&model, &xs, &labels);
    assert_eq!(tuner.add(&model, &xs[0], 1), Err(TuneError::BatchFull));
    let before = tuner.clone();
    let sgd = Sgd {
        momentum: 0.0,
        weight_decay: 0.0,
    };
    assert_eq!(
        tuner.step(Gradient::Backprop, &sgd, f32::NAN),
        Err(TuneError::NotFinite)
    );
    assert_eq!(tuner.output, before.output);
    assert_eq!(tuner.batch_len(), 8, "the batch stays for another try");

    let mut empty = Box::new(SmallTuner::zeroed());
    empty.reset(&model.output);
    assert_eq!(empty.add(&model, &xs[0], 10), Err(TuneError::BadLabel));
    assert_eq!(
        empty.step(Gradient::Numeric, &sgd, 0.1),
        Err(TuneError::EmptyBatch)
    );
}
