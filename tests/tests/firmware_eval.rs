//! The firmware classifies all 10,000 MNIST test images with the project's model, read in place
//! from flash, and every logit it computes has the very bits `digits-core` computes on this
//! host from the same model file: each image's ten logits are compared, as are the predicted
//! digits, an FNV-1a digest over all logits and one over the model's parameters as the device
//! reads them from flash. The run also counts the instructions per inference (`-icount`).
//!
//! Needs QEMU and the full MNIST test set (found by `testkit`): without either the tests skip
//! with a line saying why, and fail under `CI=true`. The data blob's format is checked on the
//! host by `digits-core`'s own tests (`core/tests/blob.rs`); here the device reads it.

mod common;

use common::eval::{assert_int8_run, blob, hex, logits_lines, scratch_file};
use common::mnist::{
    FNV_START, fnv1a, full_test_set, int8_logits, int8_model_from_file, model_from_file, params_fnv,
};
use common::{firmware_elf, parse, qemu, report, run_in_qemu};
use digits_core::Params;
use digits_core::blob::{END_MARK, IMAGE_LEN};
use digits_core::pixels::normalize;
use digits_core::softmax::argmax;
use host::device::psram::blob_loader;
use std::time::{Duration, Instant};
use testkit::Labeled;

/// Far more than 10,000 images take in QEMU (the time is in `docs/figures.md`): room for a slow
/// CI machine, yet a hung device does not hang the suite.
const TIMEOUT: Duration = Duration::from_secs(300);
/// The budget for the f32 model.
const MAX_INSTRUCTIONS_PER_INFERENCE: f64 = 150_000.0;
/// Most differing images listed when the device disagrees.
const SHOW: usize = 5;

#[test]
fn the_embedded_model_is_the_model_file() {
    // On the host, where `firmware::model::MODEL` is built the same way as on the device: this
    // checks the byte layout build.rs writes against digits-core's own decoding.
    let model = model_from_file();
    let embedded = &firmware::model::MODEL;
    for k in 0..model.tensor_count() {
        let (a, b) = (model.tensor(k), embedded.tensor(k));
        assert_eq!(a.name, b.name);
        assert!(
            a.data
                .iter()
                .zip(b.data)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "tensor {} differs",
            a.name
        );
    }
    assert_eq!(
        digits_core::digest::params_digest(embedded),
        params_fnv(&model),
        "FNV-1a of digits_core::digest and of this test disagree"
    );
}

#[test]
fn the_device_classifies_all_mnist_test_images_with_the_hosts_bits() {
    if !qemu("firmware_eval") {
        return;
    }
    let Some(Labeled { images, labels }) = full_test_set("firmware_eval") else {
        return;
    };
    assert_eq!(images.len(), 10_000);
    let blob_path = scratch_file("mnist-t10k.evalblob", &blob(&images, Some(&labels)));

    // The host: digits-core on the model file the firmware embedded.
    let started = Instant::now();
    let model = model_from_file();
    let mut x = [0.0f32; IMAGE_LEN];
    let mut digest = FNV_START;
    let mut host_logits = Vec::with_capacity(images.len());
    let mut host_digits = String::with_capacity(images.len());
    for pixels in &images {
        normalize(pixels, &mut x);
        let z = model.logits(&x);
        for v in z {
            fnv1a(&mut digest, &v.to_bits().to_le_bytes());
        }
        host_digits.push(char::from(b'0' + argmax(&z) as u8));
        host_logits.push(hex(&z));
    }
    let host_correct = host_digits
        .bytes()
        .zip(&labels)
        .filter(|&(d, &y)| d - b'0' == y)
        .count();
    let host_time = started.elapsed();

    // The device, counting instructions (-icount shift=0: 1 ns of virtual time each).
    let elf = firmware_elf("eval");
    let started = Instant::now();
    let run = run_in_qemu(
        &elf,
        &["-icount", "shift=0", "-device", &blob_loader(&blob_path)],
        TIMEOUT,
    );
    let device_time = started.elapsed();
    let summary: String = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("logits ") && !l.starts_with("digits "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        run.code,
        Some(0),
        "firmware failed\nstdout (without logits and digits lines):\n{summary}\nlogs:\n{}\nstderr:\n{}",
        run.logs,
        run.stderr
    );
    assert_eq!(run.stdout.lines().last(), Some("ok"), "{summary}");
    let device = parse(&run.stdout);

    // The model, as read from flash.
    let model_line = device.get("model").expect("a model line");
    assert_eq!(
        model_line.last().copied(),
        Some(format!("{:016x}", params_fnv(&model)).as_str()),
        "the device's model differs from {}\n{summary}",
        firmware::model::SOURCE
    );
    assert_eq!(device["images"][0], "10000");

    // Every image's logits, bit for bit.
    let (device_logits, device_digits) = logits_lines(&run.stdout);
    assert_eq!(device_logits.len(), images.len(), "logits lines");
    let differing: Vec<usize> = (0..images.len())
        .filter(|&i| device_logits[i] != host_logits[i])
        .collect();
    let shown: Vec<String> = differing
        .iter()
        .take(SHOW)
        .map(|&i| {
            format!(
                "image {i}:\n  device {}\n  host   {}",
                device_logits[i], host_logits[i]
            )
        })
        .collect();
    assert!(
        differing.is_empty(),
        "{} of {} images got other logits on the device:\n{}",
        differing.len(),
        images.len(),
        shown.join("\n")
    );
    assert_eq!(device_digits, host_digits, "predicted digits");
    assert_eq!(
        device["logits_fnv64"][0],
        format!("{digest:016x}"),
        "digest of all logits"
    );
    assert_eq!(device["correct"][0], host_correct.to_string());

    let instructions: f64 = device["instructions_per_inference"][0]
        .parse()
        .expect("instructions_per_inference");
    report(&format!(
        "firmware_eval: device and host agree bit for bit on all {} MNIST test images \
         (logits_fnv64 {digest:016x}); device accuracy {:.2}% ({host_correct} correct); \
         {instructions:.1} instructions per inference (qemu -icount); {} stack bytes; \
         QEMU run {:.1} s, host {:.1} s",
        images.len(),
        100.0 * host_correct as f64 / images.len() as f64,
        device["stack_peak_bytes"][0],
        device_time.as_secs_f64(),
        host_time.as_secs_f64(),
    ));
    assert!(
        instructions < MAX_INSTRUCTIONS_PER_INFERENCE,
        "{instructions} instructions per inference, over the budget of \
         {MAX_INSTRUCTIONS_PER_INFERENCE}"
    );
}

