//! `digits predict` end to end: MNIST test digits rendered as a person's large pictures are
//! recognized as well as the raw 28x28 digits, and bad files are clear errors.

mod common;

use common::{digits, text, workspace};

use std::path::PathBuf;

use digits_core::MnistMlp;
use digits_core::pixels::normalize;
use digits_core::softmax::argmax;
use host::evaluate::photo::{CANVAS, render_digit as render};
use image::ImageFormat;
use rayon::prelude::*;

/// Test digits rendered and compared.
const DIGITS: usize = 1000;

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

/// A `side` x `side` white page with `dark(x, y)` pixels black, the rest light with some noise.
fn page(side: u32, seed: u64, dark: impl Fn(u32, u32) -> bool) -> image::GrayImage {
    let mut rng = host::evaluate::photo::Lcg::new(seed);
    image::GrayImage::from_fn(side, side, |x, y| {
        let v = if dark(x, y) { 20.0 } else { 235.0 };
        image::Luma([(v + rng.range(-5.0, 5.0)) as u8])
    })
}

#[test]
fn non_digits_are_not_digits_with_the_reason_and_digits_are() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = host::evaluate::photo::Lcg::new(5);
    let noise =
        image::GrayImage::from_fn(200, 200, |_, _| image::Luma([rng.range(0.0, 255.0) as u8]));
    let pictures = [
        (
            "dot",
            page(200, 1, |x, y| {
                (99..102).contains(&x) && (99..102).contains(&y)
            }),
        ),
        (
            "bar",
            page(200, 2, |x, y| {
                (40..160).contains(&x) && (95..105).contains(&y)
            }),
        ),
        ("blank", page(200, 3, |_, _| false)),
        ("noise", noise),
        ("seven", render(&testkit::test_digits(1).images[0], 1)),
    ];
    let files: Vec<PathBuf> = pictures
        .iter()
        .map(|(name, img)| {
            let path = dir.path().join(format!("{name}.png"));
            img.save(&path).unwrap();
            path
        })
        .collect();
    let run = |json: bool| {
        let mut cmd = digits();
        cmd.arg("predict").arg("--model").arg(model()).args(&files);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "predict failed:\n{}", text(&out));
        out
    };

    let json: Vec<serde_json::Value> = serde_json::from_slice(&run(true).stdout).unwrap();
    let verdicts: Vec<(bool, Option<&str>, Option<u64>)> = json
        .iter()
        .map(|r| {
            (
                r["verdict"]["is_digit"].as_bool().unwrap(),
                r["verdict"]["reason"].as_str(),
                r["digit"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            (false, Some("solid"), None),
            (false, Some("flat"), None),
            (false, Some("blank"), None),
            (false, Some("noise"), None),
            (true, None, Some(7)),
        ],
        "{json:#?}"
    );
    // The top-3 is still there for a picture with ink, and explained for people.
    assert!(json[1]["top3"].is_array(), "{:#}", json[1]);
    assert!(json[2]["top3"].is_null(), "{:#}", json[2]);

    let out = run(false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("bar.png: not a digit: a flat mark (a horizontal line or dash?)  (top-3: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("blank.png: not a digit: the picture is blank\n"),
        "{stdout}"
    );
    assert!(stdout.contains("seven.png: 7  (top-3: 7 "), "{stdout}");
    // stderr is not a terminal here: no progress bar.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
