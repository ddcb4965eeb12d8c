//! `digits inspect`: lines for people (best epoch next to the epochs requested, options as
//! readable lines, no raw JSON) and `--json` for scripts (one document, options nested).

mod common;

use common::{digits_in, output_ok, run_err, slice};
use serde_json::Value;

const MODELS: [&str; 2] = [
    "firmware/models/mnist.digits",
    "firmware/models/mnist-int8.digits",
];

fn json(model: &str) -> Value {
    let out = output_ok(digits_in(&slice()).args(["inspect", "--json", model]));
    serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON document")
}

#[test]
fn json_nests_the_options_and_names_best_and_requested_epochs() {
    for model in MODELS {
        let j = json(model);
        assert!(j["options"].is_object(), "{model}: {j:#}");
        assert!(j["best_epoch"].as_u64().is_some(), "{model}");
        assert!(j["epochs_requested"].as_u64().is_some(), "{model}");
        assert_eq!(j["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(j["parameters_digest"].as_str().unwrap().len(), 16);
        assert!(j["test_accuracy"].as_f64().unwrap() > 0.9, "{model}");
    }
    let int8 = json(MODELS[1]);
    assert_eq!(int8["precision"], "int8");
    // The training options of a quantized model are JSON, not a string holding JSON.
    assert!(int8["options"]["training"].is_object(), "{int8:#}");
    assert_eq!(json(MODELS[0])["precision"], "f32");
}

#[test]
fn people_get_aligned_lines_and_no_raw_json() {
    for model in MODELS {
        let j = json(model);
        let out = output_ok(digits_in(&slice()).args(["inspect", model]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains('{') && !text.contains("\\\""), "{text}");
        let epochs = format!(
            "best epoch {} of {} requested",
            j["best_epoch"], j["epochs_requested"]
        );
        assert!(text.contains(&epochs), "{text}");
        let acc = format!("{:.2}%", 100.0 * j["test_accuracy"].as_f64().unwrap());
        assert!(text.contains(&acc), "{text}");
        assert!(text.contains(j["sha256"].as_str().unwrap()), "{text}");
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("lr ")
                    || l.trim_start().starts_with("training.lr ")),
            "{text}"
        );
    }
}

#[test]
fn a_missing_file_is_one_clear_error() {
    let err = run_err(digits_in(&slice()).args(["inspect", "--json", "no-such.digits"]));
    assert!(err.contains("no-such.digits"), "{err}");
}
