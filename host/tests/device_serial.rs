//! `--port`: the device commands over a serial port. QEMU's UART on a pseudo-terminal (`digits
//! device run --pty`) stands in for a board on a USB-UART: the host opens it as a serial port.
//! Also the ports that are not, refused before any work, and QEMU's monitor (QMP): stop, save
//! memory, continue.

mod common;

use common::{digits_in, firmware_dir, have_qemu, seven_png, slice, text, workspace};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use digits_core::protocol::PROTOCOL_VERSION;
use host::device::link::Link;
use host::device::qemu::{Board, Qemu};
use image::{GrayImage, Luma};

/// `digits device ARGS` with the committed MNIST slice as its data.
fn device(args: &[&str]) -> Output {
    digits_in(&slice())
        .arg("device")
        .args(args)
        .output()
        .expect("run digits")
}

/// `digits device run --pty`, stopped (SIGTERM, which it passes on to its QEMU) when dropped.
struct PtyDevice {
    child: Child,
    /// The serial port it printed.
    pts: String,
    /// Its stderr so far: the device's log.
    log: Arc<Mutex<String>>,
}

impl PtyDevice {
    fn start() -> PtyDevice {
        let firmware = firmware_dir();
        let mut child = digits_in(&slice())
            .args(["device", "run", "--pty", "--firmware"])
            .arg(firmware)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run digits");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(pts) = pts_in(&line) {
                    tx.send(pts).ok();
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let pts = rx.recv_timeout(Duration::from_secs(60));
        let mut device = PtyDevice {
            child,
            pts: String::new(),
            log,
        };
        match pts {
            Ok(pts) => device.pts = pts,
            Err(_) => panic!("no serial port printed:\n{}", device.log()),
        }
        device
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for PtyDevice {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            std::process::Command::new("kill")
                .args(["-s", "TERM", &self.child.id().to_string()])
                .status()
                .ok();
        }
        self.child.wait().ok();
    }
}

/// The path in "... its UART on the serial port /dev/pts/3; try ...".
fn pts_in(line: &str) -> Option<String> {
    let rest = line.split("on the serial port ").nth(1)?;
    Some(rest.split(';').next()?.trim().to_owned())
}

/// A white page with the pixels where `dark(x, y)` black: a picture of something else.
fn page(dir: &Path, name: &str, dark: impl Fn(u32, u32) -> bool) -> PathBuf {
    let image = GrayImage::from_fn(200, 200, |x, y| Luma([if dark(x, y) { 20 } else { 235 }]));
    let path = dir.join(format!("{name}.png"));
    image.save(&path).unwrap();
    path
}

/// The shipped model's parameters digest, as the device reports it.
fn shipped_digest() -> u64 {
    let path = workspace().join("firmware/models/mnist.digits");
    host::device::model::DeviceModel::load(Some(&path))
        .unwrap()
        .digest
}

