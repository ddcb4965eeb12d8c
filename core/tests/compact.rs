//! The compact integer network: the byte-at-a-time kernel against the plain definition, the
//! quantization-aware forward pass against the integer inference and the float network it
//! stands for, and the checks that keep a model from overflowing.

mod common;

use common::compact::{ConvNet, Net, Owned, quantized, quantized_conv, view};
use digits_core::compact::{Compact, CompactError, MAX_BIAS};
use digits_core::conv::Windows;
use digits_core::deep::{Deep, DeepActivations};
use digits_core::downsample::area_average;
use digits_core::fast::pairs::{Pairs, Portable};
use digits_core::layer::LayerKind;
use digits_core::lowbit::Bits;
use digits_core::qat::{INPUT_SCALE, dequantize};
use digits_core::softmax::argmax;
use digits_core::{Params, Rng, pixels};

fn random_layer(rng: &mut Rng, inputs: usize, outputs: usize, bits: Bits) -> Owned {
    let mut l = Owned::new((inputs, outputs), bits, false);
    for b in l.codes.iter_mut() {
        *b = rng.below(256) as u8;
    }
    for j in 0..outputs {
        let b = rng.below(2 * MAX_BIAS as u64 + 1) as i64 - MAX_BIAS as i64;
        l.bias[4 * j..4 * j + 4].copy_from_slice(&(b as i32).to_le_bytes());
    }
    l
}

