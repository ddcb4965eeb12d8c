//! int8 quantization against independent references: the integer path against the same
//! formulas written out in `f64`/`i64`, the kernel against the plain triple loop, and the int8
//! logits against the `f32` model's with a named tolerance.

mod common;

use common::damage::{assert_bit_flips_refused, assert_truncations_refused};
use digits_core::model_file::{self, Metadata, ModelFileError};
use digits_core::quant::{CODE_MAX, QuantError, requantize};
use digits_core::{Init, Mlp, MnistMlp, MnistQuant, QuantMlp, Rng};

/// A trained-looking network: He-initialized weights and small random biases.
fn model(seed: u64) -> Box<MnistMlp> {
    let mut m: Box<MnistMlp> = Box::new(MnistMlp::zeros());
    let mut rng = Rng::new(seed);
    m.hidden.init(Init::He, &mut rng);
    m.output.init(Init::Xavier, &mut rng);
    for b in m.hidden.b.iter_mut().chain(m.output.b.iter_mut()) {
        *b = rng.uniform_in(-0.1, 0.1) as f32;
    }
    m
}

/// A digit-like image: a blob of ink, about a fifth of the pixels lit.
fn image(rng: &mut Rng) -> [u8; 784] {
    let mut im = [0u8; 784];
    let (cx, cy) = (rng.uniform_in(9.0, 19.0), rng.uniform_in(9.0, 19.0));
    for y in 0..28 {
        for x in 0..28 {
            let d = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
            if d < 6.0 && rng.uniform() < 0.8 {
                im[y * 28 + x] = (rng.uniform() * 255.0) as u8 | 1;
            }
        }
    }
    im
}

fn quantized(m: &MnistMlp, hidden_scale: f32) -> Box<MnistQuant> {
    let mut q = Box::new(MnistQuant::zeroed());
    q.quantize_into(m, hidden_scale).unwrap();
    q
}

#[test]
fn the_kernel_equals_the_plain_triple_loop() {
    let m = model(1);
    let q = quantized(&m, 0.02);
    let mut rng = Rng::new(2);
    for n in 0..50 {
        let mut im = image(&mut rng);
        if n == 0 {
            im = [0; 784];
        }
        if n == 1 {
            im = [255; 784];
        }
        let mut acc = [0i32; 128];
        q.hidden_accumulators(&im, &mut acc);
        for (j, &a) in acc.iter().enumerate() {
            let reference: i64 = (0..784).map(|i| im[i] as i64 * q.w1[i][j] as i64).sum();
            assert_eq!(a as i64, reference, "image {n} unit {j}");
        }
    }
}

/// Odd sizes (no multiple of the kernel's 8 lanes) take the remainder path.
#[test]
fn odd_hidden_sizes_work() {
    let mut m: Box<Mlp<20, 13, 3>> = Box::new(Mlp::zeros());
    let mut rng = Rng::new(5);
    m.hidden.init(Init::He, &mut rng);
    m.output.init(Init::Xavier, &mut rng);
    let mut q: Box<QuantMlp<20, 13, 3>> = Box::new(QuantMlp::zeroed());
    q.quantize_into(&m, 0.01).unwrap();
    let px: [u8; 20] = core::array::from_fn(|i| (i * 37 % 256) as u8);
    let mut acc = [0i32; 13];
    q.hidden_accumulators(&px, &mut acc);
    for (j, &a) in acc.iter().enumerate() {
        let r: i32 = (0..20).map(|i| px[i] as i32 * q.w1[i][j] as i32).sum();
        assert_eq!(a, r);
    }
}

#[test]
fn requantization_is_round_half_up_of_the_exact_ratio() {
    let mut worst = 0.0f64;
    let mut rng = Rng::new(3);
    for _ in 0..100_000 {
        let v = (rng.uniform() * 3e7) as i32 - 1_000_000;
        let m = (1 << 30) + (rng.uniform() * (1u64 << 30) as f64) as i32;
        let shift = 20 + (rng.uniform() * 40.0) as i32;
        let exact = v as f64 * m as f64 / 2f64.powi(shift);
        let expected = if v <= 0 {
            0
        } else {
            (exact + 0.5).floor().clamp(0.0, 255.0) as u8
        };
        let got = requantize(v, m, shift);
        assert_eq!(got, expected, "v {v} m {m} shift {shift}");
        if (0.0..255.0).contains(&exact) {
            worst = worst.max((got as f64 - exact).abs());
        }
    }
    eprintln!("requantize: worst |code - exact| {worst:.4} (<= 0.5)");
    assert!(worst <= 0.5);
}

/// Every hidden code is the exact real value rounded: computed here in f64 from the f32 model
/// and the quantized codes, independently of the fixed-point arithmetic.
#[test]
fn hidden_codes_match_an_f64_reference() {
    let m = model(4);
    let q = quantized(&m, 0.02);
    let mut rng = Rng::new(5);
    let mut off_by_one = 0;
    for _ in 0..50 {
        let im = image(&mut rng);
        let mut codes = [0u8; 128];
        q.hidden_codes(&im, &mut codes);
        for (j, &code) in codes.iter().enumerate() {
            let scale = (0..784)
                .map(|i| m.hidden.w[i][j].abs() as f64)
                .fold(0.0, f64::max)
                / CODE_MAX as f64;
            let acc: f64 = (0..784)
                .map(|i| im[i] as f64 * q.w1[i][j] as f64)
                .sum::<f64>()
                + q.b1[j] as f64;
            let real = (acc * scale / 255.0 / 0.02).clamp(0.0, 255.0);
            let d = (code as f64 - real).abs();
            assert!(d <= 0.5 + 1e-6, "unit {j}: code {code} vs {real}");
            off_by_one += (d > 0.5 - 1e-6) as u32;
        }
    }
    eprintln!("hidden codes: all within 0.5 of the f64 reference ({off_by_one} at a tie)");
}