#[test]
fn info_predict_and_eval_over_a_serial_port_answer_as_the_host() {
    if !have_qemu("device_serial::info_predict_and_eval_over_a_serial_port_answer_as_the_host") {
        return;
    }
    let running = PtyDevice::start();
    let pts = running.pts.as_str();
    assert!(pts.starts_with("/dev/pts/"), "{pts}");

    let out = device(&["info", "--port", pts]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(&format!("(protocol {PROTOCOL_VERSION}) on mps2-an386")),
        "{t}"
    );
    assert!(t.contains("784-128-10 f32, trained on mnist"), "{t}");
    assert!(
        t.contains(&format!("parameters digest {:016x}", shipped_digest())),
        "{t}"
    );
    // Again, as JSON: a second client on the same port, at another speed (a pty has none).
    let out = device(&["info", "--port", pts, "--baud", "9600", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["protocol"], PROTOCOL_VERSION, "{info:#}");
    assert_eq!(info["board"], "mps2-an386", "{info:#}");
    assert_eq!(info["model"]["params_fnv64"], shipped_digest(), "{info:#}");

    // Predict: the host's answer, bit for bit (JSON carries every probability).
    let dir = tempfile::tempdir().unwrap();
    let seven = seven_png(dir.path());
    let bar = page(dir.path(), "bar", |x, y| {
        (40..160).contains(&x) && (95..105).contains(&y)
    });
    let blank = page(dir.path(), "blank", |_, _| false);
    let files = [&seven, &bar, &blank].map(|p| p.to_str().unwrap().to_owned());
    let on_device = |json: bool| {
        let mut args = vec!["predict", "--port", pts];
        args.extend(files.iter().map(String::as_str));
        if json {
            args.push("--json");
        }
        let out = device(&args);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let on_host = |json: bool| {
        let mut cmd = digits_in(&slice());
        cmd.args(["predict", "--model", "firmware/models/mnist.digits"])
            .args(&files);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let device_text = on_device(false);
    assert!(
        device_text.contains("seven.png: 7  (on the device; top-3: 7 "),
        "{device_text}"
    );
    assert_eq!(
        device_text.replace("on the device; ", ""),
        on_host(false),
        "device, then host"
    );
    let device_json: serde_json::Value = serde_json::from_str(&on_device(true)).unwrap();
    let host_json: serde_json::Value = serde_json::from_str(&on_host(true)).unwrap();
    assert_eq!(device_json, host_json, "device, then host");

    let out = device(&["eval", "--uart", "--limit", "20", "--port", pts]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("20 of 20 with bit-identical logits"), "{t}");

    // A model pushed over the serial port runs at once; predict answers as the host does with
    // it; a rollback returns to the factory model.
    let compact = workspace().join("firmware/models/compact.digits");
    let compact = compact.to_str().unwrap();
    let out = device(&["push", compact, "--port", pts]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("compact model) in ") && t.contains("slot B runs it"),
        "{t}"
    );
    let seven_file = seven.to_str().unwrap();
    let out = device(&["predict", "--port", pts, seven_file, "--model", compact]);
    let pushed = text(&out);
    assert!(out.status.success(), "{pushed}");
    let host = digits_in(&slice())
        .args(["predict", "--model", compact, seven_file])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).replace("on the device; ", ""),
        String::from_utf8_lossy(&host.stdout),
        "the pushed compact model on the device, then on the host"
    );
    let out = device(&["rollback", "--port", pts]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("rolled back: slot A runs 784-128-10 f32 again"),
        "{t}"
    );

    // A port someone else holds is busy, and free again once they let go.
    let holder = Link::open_serial(Path::new(pts), 115_200).unwrap();
    let out = device(&["info", "--port", pts]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains(&format!("{pts} is busy")), "{t}");
    drop(holder);
    let out = device(&["info", "--port", pts]);
    assert!(out.status.success(), "{}", text(&out));
    // Every request above reached the device: 1 seven and 20 test images at least.
    let t = text(&out);
    let classified: u32 = t
        .split(" images classified")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {t}"));
    assert!(classified >= 21, "{t}");

    // QEMU's pty banner ("char device redirected to ...") is not taken for a log frame.
    let log = running.log();
    assert!(log.contains("device: INFO  serving on the UART"), "{log}");
    assert!(!log.contains("damaged log frame"), "{log}");
}

#[test]
fn what_is_not_a_serial_port_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("port");
    std::fs::write(&file, b"not a port").unwrap();
    let file = file.to_str().unwrap();
    let dir_path = dir.path().to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["info", "--port", "/nonexistent"],
            "there is no serial port /nonexistent: plug the board in",
        ),
        (
            &["predict", "--port", "/dev/null", "x.png"],
            "/dev/null is not a serial port (a device, but not a terminal)",
        ),
        (
            &["info", "--port", file],
            &format!("{file} is not a serial port (a file)"),
        ),
        (
            &["info", "--port", dir_path],
            &format!("{dir_path} is not a serial port (a directory)"),
        ),
        // The check comes before the test images are loaded.
        (
            &["eval", "--uart", "--port", "/nonexistent"],
            "there is no serial port /nonexistent",
        ),
    ];
    for (args, message) in cases {
        let out = device(args);
        let t = text(&out);
        assert!(!out.status.success(), "{args:?}: {t}");
        assert!(t.contains(message), "{args:?}: {t}");
        assert!(t.contains("digits device run --pty"), "{args:?}: {t}");
        assert!(!t.contains("test images from"), "{args:?}: {t}");
    }

    let refused = |args: &[&str], message: &str| {
        let out = device(args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(message), "{args:?}: {t}");
    };
    refused(
        &["info", "--port", "/dev/ttyS0", "--baud", "0"],
        "invalid value '0' for '--baud <N>'",
    );
    refused(
        &["info", "--baud", "9600"],
        "the following required arguments were not provided:\n  --port <PATH>",
    );
    for other in [
        &["--connect", "127.0.0.1:7878"][..],
        &["--board", "netduinoplus2"],
        &["--firmware", "."],
        &["--verbose"],
    ] {
        let args = [&["info", "--port", "/dev/ttyS0"][..], other].concat();
        refused(&args, "cannot be used with");
    }
    refused(
        &["run", "--pty", "--listen", "127.0.0.1:7878"],
        "cannot be used with",
    );
}

