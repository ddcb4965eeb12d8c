//! The firmware boots in QEMU (Cortex-M4F, `mps2-an386`), and its forward pass, loss and SGD
//! step give bit for bit the numbers `digits-core` gives on this host. A panic or a HardFault on
//! the device makes QEMU exit non-zero.
//!
//! Needs `qemu-system-arm` and the `thumbv7em-none-eabihf` target (`scripts/test.sh` installs
//! both). Without QEMU the tests skip with a line saying why (testkit's rule), except under
//! `CI=true`, where they fail.

mod common;

use common::{firmware_elf, parse, qemu, run_in_qemu};
use digits_core::{Mlp, Rng};
use firmware::{BATCH, HIDDEN, LEARNING_RATE, SEED, SGD};
use std::time::Duration;

/// A boot takes well under a second; a hung device must not hang the test suite.
const TIMEOUT: Duration = Duration::from_secs(60);

fn hex(values: &[f32]) -> Vec<String> {
    values
        .iter()
        .map(|v| format!("{:08x}", v.to_bits()))
        .collect()
}

#[test]
fn firmware_computes_the_same_bits_as_the_host() {
    if !qemu("firmware_boot") {
        return;
    }
    let run = run_in_qemu(&firmware_elf("boot"), &[], TIMEOUT);
    assert_eq!(
        run.code,
        Some(0),
        "firmware failed\nstdout:\n{}\nlogs:\n{}\nstderr:\n{}",
        run.stdout,
        run.logs,
        run.stderr
    );
    assert_eq!(run.stdout.lines().last(), Some("ok"), "{}", run.stdout);
    let device = parse(&run.stdout);

    // The same computation on the host, written out against digits-core.
    let xs: Vec<[f32; 784]> = BATCH
        .iter()
        .map(|(pixels, _)| pixels.map(|p| p as f32 / 255.0))
        .collect();
    let labels: Vec<u8> = BATCH.iter().map(|&(_, y)| y).collect();
    let (x, y) = (&xs[0], labels[0]);
    let mut model = Mlp::<784, HIDDEN, 10, f32>::zeros();
    model.init(&mut Rng::new(SEED));
    let mut grad = Mlp::zeros();
    let mut velocity = Mlp::zeros();
    let logits_before = model.logits(x);
    let loss_before = model.sample_loss(x, y);
    let batch_loss = model.backprop(&xs, &labels, &mut grad);
    SGD.step(&mut model, &grad, &mut velocity, LEARNING_RATE);
    let logits_after = model.logits(x);
    let loss_after = model.sample_loss(x, y);
    assert!(loss_after < loss_before, "the step should lower the loss");

    let expected: [(&str, &[f32]); 5] = [
        ("logits_before", &logits_before),
        ("loss", &[loss_before]),
        ("batch_loss", &[batch_loss]),
        ("logits_after", &logits_after),
        ("loss_after", &[loss_after]),
    ];
    for (key, host) in expected {
        let on_device = device.get(key).unwrap_or_else(|| panic!("no {key} line"));
        assert_eq!(
            on_device,
            &hex(host),
            "{key}: device bits differ from the host's {host:?}\n{}",
            run.stdout
        );
    }
    let predicted = model.predict(x).to_string();
    assert_eq!(device["predicted"], [predicted.as_str()]);
    eprintln!("device and host agree bit for bit:\n{}", run.stdout);
}

#[test]
fn a_panic_exits_qemu_non_zero() {
    if !qemu("firmware_boot") {
        return;
    }
    let run = run_in_qemu(&firmware_elf("panic"), &[], TIMEOUT);
    assert_eq!(run.code, Some(1), "{}", run.logs);
    assert!(
        run.logs.contains("ERROR") && run.logs.contains("deliberate panic"),
        "{}",
        run.logs
    );
}

#[test]
fn a_hardfault_exits_qemu_non_zero() {
    if !qemu("firmware_boot") {
        return;
    }
    let run = run_in_qemu(&firmware_elf("hardfault"), &[], TIMEOUT);
    assert_eq!(run.code, Some(1), "{}", run.logs);
    assert!(
        run.logs.contains("ERROR") && run.logs.contains("HardFault"),
        "{}",
        run.logs
    );
}
