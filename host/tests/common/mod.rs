//! What the command-line tests share: where things are, running `digits`, reading its output.
// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
