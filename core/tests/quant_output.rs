//! The int8 output layer as `f32` and back (`QuantMlp::output_dense`, `set_output`,
//! `hidden_f32`): the round trip restores every bit, on the shipped model and on random ones;
//! the `f32` layer computes the int8 logits; `quantize_into` still makes the shipped file.

use digits_core::model_file;
use digits_core::quant::QuantError;
use digits_core::{Dense, Init, Mlp, MnistMlp, MnistQuant, QuantMlp, Rng};
use proptest::prelude::*;

fn shipped_bytes(name: &str) -> Vec<u8> {
    let path = testkit::workspace().join("firmware/models").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn shipped_int8() -> Box<MnistQuant> {
    let bytes = shipped_bytes("mnist-int8.digits");
    let mut q = Box::new(MnistQuant::zeroed());
    model_file::decode(&bytes)
        .unwrap()
        .load_int8_into(&mut *q)
        .unwrap();
    q
}

fn shipped_f32() -> Box<MnistMlp> {
    let bytes = shipped_bytes("mnist.digits");
    let mut m = Box::new(MnistMlp::zeros());
    model_file::decode(&bytes)
        .unwrap()
        .load_into(&mut *m)
        .unwrap();
    m
}

/// Output codes, biases and scales equal, the scales bit for bit.
fn assert_same_output<const I: usize, const H: usize, const O: usize>(
    a: &QuantMlp<I, H, O>,
    b: &QuantMlp<I, H, O>,
) {
    assert_eq!(a.w2, b.w2, "codes");
    assert_eq!(a.b2, b.b2, "biases");
    assert_eq!(
        a.out_scale.map(f32::to_bits),
        b.out_scale.map(f32::to_bits),
        "scales"
    );
}

#[test]
fn the_shipped_model_survives_the_round_trip_bit_for_bit() {
    let q = shipped_int8();
    let mut back = q.clone();
    back.set_output(&q.output_dense()).unwrap();
    assert_same_output(&q, &back);
    assert_eq!(*back, *q);
}

/// The shipped int8 file is the shipped f32 model quantized: `quantize_into`, now built on
/// `set_output`'s arithmetic, makes it again bit for bit.
#[test]
fn quantize_into_still_makes_the_shipped_int8_file() {
    let (m, shipped) = (shipped_f32(), shipped_int8());
    let mut q = Box::new(MnistQuant::zeroed());
    q.quantize_into(&m, shipped.hidden_scale).unwrap();
    assert_eq!(*q, *shipped);
}

/// The `f32` layer on the `f32` activations gives the int8 logits up to `f32` rounding:
/// within this fraction of the largest logit.
const DENSE_VS_INT8: f32 = 1e-5;

#[test]
fn the_f32_output_layer_computes_the_int8_logits() {
    let q = shipped_int8();
    let dense = q.output_dense();
    let digits = testkit::test_digits(200);
    let (mut worst, mut range) = (0.0f32, 0.0f32);
    for im in &digits.images {
        let mut z = [0.0f32; 10];
        dense.forward(&q.hidden_f32(im), &mut z);
        let zq = q.logits(im);
        range = zq.iter().fold(range, |r, v| r.max(v.abs()));
        worst = z
            .iter()
            .zip(&zq)
            .fold(worst, |w, (a, b)| w.max((a - b).abs()));
    }
    eprintln!("output_dense vs int8 logits: worst difference {worst:.2e} of range {range:.2}");
    assert!(
        worst <= DENSE_VS_INT8 * range,
        "{worst:e} > {DENSE_VS_INT8} x {range}"
    );
}

#[test]
fn hidden_f32_is_the_codes_times_the_scale() {
    let q = shipped_int8();
    let im = &testkit::test_digits(1).images[0];
    let mut codes = [0u8; 128];
    q.hidden_codes(im, &mut codes);
    let h = q.hidden_f32(im);
    for (&c, &h) in codes.iter().zip(&h) {
        assert_eq!(h.to_bits(), (c as f32 * q.hidden_scale).to_bits());
    }
    assert!(codes.iter().any(|&c| c > 0), "some unit is active");
}

#[test]
fn set_output_refuses_bad_input_and_changes_nothing() {
    let q = shipped_int8();
    let mut dense = q.output_dense();
    dense.w[5][2] = f32::NAN;
    let mut r = q.clone();
    assert_eq!(r.set_output(&dense), Err(QuantError::NotFinite));
    assert_eq!(*r, *q);
    let mut zeroed = Box::new(MnistQuant::zeroed());
    assert_eq!(
        zeroed.set_output(&q.output_dense()),
        Err(QuantError::BadHiddenScale)
    );
    assert_eq!(*zeroed, MnistQuant::zeroed());
}

type Small = Mlp<12, 9, 4>;
type SmallQuant = QuantMlp<12, 9, 4>;

/// A random small network with weights of magnitude about `10^decade`, some output columns
/// zero, quantized with `hidden_scale`.
fn random_quant(seed: u64, decade: i32, zero_columns: u8, hidden_scale: f32) -> Box<SmallQuant> {
    let mut m = Box::new(Small::zeros());
    let mut rng = Rng::new(seed);
    m.hidden.init(Init::He, &mut rng);
    m.output.init(Init::Xavier, &mut rng);
    let scale = 10f32.powi(decade);
    for w in m.output.w.as_flattened_mut() {
        *w *= scale;
    }
    for b in m.output.b.iter_mut() {
        *b = rng.uniform_in(-1.0, 1.0) as f32 * scale;
    }
    for k in 0..4 {
        if zero_columns >> k & 1 == 1 {
            m.output.w.iter_mut().for_each(|row| row[k] = 0.0);
        }
    }
    let mut q = Box::new(SmallQuant::zeroed());
    q.quantize_into(&m, hidden_scale).unwrap();
    q
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any quantized net, weights from tiny to large, hidden scales of every binade position.
    #[test]
    fn any_quantized_net_survives_the_round_trip(
        seed in any::<u64>(),
        decade in -6i32..=4,
        zero_columns in 0u8..16,
        hidden_scale in 1e-4f32..10.0,
    ) {
        let q = random_quant(seed, decade, zero_columns, hidden_scale);
        let mut back = q.clone();
        back.set_output(&q.output_dense()).unwrap();
        prop_assert_eq!(&back.w2, &q.w2);
        prop_assert_eq!(&back.b2, &q.b2);
        prop_assert_eq!(back.out_scale.map(f32::to_bits), q.out_scale.map(f32::to_bits));
        prop_assert_eq!(&*back, &*q);
    }

    /// Re-coding a re-coded layer changes nothing: `set_output` is idempotent through `f32`.
    #[test]
    fn a_tuned_layer_recoded_twice_is_stable(
        seed in any::<u64>(),
        hidden_scale in 1e-3f32..1.0,
        nudge in -0.5f32..0.5,
    ) {
        let q = random_quant(seed, 0, 0, hidden_scale);
        let mut tuned: Dense<9, 4, f32> = q.output_dense();
        let mut rng = Rng::new(seed ^ 1);
        for w in tuned.w.as_flattened_mut().iter_mut().chain(tuned.b.iter_mut()) {
            *w += nudge * rng.uniform() as f32;
        }
        let mut once = q.clone();
        once.set_output(&tuned).unwrap();
        let mut twice = once.clone();
        twice.set_output(&once.output_dense()).unwrap();
        prop_assert_eq!(&*twice, &*once);
    }
}