#[test]
fn byte_kernel_equals_the_definition() {
    let mut rng = Rng::new(7);
    let mut cases = 0;
    for bits in [Bits::Two, Bits::Four] {
        for inputs in [1, 3, 5, 7, 16, 37, 196, 256, 784] {
            let layer = random_layer(&mut rng, inputs, 13, bits);
            let inputs_sets: [Vec<u8>; 3] = [
                (0..inputs).map(|_| rng.below(256) as u8).collect(),
                vec![255; inputs],
                (0..inputs)
                    .map(|i| if i % 3 == 0 { 0 } else { 200 })
                    .collect(),
            ];
            for input in &inputs_sets {
                let (mut fast, mut reference) = ([0i32; 13], [0i32; 13]);
                layer.layer().accumulate(input, &mut fast);
                layer.layer().accumulate_reference(input, &mut reference);
                assert_eq!(fast, reference, "{bits}, {inputs} inputs");
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 54);
}

#[test]
fn window_by_window_kernel_equals_the_definition() {
    // Windows of every shape the kernel meets: one channel or many, overlapping or not, 1x1,
    // the whole map; both code widths, odd row lengths included.
    let mut rng = Rng::new(17);
    let mut cases = 0;
    for (side, channels, kernel, stride, units) in [
        (16, 1, 8, 4, 13),
        (16, 1, 7, 3, 5),
        (3, 32, 1, 1, 16),
        (5, 3, 3, 2, 7),
        (4, 5, 4, 1, 3),
        (6, 1, 3, 3, 1),
    ] {
        let w = Windows {
            side,
            channels,
            kernel,
            stride,
        };
        for bits in [Bits::Two, Bits::Four] {
            let shape = (w.inputs(), w.positions() * units);
            let mut layer = Owned::windowed(shape, bits, Some(w), false);
            let random = random_layer(&mut rng, w.patch(), units, bits);
            (layer.codes, layer.bias) = (random.codes, random.bias);
            let input: Vec<u8> = (0..w.inputs()).map(|_| rng.below(256) as u8).collect();
            let (mut fast, mut reference) = (vec![0i32; shape.1], vec![0i32; shape.1]);
            layer.layer().accumulate(&input, &mut fast);
            layer.layer().accumulate_reference(&input, &mut reference);
            assert_eq!(fast, reference, "{w:?}, {bits}");
            // Every window sees its own values: no two windows' sums all alike.
            let first = &reference[..units];
            assert!(
                w.positions() == 1 || reference.chunks(units).any(|c| c != first),
                "{w:?}"
            );
            cases += 1;
        }
    }
    assert_eq!(cases, 12);
}

#[test]
fn a_changed_code_changes_the_accumulators() {
    // The comparison above can fail: one code of one unit changed moves that unit's sum.
    let mut rng = Rng::new(8);
    let mut layer = random_layer(&mut rng, 37, 5, Bits::Four);
    let input = vec![9u8; 37];
    let mut before = [0i32; 5];
    layer.layer().accumulate_reference(&input, &mut before);
    layer.codes[2 * Bits::Four.row_bytes(37) + 3] ^= 0x10;
    let mut after = [0i32; 5];
    layer.layer().accumulate(&input, &mut after);
    assert_ne!(before[2], after[2]);
    assert_eq!((before[0], before[4]), (after[0], after[4]));
}

/// Largest difference between the integer logits and the float network of the same
/// (dequantized) weights, relative to the largest logit: the rounding of 8-bit activations
/// (measured worst: 0.041 dense, 0.055 convolutions, whose units sum fewer rounded codes,
/// 12 for the 1x1 windows, so less of the rounding averages out).
const FLOAT_LOGIT_TOL: f32 = 0.06;
/// Smallest share of images both networks classify alike.
const SAME_CLASS: f64 = 0.95;

/// Largest difference between `float` and `integer` logits, relative to the largest float logit.
fn relative_difference(float: &[f32; 10], integer: &[f32; 10]) -> f32 {
    let scale = float.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = float
        .iter()
        .zip(integer)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

#[test]
fn training_forward_is_the_integer_network_and_near_its_float_twin() {
    forward_matches::<32, 24, 16, _, _>(quantized, "dense");
    forward_matches::<108, 54, 16, _, _>(quantized_conv, "convolutions");
}

/// The training forward pass is the integer inference, bit for bit, and the float network of
/// the dequantized weights (the shadow) is near it.
#[allow(
    clippy::type_complexity,
    reason = "the three parts of one quantized network"
)]
fn forward_matches<
    const H1: usize,
    const H2: usize,
    const H3: usize,
    K1: LayerKind<256, H1>,
    K2: LayerKind<H1, H2>,
>(
    make: fn(
        [Bits; 4],
        u64,
    ) -> (
        Box<Deep<256, H1, H2, H3, 10, f32, K1, K2>>,
        Box<digits_core::qat::Qat<256, H1, H2, H3, 10, K1, K2>>,
        Vec<Owned>,
    ),
    name: &str,
) {
    let digits = testkit::test_digits(200);
    for bits in [[Bits::Four; 4], [Bits::Two; 4]] {
        let (_, qat, owned) = make(bits, 3);
        let model = view(16, &owned);
        model.check().expect("a valid model");
        let (mut same, mut worst) = (0, 0.0f32);
        for image in &digits.images {
            let mut input = [0u8; 256];
            area_average::<16, 256>(image, &mut input);
            let mut act = DeepActivations::default();
            qat.forward(&model, &input, &mut act);
            let mut logits = [0.0f32; 10];
            model.logits_of_image(image, &mut logits);
            assert_eq!(act.logits.map(f32::to_bits), logits.map(f32::to_bits));

            let mut x = [0.0f32; 256];
            pixels::normalize(&input, &mut x);
            let float = qat.shadow.logits(&x, &qat.ceilings());
            worst = worst.max(relative_difference(&float, &logits));
            same += (argmax(&float) == argmax(&logits)) as usize;
        }
        let share = same as f64 / digits.images.len() as f64;
        println!(
            "{name}, {bits:?}: worst relative logit difference {worst:.4}, same class {share:.3}"
        );
        assert!(worst <= FLOAT_LOGIT_TOL, "{name}: {worst}");
        assert!(share >= SAME_CLASS, "{name}: {share}");
    }
}

/// The pair kernel (the Cortex-M4F's, here with its portable multiply-add) gives the byte
/// kernel's logits, bit for bit, for dense and convolution networks at both code widths.
#[test]
fn the_pair_kernel_gives_the_byte_kernels_logits() {
    let digits = testkit::test_digits(200);
    let mut compared = 0;
    for bits in [
        [Bits::Four; 4],
        [Bits::Two, Bits::Four, Bits::Two, Bits::Four],
    ] {
        let (_, _, dense) = quantized(bits, 5);
        let (_, _, conv) = quantized_conv(bits, 5);
        for owned in [&dense, &conv] {
            let model = view(16, owned);
            for image in &digits.images {
                let (mut bytes, mut pairs) = ([0.0f32; 10], [0.0f32; 10]);
                model.logits_of_image(image, &mut bytes);
                model.logits_of_image_with::<Pairs<Portable>>(image, &mut pairs);
                assert_eq!(bytes.map(f32::to_bits), pairs.map(f32::to_bits));
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 2 * 2 * 200);
}

#[test]
fn a_network_of_convolutions_dequantizes_to_its_float_twin() {
    let digits = testkit::test_digits(100);
    let (_, _, owned) = quantized_conv([Bits::Four; 4], 9);
    let model = view(16, &owned);
    let mut net: Box<ConvNet> = bytemuck::zeroed_box();
    let ceilings = dequantize(&model, &mut *net).expect("the shapes match");
    let mut worst = 0.0f32;
    for image in &digits.images {
        let mut input = [0u8; 256];
        area_average::<16, 256>(image, &mut input);
        let mut x = [0.0f32; 256];
        pixels::normalize(&input, &mut x);
        let float = net.logits(&x, &ceilings);
        let mut logits = [0.0f32; 10];
        model.logits_of_image(image, &mut logits);
        worst = worst.max(relative_difference(&float, &logits));
    }
    println!("worst relative logit difference {worst:.4}");
    assert!(worst <= FLOAT_LOGIT_TOL, "{worst}");
    // Dense layers of the same sizes are another network.
    let mut dense: Box<Deep<256, 108, 54, 16, 10, f32>> = bytemuck::zeroed_box();
    assert_eq!(dequantize(&model, &mut *dense), None);
}

#[test]
fn a_model_dequantizes_to_the_shadow_up_to_each_layers_activation_scale() {
    let digits = testkit::test_digits(100);
    let (_, qat, owned) = quantized([Bits::Four, Bits::Two, Bits::Four, Bits::Four], 5);
    let model = view(16, &owned);
    let mut net: Box<Net> = bytemuck::zeroed_box();
    let ceilings = dequantize(&model, &mut *net).expect("the shapes match");
    assert_eq!(ceilings.0, [1.0; 3]);
    // A layer's weights are the shadow's times (its input's code value) / (its output's):
    // exactly for the logits, to the 16-bit rescale for a hidden unit.
    let s = qat.act_scales;
    let ratio = [
        INPUT_SCALE / s[0],
        s[0] / s[1],
        s[1] / s[2],
        s[2] / INPUT_SCALE,
    ];
    for (k, &ratio) in ratio.iter().enumerate() {
        let (ours, shadow) = (net.tensor(2 * k).data, qat.shadow.tensor(2 * k).data);
        for (&a, &b) in ours.iter().zip(shadow) {
            assert!(
                (a - b * ratio).abs() <= 1e-4 * (b * ratio).abs(),
                "layer {k}: {a} {b}"
            );
        }
    }
    let mut worst = 0.0f32;
    for image in &digits.images {
        let mut input = [0u8; 256];
        area_average::<16, 256>(image, &mut input);
        let mut x = [0.0f32; 256];
        pixels::normalize(&input, &mut x);
        let float = net.logits(&x, &ceilings);
        let mut logits = [0.0f32; 10];
        model.logits_of_image(image, &mut logits);
        worst = worst.max(relative_difference(&float, &logits));
    }
    assert!(worst <= FLOAT_LOGIT_TOL, "{worst}");
    let mut other: Box<Deep<256, 32, 24, 17, 10, f32>> = bytemuck::zeroed_box();
    assert_eq!(dequantize(&model, &mut *other), None, "other shapes");
}

#[test]
fn weight_bytes_count_codes_biases_and_rescales() {
    let (_, _, owned) = quantized([Bits::Four, Bits::Four, Bits::Two, Bits::Four], 1);
    let model = view(16, &owned);
    let codes = 32 * 128 + 24 * 16 + 16 * 6 + 10 * 8;
    let bias = 4 * (32 + 24 + 16 + 10);
    let rescale = 3 * (32 + 24 + 16) + 4 * 10;
    assert_eq!(model.weight_bytes(), codes + bias + rescale);
}

#[test]
fn check_refuses_what_could_overflow_or_mislead() {
    let (_, _, owned) = quantized([Bits::Four; 4], 2);
    assert_eq!(view(16, &owned).check(), Ok(()));
    assert_eq!(view(15, &owned).check(), Err(CompactError::Input));
    assert_eq!(view(16, &owned[..0]).check(), Err(CompactError::Depth));
    let skipped = [&owned[0], &owned[2], &owned[3]];
    let model = Compact {
        side: 16,
        layers: skipped.iter().map(|o| o.layer()).collect(),
    };
    assert_eq!(model.check(), Err(CompactError::Shape { index: 1 }));

    let damaged = |f: &dyn Fn(&mut Vec<Owned>)| {
        let (_, _, mut o) = quantized([Bits::Four; 4], 2);
        f(&mut o);
        view(16, &o).check()
    };
    let range = |index| Err(CompactError::Range { index });
    assert_eq!(
        damaged(&|o| o[1].codes.pop().map(drop).unwrap_or(())),
        Err(CompactError::Size { index: 1 })
    );
    assert_eq!(damaged(&|o| o[0].bias[3] = 0x7f), range(0));
    // Shift 0, and a multiplier below 2^15.
    assert_eq!(damaged(&|o| o[2].rescale[2] = 0), range(2));
    assert_eq!(damaged(&|o| o[1].rescale[1] = 0), range(1));
    // A logit scale of 0 and of NaN.
    assert_eq!(damaged(&|o| o[3].rescale[..4].fill(0)), range(3));
    assert_eq!(
        damaged(&|o| o[3].rescale[4..8].copy_from_slice(&f32::NAN.to_le_bytes())),
        range(3)
    );
}
