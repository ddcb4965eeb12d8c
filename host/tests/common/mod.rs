//! What the command-line tests share: where things are, running `digits`, reading its output.
// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The real MNIST, next to the workspace.
pub fn mnist() -> PathBuf {
    workspace().join("../shared/data/mnist")
}

/// The `digits` binary under test.
pub fn digits() -> Command {
    Command::new(env!("CARGO_BIN_EXE_digits"))
}

/// `digits` run from the workspace root with `$MNIST_DIR` set, as a user there would.
pub fn digits_in_workspace() -> Command {
    let mut cmd = digits();
    cmd.current_dir(workspace()).env("MNIST_DIR", mnist());
    cmd
}

/// Standard output then standard error.
pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs `cmd`, expects success, and returns its output.
pub fn output_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("digits runs");
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    out
}

/// Runs `cmd`, expects success, and returns its text (stdout then stderr).
pub fn run_ok(cmd: &mut Command) -> String {
    text(&output_ok(cmd))
}

/// Runs `cmd`, expects it to fail, and returns its stderr.
pub fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().expect("digits runs");
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded but should not:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Whether QEMU is there; under CI (`CI=true`) its absence fails instead of skipping.
pub fn have_qemu() -> bool {
    let found = firmware::qemu::qemu_available();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "qemu-system-arm not found and CI=true"
        );
        eprintln!("SKIPPED: qemu-system-arm not found");
    }
    found
}

/// The directory of the firmware binaries, built once.
pub fn firmware_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let elfs = firmware::qemu::build_firmware(workspace()).unwrap_or_else(|e| panic!("{e}"));
        let serve = elfs.get("serve").expect("a serve binary");
        serve.parent().expect("in a directory").to_owned()
    })
}
