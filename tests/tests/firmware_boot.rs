//! The firmware boots in QEMU (Cortex-M4F, `mps2-an386`), and its forward pass, loss and SGD
//! step give bit for bit the numbers `digits-core` gives on this host. A panic or a HardFault on
//! the device makes QEMU exit non-zero.
//!
//! Needs `qemu-system-arm` and the `thumbv7em-none-eabihf` target (`scripts/test.sh` installs
//! both). Without QEMU the tests are skipped with a notice, except under `CI=true`, where they
//! fail.

use digits_core::{Mlp, Rng};
use firmware::{BATCH, HIDDEN, LEARNING_RATE, SEED, SGD};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};
use std::{env, thread};

const TARGET: &str = "thumbv7em-none-eabihf";
const QEMU: &str = "qemu-system-arm";
/// A boot takes well under a second; a hung device must not hang the test suite.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Whether QEMU is there; panics under CI when it is not, so CI can't pass by skipping.
fn have_qemu() -> bool {
    let found = Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let hint = "install it with `apt-get install -y qemu-system-arm` (scripts/test.sh does)";
        assert!(
            env::var("CI").as_deref() != Ok("true"),
            "{QEMU} not found and CI=true: {hint}"
        );
        // Straight to stderr: libtest would swallow an eprintln! of a passing test.
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            let notice = format!("SKIPPED firmware tests: {QEMU} not found; {hint}\n");
            std::io::stderr().write_all(notice.as_bytes()).ok();
        });
    }
    found
}

/// Builds the firmware binaries (once per test process) and returns the path of `bin`.
fn firmware_elf(bin: &str) -> PathBuf {
    static ELFS: OnceLock<Result<HashMap<String, PathBuf>, String>> = OnceLock::new();
    let elfs = ELFS.get_or_init(build_firmware);
    match elfs {
        Ok(elfs) => elfs
            .get(bin)
            .unwrap_or_else(|| panic!("no firmware binary {bin}"))
            .clone(),
        Err(e) => panic!("{e}"),
    }
}

fn build_firmware() -> Result<HashMap<String, PathBuf>, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // The executables' paths come from cargo's messages, wherever the target directory is.
    let out = Command::new(cargo)
        .current_dir(root)
        // Flags meant for the host build (e.g. `-C target-cpu=native`) must not reach the device.
        .env_remove("RUSTFLAGS")
        .args(["build", "-p", "firmware", "--release", "--bins"])
        .args([
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the firmware failed ({}); is the target installed? \
             `rustup target add {TARGET}`",
            out.status
        ));
    }
    let mut elfs = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let (Some(name), Some(exe)) =
            (msg["target"]["name"].as_str(), msg["executable"].as_str())
        {
            elfs.insert(name.to_owned(), PathBuf::from(exe));
        }
    }
    Ok(elfs)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `elf` in QEMU, the way the cargo runner does, and waits at most [`TIMEOUT`].
fn run_in_qemu(elf: &Path) -> Run {
    let mut child = Command::new(QEMU)
        .args(["-M", "mps2-an386", "-cpu", "cortex-m4", "-nographic"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-arm");
    // Drain both pipes on threads so a chatty device can't block on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            pipe.read_to_string(&mut s).ok();
            s
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for qemu") {
            break Some(status);
        }
        if start.elapsed() > TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let run = Run {
        code: status.and_then(|s| s.code()),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(
        status.is_some(),
        "{} timed out after {TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
        elf.display(),
        run.stdout,
        run.stderr
    );
    run
}

/// The firmware's lines `key v1 v2 ... # comment` as key -> values.
fn parse(stdout: &str) -> HashMap<&str, Vec<&str>> {
    stdout
        .lines()
        .filter_map(|line| {
            let data = line.split('#').next().unwrap_or_default();
            let mut words = data.split_whitespace();
            Some((words.next()?, words.collect()))
        })
        .collect()
}

fn hex(values: &[f32]) -> Vec<String> {
    values
        .iter()
        .map(|v| format!("{:08x}", v.to_bits()))
        .collect()
}

#[test]
fn firmware_computes_the_same_bits_as_the_host() {
    if !have_qemu() {
        return;
    }
    let run = run_in_qemu(&firmware_elf("boot"));
    assert_eq!(
        run.code,
        Some(0),
        "firmware failed\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(run.stdout.lines().last(), Some("ok"), "{}", run.stdout);
    let device = parse(&run.stdout);

    // The same computation on the host, written out against digits-core.
    let xs: Vec<[f32; 784]> = BATCH
        .iter()
        .map(|(pixels, _)| pixels.map(|p| p as f32 / 255.0))
        .collect();
    let labels: Vec<u8> = BATCH.iter().map(|&(_, y)| y).collect();
    let (x, y) = (&xs[0], labels[0]);
    let mut model = Mlp::<784, HIDDEN, 10, f32>::zeros();
    model.init(&mut Rng::new(SEED));
    let mut grad = Mlp::zeros();
    let mut velocity = Mlp::zeros();
    let logits_before = model.logits(x);
    let loss_before = model.sample_loss(x, y);
    let batch_loss = model.backprop(&xs, &labels, &mut grad);
    SGD.step(&mut model, &grad, &mut velocity, LEARNING_RATE);
    let logits_after = model.logits(x);
    let loss_after = model.sample_loss(x, y);
    assert!(loss_after < loss_before, "the step should lower the loss");

    let expected: [(&str, &[f32]); 5] = [
        ("logits_before", &logits_before),
        ("loss", &[loss_before]),
        ("batch_loss", &[batch_loss]),
        ("logits_after", &logits_after),
        ("loss_after", &[loss_after]),
    ];
    for (key, host) in expected {
        let on_device = device.get(key).unwrap_or_else(|| panic!("no {key} line"));
        assert_eq!(
            on_device,
            &hex(host),
            "{key}: device bits differ from the host's {host:?}\n{}",
            run.stdout
        );
    }
    let predicted = model.predict(x).to_string();
    assert_eq!(device["predicted"], [predicted.as_str()]);
    eprintln!("device and host agree bit for bit:\n{}", run.stdout);
}

#[test]
fn a_panic_exits_qemu_non_zero() {
    if !have_qemu() {
        return;
    }
    let run = run_in_qemu(&firmware_elf("panic"));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("deliberate panic"), "{}", run.stderr);
}

#[test]
fn a_hardfault_exits_qemu_non_zero() {
    if !have_qemu() {
        return;
    }
    let run = run_in_qemu(&firmware_elf("hardfault"));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("HardFault"), "{}", run.stderr);
}