/// The int8 logits stay close to the f32 model's: within this fraction of the logits' range.
const LOGIT_TOLERANCE: f32 = 0.05;

#[test]
fn int8_logits_follow_the_f32_model() {
    let m = model(6);
    // Activations of this network on these images stay under ~4: 255 codes of 0.02 cover them.
    let q = quantized(&m, 0.02);
    let mut rng = Rng::new(7);
    let mut worst = 0.0f32;
    let mut range = 0.0f32;
    let mut same = 0;
    let mut near_ties = Vec::new();
    for _ in 0..200 {
        let im = image(&mut rng);
        let mut x = [0.0f32; 784];
        digits_core::pixels::normalize(&im, &mut x);
        let f = m.logits(&x);
        let z = q.logits(&im);
        range = range.max(f.iter().fold(0.0f32, |a, v| a.max(v.abs())));
        worst = f
            .iter()
            .zip(&z)
            .fold(worst, |w, (a, b)| w.max((a - b).abs()));
        let (a, b) = (
            digits_core::softmax::argmax(&f),
            digits_core::softmax::argmax(&z),
        );
        same += (a == b) as u32;
        if a != b {
            // The f32 model's margin between the two classes.
            near_ties.push(f[a] - f[b]);
        }
    }
    eprintln!(
        "int8 vs f32: worst logit difference {worst:.4} of range {range:.3}; argmax equal {same}/200"
    );
    assert!(
        worst <= LOGIT_TOLERANCE * range,
        "{worst} > {LOGIT_TOLERANCE} x {range}"
    );
    // The argmax may differ only where the f32 model nearly ties.
    for margin in near_ties {
        assert!(
            margin <= 2.0 * worst,
            "argmax differs at a margin of {margin}"
        );
    }
}

#[test]
fn bad_inputs_are_refused_and_change_nothing() {
    let mut m = model(8);
    let mut q = Box::new(MnistQuant::zeroed());
    for s in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert_eq!(q.quantize_into(&m, s), Err(QuantError::BadHiddenScale));
    }
    m.output.b[3] = f32::NAN;
    assert_eq!(q.quantize_into(&m, 0.02), Err(QuantError::NotFinite));
    assert_eq!(*q, MnistQuant::zeroed());
    m.output.b[3] = 0.0;
    // A ratio beyond a 62-bit shift: a hidden scale absurdly large for these weights.
    assert_eq!(q.quantize_into(&m, 1e30), Err(QuantError::OutOfRange));
}

#[test]
fn int8_model_files_round_trip_and_refuse_damage() {
    let q = quantized(&model(9), 0.02);
    let meta = Metadata {
        dataset: "mnist",
        test_accuracy: Some(0.98),
        seed: 1,
        epochs: 2,
        options: "{}",
    };
    let mut buf = vec![0u8; 200_000];
    let n = model_file::encode_int8(&*q, &meta, &mut buf).unwrap();
    buf.truncate(n);
    eprintln!("int8 model file: {n} bytes");
    let file = model_file::decode(&buf).unwrap();
    let mut back = Box::new(MnistQuant::zeroed());
    file.load_int8_into(&mut *back).unwrap();
    assert_eq!(*back, *q);
    // An f32 loader refuses it, and the int8 loader refuses an f32 file.
    let mut f: Box<MnistMlp> = Box::new(MnistMlp::zeros());
    assert!(matches!(
        file.load_into(&mut *f),
        Err(ModelFileError::WrongPrecision { .. })
    ));
    let mut fbuf = vec![0u8; 500_000];
    let fn_ = model_file::encode(&*model(9), &meta, &mut fbuf).unwrap();
    let ffile = model_file::decode(&fbuf[..fn_]).unwrap();
    assert!(matches!(
        ffile.load_int8_into(&mut *back),
        Err(ModelFileError::WrongPrecision { .. })
    ));
    // Every truncation and a sample of bit flips are caught by the checksum.
    assert_truncations_refused(&buf, 997, |b| model_file::decode(b).map(drop));
    assert_bit_flips_refused(&buf, 4_999, |b| model_file::decode(b).map(drop));
    // A -128 code in a file with a valid checksum is out of range.
    let mut odd = q.clone();
    odd.w1[5][5] = -128;
    let mut obuf = vec![0u8; 200_000];
    let on = model_file::encode_int8(&*odd, &meta, &mut obuf).unwrap();
    let ofile = model_file::decode(&obuf[..on]).unwrap();
    assert_eq!(
        ofile.load_int8_into(&mut *back),
        Err(ModelFileError::OutOfRange { index: 0 })
    );
    assert_eq!(*back, *q, "untouched on error");
}
