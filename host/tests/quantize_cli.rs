//! `digits quantize` end to end: the committed int8 model is exactly what it makes of the
//! committed f32 model, within 0.2 points of it; `eval`, `inspect` and `predict` read int8
//! files; `device eval` runs the int8 firmware bit for bit; bad input is refused clearly.

mod common;

use common::{digits_in, firmware_dir, full_mnist, have_qemu, run_err, slice, text, workspace};

/// The bar: points the int8 model may lose against its f32 model.
const MAX_LOSS: f64 = 0.2;

#[test]
fn the_committed_int8_model_is_what_quantize_makes_of_the_f32_one() {
    // Calibration reads the full training split: the same bytes need the same images.
    let Some(data) = full_mnist("quantize_cli::the_committed_int8_model_is_what_quantize_makes")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("int8.digits");
    let out = digits_in(&data)
        .args([
            "quantize",
            "--model",
            "firmware/models/mnist.digits",
            "--out",
        ])
        .arg(&out_path)
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let line = t
        .lines()
        .find(|l| l.starts_with("test accuracy"))
        .unwrap_or_else(|| panic!("{t}"));
    let percents: Vec<f64> = line
        .split([' ', ','])
        .filter_map(|w| w.strip_suffix('%')?.parse().ok())
        .collect();
    let (f32_acc, int8_acc) = (percents[0], percents[1]);
    eprintln!("quantize: f32 {f32_acc}%, int8 {int8_acc}%");
    assert!(f32_acc - int8_acc <= MAX_LOSS, "{line}");
    let made = std::fs::read(&out_path).unwrap();
    let committed = std::fs::read(workspace().join("firmware/models/mnist-int8.digits")).unwrap();
    assert!(
        made == committed,
        "firmware/models/mnist-int8.digits is not what `digits quantize --model \
         firmware/models/mnist.digits --out firmware/models/mnist-int8.digits` makes"
    );

    let eval = digits_in(&data)
        .args(["eval", "--model"])
        .arg(&out_path)
        .output()
        .unwrap();
    let e = text(&eval);
    assert!(eval.status.success(), "{e}");
    assert!(e.contains(&format!("accuracy {int8_acc:.2}%")), "{e}");
    let inspect = digits_in(&data)
        .arg("inspect")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        text(&inspect).contains("precision:       int8 ("),
        "{}",
        text(&inspect)
    );
}

#[test]
fn quantize_refuses_what_it_cannot_quantize() {
    let data = slice();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("again.digits");
    // An int8 file is not an f32 model.
    let err = run_err(
        digits_in(&data)
            .args([
                "quantize",
                "--model",
                "firmware/models/mnist-int8.digits",
                "--out",
            ])
            .arg(&out_path),
    );
    assert!(err.contains("int8 but f32 is expected"), "{err}");
    assert!(!out_path.exists(), "nothing written");
    let err = run_err(
        digits_in(&data)
            .args([
                "quantize",
                "--model",
                "firmware/models/mnist.digits",
                "--calibration",
                "0",
                "--out",
            ])
            .arg(&out_path),
    );
    assert!(
        err.contains("'0' for '--calibration <N>': must be a whole number, at least 1"),
        "{err}"
    );
}

#[test]
fn the_int8_device_agrees_with_the_host_through_digits_device_eval() {
    if !have_qemu("quantize_cli::the_int8_device_agrees_with_the_host") {
        return;
    }
    let data = slice();
    let dir = firmware_dir();
    let out = digits_in(&data)
        .args([
            "device",
            "eval",
            "--limit",
            "500",
            "--model",
            "firmware/models/mnist-int8.digits",
        ])
        .arg("--firmware")
        .arg(dir)
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("500 of 500 with bit-identical logits"), "{t}");
}

#[test]
fn quantize_json_is_one_document_on_stdout() {
    let Some(data) = full_mnist("quantize_cli::quantize_json_is_one_document_on_stdout") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("q.digits");
    let out = digits_in(&data)
        .args([
            "quantize",
            "--json",
            "--calibration",
            "500",
            "--model",
            "firmware/models/mnist.digits",
            "--out",
        ])
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON document");
    assert_eq!(doc["percentiles"].as_array().unwrap().len(), 4, "{doc:#}");
    let (f, i) = (
        doc["f32_test_accuracy"].as_f64().unwrap(),
        doc["int8_test_accuracy"].as_f64().unwrap(),
    );
    assert!(f > 0.9 && i > 0.9, "{doc:#}");
    assert_eq!(
        doc["bytes"].as_u64().unwrap(),
        std::fs::metadata(&out_path).unwrap().len()
    );
    // The progress lines went to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("percentile"));
}
