//! `digits train`'s recipes end to end on the committed MNIST slice: each `--augment` recipe
//! learns and repeats from its seed, bare `--augment` is the default recipe, and distillation
//! (`--teacher`) changes the parameters exactly when its weight is not zero; wrong teachers and
//! options are refused before any work.

mod common;

use common::{accuracy, digits, on_slice, output_ok, run_err, run_ok};
use std::path::Path;
use std::process::Command;

/// A short run on the slice's 1,000 training images.
const QUICK: &[&str] = &["--validation", "200", "--epochs", "6"];

/// `digits train --data SLICE QUICK ARGS --out OUT`.
fn quick_train(args: &[&str], out: &Path) -> Command {
    let mut cmd = on_slice("train");
    cmd.args(QUICK).args(args).arg("--out").arg(out);
    cmd
}

/// Runs [`quick_train`], expects success, and returns its output.
fn train(args: &[&str], out: &Path) -> String {
    run_ok(&mut quick_train(args, out))
}

/// The parameters' digest of a model file (`digits inspect --json`).
fn params_digest(model: &Path) -> String {
    let out = output_ok(digits().arg("inspect").arg("--json").arg(model));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["parameters_digest"].as_str().unwrap().to_string()
}

#[test]
fn every_recipe_learns_and_repeats_and_bare_augment_is_the_default_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    let mut bytes = Vec::new();
    for recipe in ["none", "affine", "elastic"] {
        let text = train(&["--augment", recipe], &file(recipe));
        let acc = accuracy(&text, "test accuracy ");
        assert!(acc > 75.0, "--augment {recipe} reached only {acc}%");
        train(&["--augment", recipe], &file("again"));
        let b = std::fs::read(file(recipe)).unwrap();
        assert_eq!(b, std::fs::read(file("again")).unwrap(), "{recipe} repeats");
        bytes.push(b);
    }
    assert_ne!(bytes[0], bytes[1]);
    assert_ne!(bytes[1], bytes[2]);
    train(&[], &file("plain"));
    assert_eq!(
        std::fs::read(file("plain")).unwrap(),
        bytes[0],
        "none is no flag"
    );
    train(&["--augment"], &file("bare"));
    let default = digits().args(["train", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&default.stdout).to_string();
    let recipe = ["affine", "elastic"]
        .into_iter()
        .find(|r| help.contains(&format!("Bare `--augment` is the best recipe, {r}")))
        .unwrap_or_else(|| panic!("the help names no default recipe:\n{help}"));
    train(&["--augment", recipe], &file("named"));
    assert_eq!(
        std::fs::read(file("bare")).unwrap(),
        std::fs::read(file("named")).unwrap()
    );
}

#[test]
fn distillation_moves_the_parameters_exactly_when_it_has_weight() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    let (teacher_a, teacher_b) = (file("t1.digits"), file("t2.digits"));
    train(&["--seed", "11"], &teacher_a);
    train(&["--seed", "12"], &teacher_b);
    let teachers = format!("{},{}", teacher_a.display(), teacher_b.display());
    let plain = file("plain.digits");
    train(&[], &plain);
    let (student, again, unweighted) = (file("s.digits"), file("s2.digits"), file("s0.digits"));
    let text = train(&["--teacher", &teachers], &student);
    assert!(accuracy(&text, "test accuracy ") > 75.0, "{text}");
    train(&["--teacher", &teachers], &again);
    assert_eq!(
        std::fs::read(&student).unwrap(),
        std::fs::read(&again).unwrap()
    );
    train(
        &["--teacher", &teachers, "--distill-weight", "0"],
        &unweighted,
    );
    assert_eq!(
        params_digest(&unweighted),
        params_digest(&plain),
        "weight 0 is no teacher"
    );
    assert_ne!(
        params_digest(&student),
        params_digest(&plain),
        "the teacher is heard"
    );
    let one = file("s1.digits");
    train(&["--teacher", &teacher_a.display().to_string()], &one);
    assert_ne!(
        params_digest(&one),
        params_digest(&student),
        "both teachers are heard"
    );
}

#[test]
fn wrong_teachers_and_options_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.digits");
    let refuse = |args: &[&str]| {
        let err = run_err(&mut quick_train(args, &out));
        assert!(!out.exists(), "nothing written for {args:?}");
        err
    };
    let missing = dir.path().join("nope.digits");
    let err = refuse(&["--teacher", missing.to_str().unwrap()]);
    assert!(
        err.contains("--teacher") && err.contains("nope.digits"),
        "{err}"
    );
    let err = refuse(&["--temperature", "2"]);
    assert!(err.contains("--teacher"), "{err}");
    let err = refuse(&["--teacher", "x.digits", "--distill-weight", "1.5"]);
    assert!(err.contains("--distill-weight"), "{err}");
    let teacher = dir.path().join("t.digits");
    train(&[], &teacher);
    let err = refuse(&["--teacher", teacher.to_str().unwrap(), "--batchnorm"]);
    assert!(err.contains("--batchnorm"), "{err}");
    let int8 = common::workspace().join("firmware/models/mnist-int8.digits");
    let err = refuse(&["--teacher", int8.to_str().unwrap()]);
    assert!(err.contains("f32"), "{err}");
    let err = refuse(&["--augment", "sideways"]);
    assert!(err.contains("affine") && err.contains("elastic"), "{err}");
}
