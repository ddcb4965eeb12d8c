//! `digits device` end to end, with the firmware in QEMU: info, predict, eval over the UART and
//! through the bulk path, a long-running `device run` reached with `--connect`, and the errors
//! a user meets first (no QEMU, no firmware, another model).

mod common;

use common::{digits_in, firmware_dir, have_qemu, slice, text, workspace};

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use image::{GrayImage, Luma};

/// `digits device ARGS` with the committed MNIST slice as its data: QEMU is all these tests need.
fn device(args: &[&str]) -> Output {
    digits_in(&slice())
        .arg("device")
        .args(args)
        .arg("--firmware")
        .arg(firmware_dir())
        .output()
        .expect("run digits")
}

/// MNIST's first test digit, a 7, drawn as a photo would show it: dark ink on light paper, 8x.
fn seven_png(dir: &Path) -> PathBuf {
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

#[test]
fn info_reports_the_firmware_the_model_and_the_memory() {
    if !have_qemu("device_cli::info_reports_the_firmware_the_model_and_the_memory") {
        return;
    }
    let out = device(&["info"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let protocol = format!(
        "(protocol {}) on mps2-an386",
        digits_core::protocol::PROTOCOL_VERSION
    );
    assert!(t.contains(&protocol), "{t}");
    assert!(t.contains("784-128-10 F32, trained on mnist"), "{t}");
    assert!(t.contains("stack ") && t.contains(" B peak of "), "{t}");
}

#[test]
fn predict_on_the_device_gives_the_hosts_answer() {
    if !have_qemu("device_cli::predict_on_the_device_gives_the_hosts_answer") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let png = seven_png(dir.path());
    let out = device(&["predict", png.to_str().unwrap()]);
    let on_device = text(&out);
    assert!(out.status.success(), "{on_device}");
    assert!(
        on_device.contains("seven.png: 7  (on the device; top-3: 7 "),
        "{on_device}"
    );

    let host = digits_in(&slice())
        .args(["predict", "--model", "firmware/models/mnist.digits"])
        .arg(&png)
        .output()
        .unwrap();
    let host = text(&host);
    let top3 = |s: &str| s.split("top-3:").nth(1).map(str::trim).map(str::to_owned);
    assert_eq!(
        top3(&on_device),
        top3(&host),
        "device:\n{on_device}\nhost:\n{host}"
    );
}

#[test]
fn eval_agrees_bit_for_bit_over_the_uart_and_in_bulk() {
    if !have_qemu("device_cli::eval_agrees_bit_for_bit_over_the_uart_and_in_bulk") {
        return;
    }
    let out = device(&["eval", "--uart", "--limit", "30"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("30 of 30 with bit-identical logits"), "{t}");
    assert!(t.contains("over the UART"), "{t}");

    let out = device(&["eval", "--limit", "500"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("500 of 500 predictions as on the host, 500 of 500 with bit-identical logits"),
        "{t}"
    );
    assert!(t.contains("per inference (qemu -icount"), "{t}");
}

#[test]
fn eval_refuses_a_model_the_device_does_not_run() {
    if !have_qemu("device_cli::eval_refuses_a_model_the_device_does_not_run") {
        return;
    }
    // Any other valid model: the committed one with one weight changed, re-encoded.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(workspace().join("firmware/models/mnist.digits")).unwrap();
    let file = digits_core::model_file::decode(&bytes).unwrap();
    let mut model = Box::new(digits_core::MnistMlp::zeros());
    file.load_into(&mut *model).unwrap();
    model.output.b[3] += 0.5;
    let mut other = vec![0u8; bytes.len() + 4096];
    let n = digits_core::model_file::encode(&*model, &file.metadata, &mut other).unwrap();
    let path = dir.path().join("other.digits");
    std::fs::write(&path, &other[..n]).unwrap();

    for uart in [false, true] {
        let mut args = vec!["eval", "--limit", "5", "--model", path.to_str().unwrap()];
        if uart {
            args.push("--uart");
        }
        let out = device(&args);
        let t = text(&out);
        assert!(!out.status.success(), "{t}");
        assert!(t.contains("the device runs another model"), "{t}");
    }
}

/// Kills the child when dropped, so a failing test leaves no QEMU behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn a_running_device_serves_one_client_after_another() {
    if !have_qemu("device_cli::a_running_device_serves_one_client_after_another") {
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut run = Running(
        digits_in(&slice())
            .args(["device", "run", "--listen", &addr, "--firmware"])
            .arg(firmware_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // QEMU listens as soon as it runs; retry until it does.
    let start = Instant::now();
    let info = loop {
        let out = device(&["info", "--connect", &addr]);
        if out.status.success() || start.elapsed() > Duration::from_secs(20) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(info.status.success(), "{}", text(&info));
    let dir = tempfile::tempdir().unwrap();
    let png = seven_png(dir.path());
    let out = device(&["predict", "--connect", &addr, png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("seven.png: 7"), "{}", text(&out));
    // The device counts across clients: this info saw the previous sessions' requests.
    let out = device(&["info", "--connect", &addr]);
    let t = text(&out);
    assert!(t.contains("1 images classified"), "{t}");

    run.0.kill().unwrap();
    run.0.wait().unwrap();
    let mut log = String::new();
    run.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("device: INFO  serving on UART0"), "{log}");
}

#[test]
fn without_qemu_the_error_says_how_to_install_it() {
    let out = digits_in(&slice())
        .args(["device", "info"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("qemu-system-arm not found"), "{t}");
    assert!(t.contains("apt-get install qemu-system-arm"), "{t}");
}

#[test]
fn without_the_firmware_the_error_says_how_to_build_it() {
    if !have_qemu("device_cli::without_the_firmware_the_error_says_how_to_build_it") {
        return;
    }
    let out = digits_in(&slice())
        .args(["device", "info", "--firmware", "/nonexistent"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("cargo build -p firmware --release --target thumbv7em-none-eabihf"),
        "{t}"
    );
}
