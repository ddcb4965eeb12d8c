//! The compact network on the device: `eval-compact` classifies all 10,000 MNIST test images
//! with the compact model in flash (`firmware/models/compact.digits`, or `DIGITS_MODEL_COMPACT`)
//! on the Cortex-M4F (`mps2-an386`, images in the PSRAM) and on the Cortex-M3 (`lm3s6965evb`,
//! images read from a host file over semihosting), and every logit has the bits
//! `digits-core`'s `Compact::logits_of_image` gives on this host from the same model file.
//!
//! The judge ([`differing`]) is shown to catch one flipped logit bit and a model that differs
//! in one bias. Needs QEMU and the full MNIST test set (found by `testkit`): without either the
//! QEMU tests skip with a line saying why, and fail under `CI=true`. No figure of the model
//! (accuracy, sizes) is assumed: it may be replaced by a better one.

mod common;

use common::eval::{blob, hex, logits_lines, scratch_file};
use common::mnist::full_test_set;
use common::{Run, firmware_elf, firmware_elf_on, parse, qemu, report, run_on};
use digits_core::blob::IMAGE_LEN;
use digits_core::compact::Compact;
use digits_core::compact_file::{AnyModelFile, decode_any};
use digits_core::digest::{Fnv64, compact_digest};
use digits_core::softmax::argmax;
use firmware::model::FlashCompact;
use host::device::psram::blob_loader;
use host::device::qemu::Board;
use host::train::compact::store::QuantizedNet;
use std::path::Path;
use std::time::Duration;
use testkit::Labeled;

/// Far more than 10,000 images take in QEMU (a few seconds): room for a slow CI machine, yet a
/// hung device does not hang the suite.
const TIMEOUT: Duration = Duration::from_secs(300);
/// Most differing images listed when the device disagrees.
const SHOW: usize = 5;

/// The bytes of the model file the firmware embedded.
fn file_bytes() -> Vec<u8> {
    let path = firmware::model::compact::SOURCE;
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The compact network of `bytes`, decoded and checked by `digits-core`.
fn decoded(bytes: &[u8]) -> Compact<'_> {
    match decode_any(bytes).unwrap_or_else(|e| panic!("{e}")) {
        AnyModelFile::Compact(file) => file.model,
        AnyModelFile::Mlp(_) => panic!("the embedded compact model file holds an MLP"),
    }
}

/// The host's side of a run: each image's logits as the device prints them, the digest over
/// all, the count correct.
struct HostLogits {
    hex: Vec<String>,
    digest: u64,
    correct: usize,
}

fn host_logits(net: &Compact<'_>, images: &[[u8; IMAGE_LEN]], labels: &[u8]) -> HostLogits {
    let mut digest = Fnv64::new();
    let mut correct = 0;
    let mut lines = Vec::with_capacity(images.len());
    for (pixels, &label) in images.iter().zip(labels) {
        let mut z = [0.0f32; 10];
        net.logits_of_image(pixels, &mut z);
        digest.write_f32s(&z);
        correct += (argmax(&z) == label as usize) as usize;
        lines.push(hex(&z));
    }
    HostLogits {
        hex: lines,
        digest: digest.finish(),
        correct,
    }
}

/// The images whose logits (hex lines) differ between `device` and `host`, and every image
/// past the shorter of the two.
fn differing(device: &[String], host: &[String]) -> Vec<usize> {
    (0..device.len().max(host.len()))
        .filter(|&i| device.get(i) != host.get(i))
        .collect()
}

/// `net` with one bias of its first layer moved far: a deliberately different model.
fn with_one_bias_moved<'a>(net: &Compact<'a>, bias: &'a mut Vec<u8>) -> Compact<'a> {
    let mut other = net.clone();
    bias.clear();
    bias.extend_from_slice(net.layers[0].bias);
    let b = i32::from_le_bytes(bias[..4].try_into().unwrap()) + (1 << 20);
    bias[..4].copy_from_slice(&b.to_le_bytes());
    other.layers[0].bias = bias;
    other
}

/// Asserts that an `eval-compact` run succeeded, ran `net` (its name and parameters digest)
/// and gave every image the host's logits; returns the report's fields.
fn assert_compact_run<'r>(
    run: &'r Run,
    net: &Compact<'_>,
    host: &HostLogits,
) -> std::collections::HashMap<&'r str, Vec<&'r str>> {
    assert_eq!(
        run.code,
        Some(0),
        "logs:\n{}\nstderr:\n{}",
        run.logs,
        run.stderr
    );
    let device = parse(&run.stdout);
    let named = QuantizedNet::from_view(net);
    assert_eq!(
        device["model"],
        [
            named.arch().as_str(),
            named.precision().as_str(),
            "params_fnv64",
            &format!("{:016x}", compact_digest(net))
        ],
        "the device's compact model differs from {}",
        firmware::model::compact::SOURCE
    );
    let (logits, _) = logits_lines(&run.stdout);
    let differ = differing(&logits, &host.hex);
    assert!(
        differ.is_empty(),
        "{} images got other logits on the device, first {:?}",
        differ.len(),
        &differ[..differ.len().min(SHOW)]
    );
    assert_eq!(device["logits_fnv64"][0], format!("{:016x}", host.digest));
    assert_eq!(device["correct"][0], host.correct.to_string());
    device
}

