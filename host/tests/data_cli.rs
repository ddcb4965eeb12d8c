//! `digits data check` and the commands that read one split, end to end on copies of the
//! committed slice (whose files are real MNIST images, but not the official files) and, where
//! it is, the full MNIST.

mod common;

use common::{digits, full_mnist, output_ok, run_err, slice, text, workspace};

use std::fs;
use std::path::Path;

use serde_json::Value;

const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// A copy of the slice with `FILES[0]` missing and `FILES[1]` cut short.
fn damaged_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in &FILES[2..] {
        fs::copy(slice().join(f), dir.path().join(f)).unwrap();
    }
    let labels = fs::read(slice().join(FILES[1])).unwrap();
    fs::write(dir.path().join(FILES[1]), &labels[..labels.len() / 2]).unwrap();
    dir
}

fn check(dir: &Path, json: bool) -> std::process::Command {
    let mut c = digits();
    c.args(["data", "check", "--data"]).arg(dir);
    if json {
        c.arg("--json");
    }
    c
}

#[test]
fn check_reports_all_four_files_and_fails_if_any_is_bad() {
    let dir = damaged_copy();
    let out = check(dir.path(), false).output().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let d = dir.path().display();
    assert!(
        lines[0].starts_with(&format!(
            "  missing   train-images-idx3-ubyte (tried {d}/train-images-idx3-ubyte, {d}/{})",
            FILES[0]
        )),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "  damaged   {d}/{}: truncated gzip data",
            FILES[1]
        )),
        "{stdout}"
    );
    // The slice's files are real digits but not the official files.
    for line in &lines[2..] {
        assert!(line.starts_with("  MISMATCH  "), "{stdout}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("4 of the 4 mnist files are missing, damaged or not the official ones"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("`digits data fetch --data {d}`")),
        "{stderr}"
    );
}

#[test]
fn check_json_is_one_document_on_stdout() {
    let dir = damaged_copy();
    let out = check(dir.path(), true).output().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["ok"], false);
    assert_eq!(report["dataset"], "mnist");
    assert_eq!(report["source"], "--data");
    let statuses: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["missing", "unreadable", "mismatch", "mismatch"]);
    let files = &report["files"];
    assert_eq!(files[0]["name"], "train-images-idx3-ubyte");
    assert_eq!(files[0]["tried"].as_array().unwrap().len(), 2);
    assert!(
        files[1]["problem"]
            .as_str()
            .unwrap()
            .contains("truncated gzip data")
    );
    assert_eq!(
        files[3]["expected_sha256"],
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
    );
    assert_eq!(files[3]["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn check_passes_on_the_official_files() {
    let Some(mnist) = full_mnist("data_cli::check_passes_on_the_official_files") else {
        return;
    };
    let out = output_ok(&mut check(&mnist, false));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("\n  ok        ").count(), 4, "{stdout}");
    assert!(stdout.contains("all 4 files match"), "{stdout}");
    let out = output_ok(&mut check(&mnist, true));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "ok" && f["sha256"] == f["expected_sha256"])
    );
}

#[test]
fn eval_needs_only_the_test_split() {
    let dir = tempfile::tempdir().unwrap();
    for f in &FILES[2..] {
        fs::copy(slice().join(f), dir.path().join(f)).unwrap();
    }
    let model = workspace().join("firmware/models/mnist.digits");
    let mut eval = digits();
    eval.args(["eval", "--no-download", "--json", "--data"])
        .arg(dir.path())
        .arg("--model")
        .arg(&model);
    let out = output_ok(&mut eval);
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["dataset"], "mnist", "{report}");
    // Nothing was fetched into the directory.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    // Training does need the training files, and says which.
    let mut train = digits();
    train
        .args(["train", "--no-download", "--epochs", "1", "--data"])
        .arg(dir.path());
    let stderr = run_err(&mut train);
    assert!(
        stderr.contains("no train-images-idx3-ubyte, train-labels-idx1-ubyte (raw or .gz)"),
        "{stderr}"
    );
}
