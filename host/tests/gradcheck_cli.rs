//! `digits gradcheck` end to end: it passes correct networks (fresh and trained, 784-128-10 and
//! compact, dense or with convolutions) with both precisions reported and the f32 bound printed, and it fails, naming the
//! tensor, on a gradient made wrong on purpose in any tensor of either precision.

mod common;

use common::{digits_in, run_err, run_ok, slice};
use serde_json::Value;

/// A small sample keeps each run short; the checks are the same.
const QUICK: [&str; 4] = ["gradcheck", "--sample", "60", "--json"];
/// A compact network's tensors, in order (784-128-10 has the first four).
const DEEP_TENSORS: [&str; 8] = ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"];
/// The compact architecture the tests check.
const ARCH: &str = "16x16-32-32-32-10";

fn report(extra: &[&str]) -> Value {
    let out = common::output_ok(digits_in(&slice()).args(QUICK).args(extra));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

fn assert_sound_pass(r: &Value, what: &str) {
    assert_eq!(r["passed"], true, "{what}: {r:#}");
    let checks = r["checks"].as_array().unwrap();
    let precisions: Vec<&str> = checks
        .iter()
        .map(|c| c["precision"].as_str().unwrap())
        .collect();
    assert!(
        precisions.contains(&"f64") && precisions.contains(&"f32"),
        "{what}"
    );
    let decides = &checks[0];
    assert_eq!(decides["precision"], "f64");
    assert_eq!(decides["role"], "decides");
    assert_eq!(decides["verdict"], "pass", "{what}");
    let tensors = decides["tensors"].as_array().unwrap();
    let names: Vec<&str> = tensors
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let expected = if r["network"] == "784-128-10" { 4 } else { 8 };
    assert_eq!(names, &DEEP_TENSORS[..expected], "{what}");
    for c in checks {
        for t in c["tensors"].as_array().unwrap() {
            assert_eq!(t["beyond"], 0, "{what}: {} {t}", c["precision"]);
        }
    }
    for t in tensors {
        assert!(t["resolved"].as_u64().unwrap() > 0, "{what}: {t}");
        assert!(
            t["max_error"].as_f64().unwrap() <= t["max_bound"].as_f64().unwrap(),
            "{what}: {t}"
        );
    }
    // The f32 central differences come with their loss rounding bound.
    let f32_cd = checks
        .iter()
        .find(|c| c["precision"] == "f32" && c["loss_rounding"].is_f64())
        .expect("f32 central differences reported");
    assert!(f32_cd["loss_rounding"].as_f64().unwrap() > 0.0);
}

#[test]
fn fresh_networks_pass_with_both_precisions_reported() {
    for seed in ["1", "2", "3"] {
        assert_sound_pass(&report(&["--seed", seed]), &format!("seed {seed}"));
    }
}

#[test]
fn a_trained_network_passes() {
    let r = report(&["--model", "firmware/models/mnist.digits"]);
    assert_sound_pass(&r, "trained");
    // A numeric zero against a resolved analytic gradient could not pass: every resolved
    // parameter's worst case is within its bound, and its numeric value is not zero.
    for t in r["checks"][0]["tensors"].as_array().unwrap() {
        let w = &t["worst"];
        if w["analytic"].as_f64().unwrap().abs() > w["bound"].as_f64().unwrap() {
            assert_ne!(w["reference"].as_f64().unwrap(), 0.0, "{t}");
        }
    }
}

#[test]
fn the_tables_print_the_f32_bound_and_which_precision_decides() {
    let text = run_ok(digits_in(&slice()).args(["gradcheck", "--sample", "40"]));
    assert!(
        text.contains("its rounding error in f32 is at most"),
        "{text}"
    );
    assert!(text.contains("PASS (decides)"), "{text}");
    assert!(text.contains("max bound"), "{text}");
}

#[test]
fn a_wrong_gradient_fails_naming_the_tensor_in_either_precision() {
    for precision in ["f64", "f32"] {
        for tensor in ["W1", "b1", "W2", "b2"] {
            let fault = format!("{precision}:{tensor}");
            let mut cmd = digits_in(&slice());
            cmd.args(QUICK).args(["--plant-fault-for-test", &fault]);
            let out = cmd.output().unwrap();
            assert!(!out.status.success(), "{fault} passed");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!("{precision} {tensor} ")),
                "{fault}: {err}"
            );
            // Only the planted tensor is named.
            for other in ["W1", "b1", "W2", "b2"].iter().filter(|&&t| t != tensor) {
                assert!(!err.contains(&format!(" {other} (")), "{fault}: {err}");
            }
            let r: Value = serde_json::from_slice(&out.stdout).expect("JSON even when failing");
            assert_eq!(r["passed"], false);
        }
    }
}

