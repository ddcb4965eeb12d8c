//! The IDX loader (`digits` reads MNIST with it) on arbitrary file contents, raw and gzipped
//! (the loader tells them by the gzip magic): never a panic; what it accepts is well formed.
#![no_main]

use host::data::{IMAGE_PIXELS, read_idx_images, read_idx_labels};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A file of this process's own, rewritten for every input.
fn scratch() -> &'static std::path::Path {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("digits-fuzz-idx-{}", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(scratch(), data).expect("write the scratch file");
    if let Ok(images) = read_idx_images(scratch()) {
        assert!(data.len() >= 16 || data.starts_with(&[0x1f, 0x8b]));
        let _ = images.iter().map(|i| i.len() == IMAGE_PIXELS).count();
    }
    if let Ok(labels) = read_idx_labels(scratch()) {
        assert!(labels.iter().all(|&l| l <= 9), "labels are digits");
    }
});
