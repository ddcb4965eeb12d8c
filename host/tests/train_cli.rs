//! The `digits` command end to end on the real MNIST: reproducible model files, resume after
//! `kill -9`, clear errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist")
}

fn digits() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_digits"));
    c.arg("train").arg("--data").arg(mnist());
    c
}

/// A short run on 6,000 images, enough to exercise every step.
const QUICK: &[&str] = &["--limit", "6000", "--validation", "1000", "--epochs", "6"];
/// Long enough (about 0.3 s an epoch) to be killed in the middle.
const LONGER: &[&str] = &["--limit", "25000", "--validation", "1000", "--epochs", "8"];

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed:\n{text}");
    text
}

/// The test accuracy (in percent) that `digits train` reports at the end.
fn test_accuracy(text: &str) -> f64 {
    text.split("test accuracy ")
        .nth(1)
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no test accuracy in:\n{text}"))
}

#[test]
fn same_seed_and_options_give_a_byte_identical_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    run_ok(digits().args(QUICK).arg("--out").arg(&a));
    run_ok(digits().args(QUICK).arg("--out").arg(&b));
    run_ok(digits().args(QUICK).args(["--seed", "2", "--out"]).arg(&c));
    let (a, b, c) = (
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        std::fs::read(c).unwrap(),
    );
    assert_eq!(a, b, "same seed, different model files");
    assert_ne!(a, c, "different seeds, same model file");
}

#[test]
fn kill_9_then_resume_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.digits");
    run_ok(digits().args(LONGER).arg("--out").arg(&whole));

    let resumed = dir.path().join("resumed.digits");
    let ckpt = dir.path().join("resumed.digits.ckpt");
    let mut child = digits()
        .args(LONGER)
        .arg("--out")
        .arg(&resumed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the first checkpoint exists (some epochs are done, more are running).
    let start = Instant::now();
    while !ckpt.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !resumed.exists(),
        "the run finished before it could be killed; make it longer"
    );
    let text = run_ok(
        digits()
            .args(LONGER)
            .arg("--out")
            .arg(&resumed)
            .arg("--resume"),
    );
    assert!(text.contains("resuming after epoch"), "{text}");
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&resumed).unwrap()
    );
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".digits-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn resume_with_other_options_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.digits");
    run_ok(
        digits()
            .args([
                "--limit",
                "3000",
                "--validation",
                "500",
                "--epochs",
                "1",
                "--out",
            ])
            .arg(&out),
    );
    let res = digits()
        .args([
            "--limit",
            "3000",
            "--validation",
            "500",
            "--epochs",
            "1",
            "--lr",
            "0.2",
            "--resume",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("other options"), "{err}");
}

#[test]
fn numeric_gradient_training_learns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("n.digits");
    let text = run_ok(
        digits()
            .args([
                "--limit",
                "6000",
                "--validation",
                "1000",
                "--epochs",
                "2",
                "--grad",
                "numeric",
                "--out",
            ])
            .arg(&out),
    );
    let acc = test_accuracy(&text);
    assert!(acc > 85.0, "numeric training reached only {acc}%");
}

#[test]
fn a_diverging_run_stops_with_a_clear_message_and_writes_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nan.digits");
    let res = digits()
        .args([
            "--limit",
            "3000",
            "--validation",
            "500",
            "--epochs",
            "2",
            "--lr",
            "1e4",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("training diverged in epoch 1"), "{err}");
    assert!(err.contains("Lower --lr"), "{err}");
    assert!(!out.exists(), "a diverged run must not write a model");
}

#[test]
fn batchnorm_training_learns_and_folds_into_a_plain_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bn.digits");
    let text = run_ok(
        digits()
            .args(QUICK)
            .arg("--batchnorm")
            .arg("--out")
            .arg(&out),
    );
    let acc = test_accuracy(&text);
    assert!(acc > 90.0, "batch-norm training reached only {acc}%");
    // The folded model is an ordinary 784-128-10 model file.
    let inspect = Command::new(env!("CARGO_BIN_EXE_digits"))
        .arg("inspect")
        .arg(&out)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        info.contains("784-128-10") && info.contains("\"batchnorm\":true"),
        "{info}"
    );
}
