//! The same firmware logic on the tightest classic QEMU part: `lm3s6965evb`, a Cortex-M3 without
//! FPU or DSP instructions, 256 KiB of flash, 64 KiB of RAM, no PSRAM. `eval-int8` built for
//! `thumbv7m-none-eabi` reads the data blob from a host file over semihosting and classifies all
//! 10,000 MNIST test images with the int8 model: every logit must have the bits `digits-core`'s
//! integer path gives on this host (the M3 computes the final `f32` multiply in software).

mod common;

use common::mnist::{FNV_START, fnv1a, mnist_test_set};
use common::{have_qemu, notice, parse, run_on};
use digits_core::softmax::argmax;
use firmware::eval::{END_MARK, FLAG_LABELS, FLAG_LOGITS, Header, IMAGE_LEN};
use firmware::qemu::{Board, build_firmware_for};
use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};
use std::time::Duration;

/// Reading 10,000 images over semihosting and classifying them: about 10 s here.
const TIMEOUT: Duration = Duration::from_secs(300);

fn elf() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        let elfs = build_firmware_for(common::workspace_root(), Board::Lm3s6965evb)
            .unwrap_or_else(|e| panic!("{e}"));
        elfs["eval-int8"].clone()
    })
}

fn blob(images: &[[u8; IMAGE_LEN]], labels: &[u8]) -> Vec<u8> {
    let header = Header {
        count: images.len() as u32,
        flags: FLAG_LABELS | FLAG_LOGITS,
    };
    let mut b = header.to_bytes().to_vec();
    b.extend(images.as_flattened());
    b.extend(labels);
    b.extend(END_MARK);
    b
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn the_cortex_m3_classifies_all_mnist_test_images_with_the_hosts_int8_bits() {
    if !have_qemu() {
        return;
    }
    let Some((images, labels)) = mnist_test_set("firmware_lm3s") else {
        return;
    };
    let path = firmware::model::int8::SOURCE;
    let bytes = std::fs::read(path).unwrap();
    let file = digits_core::model_file::decode(&bytes).unwrap();
    let mut q = Box::new(digits_core::MnistQuant::zeroed());
    file.load_int8_into(&mut *q).unwrap();
    let mut model_digest = FNV_START;
    for t in &file.tensors {
        fnv1a(&mut model_digest, t.bytes);
    }

    let mut digest = FNV_START;
    let mut correct = 0;
    let mut host = Vec::new();
    for (pixels, &y) in images.iter().zip(&labels) {
        let z = q.logits(pixels);
        for v in z {
            fnv1a(&mut digest, &v.to_bits().to_le_bytes());
        }
        correct += (argmax(&z) == y as usize) as usize;
        host.push(z.map(|v| format!("{:08x}", v.to_bits())).join(" "));
    }

    let file = scratch("lm3s-t10k.evalblob", &blob(&images, &labels));
    let run = run_on(
        Board::Lm3s6965evb,
        elf(),
        &["-icount", "shift=0"],
        &["eval-int8", file.to_str().unwrap()],
        TIMEOUT,
    );
    assert_eq!(
        run.code,
        Some(0),
        "logs:\n{}\nstderr:\n{}",
        run.logs,
        run.stderr
    );
    let device = parse(&run.stdout);
    assert_eq!(
        device["model"],
        [
            "784-128-10",
            "int8",
            "params_fnv64",
            format!("{model_digest:016x}").as_str()
        ]
    );
    let logits: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("logits "))
        .map(|rest| rest.split_once(' ').expect("logits I Z...").1)
        .collect();
    assert_eq!(logits.len(), images.len());
    let differing: Vec<usize> = (0..images.len())
        .filter(|&i| logits[i] != host[i])
        .collect();
    assert!(
        differing.is_empty(),
        "{} images differ, first {:?}",
        differing.len(),
        &differing[..differing.len().min(5)]
    );
    assert_eq!(device["logits_fnv64"][0], format!("{digest:016x}"));
    assert_eq!(device["correct"][0], correct.to_string());
    assert!(!device.contains_key("kernels"), "no DSP kernel on the M3");
    static REPORT: Once = Once::new();
    notice(
        &REPORT,
        &format!(
            "firmware_lm3s: Cortex-M3 int8, all {} logits bit-identical, {:.2}% correct, {} \
             instructions per inference, {} stack bytes\n",
            images.len(),
            100.0 * correct as f64 / images.len() as f64,
            device["instructions_per_inference"][0],
            device["stack_peak_bytes"][0]
        ),
    );
}

#[test]
fn a_truncated_or_missing_blob_is_an_error_on_the_cortex_m3() {
    if !have_qemu() {
        return;
    }
    let images = [[3u8; IMAGE_LEN]; 3];
    let mut bytes = blob(&images, &[1, 2, 3]);
    bytes.truncate(bytes.len() - 20);
    let truncated = scratch("lm3s-truncated.evalblob", &bytes);
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