/// Runs `elf` on `board` over all of `images`, as `digits device eval` does.
fn run_all(board: Board, elf: &Path, images: &[[u8; IMAGE_LEN]], labels: &[u8]) -> Run {
    let file = scratch_file(
        &format!("compact-{}-t10k.evalblob", board.name()),
        &blob(images, Some(labels)),
    );
    let path = file.to_str().expect("UTF-8 path");
    if board.has_psram() {
        run_on(
            board,
            elf,
            &["-icount", "shift=0", "-device", &blob_loader(&file)],
            &[],
            TIMEOUT,
        )
    } else {
        run_on(
            board,
            elf,
            &["-icount", "shift=0"],
            &["eval-compact", path],
            TIMEOUT,
        )
    }
}

/// The whole test set on `board`, checked against the host, and the figures reported.
fn all_test_images_on(board: Board, elf: impl FnOnce() -> std::path::PathBuf, what: &str) {
    if !qemu(what) {
        return;
    }
    let Some(Labeled { images, labels }) = full_test_set(what) else {
        return;
    };
    assert_eq!(images.len(), 10_000);
    let bytes = file_bytes();
    let net = decoded(&bytes);
    let host = host_logits(&net, &images, &labels);
    let run = run_all(board, &elf(), &images, &labels);
    let device = assert_compact_run(&run, &net, &host);

    // The same judge on a model that differs in one bias finds the device disagreeing.
    let mut bias = Vec::new();
    let other = host_logits(&with_one_bias_moved(&net, &mut bias), &images, &labels);
    let (logits, _) = logits_lines(&run.stdout);
    assert!(!differing(&logits, &other.hex).is_empty());

    report(&format!(
        "{what}: {} compact, all {} logits bit-identical, {:.2}% correct, {} instructions per \
         inference, {} B static RAM + {} B stack for one inference, {} B stack peak",
        board.name(),
        images.len(),
        100.0 * host.correct as f64 / images.len() as f64,
        device["instructions_per_inference"][0],
        device["static_ram_bytes"][0],
        device["inference_stack_bytes"][0],
        device["stack_peak_bytes"][0]
    ));
}

#[test]
fn the_embedded_compact_model_is_the_model_file() {
    // On the host, where `FlashCompact` is built as on the device: the bytes and layer list
    // build.rs laid out against digits-core's own decoding of the file.
    let bytes = file_bytes();
    let net = decoded(&bytes);
    let embedded = FlashCompact::new();
    assert_eq!(embedded.net, net);
    assert_eq!(compact_digest(&embedded.net), compact_digest(&net));
}

#[test]
fn the_judge_catches_one_flipped_logit_bit_and_a_different_model() {
    let Labeled { images, labels } = testkit::slice().test;
    let bytes = file_bytes();
    let net = decoded(&bytes);
    let host = host_logits(&net, &images, &labels);
    assert!(differing(&host.hex, &host.hex).is_empty());

    // One bit of one logit of image 7.
    let mut device = host.hex.clone();
    let mut z: Vec<u32> = device[7]
        .split(' ')
        .map(|w| u32::from_str_radix(w, 16).unwrap())
        .collect();
    z[3] ^= 1;
    device[7] = z
        .iter()
        .map(|v| format!("{v:08x}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(differing(&device, &host.hex), [7]);

    // A missing last image.
    assert_eq!(
        differing(&host.hex[..host.hex.len() - 1], &host.hex),
        [host.hex.len() - 1]
    );

    // A model that differs in one bias.
    let mut bias = Vec::new();
    let other = host_logits(&with_one_bias_moved(&net, &mut bias), &images, &labels);
    assert!(!differing(&other.hex, &host.hex).is_empty());
}

#[test]
fn the_cortex_m4f_classifies_all_mnist_test_images_with_the_hosts_compact_bits() {
    all_test_images_on(
        Board::Mps2An386,
        || firmware_elf("eval-compact"),
        "firmware_compact (mps2-an386)",
    );
}

#[test]
fn the_cortex_m3_classifies_all_mnist_test_images_with_the_hosts_compact_bits() {
    all_test_images_on(
        Board::Lm3s6965evb,
        || firmware_elf_on(Board::Lm3s6965evb, "eval-compact"),
        "firmware_compact (lm3s6965evb)",
    );
}
