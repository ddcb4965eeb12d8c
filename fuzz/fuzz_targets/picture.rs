//! `digits predict`'s reading and preprocessing of a user's picture on arbitrary file contents
//! (PNG and JPEG, told by content): never a panic, never an unbounded allocation (the decoder
//! has limits); what it accepts becomes a 28x28 image.
#![no_main]

use host::preprocess::{load_gray, to_mnist};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn scratch() -> &'static std::path::Path {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("digits-fuzz-picture-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(scratch(), data).expect("write the scratch file");
    if let Ok(gray) = load_gray(scratch()) {
        let _ = to_mnist(&gray);
    }
});
