//! Shared by the firmware tests: QEMU under testkit's skip rule, the firmware built once, runs
//! in QEMU and their reports. The QEMU runner itself is the host's (`host::device`), the one
//! `digits device` drives the device with.
// Each test file uses its own part of this module.
#![allow(dead_code)]

pub mod eval;
pub mod mnist;

use host::device::firmware::build_firmware_for;
use host::device::qemu::{Board, QEMU, Qemu, Serial, qemu_available};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether QEMU is here, under testkit's one skip rule: without it the tests of `what` skip
/// with a line saying why (and fail under `CI=true`).
pub fn qemu(what: &str) -> bool {
    testkit::needs(
        qemu_available(),
        what,
        &format!(
            "{QEMU} not found; install it with `apt-get install -y qemu-system-arm` \
             (scripts/test.sh does)"
        ),
    )
}

/// Writes a passing test's findings (figures measured on the device) straight to stderr:
/// libtest would swallow an `eprintln!` of a passing test.
pub fn report(line: &str) {
    std::io::stderr()
        .write_all(format!("{line}\n").as_bytes())
        .ok();
}

/// Builds the mps2-an386's firmware binaries (once per test process) and returns the path of
/// `bin`.
pub fn firmware_elf(bin: &str) -> PathBuf {
    firmware_elf_on(Board::Mps2An386, bin)
}

/// [`firmware_elf`] for `board`.
pub fn firmware_elf_on(board: Board, bin: &str) -> PathBuf {
    type Built = Result<HashMap<String, PathBuf>, String>;
    static BUILT: Mutex<Vec<(Board, Built)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|(b, _)| *b == board) {
        let elfs = build_firmware_for(testkit::workspace(), board);
        built.push((board, elfs));
    }
    let (_, elfs) = built.iter().find(|(b, _)| *b == board).expect("built");
    match elfs {
        Ok(elfs) => elfs
            .get(bin)
            .unwrap_or_else(|| panic!("no firmware binary {bin} for the {}", board.name()))
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
