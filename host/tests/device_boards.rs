//! The boards people own, end to end through `digits device`: the STM32F405 (QEMU's
//! `netduinoplus2`) and the BBC micro:bit (`microbit`). Every model each board carries gives the
//! host's logits bit for bit on all 10,000 MNIST test images; the STM32F405 serves `info`,
//! `predict` and fine-tuning over its USART; the micro:bit refuses what does not fit it, before
//! any work starts.
//!
//! Needs QEMU and the full MNIST test set: without either the tests skip with a line saying why,
//! and fail under `CI=true`. No --firmware: digits builds each board's firmware itself, as it
//! does for a user.

mod common;

use common::{digits_in, slice, text};

use std::path::Path;

/// `digits device eval --board BOARD --model MODEL --json` over the first `images` test images:
/// every logit bit-identical to the host's. Returns the report.
fn eval_first(mnist: &Path, board: &str, model: &str, images: usize) -> serde_json::Value {
    let limit = images.to_string();
    let out = digits_in(mnist)
        .args([
            "device", "eval", "--board", board, "--model", model, "--json", "--limit", &limit,
        ])
        .output()
        .expect("run digits");
    assert!(out.status.success(), "{board}, {model}: {}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{board}, {model}: not JSON ({e}): {}", text(&out)));
    assert_eq!(report["board"], board, "{report}");
    assert_eq!(report["path"], "semihosting", "{report}");
    assert_eq!(report["images"], images, "{report}");
    assert_eq!(report["same_bits"], images, "{board}, {model}: {report}");
    let instructions = report["instructions_per_inference"].as_f64().unwrap_or(0.0);
    assert!(instructions > 1000.0, "{board}, {model}: {report}");
    eprintln!(
        "device_boards: {board} {model}: {:.2}% correct, all {images} logits bit-identical, \
         {instructions} instructions per inference, {} B stack peak",
        100.0 * report["accuracy"].as_f64().unwrap(),
        report["stack_peak_bytes"]
    );
    report
}

/// The whole test set for one model per board, the first 2,000 images for the others: the
/// kernels are those the mps2-an386 and the lm3s6965evb run on all 10,000
/// (`tests/tests/firmware_*.rs`). `digits device eval --board` runs all 10,000 by default.
const SOME: usize = 2_000;
const ALL: usize = 10_000;

#[test]
fn the_stm32f405_gives_the_hosts_bits_with_every_model() {
    let Some(mnist) = common::device_setup("device_boards::the_stm32f405") else {
        return;
    };
    for (model, images) in [
        ("firmware/models/mnist.digits", ALL),
        ("firmware/models/mnist-int8.digits", SOME),
        ("firmware/models/compact.digits", SOME),
        ("firmware/models/compact-conv.digits", SOME),
    ] {
        eval_first(&mnist, "netduinoplus2", model, images);
    }
}

#[test]
fn the_microbit_gives_the_hosts_bits_with_the_int8_and_compact_models() {
    let Some(mnist) = common::device_setup("device_boards::the_microbit") else {
        return;
    };
    for (model, images) in [
        ("firmware/models/mnist-int8.digits", SOME),
        ("firmware/models/compact.digits", ALL),
        ("firmware/models/compact-conv.digits", SOME),
    ] {
        let report = eval_first(&mnist, "microbit", model, images);
        // Statics and the deepest stack within the nRF51's 16 KiB.
        let peak = report["stack_peak_bytes"].as_u64().unwrap();
        assert!(peak < 16 * 1024, "{report}");
    }
}

#[test]
fn the_stm32f405_serves_info_and_predict_over_its_usart() {
    if !common::have_qemu("device_boards::the_stm32f405_serves") {
        return;
    }
    let out = digits_in(&slice())
        .args(["device", "info", "--board", "netduinoplus2", "--json"])
        .output()
        .expect("run digits");
    assert!(out.status.success(), "{}", text(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["board"], "netduinoplus2", "{info}");
    let ram = info["static_ram_bytes"].as_u64().unwrap() + info["stack_bytes"].as_u64().unwrap();
    assert_eq!(ram, 128 * 1024, "the STM32F405's SRAM: {info}");

    let dir = tempfile::tempdir().unwrap();
    let seven = common::seven_png(dir.path());
    let out = digits_in(&slice())
        .args(["device", "predict", "--board", "netduinoplus2"])
        .arg(&seven)
        .output()
        .expect("run digits");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(": 7 "), "{t}");
}

