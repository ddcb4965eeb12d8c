//! `digits eval --robustness` end to end on real digits (the committed MNIST slice): the table
//! has a row per distortion, its plain row is `digits eval`'s accuracy, a distortion that
//! changes nothing scores exactly that, one that turns the digits upside down scores far
//! less, and bad parameters are refused.

mod common;

use common::{digits, on_slice, output_ok, run_err, workspace};
use serde_json::Value;
use std::process::Command;

/// The shipped model: a real network, so the accuracies mean something.
fn model() -> std::path::PathBuf {
    workspace().join("firmware/models/mnist.digits")
}

/// `digits eval --data SLICE --model SHIPPED`.
fn eval_shipped() -> Command {
    let mut cmd = on_slice("eval");
    cmd.arg("--model").arg(model());
    cmd
}

/// `digits eval --data SLICE --model SHIPPED --json` with these arguments, parsed.
fn eval_json(args: &[&str]) -> Value {
    let out = output_ok(eval_shipped().arg("--json").args(args));
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

/// (group, name, accuracy) of every row.
fn rows(report: &Value) -> Vec<(String, String, f64)> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["group"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["accuracy"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_distortion_has_a_row_and_the_plain_row_is_evals_accuracy() {
    let plain = eval_json(&[])["accuracy"].as_f64().unwrap();
    let report = eval_json(&["--robustness"]);
    assert_eq!(report["images"], 500);
    let rows = rows(&report);
    let count = |g: &str| rows.iter().filter(|r| r.0 == g).count();
    assert_eq!(rows[0].0, "none");
    assert_eq!(
        rows[0].2, plain,
        "the undistorted row is the plain accuracy"
    );
    for (group, n) in [
        ("rotation", 4),
        ("shift", 8),
        ("scale", 2),
        ("stroke", 2),
        ("elastic", 1),
        ("writer", 3),
    ] {
        assert_eq!(count(group), n, "{group} rows in {rows:?}");
    }
    for (r, row) in rows.iter().zip(report["rows"].as_array().unwrap()) {
        assert!((0.0..=1.0).contains(&r.2), "{r:?}");
        let change = row["change_points"].as_f64().unwrap();
        assert!((change - 100.0 * (r.2 - plain)).abs() < 1e-9, "{r:?}");
    }
    // A model trained on upright digits loses more at 20 degrees than at 10, and far more at
    // a 4-pixel shift than at none.
    let acc = |name: &str| rows.iter().find(|r| r.1 == name).unwrap().2;
    assert!(acc("rotate +20°") + acc("rotate -20°") < acc("rotate +10°") + acc("rotate -10°"));
    assert!(acc("shift up 4 px") < plain - 0.2);

    // The table shows the same rows and figures.
    let out = output_ok(eval_shipped().arg("--robustness"));
    let table = String::from_utf8(out.stdout).unwrap();
    for (_, name, accuracy) in &rows {
        let line = table
            .lines()
            .find(|l| l.starts_with(name.as_str()))
            .unwrap_or_else(|| panic!("no row {name} in:\n{table}"));
        assert!(
            line.contains(&format!("{:.2}%", 100.0 * accuracy)),
            "{line}"
        );
    }
}

#[test]
fn no_rotation_scores_the_plain_accuracy_and_upside_down_scores_far_less() {
    let report = eval_json(&["--robustness", "--rotations", "0,180"]);
    let rows = rows(&report);
    let plain = rows[0].2;
    let acc = |name: &str| rows.iter().find(|r| r.1 == name).unwrap().2;
    // A planted fault: these "distortions" must move the figure exactly nothing, and a lot.
    assert_eq!(acc("rotate +0°"), plain);
    assert_eq!(acc("rotate -0°"), plain);
    assert!(acc("rotate +180°") < plain - 0.4, "{rows:?}");
    assert!(acc("rotate -180°") < plain - 0.4, "{rows:?}");
}

#[test]
fn bad_parameters_are_refused_naming_the_option() {
    let err = run_err(on_slice("eval").args(["--robustness", "--rotations", "200"]));
    assert!(err.contains("--rotations") && err.contains("180"), "{err}");
    let err = run_err(digits().args(["eval", "--scales", "1.5"]));
    assert!(err.contains("--robustness"), "{err}");
    let err = run_err(digits().args(["eval", "--robustness", "--plots", "p"]));
    assert!(err.contains("--plots"), "{err}");
}
