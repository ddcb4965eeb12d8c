//! What the command-line tests share: where things are, running `digits`, reading its output.
// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use image::{GrayImage, Luma};

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The full MNIST for a test that needs it, or `None` after a SKIPPED line (a failure under
/// `CI=true`): the one rule of `testkit`.
pub fn full_mnist(what: &str) -> Option<PathBuf> {
    testkit::full_mnist(what)
}

/// The committed slice of the real MNIST (1,000 training and 500 test images): for the tests
/// that need real digits but not all of them, on any clone.
pub fn slice() -> PathBuf {
    testkit::slice_dir()
}

/// The `digits` binary under test.
pub fn digits() -> Command {
    Command::new(env!("CARGO_BIN_EXE_digits"))
}

/// `digits COMMAND --data SLICE`: a command on the committed MNIST slice.
pub fn on_slice(command: &str) -> Command {
    let mut cmd = digits();
    cmd.arg(command).arg("--data").arg(slice());
    cmd
}

/// `digits` run from the workspace root with `$MNIST_DIR` set to `data`, as a user there would.
pub fn digits_in(data: &Path) -> Command {
    let mut cmd = digits();
    cmd.current_dir(workspace()).env("MNIST_DIR", data);
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

/// Whether QEMU is there, under the one skip rule of `testkit`.
pub fn have_qemu(what: &str) -> bool {
    testkit::needs(
        host::device::qemu::qemu_available(),
        what,
        "qemu-system-arm not found (`apt-get install qemu-system-arm`; scripts/test.sh does)",
    )
}

/// What a device test needs: QEMU and the full MNIST (its test split is what the device
/// classifies). `None` after a SKIPPED line.
pub fn device_setup(what: &str) -> Option<PathBuf> {
    if !have_qemu(what) {
        return None;
    }
    full_mnist(what)
}

/// The directory of the firmware binaries, built once.
pub fn firmware_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let elfs =
            host::device::firmware::build_firmware(workspace()).unwrap_or_else(|e| panic!("{e}"));
        // The release programs' directory; `serve` (a profile of its own) is found beside it.
        let eval = elfs.get("eval").expect("an eval binary");
        assert!(elfs.contains_key("serve"), "a serve binary");
        eval.parent().expect("in a directory").to_owned()
    })
}

/// The `serve` firmware, built once (a profile of its own, beside [`firmware_dir`]).
pub fn serve_elf() -> PathBuf {
    firmware_dir().join("..").join("serve").join("serve")
}

/// The percentage printed after `after` in a command's output (`test accuracy 98.76%`).
#[allow(dead_code, reason = "not every test file reads accuracies")]
pub fn accuracy(text: &str, after: &str) -> f64 {
    text.split(after)
        .nth(1)
        .and_then(|s| s.trim_start().split('%').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no accuracy after {after:?} in:\n{text}"))
}

/// MNIST's first test digit, a 7, drawn as a photo would show it: dark ink on light paper, 8x.
#[allow(dead_code, reason = "not every test file draws digits")]
pub fn seven_png(dir: &Path) -> PathBuf {
    let slice = testkit::slice();
    assert_eq!(slice.test.labels[0], 7);
    let digit = &slice.test.images[0];
    let image = GrayImage::from_fn(28 * 8, 28 * 8, |x, y| {
        Luma([255 - digit[(y / 8 * 28 + x / 8) as usize]])
    });
    let path = dir.join("seven.png");
    image.save(&path).unwrap();
    path
}

/// A free local port, as an address.
pub fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}
