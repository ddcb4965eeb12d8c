//! Same seed, same bits: initialization and training steps are reproducible.

mod common;

use common::{test_batch, to_f32};
use digits_core::{MnistMlp, Params, Rng, Sgd};

fn fingerprint(model: &MnistMlp<f32>) -> u64 {
    // FNV-1a over the bits of every parameter.
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for k in 0..model.tensor_count() {
        for v in model.tensor(k).data {
            for b in v.to_bits().to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    h
}

fn seeded(seed: u64) -> Box<MnistMlp<f32>> {
    let mut m: Box<MnistMlp<f32>> = bytemuck::zeroed_box();
    m.init(&mut Rng::new(seed));
    m
}

/// Five SGD steps with momentum and weight decay on real images; returns the model and losses.
fn train_steps(seed: u64) -> (Box<MnistMlp<f32>>, Vec<u32>) {
    let (xs, labels) = test_batch(64);
    let xs: Vec<[f32; 784]> = xs.iter().map(to_f32).collect();
    let mut model = seeded(seed);
    let mut grad: Box<MnistMlp<f32>> = bytemuck::zeroed_box();
    let mut velocity: Box<MnistMlp<f32>> = bytemuck::zeroed_box();
    let sgd = Sgd {
        momentum: 0.9,
        weight_decay: 5e-4,
    };
    let mut losses = Vec::new();
    for step in 0..5 {
        let b = step * 12..step * 12 + 16;
        let loss = model.backprop(&xs[b.clone()], &labels[b], &mut grad);
        sgd.step(&mut *model, &grad, &mut velocity, 0.1);
        losses.push(loss.to_bits());
    }
    (model, losses)
}

#[test]
fn same_seed_gives_bit_identical_initial_weights() {
    let (a, b, c) = (seeded(42), seeded(42), seeded(43));
    assert_eq!(fingerprint(&a), fingerprint(&b));
    assert!(*a == *b);
    assert_ne!(fingerprint(&a), fingerprint(&c));
    // Pinned: a change to the generator, the initializer or libm would silently change every
    // model trained from a seed; this makes it loud. (The firmware test checks the same bits
    // come out of a Cortex-M4.)
    assert_eq!(
        fingerprint(&a),
        PINNED_INIT_SEED_42,
        "got {:#018x}",
        fingerprint(&a)
    );
    // He init: standard deviation sqrt(2/784) in W1, biases zero.
    let w1 = a.tensor(0).data;
    let var = w1.iter().map(|w| (*w as f64).powi(2)).sum::<f64>() / w1.len() as f64;
    assert!(
        (var.sqrt() / (2.0f64 / 784.0).sqrt() - 1.0).abs() < 0.01,
        "std {}",
        var.sqrt()
    );
    assert!(a.tensor(1).data.iter().all(|&b| b == 0.0));
}

const PINNED_INIT_SEED_42: u64 = 0x30a3_e206_723f_81df;

#[test]
fn same_seed_gives_bit_identical_training_steps() {
    let (m1, l1) = train_steps(7);
    let (m2, l2) = train_steps(7);
    assert_eq!(l1, l2);
    assert_eq!(fingerprint(&m1), fingerprint(&m2));
    assert!(m1.all_finite());
    let (m3, _) = train_steps(8);
    assert_ne!(fingerprint(&m1), fingerprint(&m3));
    // The steps did learn: the loss went down on the batches seen.
    let first = f32::from_bits(l1[0]);
    let last = f32::from_bits(l1[4]);
    assert!(last < first, "loss {first} -> {last}");
}
