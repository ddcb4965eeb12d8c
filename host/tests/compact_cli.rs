//! `digits train --arch` end to end on the committed MNIST slice: a compact network learns,
//! the same seed gives the same file on one thread or two, the file (format version 2) is read
//! by `inspect`, `eval` and `predict`, and bad options are refused before any work.

mod common;

use common::{accuracy, run_err, run_ok, slice};
use std::path::Path;
use std::process::Command;

/// `digits train --arch ...` on the slice, `threads` rayon threads.
fn train(out: &Path, threads: &str) -> Command {
    let mut c = common::digits();
    c.env("RAYON_NUM_THREADS", threads)
        .arg("train")
        .arg("--data")
        .arg(slice())
        .args([
            "--arch",
            "16x16-32-32-32-10",
            "--bits",
            "4",
            "--validation",
            "200",
            "--epochs",
            "8",
            "--batch",
            "50",
            "--out",
        ])
        .arg(out);
    c
}

#[test]
fn a_compact_network_learns_and_every_reader_takes_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one.digits"), dir.path().join("two.digits"));
    let text = run_ok(&mut train(&one, "1"));
    run_ok(&mut train(&two, "2"));
    let bytes = std::fs::read(&one).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&two).unwrap(),
        "one thread and two, different files"
    );
    assert_eq!(&bytes[..9], b"DIGITSNN\x02");
    let trained = accuracy(&text, "test accuracy");
    // 800 images, 8 epochs: far above chance (10%), far from the full run.
    assert!(trained > 60.0, "{text}");
    assert!(text.contains("bytes of weights"), "{text}");

    let inspected = run_ok(common::digits().arg("inspect").arg(&one));
    for expected in [
        "version 2",
        "16x16-32-32-32-10",
        "4-bit weight codes",
        "codes1 (4-bit)",
    ] {
        assert!(inspected.contains(expected), "{expected}:\n{inspected}");
    }
    let json = run_ok(common::digits().args(["inspect", "--json"]).arg(&one));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["format_version"], 2);
    assert_eq!(v["weight_bytes"], 5280 + 4 * 106 + 3 * 96 + 4 * 10);

    // `eval` runs the integer network: the same accuracy as training reported.
    let eval = run_ok(
        common::digits()
            .arg("eval")
            .arg("--data")
            .arg(slice())
            .arg("--model")
            .arg(&one),
    );
    let evaluated = accuracy(&eval, "accuracy");
    assert!(
        (evaluated - trained).abs() < 0.01,
        "{evaluated} vs {trained}:\n{eval}"
    );

    let digit = testkit::test_digits(1);
    let png = dir.path().join("digit.png");
    image::GrayImage::from_raw(28, 28, digit.images[0].to_vec())
        .unwrap()
        .save(&png)
        .unwrap();
    let predicted = run_ok(
        common::digits()
            .args(["predict", "--json", "--model"])
            .arg(&one)
            .arg(&png),
    );
    assert!(
        predicted.contains("\"probabilities\"") && !predicted.contains("\"error\""),
        "{predicted}"
    );
}

/// `--validation 0`: a compact network trains on every image and keeps its last epoch.
#[test]
fn without_a_validation_split_a_compact_network_keeps_its_last_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all.digits");
    let text = run_ok(
        common::digits()
            .args(["train", "--data"])
            .arg(slice())
            .args(["--arch", "16x16-16-16-16-10", "--validation", "0"])
            .args(["--epochs", "4", "--batch", "50", "--out"])
            .arg(&out),
    );
    let epochs = text.lines().filter(|l| l.starts_with("epoch ")).count();
    let unvalidated = text
        .lines()
        .filter(|l| l.starts_with("epoch ") && l.contains("no validation"))
        .count();
    assert_eq!((epochs, unvalidated), (4, 4), "{text}");
    assert!(
        text.contains("last epoch 4 of 4 (no validation split)"),
        "{text}"
    );
    assert!(accuracy(&text, "test accuracy") > 30.0, "{text}");
}

#[test]
fn muon_trains_a_compact_network_the_same_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one.digits"), dir.path().join("two.digits"));
    let adam = dir.path().join("adam.digits");
    // Muon is the default: one thread by default, two threads asked for it by name.
    let text = run_ok(&mut train(&one, "1"));
    run_ok(train(&two, "2").args(["--optimizer", "muon"]));
    run_ok(train(&adam, "2").args(["--optimizer", "adam"]));
    let bytes = std::fs::read(&one).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&two).unwrap(),
        "one thread and two, different files"
    );
    assert_ne!(
        bytes,
        std::fs::read(&adam).unwrap(),
        "--optimizer muon changed nothing"
    );
    assert!(accuracy(&text, "test accuracy") > 60.0, "{text}");
    let json = run_ok(common::digits().args(["inspect", "--json"]).arg(&one));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["options"]["optimizer"]["kind"], "muon", "{json}");
}

#[test]
fn a_teacher_changes_what_a_compact_network_learns() {
    let dir = tempfile::tempdir().unwrap();
    let (taught, plain) = (
        dir.path().join("taught.digits"),
        dir.path().join("plain.digits"),
    );
    let teacher = testkit::workspace().join("firmware/models/mnist.digits");
    let text = run_ok(train(&taught, "2").arg("--teacher").arg(&teacher));
    run_ok(&mut train(&plain, "2"));
    assert_ne!(
        std::fs::read(&taught).unwrap(),
        std::fs::read(&plain).unwrap(),
        "--teacher changed nothing"
    );
    assert!(accuracy(&text, "test accuracy") > 60.0, "{text}");
    let json = run_ok(common::digits().args(["inspect", "--json"]).arg(&taught));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["options"]["distill"]["temperature"], 4.0, "{json}");
    let int8 = testkit::workspace().join("firmware/models/mnist-int8.digits");
    let err = run_err(
        train(&dir.path().join("x.digits"), "2")
            .arg("--teacher")
            .arg(&int8),
    );
    assert!(err.contains("an f32 model file is needed"), "{err}");
    assert!(!dir.path().join("x.digits").exists());
}

#[test]
fn bad_options_are_refused_before_any_work_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.digits");
    let cases: [(&[&str], &str); 10] = [
        (&["--arch", "16x16-50-10"], "choose one of"),
        (
            &["--arch", "16x16-32-32-32-10", "--bits", "3"],
            "use 2 or 4",
        ),
        (&["--bits", "2"], "add --arch"),
        (&["--optimizer", "muon"], "add --arch"),
        (&["--muon-lr", "0.02"], "add --arch"),
        (
            &[
                "--arch",
                "16x16-32-32-32-10",
                "--optimizer",
                "adam",
                "--muon-lr",
                "0.02",
            ],
            "--optimizer muon",
        ),
        (
            &[
                "--arch",
                "16x16-32-32-32-10",
                "--optimizer",
                "muon",
                "--muon-lr",
                "0",
            ],
            "--muon-lr",
        ),
        (
            &["--arch", "16x16-32-32-32-10", "--batchnorm"],
            "--batchnorm",
        ),
        (&["--arch", "16x16-32-32-32-10", "--resume"], "--resume"),
        (
            &["--arch", "16x16-32-32-32-10", "--grad", "numeric"],
            "--grad numeric",
        ),
    ];
    for (args, expected) in cases {
        let err = run_err(
            common::digits()
                .arg("train")
                .arg("--data")
                .arg(slice())
                .args(args)
                .arg("--out")
                .arg(&out),
        );
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1 + usize::from(err.contains("--help")) * 2,
            "{args:?}: {err}"
        );
        assert!(!out.exists(), "{args:?} wrote a file");
    }
}