#[test]
fn the_microbit_refuses_what_does_not_fit_it() {
    // Refused before QEMU is looked for: runs on any machine.
    let out = digits_in(&slice())
        .args(["device", "eval", "--board", "microbit"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("does not fit the microbit"), "{t}");

    for args in [
        &["info", "--board", "microbit"][..],
        &["eval", "--board", "microbit", "--uart"],
        &["run", "--board", "microbit"],
    ] {
        let out = digits_in(&slice())
            .arg("device")
            .args(args)
            .output()
            .unwrap();
        let t = text(&out);
        assert!(!out.status.success(), "{args:?}: {t}");
        assert!(
            t.contains("mps2-an386 or --board netduinoplus2"),
            "{args:?}: {t}"
        );
    }
}

/// QEMU running `hex` (the file `digits device hex` wrote) on `machine`, loaded as a real board's
/// flash is, by QEMU's generic loader, with the board's UART on `serial`. Killed when dropped.
struct Flashed(std::process::Child);

impl Flashed {
    fn boot(machine: &str, hex: &Path, serial: &str) -> Self {
        let child = std::process::Command::new("qemu-system-arm")
            .args(["-M", machine, "-display", "none", "-monitor", "none"])
            .args(["-serial", serial, "-device"])
            .arg(format!("loader,file={}", hex.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start qemu-system-arm");
        Self(child)
    }
}

impl Drop for Flashed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// `digits device hex ARGS --out DIR/NAME`, which must succeed; returns the file.
fn hex(dir: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let file = dir.join(name);
    let out = digits_in(&slice())
        .args(["device", "hex"])
        .args(args)
        .arg("--out")
        .arg(&file)
        .output()
        .expect("run digits");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("wrote {}", file.display())), "{t}");
    // A well-formed Intel HEX file, ending with its end-of-file record.
    let image = host::device::hex::FlashImage::of_hex(&std::fs::read_to_string(&file).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(image.bytes() > 10_000, "{image:?}");
    file
}

#[test]
fn the_microbits_hex_file_boots_and_prints_its_answers_on_the_serial_port() {
    if !common::have_qemu("device_boards::the_microbits_hex_file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = hex(dir.path(), "digits-microbit.hex", &["--board", "microbit"]);
    let serial = dir.path().join("serial.txt");
    let qemu = Flashed::boot("microbit", &file, &format!("file:{}", serial.display()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let said = loop {
        let said = std::fs::read_to_string(&serial).unwrap_or_default();
        if said.contains("every built-in digit") || std::time::Instant::now() > deadline {
            break said;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    drop(qemu);
    // Lines end in CR LF, for terminals.
    assert!(said.ends_with("right\r\n"), "{said:?}");
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 4, "{said}");
    assert!(
        lines[0].starts_with("digits ") && lines[0].ends_with("self-test on microbit"),
        "{said}"
    );
    assert!(lines[1].starts_with("784-128-10 int8"), "{said}");
    assert!(lines[2].contains("4-bit"), "{said}");
    for line in &lines[1..3] {
        assert!(line.ends_with("a 7 reads as 7, a 1 reads as 1"), "{said}");
    }
    assert_eq!(lines[3], "ok: every built-in digit read right", "{said}");
}

#[test]
fn the_stm32f405s_hex_file_boots_and_serves_the_protocol() {
    if !common::have_qemu("device_boards::the_stm32f405s_hex_file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = hex(
        dir.path(),
        "digits-stm32.hex",
        &["--board", "netduinoplus2"],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let _qemu = Flashed::boot(
        "netduinoplus2",
        &file,
        &format!("tcp:{port},server=on,wait=off"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut link = loop {
        match host::device::link::Link::connect(port) {
            Ok(link) => break link,
            Err(e) if std::time::Instant::now() > deadline => panic!("{e}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    link.wait_ready(host::device::link::Link::STARTUP)
        .unwrap_or_else(|e| panic!("{e}"));
    let info = link.info().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.board, "netduinoplus2");
    assert_eq!(
        format!("{:016x}", info.model.expect("a model runs").params_fnv64),
        "0137c57b5b653b8b",
        "the shipped firmware/models/mnist.digits"
    );
    let seven = link
        .classify(&slice_seven())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(seven.digit, 7);
}

/// MNIST's first test digit (a 7), from the committed slice.
fn slice_seven() -> [u8; 784] {
    let slice = testkit::slice();
    assert_eq!(slice.test.labels[0], 7);
    slice.test.images[0]
}

#[test]
fn hex_refuses_a_qemu_only_board_and_a_model_that_does_not_fit() {
    // Refused before anything is built: runs on any machine.
    let cases: [(&[&str], &str); 3] = [
        (
            &["--board", "lm3s6965evb"],
            "QEMU machine, not a board to flash",
        ),
        (
            &[
                "--board",
                "microbit",
                "--model",
                "firmware/models/mnist.digits",
            ],
            "does not fit the micro:bit",
        ),
        (
            &[
                "--board",
                "netduinoplus2",
                "--model",
                "firmware/models/compact.digits",
            ],
            "compact model",
        ),
    ];
    for (args, expected) in cases {
        let out = digits_in(&slice())
            .args(["device", "hex"])
            .args(args)
            .output()
            .unwrap();
        let t = text(&out);
        assert!(!out.status.success(), "{args:?}: {t}");
        assert!(t.contains(expected), "{args:?}: {t}");
    }
}