#[test]
fn the_planted_fault_is_hidden_and_checked() {
    let help = run_ok(digits_in(&slice()).args(["gradcheck", "--help"]));
    assert!(!help.contains("plant"), "{help}");
    let err = run_err(digits_in(&slice()).args(["gradcheck", "--plant-fault-for-test", "f16:W1"]));
    assert!(err.contains("expected f32|f64"), "{err}");
}

#[test]
fn fresh_compact_networks_pass_every_tensor_with_clipping() {
    for seed in ["1", "2"] {
        let r = report(&["--arch", ARCH, "--seed", seed]);
        assert_sound_pass(&r, &format!("{ARCH} seed {seed}"));
        assert_eq!(r["network"], ARCH);
        // Every hidden layer is clipped at a finite ceiling.
        let ceilings = r["ceilings"].as_array().unwrap();
        assert_eq!(ceilings.len(), 3, "{r}");
        assert!(ceilings.iter().all(|c| c.as_f64().unwrap() > 0.0), "{r}");
    }
    let text = run_ok(digits_in(&slice()).args(["gradcheck", "--sample", "30", "--arch", ARCH]));
    assert!(text.contains("clipped ReLU, ceilings"), "{text}");
    assert!(text.contains("PASS (decides)"), "{text}");
    assert!(text.contains("  W4 "), "{text}");
}

#[test]
fn a_compact_model_passes_at_its_dequantized_weights() {
    let r = report(&["--model", "firmware/models/compact.digits"]);
    assert_sound_pass(&r, "compact model");
    assert_ne!(r["network"], "784-128-10");
    assert_eq!(r["ceilings"], serde_json::json!([1.0, 1.0, 1.0]));
}

/// `gradcheck --arch arch` with a wrong gradient planted in `tensor` for `precision`: it fails,
/// naming that tensor and no other, and still prints its JSON report.
fn assert_fault_is_named(arch: &str, precision: &str, tensor: &str) {
    let fault = format!("{precision}:{tensor}");
    let out = digits_in(&slice())
        .args(["gradcheck", "--sample", "30", "--json", "--arch", arch])
        .args(["--plant-fault-for-test", &fault])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{arch} {fault}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{precision} {tensor} ")),
        "{arch} {fault}: {err}"
    );
    for other in DEEP_TENSORS.iter().filter(|&&t| t != tensor) {
        assert!(
            !err.contains(&format!(" {other} (")),
            "{arch} {fault}: {err}"
        );
    }
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON even when failing");
    assert_eq!(r["passed"], false);
}

#[test]
fn a_wrong_compact_gradient_fails_naming_the_tensor_in_either_precision() {
    for precision in ["f64", "f32"] {
        for tensor in DEEP_TENSORS {
            assert_fault_is_named(ARCH, precision, tensor);
        }
    }
}

/// A compact architecture with two convolution layers (shared weights).
const CONV_ARCH: &str = "16x16-w7s3-32-16-64-10";

#[test]
fn convolutions_pass_fresh_and_trained() {
    let fresh = report(&["--arch", CONV_ARCH]);
    assert_sound_pass(&fresh, CONV_ARCH);
    assert_eq!(fresh["network"], CONV_ARCH);
    let shipped = report(&["--model", "firmware/models/compact-conv.digits"]);
    assert_sound_pass(&shipped, "compact-conv.digits");
    assert_eq!(shipped["network"], CONV_ARCH);
}

/// A wrong gradient of a shared weight or bias (each the sum over its windows) fails, named.
#[test]
fn a_wrong_convolution_gradient_fails_naming_the_tensor_in_either_precision() {
    for precision in ["f64", "f32"] {
        for tensor in ["W1", "b1", "W2", "b2"] {
            assert_fault_is_named(CONV_ARCH, precision, tensor);
        }
    }
}

#[test]
fn networks_that_cannot_be_checked_as_asked_are_refused_first() {
    let refused = |args: &[&str], says: &str| {
        let err = run_err(digits_in(&slice()).arg("gradcheck").args(args));
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !err.contains("mnist:"),
            "refused before loading data: {err}"
        );
    };
    refused(&["--arch", "16x16-33-32-32-10"], "16x16-32-32-32-10");
    refused(
        &["--arch", ARCH, "--model", "firmware/models/mnist.digits"],
        "drop --arch",
    );
    let shipped = report(&["--model", "firmware/models/compact.digits"]);
    let other = ["14x14-16-16-16-10", ARCH]
        .into_iter()
        .find(|&a| shipped["network"] != a)
        .unwrap();
    refused(
        &["--arch", other, "--model", "firmware/models/compact.digits"],
        "does not match",
    );
    refused(
        &["--model", "firmware/models/mnist-int8.digits"],
        "check the f32 model",
    );
    refused(&["--plant-fault-for-test", "f64:W3"], "add --arch");
}
