//! `digits predict` end to end: MNIST test digits rendered as a person's large pictures are
//! recognized as well as the raw 28x28 digits, and bad files are clear errors.

mod common;

use common::{digits, text, workspace};

use std::path::PathBuf;

use digits_core::MnistMlp;
use digits_core::pixels::normalize;
use digits_core::softmax::argmax;
use image::{GrayImage, ImageFormat, Luma};
use rayon::prelude::*;

/// Test digits rendered and compared.
const DIGITS: usize = 1000;
/// Side of the canvas each digit is rendered on.
const CANVAS: u32 = 400;

/// The committed f32 model (trained on the full MNIST): no training here, no data needed.
fn model() -> PathBuf {
    workspace().join("firmware/models/mnist.digits")
}

/// Test digits rendered and compared: the first [`DIGITS`] of the full MNIST where it is
/// here, else the committed slice's 500.
fn digit_count() -> usize {
    if testkit::find_mnist().is_some() {
        DIGITS
    } else {
        testkit::SLICE_TEST
    }
}

/// A small deterministic generator (a 64-bit LCG; the high bits are good enough here).
struct Lcg(u64);

impl Lcg {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next()
    }
}

/// Renders a 28x28 MNIST digit as a person's picture of it: dark ink on light gray paper,
/// scaled up 6-12 times with bilinear interpolation, anywhere on a 400x400 canvas, with a
/// lighting gradient and noise.
fn render(digit: &[u8; 784], seed: u64) -> GrayImage {
    let mut rng = Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5);
    let scale = rng.range(6.0, 12.0);
    let size = 28.0 * scale;
    let ox = rng.range(0.0, CANVAS as f32 - size);
    let oy = rng.range(0.0, CANVAS as f32 - size);
    let paper = rng.range(215.0, 250.0);
    let ink = rng.range(10.0, 60.0);
    let (gx, gy) = (rng.range(-0.05, 0.05), rng.range(-0.05, 0.05));
    let at = |x: i32, y: i32| -> f32 {
        if (0..28).contains(&x) && (0..28).contains(&y) {
            f32::from(digit[(y * 28 + x) as usize]) / 255.0
        } else {
            0.0
        }
    };
    GrayImage::from_fn(CANVAS, CANVAS, |x, y| {
        // Source coordinates of this pixel's center, pixel centers at integer + 0.5.
        let u = (x as f32 + 0.5 - ox) / scale - 0.5;
        let v = (y as f32 + 0.5 - oy) / scale - 0.5;
        let (x0, y0) = (u.floor(), v.floor());
        let (tx, ty) = (u - x0, v - y0);
        let (x0, y0) = (x0 as i32, y0 as i32);
        let cover = (1.0 - ty) * ((1.0 - tx) * at(x0, y0) + tx * at(x0 + 1, y0))
            + ty * ((1.0 - tx) * at(x0, y0 + 1) + tx * at(x0 + 1, y0 + 1));
        let light = paper + gx * (x as f32 - 200.0) + gy * (y as f32 - 200.0);
        let noise = rng.range(-6.0, 6.0);
        Luma([(light + cover * (ink - light) + noise)
            .round()
            .clamp(0.0, 255.0) as u8])
    })
}

#[test]
fn rendered_mnist_digits_are_recognized_as_well_as_the_raw_ones() {
    let model_path = model();
    let count = digit_count();
    let testkit::Labeled { images, labels } = testkit::test_digits(count);

    // Raw: the 28x28 digits straight into the network.
    let bytes = std::fs::read(&model_path).unwrap();
    let mut net = Box::new(MnistMlp::zeros());
    digits_core::model_file::decode(&bytes)
        .unwrap()
        .load_into(&mut *net)
        .unwrap();
    let raw_correct = images
        .iter()
        .zip(&labels)
        .filter(|(img, label)| {
            let mut x = [0.0f32; 784];
            normalize(img, &mut x);
            argmax(&net.logits(&x)) == usize::from(**label)
        })
        .count();

    // Rendered: large PNG files through `digits predict`.
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = images
        .par_iter()
        .enumerate()
        .map(|(i, img)| {
            let path = dir.path().join(format!("{i:04}.png"));
            render(img, i as u64)
                .save_with_format(&path, ImageFormat::Png)
                .unwrap();
            path
        })
        .collect();
    let out = digits()
        .arg("predict")
        .arg("--json")
        .arg("--model")
        .arg(&model_path)
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "predict failed:\n{}", text(&out));
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), count);
    let png_correct = results
        .iter()
        .zip(&labels)
        .filter(|(r, label)| r["digit"].as_u64() == Some(u64::from(**label)))
        .count();

    let acc_raw = 100.0 * raw_correct as f64 / count as f64;
    let acc_png = 100.0 * png_correct as f64 / count as f64;
    println!(
        "first {count} MNIST test digits: raw 28x28 {acc_raw:.1}%, \
         rendered {CANVAS}x{CANVAS} PNG {acc_png:.1}%"
    );
    assert!(acc_raw > 95.0, "the model is too weak: {acc_raw:.1}%");
    assert!(
        (acc_png - acc_raw).abs() <= 1.0,
        "rendered {acc_png:.1}% vs raw {acc_raw:.1}%: more than 1 percentage point apart"
    );
}

#[test]
fn a_file_that_is_not_an_image_is_a_clear_error_and_the_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "this is a shopping list, not a digit\n").unwrap();
    let images = testkit::test_digits(1).images;
    let seven = dir.path().join("seven.png");
    render(&images[0], 1).save(&seven).unwrap();
    let show = dir.path().join("seen");

    let out = digits()
        .arg("predict")
        .arg("--model")
        .arg(model())
        .arg("--show")
        .arg(&show)
        .arg(&notes)
        .arg(&seven)
        .output()
        .unwrap();
    assert!(!out.status.success(), "succeeded:\n{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("notes.txt is not a PNG/JPEG image"),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 2 images"), "{stderr}");
    // The good image was still recognized (the first test digit is a 7) and shown.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("seven.png: 7  (top-3: 7 "), "{stdout}");
    let seen = image::open(show.join("seven.28x28.png")).unwrap();
    assert_eq!((seen.width(), seen.height()), (28, 28));
    let big = image::open(show.join("seven.28x28@8x.png")).unwrap();
    assert_eq!((big.width(), big.height()), (224, 224));
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = digits()
        .arg("predict")
        .arg("--model")
        .arg(dir.path().join("none.digits"))
        .arg(dir.path().join("x.png"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read model file") && stderr.contains("none.digits"),
        "{stderr}"
    );
}
