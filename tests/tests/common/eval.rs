//! The `eval` firmware's side of a run: the data blob it reads and the report it prints.

use super::Run;
use super::mnist::Int8Logits;
use digits_core::blob::{Contents, IMAGE_LEN};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The data blob of `images` and their `labels` (if any) asking for every image's logits, as
/// digits-core's writer writes it.
pub fn blob(images: &[[u8; IMAGE_LEN]], labels: Option<&[u8]>) -> Vec<u8> {
    let labels = labels.map(|labels| [labels]);
    let contents = Contents {
        images: &[images],
        labels: labels.as_ref().map(|l| &l[..]),
        print_logits: true,
    };
    let mut bytes = Vec::new();
    contents
        .write(|piece| bytes.extend_from_slice(piece))
        .unwrap_or_else(|e| panic!("{e}"));
    bytes
}

/// Writes `bytes` under the tests' scratch directory and returns the path.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// The `logits I ...` lines (hex bits, in order) and the `digits` lines joined, of a report.
pub fn logits_lines(stdout: &str) -> (Vec<String>, String) {
    let mut logits = Vec::new();
    let mut digits = String::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("logits ") {
            let (i, z) = rest.split_once(' ').expect("logits I Z...");
            assert_eq!(i.parse::<usize>().unwrap(), logits.len(), "order");
            logits.push(z.to_owned());
        } else if let Some(rest) = line.strip_prefix("digits ") {
            let (first, d) = rest.split_once(' ').expect("digits FIRST D...");
            assert_eq!(first.parse::<usize>().unwrap(), digits.len(), "order");
            digits.push_str(d);
        }
    }
    (logits, digits)
}

/// Logits as the device prints them: each value's bits in hex, separated by spaces.
pub fn hex(values: &[f32]) -> String {
    let words: Vec<String> = values
        .iter()
        .map(|v| format!("{:08x}", v.to_bits()))
        .collect();
    words.join(" ")
}

/// Asserts that an `eval-int8` run succeeded, ran the int8 model whose tensors digest to
/// `model_digest`, and gave every image the host's logits (`host`: each image's bits, the
/// digest over all, the count correct); returns the report's fields.
pub fn assert_int8_run<'r>(
    run: &'r Run,
    model_digest: u64,
    host: &Int8Logits,
) -> HashMap<&'r str, Vec<&'r str>> {
    assert_eq!(
        run.code,
        Some(0),
        "logs:\n{}\nstderr:\n{}",
        run.logs,
        run.stderr
    );
    let device = super::parse(&run.stdout);
    assert_eq!(
        device["model"],
        [
            "784-128-10",
            "int8",
            "params_fnv64",
            &format!("{model_digest:016x}")
        ],
        "the device's int8 model differs from {}",
        firmware::model::int8::SOURCE
    );
    let (logits, _) = logits_lines(&run.stdout);
    assert_eq!(logits.len(), host.hex.len());
    let differing: Vec<usize> = (0..logits.len())
        .filter(|&i| logits[i] != host.hex[i])
        .collect();
    assert!(
        differing.is_empty(),
        "{} images got other int8 logits on the device, first {:?}",
        differing.len(),
        &differing[..differing.len().min(5)]
    );
    assert_eq!(device["logits_fnv64"][0], format!("{:016x}", host.digest));
    assert_eq!(device["correct"][0], host.correct.to_string());
    device
}
