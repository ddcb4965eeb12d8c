//! Shared by the firmware tests: find QEMU, build the firmware, run it in QEMU.
// Each test file uses its own part of this module.
#![allow(dead_code)]

pub mod eval;
pub mod mnist;

use firmware::qemu::{Board, QEMU, Qemu, Serial};
use std::collections::HashMap;
use std::env;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::Duration;

/// The workspace root.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
}

/// Whether we are under CI (`CI=true`), where a missing tool or data set fails instead of
/// skipping.
pub fn under_ci() -> bool {
    env::var("CI").as_deref() == Ok("true")
}

/// Writes `message` straight to stderr, once per `once`: libtest would swallow an `eprintln!`
/// of a passing test.
pub fn notice(once: &Once, message: &str) {
    once.call_once(|| {
        std::io::stderr().write_all(message.as_bytes()).ok();
    });
}

/// Whether QEMU is there; panics under CI when it is not, so CI can't pass by skipping.
pub fn have_qemu() -> bool {
    let found = firmware::qemu::qemu_available();
    if !found {
        let hint = "install it with `apt-get install -y qemu-system-arm` (scripts/test.sh does)";
        assert!(!under_ci(), "{QEMU} not found and CI=true: {hint}");
        static NOTICE: Once = Once::new();
        notice(
            &NOTICE,
            &format!("SKIPPED firmware tests: {QEMU} not found; {hint}\n"),
        );
    }
    found
}

/// Builds the firmware binaries (once per test process) and returns the path of `bin`.
pub fn firmware_elf(bin: &str) -> PathBuf {
    static ELFS: OnceLock<Result<HashMap<String, PathBuf>, String>> = OnceLock::new();
    let elfs = ELFS.get_or_init(|| firmware::qemu::build_firmware(workspace_root()));
    match elfs {
        Ok(elfs) => elfs
            .get(bin)
            .unwrap_or_else(|| panic!("no firmware binary {bin}"))
            .clone(),
        Err(e) => panic!("{e}"),
    }
}

pub struct Run {
    pub code: Option<i32>,
    /// The console lines (defmt `println!`), decoded, one per line.
    pub stdout: String,
    /// The log lines (defmt `error!`, `warn!`, ...), decoded, with their level.
    pub logs: String,
    /// QEMU's own stderr.
    pub stderr: String,
}

/// Runs `elf` in QEMU with `extra` arguments before `-kernel`, decodes its defmt output, and
/// waits at most `timeout` (a hung device must not hang the test suite).
pub fn run_in_qemu(elf: &Path, extra: &[&str], timeout: Duration) -> Run {
    run_on(Board::Mps2An386, elf, extra, &[], timeout)
}

/// [`run_in_qemu`] on `board`, with `semihosting_args` as the program's command line.
pub fn run_on(
    board: Board,
    elf: &Path,
    extra: &[&str],
    semihosting_args: &[&str],
    timeout: Duration,
) -> Run {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let mut qemu = Qemu::start_on(
        board,
        elf,
        &Serial::None,
        extra,
        semihosting_args,
        move |line| sink.lock().unwrap().push(line),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let code = qemu.wait(timeout);
    let stderr = qemu.stderr_text();
    let lines = lines.lock().unwrap();
    let text = |console: bool| -> String {
        lines
            .iter()
            .filter(|l| l.level.is_none() == console)
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let run = Run {
        code: code.as_ref().ok().copied().flatten(),
        stdout: text(true),
        logs: text(false),
        stderr,
    };
    assert!(
        code.is_ok(),
        "{}: {}\nstdout:\n{}\nlogs:\n{}\nstderr:\n{}",
        elf.display(),
        code.unwrap_err(),
        run.stdout,
        run.logs,
        run.stderr
    );
    run
}

/// The firmware's lines `key v1 v2 ... # comment` as key -> values (the last line of a key
/// wins).
pub fn parse(stdout: &str) -> HashMap<&str, Vec<&str>> {
    stdout
        .lines()
        .filter_map(|line| {
            let data = line.split('#').next().unwrap_or_default();
            let mut words = data.split_whitespace();
            Some((words.next()?, words.collect()))
        })
        .collect()
}
