//! The boards people own, end to end through `digits device`: the STM32F405 (QEMU's
//! `netduinoplus2`) and the BBC micro:bit (`microbit`). Every model each board carries gives the
//! host's logits bit for bit on all 10,000 MNIST test images; the STM32F405 serves `info`,
//! `predict` and fine-tuning over its USART; the micro:bit refuses what does not fit it, before
//! any work starts.
//!
//! Needs QEMU and the full MNIST test set: without either the tests skip with a line saying why,
//! and fail under `CI=true`. No --firmware: digits builds each board's firmware itself, as it
//! does for a user.

mod common;

use common::{digits_in, slice, text};

use std::path::Path;

/// `digits device eval --board BOARD --model MODEL --json` over the whole test set: every logit
/// bit-identical to the host's. Returns the report.
fn eval_all(mnist: &Path, board: &str, model: &str) -> serde_json::Value {
    let out = digits_in(mnist)
        .args([
            "device", "eval", "--board", board, "--model", model, "--json",
        ])
        .output()
        .expect("run digits");
    assert!(out.status.success(), "{board}, {model}: {}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{board}, {model}: not JSON ({e}): {}", text(&out)));
    assert_eq!(report["board"], board, "{report}");
    assert_eq!(report["path"], "semihosting", "{report}");
    assert_eq!(report["images"], 10_000, "{report}");
    assert_eq!(report["same_bits"], 10_000, "{board}, {model}: {report}");
    let instructions = report["instructions_per_inference"].as_f64().unwrap_or(0.0);
    assert!(instructions > 1000.0, "{board}, {model}: {report}");
    eprintln!(
        "device_boards: {board} {model}: {:.2}% correct, all 10000 logits bit-identical, \
         {instructions} instructions per inference, {} B stack peak",
        100.0 * report["accuracy"].as_f64().unwrap(),
        report["stack_peak_bytes"]
    );
    report
}

#[test]
fn the_stm32f405_gives_the_hosts_bits_with_every_model() {
    let Some(mnist) = common::device_setup("device_boards::the_stm32f405") else {
        return;
    };
    for model in [
        "firmware/models/mnist.digits",
        "firmware/models/mnist-int8.digits",
        "firmware/models/compact.digits",
        "firmware/models/compact-conv.digits",
    ] {
        eval_all(&mnist, "netduinoplus2", model);
    }
}

#[test]
fn the_microbit_gives_the_hosts_bits_with_the_int8_and_compact_models() {
    let Some(mnist) = common::device_setup("device_boards::the_microbit") else {
        return;
    };
    for model in [
        "firmware/models/mnist-int8.digits",
        "firmware/models/compact.digits",
        "firmware/models/compact-conv.digits",
    ] {
        let report = eval_all(&mnist, "microbit", model);
        // Statics and the deepest stack within the nRF51's 16 KiB.
        let peak = report["stack_peak_bytes"].as_u64().unwrap();
        assert!(peak < 16 * 1024, "{report}");
    }
}

#[test]
fn the_stm32f405_serves_info_and_predict_over_its_usart() {
    if !common::have_qemu("device_boards::the_stm32f405_serves") {
        return;
    }
    let out = digits_in(&slice())
        .args(["device", "info", "--board", "netduinoplus2", "--json"])
        .output()
        .expect("run digits");
    assert!(out.status.success(), "{}", text(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["board"], "netduinoplus2", "{info}");
    let ram = info["static_ram_bytes"].as_u64().unwrap() + info["stack_bytes"].as_u64().unwrap();
    assert_eq!(ram, 128 * 1024, "the STM32F405's SRAM: {info}");

    let dir = tempfile::tempdir().unwrap();
    let seven = common::seven_png(dir.path());
    let out = digits_in(&slice())
        .args(["device", "predict", "--board", "netduinoplus2"])
        .arg(&seven)
        .output()
        .expect("run digits");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(": 7 "), "{t}");
}

#[test]
fn the_microbit_refuses_what_does_not_fit_it() {
    // Refused before QEMU is looked for: runs on any machine.
    let out = digits_in(&slice())
        .args(["device", "eval", "--board", "microbit"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("does not fit the microbit"), "{t}");

    for args in [
        &["info", "--board", "microbit"][..],
        &["eval", "--board", "microbit", "--uart"],
        &["run", "--board", "microbit"],
    ] {
        let out = digits_in(&slice())
            .arg("device")
            .args(args)
            .output()
            .unwrap();
        let t = text(&out);
        assert!(!out.status.success(), "{args:?}: {t}");
        assert!(
            t.contains("mps2-an386 or --board netduinoplus2"),
            "{args:?}: {t}"
        );
    }
}
