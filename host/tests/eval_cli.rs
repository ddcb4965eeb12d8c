//! `digits eval` end to end on real digits (the committed MNIST slice): the figures are consistent, `--json` parses,
//! `--plots` writes decodable PNGs of the documented sizes, and mistakes in the inputs are
//! clear errors.

mod common;

use common::{digits, output_ok, run_err, slice};
use testkit::SLICE_TEST;

use std::path::Path;
use std::process::Command;

/// `digits eval --data SLICE` with these arguments.
fn eval(args: &[&Path]) -> Command {
    let mut c = digits();
    c.arg("eval").arg("--data").arg(slice()).args(args);
    c
}

/// Width and height of a PNG, after decoding all of it.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    (image.width(), image.height())
}

#[test]
fn eval_reports_consistent_figures_as_text_json_and_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.digits");
    let metrics = dir.path().join("m.jsonl");
    output_ok(
        digits()
            .arg("train")
            .arg("--data")
            .arg(slice())
            .args(["--validation", "200", "--epochs", "4"])
            .arg("--out")
            .arg(&model)
            .arg("--metrics")
            .arg(&metrics),
    );

    // Tables.
    let out = output_ok(&mut eval(&[Path::new("--model"), &model]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "accuracy ",
        "class  support  precision   recall       F1",
        "macro ",
        "confusion matrix (rows: true class, columns: predicted class)",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }

    // JSON: stdout is one object, also when pictures are drawn.
    let plots = dir.path().join("plots");
    let out = output_ok(&mut eval(&[
        Path::new("--model"),
        &model,
        Path::new("--json"),
        Path::new("--plots"),
        &plots,
        Path::new("--metrics"),
        &metrics,
    ]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let accuracy = json["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.8 && accuracy <= 1.0, "accuracy {accuracy}");
    let m: Vec<Vec<u64>> = serde_json::from_value(json["confusion"].clone()).unwrap();
    assert_eq!(m.len(), 10);
    assert!(m.iter().all(|row| row.len() == 10));
    assert_eq!(m.iter().flatten().sum::<u64>(), SLICE_TEST as u64);
    let diagonal: u64 = (0..10).map(|k| m[k][k]).sum();
    assert_eq!(diagonal as f64 / SLICE_TEST as f64, accuracy);
    assert_eq!(json["images"], SLICE_TEST);
    assert_eq!(json["correct"], diagonal);
    // The same figure `train` measured and stored in the model file.
    let recorded = json["recorded_accuracy"].as_f64().unwrap();
    assert!(
        (recorded - accuracy).abs() < 1e-6,
        "{recorded} vs {accuracy}"
    );
    let classes = json["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 10);
    for (k, c) in classes.iter().enumerate() {
        let support: u64 = m[k].iter().sum();
        assert_eq!(c["support"], support);
        let recall = c["recall"].as_f64().unwrap();
        assert!((recall - m[k][k] as f64 / support as f64).abs() < 1e-12);
        for key in ["precision", "recall", "f1"] {
            let v = c[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "class {k} {key} {v}");
        }
    }
    let f1 = json["macro_average"]["f1"].as_f64().unwrap();
    assert!(f1 > 0.8 && f1 <= 1.0, "macro F1 {f1}");

    // Pictures.
    for (name, size) in [
        ("confusion.png", (860, 700)),
        ("digits.png", (1020, 1246)),
        ("curves.png", (1200, 500)),
    ] {
        assert_eq!(png_size(&plots.join(name)), size, "{name}");
    }

    // A metrics file with a bad line: named, with its line number, before any data is read.
    let bad = dir.path().join("bad.jsonl");
    let first = std::fs::read_to_string(&metrics).unwrap();
    let first = first.lines().next().unwrap();
    std::fs::write(&bad, format!("{first}\nnot json\n")).unwrap();
    let err = run_err(&mut eval(&[
        Path::new("--model"),
        &model,
        Path::new("--plots"),
        &plots,
        Path::new("--metrics"),
        &bad,
    ]));
    assert!(err.contains("bad.jsonl") && err.contains("line 2"), "{err}");
}

#[test]
fn missing_or_wrong_model_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.digits");
    let err = run_err(&mut eval(&[Path::new("--model"), &missing]));
    assert!(
        err.contains("no model file at") && err.contains("nothing.digits"),
        "{err}"
    );

    let not_a_model = dir.path().join("notes.txt");
    std::fs::write(&not_a_model, "these are not weights").unwrap();
    let err = run_err(&mut eval(&[Path::new("--model"), &not_a_model]));
    assert!(
        err.contains("model file") && err.contains("notes.txt"),
        "{err}"
    );

    // Curves come with pictures only.
    let err = run_err(&mut eval(&[Path::new("--metrics"), &missing]));
    assert!(err.contains("--plots"), "{err}");
}