/// QEMU's monitor: where the UART went, stop (the device stops answering), a memory dump of the
/// requested size that holds the firmware, continue (it answers again), refusals, quit.
#[test]
fn qmp_stops_the_machine_saves_its_memory_and_lets_it_go_on() {
    if !have_qemu("device_serial::qmp_stops_the_machine_saves_its_memory_and_lets_it_go_on") {
        return;
    }
    let elf = common::serve_elf();
    let (mut qemu, mut qmp, pts) =
        Qemu::start_pty_on(Board::Mps2An386, &elf, &[], &[], |_| {}).unwrap();
    let mut link = Link::open_serial(&pts, 115_200).unwrap();
    link.wait_ready(Link::STARTUP).unwrap();

    qmp.stop().unwrap();
    let status = qmp
        .execute("query-status", serde_json::Value::Null)
        .unwrap();
    assert_eq!(status["running"], false, "{status}");
    link.set_timeout(Duration::from_millis(300));
    assert!(link.ping(1).is_err(), "a stopped device answered");

    let dir = tempfile::tempdir().unwrap();
    // The first 16 vectors: the initial stack pointer, the reset handler, the exceptions.
    let dump = dir.path().join("vectors.bin");
    qmp.memsave(0, 64, &dump).unwrap();
    let saved = std::fs::read(&dump).unwrap();
    assert_eq!(saved.len(), 64);
    assert_eq!(saved, elf_bytes_at(&elf, 0, 64), "the vector table");

    qmp.cont().unwrap();
    let status = qmp
        .execute("query-status", serde_json::Value::Null)
        .unwrap();
    assert_eq!(status["running"], true, "{status}");
    // The ping sent while stopped is answered late, and skipped.
    link.wait_ready(Duration::from_secs(5)).unwrap();

    let refused = qmp
        .execute("no-such-command", serde_json::Value::Null)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("`no-such-command` failed (CommandNotFound)"),
        "{refused}"
    );
    let refused = qmp
        .memsave(0, 16, Path::new("/nonexistent/dir/x.bin"))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("`memsave` failed"), "{refused}");

    qmp.quit().unwrap();
    assert_eq!(qemu.wait(Duration::from_secs(10)).unwrap(), Some(0));
}

/// `len` bytes of the ELF's loadable contents at `address`.
fn elf_bytes_at(elf: &Path, address: u64, len: usize) -> Vec<u8> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(elf).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let section = file
        .sections()
        .find(|s| s.address() <= address && address < s.address() + s.size())
        .expect("a section at the address");
    let bytes = section.data().unwrap();
    let start = (address - section.address()) as usize;
    bytes[start..start + len].to_vec()
}
