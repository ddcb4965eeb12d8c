//! Builds the browser page's WebAssembly module (the `digits-web` crate) so that `digits web`
//! carries it: the page then works offline and always matches the core it was built with.
//!
//! Two modules: `digits.wasm` runs every model and teaches the 784-128-10 ones;
//! `digits-compact.wasm` runs compact models only, for their page's smaller transfer. Each is a
//! nested `cargo build` for `wasm32-unknown-unknown` with the `web` profile, in a target
//! directory of its own (no lock shared with the build that runs this script, and each build
//! stays cached). Without that target installed the host still builds, and `digits web` says
//! how to get the page.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest
        .parent()
        .expect("host/ is in the workspace")
        .to_path_buf();
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    for path in [
        "core/src",
        "core/Cargo.toml",
        "web/src",
        "web/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo::rerun-if-changed={}", workspace.join(path).display());
    }
    let modules = [
        ("digits.wasm", "full", &[][..]),
        (
            "digits-compact.wasm",
            "compact",
            &["--no-default-features"][..],
        ),
    ];
    for (name, dir, features) in modules {
        let wasm = out.join(name);
        if let Err(why) = build_wasm(&workspace, dir, features, &wasm) {
            println!("cargo::warning=digits web is built without its page: {why}");
            std::fs::write(&wasm, b"").expect("OUT_DIR is writable");
        }
    }
}

fn build_wasm(workspace: &Path, dir: &str, features: &[&str], wasm: &Path) -> Result<(), String> {
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("web-wasm")
        .join(dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--locked", "-p", "digits-web", "--profile", "web"])
        .args(["--target", WASM_TARGET])
        .args(features)
        .arg("--target-dir")
        .arg(&target_dir);
    // What the outer build set for itself must not leak into the module's build: its flags,
    // clippy as the compiler, its target. The jobserver (CARGO_MAKEFLAGS) is shared on purpose.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the page's module failed (is the target installed? \
             `rustup target add {WASM_TARGET}`)"
        ));
    }
    let built = target_dir
        .join(WASM_TARGET)
        .join("web")
        .join("digits_web.wasm");
    std::fs::copy(&built, wasm)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", built.display()))
}
