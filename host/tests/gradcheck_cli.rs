//! `digits gradcheck` end to end: it passes correct networks (fresh and trained) with both
//! precisions reported and the f32 bound printed, and it fails, naming the tensor, on a gradient
//! made wrong on purpose in any tensor of either precision.

mod common;

use common::{digits_in, run_err, run_ok, slice};
use serde_json::Value;

/// A small sample keeps each run short; the checks are the same.
const QUICK: [&str; 4] = ["gradcheck", "--sample", "60", "--json"];

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
    for t in decides["tensors"].as_array().unwrap() {
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