/// The budget for the int8 model on the Cortex-M4.
const MAX_INT8_INSTRUCTIONS: f64 = 60_000.0;
/// Percentage points the int8 model may lose against the f32 model it came from.
const MAX_INT8_ACCURACY_LOSS: f64 = 0.2;

/// The int8 firmware (`eval-int8`, DSP kernels) against `digits-core`'s portable integer path
/// on this host, for all 10,000 images: every logit's bits, the digest of the model as read
/// from flash (FNV-1a over the model file's tensor bytes, computed here from the file), the
/// DSP kernels against the portable ones on the device, the instruction budget, and the
/// accuracy against the f32 model's.
#[test]
fn the_int8_device_classifies_all_mnist_test_images_with_the_hosts_bits() {
    if !qemu("firmware_eval") {
        return;
    }
    let Some(Labeled { images, labels }) = full_test_set("firmware_eval") else {
        return;
    };
    let (q, file_digest) = int8_model_from_file();
    let host = int8_logits(&q, &images, &labels);
    let f32_model = model_from_file();
    let mut f32_correct = 0usize;
    let mut x = [0.0f32; IMAGE_LEN];
    for (pixels, &y) in images.iter().zip(&labels) {
        normalize(pixels, &mut x);
        f32_correct += (argmax(&f32_model.logits(&x)) == y as usize) as usize;
    }

    let blob_path = scratch_file("mnist-t10k-int8.evalblob", &blob(&images, Some(&labels)));
    let run = run_in_qemu(
        &firmware_elf("eval-int8"),
        &["-icount", "shift=0", "-device", &blob_loader(&blob_path)],
        TIMEOUT,
    );
    let device = assert_int8_run(&run, file_digest, &host);
    assert_eq!(
        device["kernels"][..3],
        ["10000", "of", "10000"],
        "DSP and portable kernels disagree on the device"
    );
    let instructions: f64 = device["instructions_per_inference"][0].parse().unwrap();
    let (a8, a32) = (
        100.0 * host.correct as f64 / images.len() as f64,
        100.0 * f32_correct as f64 / images.len() as f64,
    );
    report(&format!(
        "firmware_eval int8: all {} logits bit-identical to the host's; int8 {a8:.2}% vs f32 \
         {a32:.2}%; {instructions:.1} instructions per inference; {} stack bytes",
        images.len(),
        device["stack_peak_bytes"][0]
    ));
    assert!(
        a32 - a8 <= MAX_INT8_ACCURACY_LOSS,
        "int8 {a8:.2}% vs f32 {a32:.2}%"
    );
    assert!(
        instructions <= MAX_INT8_INSTRUCTIONS,
        "{instructions} instructions per int8 inference, over {MAX_INT8_INSTRUCTIONS}"
    );
}

#[test]
fn without_a_blob_the_device_exits_non_zero() {
    if !qemu("firmware_eval") {
        return;
    }
    let run = run_in_qemu(&firmware_elf("eval"), &[], Duration::from_secs(60));
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.logs);
    assert!(
        run.logs.contains("does not start with \"DIGITSEV\""),
        "{}",
        run.logs
    );
}

#[test]
fn a_truncated_blob_makes_the_device_exit_non_zero() {
    if !qemu("firmware_eval") {
        return;
    }
    let images = [[0u8; IMAGE_LEN]; 3];
    let mut bytes = blob(&images, None);
    // Drop the last image (but keep the end mark): the count now overshoots.
    bytes.drain(bytes.len() - END_MARK.len() - IMAGE_LEN..bytes.len() - END_MARK.len());
    let path = scratch_file("truncated.evalblob", &bytes);
    let extra = ["-device", &blob_loader(&path)];
    let run = run_in_qemu(&firmware_elf("eval"), &extra, Duration::from_secs(60));
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.logs);
    assert!(run.logs.contains("DIGITEND"), "{}", run.logs);
}
