//! The same firmware logic on the tightest classic QEMU part: `lm3s6965evb`, a Cortex-M3 without
//! FPU or DSP instructions, 256 KiB of flash, 64 KiB of RAM, no PSRAM. `eval-int8` built for
//! `thumbv7m-none-eabi` reads the data blob from a host file over semihosting and classifies all
//! 10,000 MNIST test images with the int8 model: every logit must have the bits `digits-core`'s
//! integer path gives on this host (the M3 computes the final `f32` multiply in software).
//!
//! Needs QEMU and the full MNIST test set (found by `testkit`): without either the tests skip
//! with a line saying why, and fail under `CI=true`.

mod common;

use common::eval::{assert_int8_run, blob, scratch_file};
use common::mnist::{full_test_set, int8_logits, int8_model_from_file};
use common::{qemu, report, run_on};
use digits_core::blob::IMAGE_LEN;
use host::device::firmware::build_firmware_for;
use host::device::qemu::Board;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use testkit::Labeled;

/// Reading 10,000 images over semihosting and classifying them takes far less (the time is in
/// `docs/figures.md`): room for a slow CI machine, yet a hung device does not hang the suite.
const TIMEOUT: Duration = Duration::from_secs(300);

fn elf() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        let elfs = build_firmware_for(testkit::workspace(), Board::Lm3s6965evb)
            .unwrap_or_else(|e| panic!("{e}"));
        elfs["eval-int8"].clone()
    })
}

#[test]
fn the_cortex_m3_classifies_all_mnist_test_images_with_the_hosts_int8_bits() {
    if !qemu("firmware_lm3s") {
        return;
    }
    let Some(Labeled { images, labels }) = full_test_set("firmware_lm3s") else {
        return;
    };
    let (q, model_digest) = int8_model_from_file();
    let host = int8_logits(&q, &images, &labels);

    let file = scratch_file("lm3s-t10k.evalblob", &blob(&images, Some(&labels)));
    let run = run_on(
        Board::Lm3s6965evb,
        elf(),
        &["-icount", "shift=0"],
        &["eval-int8", file.to_str().unwrap()],
        TIMEOUT,
    );
    let device = assert_int8_run(&run, model_digest, &host);
    assert!(!device.contains_key("kernels"), "no DSP kernel on the M3");
    report(&format!(
        "firmware_lm3s: Cortex-M3 int8, all {} logits bit-identical, {:.2}% correct, {} \
         instructions per inference, {} stack bytes",
        images.len(),
        100.0 * host.correct as f64 / images.len() as f64,
        device["instructions_per_inference"][0],
        device["stack_peak_bytes"][0]
    ));
}

#[test]
fn a_truncated_or_missing_blob_is_an_error_on_the_cortex_m3() {
    if !qemu("firmware_lm3s") {
        return;
    }
    let images = [[3u8; IMAGE_LEN]; 3];
    let mut bytes = blob(&images, Some(&[1, 2, 3]));
    bytes.truncate(bytes.len() - 20);
    let truncated = scratch_file("lm3s-truncated.evalblob", &bytes);
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such.evalblob");
    for (file, expected) in [(&truncated, "length"), (&missing, "cannot open")] {
        let run = run_on(
            Board::Lm3s6965evb,
            elf(),
            &[],
            &["eval-int8", file.to_str().unwrap()],
            Duration::from_secs(60),
        );
        assert_eq!(run.code, Some(1), "{}", run.logs);
        assert!(run.logs.contains(expected), "{}", run.logs);
    }
}
