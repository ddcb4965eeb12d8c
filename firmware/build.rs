//! Puts `memory.x` where the linker finds it and links device binaries with cortex-m-rt's
//! `link.x` (which includes `memory.x`). In a workspace the linker runs in the workspace root,
//! not here, so `memory.x` goes into `OUT_DIR` and that is added to the search path.

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    // Host builds (tests, clippy, docs) link normally.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
}
