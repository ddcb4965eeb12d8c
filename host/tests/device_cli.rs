//! `digits device` end to end, with the firmware in QEMU: info, predict, eval over the UART and
//! through the bulk path, a long-running `device run` reached with `--connect`, the user's own
//! model, `--json`, no QEMU left behind on a signal (SIGKILL too) or a normal exit, and the errors a user meets first (no
//! QEMU, no firmware, another model).

mod common;

use common::{
    digits, digits_in, firmware_dir, free_addr, have_qemu, output_ok, seven_png, slice, text,
    workspace,
};

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

/// `digits device ARGS` for a device that `device run` keeps running (no --firmware).
fn client(args: &[&str]) -> Output {
    digits_in(&slice())
        .arg("device")
        .args(args)
        .output()
        .expect("run digits")
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
    assert!(t.contains("784-128-10 f32, trained on mnist"), "{t}");
    assert!(t.contains("slot A        running: f32 model"), "{t}");
    assert!(t.contains("slot B        empty"), "{t}");
    assert!(t.contains("stack ") && t.contains(" B peak of "), "{t}");
}

/// A white page with the pixels where `dark(x, y)` black: a picture of something else.
fn page(dir: &Path, name: &str, dark: impl Fn(u32, u32) -> bool) -> PathBuf {
    let image = GrayImage::from_fn(200, 200, |x, y| Luma([if dark(x, y) { 20 } else { 235 }]));
    let path = dir.join(format!("{name}.png"));
    image.save(&path).unwrap();
    path
}

/// The device answers as `digits predict` does, verdict included, in text and in JSON: the
/// same lines but for where the digit was computed, and the same JSON document.
#[test]
fn predict_on_the_device_gives_the_hosts_answer() {
    if !have_qemu("device_cli::predict_on_the_device_gives_the_hosts_answer") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let seven = seven_png(dir.path());
    let bar = page(dir.path(), "bar", |x, y| {
        (40..160).contains(&x) && (95..105).contains(&y)
    });
    let blank = page(dir.path(), "blank", |_, _| false);
    let files = [&seven, &bar, &blank].map(|p| p.to_str().unwrap().to_owned());
    let on_device = |json: bool| {
        let mut args = vec!["predict"];
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
        device_text.contains("seven.png: 7  (on the device; top-3: 7 ")
            && device_text.contains("bar.png: not a digit: a flat mark")
            && device_text.contains("blank.png: not a digit: the picture is blank\n"),
        "{device_text}"
    );
    assert_eq!(
        device_text.replace("on the device; ", ""),
        on_host(false),
        "device, then host"
    );

    let device_json: serde_json::Value = serde_json::from_str(&on_device(true)).unwrap();
    let host_json: serde_json::Value = serde_json::from_str(&on_host(true)).unwrap();
    assert_eq!(
        device_json[1]["verdict"]["reason"], "flat",
        "{device_json:#}"
    );
    assert_eq!(device_json, host_json, "device, then host");
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

/// Any other valid f32 model: the shipped one with one bias changed, re-encoded, in `dir`.
fn other_model(dir: &Path) -> PathBuf {
    let bytes = std::fs::read(workspace().join("firmware/models/mnist.digits")).unwrap();
    let file = digits_core::model_file::decode(&bytes).unwrap();
    let mut model = Box::new(digits_core::MnistMlp::zeros());
    file.load_into(&mut *model).unwrap();
    model.output.b[3] += 0.5;
    let mut other = vec![0u8; bytes.len() + 4096];
    let n = digits_core::model_file::encode(&*model, &file.metadata, &mut other).unwrap();
    let path = dir.join("other.digits");
    std::fs::write(&path, &other[..n]).unwrap();
    path
}

#[test]
fn prebuilt_firmware_with_another_model_says_what_to_type() {
    if !have_qemu("device_cli::prebuilt_firmware_with_another_model_says_what_to_type") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = other_model(dir.path());
    // The bulk path's `eval` carries its model: another one needs another build.
    let out = device(&["eval", "--limit", "5", "--model", path.to_str().unwrap()]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("was built with another model"), "{t}");
    assert!(t.contains("drop --firmware"), "{t}");
    assert!(
        t.contains(&format!("`DIGITS_MODEL={} cargo build", path.display())),
        "{t}"
    );
    // `serve` takes the model pushed over its UART.
    let out = device(&[
        "eval",
        "--uart",
        "--limit",
        "5",
        "--json",
        "--model",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["same_bits"], 5, "{report}");
}

#[test]
fn the_users_own_model_runs_on_the_device_from_any_directory() {
    if !have_qemu("device_cli::the_users_own_model_runs_on_the_device_from_any_directory") {
        return;
    }
    // Outside the repository, no --firmware: digits builds a firmware with this model in it.
    let dir = tempfile::tempdir().unwrap();
    let path = other_model(dir.path());
    let out = digits()
        .current_dir(dir.path())
        .env("MNIST_DIR", slice())
        .args([
            "device",
            "eval",
            "--limit",
            "40",
            "--json",
            "--model",
            "other.digits",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", text(&out)));
    assert_eq!(report["images"], 40, "{report}");
    assert_eq!(report["same_bits"], 40, "{report}");
    assert_eq!(report["model"], "other.digits", "{report}");

    // The same firmware (built once) serves predict; the shipped model answers differently.
    let png = seven_png(dir.path());
    let predict = |model: Option<&Path>| {
        let mut cmd = digits();
        cmd.current_dir(dir.path())
            .args(["device", "predict", "--json"])
            .arg(&png);
        if let Some(m) = model {
            cmd.arg("--model").arg(m);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["probabilities"].clone()
    };
    let mine = predict(Some(&path));
    let shipped = predict(None);
    assert_ne!(mine, shipped, "the device ran the same model for both");

    // What the device reports about itself: the user's model, as JSON.
    let out = digits()
        .current_dir(dir.path())
        .args(["device", "info", "--json", "--model", "other.digits"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest = report["model_digest"].as_str().unwrap();
    assert_eq!(
        format!("{:016x}", info["model"]["params_fnv64"].as_u64().unwrap()),
        digest,
        "{info}"
    );
    assert_eq!(info["counters"]["classified"], 0, "{info}");
    assert_eq!(info["board"], "mps2-an386", "{info}");
}

#[test]
fn an_int8_or_compact_model_is_pushed_to_serve_and_answers_as_on_the_host() {
    if !have_qemu("device_cli::an_int8_or_compact_model_is_pushed_to_serve") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let seven = seven_png(dir.path());
    let seven = seven.to_str().unwrap();
    for model in [
        "firmware/models/mnist-int8.digits",
        "firmware/models/compact.digits",
    ] {
        let out = device(&["predict", "--model", model, seven, "--json"]);
        assert!(out.status.success(), "{model}: {}", text(&out));
        let host =
            output_ok(digits_in(&slice()).args(["predict", "--model", model, seven, "--json"]));
        let on_device: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let on_host: serde_json::Value = serde_json::from_slice(&host.stdout).unwrap();
        assert_eq!(on_device, on_host, "{model}: device, then host");
    }
}

#[test]
fn a_compact_model_runs_in_bulk_on_the_cortex_m4f_and_the_cortex_m3() {
    if !have_qemu("device_cli::a_compact_model_runs_in_bulk_on_the_cortex_m4f_and_the_cortex_m3") {
        return;
    }
    let compact = "firmware/models/compact.digits";
    let out = device(&["eval", "--model", compact, "--limit", "300"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("300 of 300 with bit-identical logits"), "{t}");
    assert!(t.contains("mps2-an386's PSRAM"), "{t}");
    assert!(t.contains("inference RAM"), "{t}");

    // No --firmware: digits builds the Cortex-M3's.
    let out = client(&[
        "eval",
        "--model",
        compact,
        "--board",
        "lm3s6965evb",
        "--limit",
        "300",
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("300 of 300 with bit-identical logits"), "{t}");
    assert!(t.contains("over semihosting on the lm3s6965evb"), "{t}");
}

#[test]
fn a_compact_model_with_convolutions_gives_the_hosts_bits_for_every_test_image_on_both_boards() {
    let what = "device_cli::a_compact_model_with_convolutions_gives_the_hosts_bits_for_every_test_image_on_both_boards";
    let Some(mnist) = common::device_setup(what) else {
        return;
    };
    // Layers of windows with shared weights, format version 3: the same core code on the host
    // and the device, all 10,000 logits compared bit for bit.
    let conv = "firmware/models/compact-conv.digits";
    for board in ["mps2-an386", "lm3s6965evb"] {
        let out = digits_in(&mnist)
            .args(["device", "eval", "--model", conv, "--board", board])
            .output()
            .expect("run digits");
        let t = text(&out);
        assert!(out.status.success(), "{board}: {t}");
        assert!(
            t.contains("10000 of 10000 with bit-identical logits"),
            "{board}: {t}"
        );
        assert!(t.contains("instructions"), "{board}: {t}");
    }
}

#[test]
fn the_cortex_m3_takes_int8_and_compact_models_only() {
    // Refused before QEMU is looked for: runs on any machine.
    let out = digits_in(&slice())
        .args(["device", "eval", "--board", "lm3s6965evb"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("does not fit the lm3s6965evb"), "{t}");
    assert!(t.contains("--model"), "{t}");

    let out = digits_in(&slice())
        .args(["device", "eval", "--board", "lm3s6965evb", "--uart"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("needs the f32 model in flash"), "{t}");
}

#[test]
fn each_subcommand_lists_and_takes_only_its_options() {
    let help = text(&output_ok(digits().args(["device", "--help"])));
    for command in ["run", "info", "predict", "eval", "finetune", "hex"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "{command} missing from:\n{help}"
        );
    }
    assert!(
        help.contains("run, info, predict, eval, finetune") && help.contains("(hex)"),
        "{help}"
    );
    let refused: [(&[&str], &str); 5] = [
        (
            &["run", "--connect", "127.0.0.1:9"],
            "unexpected argument '--connect'",
        ),
        (&["run", "--verbose"], "unexpected argument '--verbose'"),
        (
            &["info", "--connect", "127.0.0.1:9", "--firmware", "fw"],
            "cannot be used with",
        ),
        (
            &["info", "--connect", "127.0.0.1:9", "-v"],
            "cannot be used with",
        ),
        (
            &["run", "--model", "m.digits", "--firmware", "fw"],
            "cannot be used with",
        ),
    ];
    for (args, expected) in refused {
        let out = digits().arg("device").args(args).output().unwrap();
        let t = text(&out);
        assert!(!out.status.success(), "{args:?}: {t}");
        assert!(t.contains(expected), "{args:?}: {t}");
    }
}

#[test]
fn info_eval_and_predict_print_one_json_document() {
    if !have_qemu("device_cli::info_eval_and_predict_print_one_json_document") {
        return;
    }
    let json = |args: &[&str]| -> serde_json::Value {
        let out = device(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not one JSON document ({e}):\n{}",
                text(&out)
            )
        })
    };
    let info = json(&["info", "--json"]);
    assert_eq!(
        info["protocol"],
        digits_core::protocol::PROTOCOL_VERSION,
        "{info}"
    );
    assert_eq!(info["model"]["dataset"], "mnist", "{info}");
    assert!(info["stack_peak_bytes"].as_u64().unwrap() > 0, "{info}");
    assert!(
        info["counters"]["requests"].as_u64().unwrap() >= 1,
        "{info}"
    );

    for uart in [false, true] {
        let mut args = vec!["eval", "--limit", "30", "--json"];
        if uart {
            args.push("--uart");
        }
        let eval = json(&args);
        assert_eq!(eval["images"], 30, "{eval}");
        assert_eq!(eval["same_bits"], 30, "{eval}");
        assert_eq!(eval["path"], if uart { "uart" } else { "psram" }, "{eval}");
        let accuracy = eval["accuracy"].as_f64().unwrap();
        let correct = eval["correct"].as_f64().unwrap();
        assert!((accuracy - correct / 30.0).abs() < 1e-12, "{eval}");
        assert_eq!(eval["instructions_per_inference"].is_f64(), !uart, "{eval}");
    }

    let dir = tempfile::tempdir().unwrap();
    let png = seven_png(dir.path());
    let predicted = json(&["predict", "--json", png.to_str().unwrap()]);
    assert_eq!(predicted[0]["digit"], 7, "{predicted}");
    assert_eq!(predicted[0]["top3"][0]["digit"], 7, "{predicted}");
    let sum: f64 = predicted[0]["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-4, "{predicted}");
}

/// Kills the child when dropped, so a failing test leaves no QEMU behind.
struct Running(Child);

impl Running {
    /// Starts `digits ARGS` with the committed slice as its data, its output discarded.
    fn quiet(args: &[&str]) -> Running {
        Running::spawn(args, Stdio::null)
    }

    /// Starts `digits ARGS` as [`Running::quiet`] does, its output kept for reading.
    fn logged(args: &[&str]) -> Running {
        Running::spawn(args, Stdio::piped)
    }

    fn spawn(args: &[&str], output: fn() -> Stdio) -> Running {
        Running(
            digits_in(&slice())
                .args(args)
                .stdout(output())
                .stderr(output())
                .spawn()
                .expect("run digits"),
        )
    }

    /// Waits for the QEMU this digits started and for its death watch: exactly one. `what`
    /// names the run in the messages.
    fn qemu(&self, what: &str) -> StartedQemu {
        let pid = self.0.id();
        let mut qemu = Vec::new();
        assert!(
            wait_for(Duration::from_secs(30), || {
                qemu = qemus_of(pid);
                !qemu.is_empty()
            }),
            "{what}no QEMU started"
        );
        let qemu = qemu[0];
        // digits starts the watch right after QEMU: on a busy machine it may not be there yet.
        let mut watches = Vec::new();
        wait_for(Duration::from_secs(5), || {
            watches = watches_of(qemu);
            !watches.is_empty()
        });
        assert_eq!(watches.len(), 1, "{what}QEMU {qemu} has no death watch");
        StartedQemu {
            pid: qemu,
            watch: watches[0],
        }
    }
}

/// A QEMU that digits started, and the shell that kills it once digits is gone.
struct StartedQemu {
    pid: u32,
    watch: u32,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM, which digits passes on to its QEMU (SIGKILL would leave QEMU running).
        if matches!(self.0.try_wait(), Ok(None)) {
            terminate(&self.0);
        }
        self.0.wait().ok();
    }
}

/// Sends SIGTERM to `child`.
fn terminate(child: &Child) {
    std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .ok();
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
    let firmware = firmware_dir().to_str().unwrap().to_owned();
    let mut run = Running::logged(&["device", "run", "--listen", &addr, "--firmware", &firmware]);
    // QEMU listens as soon as it runs; retry until it does.
    let start = Instant::now();
    let info = loop {
        let out = client(&["info", "--connect", &addr]);
        if out.status.success() || start.elapsed() > Duration::from_secs(20) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(info.status.success(), "{}", text(&info));
    let dir = tempfile::tempdir().unwrap();
    let png = seven_png(dir.path());
    let out = client(&["predict", "--connect", &addr, png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("seven.png: 7"), "{}", text(&out));
    // The device counts across clients: this info saw the previous sessions' requests.
    let out = client(&["info", "--connect", &addr]);
    let t = text(&out);
    assert!(t.contains("1 images classified"), "{t}");
    // Another model than the running device's: pushed first, then evaluated.
    let dir = tempfile::tempdir().unwrap();
    let other = other_model(dir.path());
    let out = client(&[
        "eval",
        "--uart",
        "--limit",
        "3",
        "--json",
        "--connect",
        &addr,
        "--model",
        other.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["same_bits"], 3, "{report}");
    let t = text(&client(&["info", "--connect", &addr]));
    assert!(t.contains("slot B        running: f32 model"), "{t}");

    terminate(&run.0);
    run.0.wait().unwrap();
    let mut log = String::new();
    run.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("device: INFO  serving on the UART"), "{log}");
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

/// The QEMUs running a firmware whose parent is `pid` (Linux: /proc/PID/task/TID/children),
/// not the `qemu-system-arm --version` that checks QEMU is there.
fn qemus_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .filter(|child| {
            std::fs::read(format!("/proc/{child}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == b"-kernel"))
        })
        .collect()
}

/// Whether process `pid` exists (running, or a zombie nobody reaped: an orphan's new parent
/// may never reap it).
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether process `pid` is running: it exists and is no zombie (an orphan's zombie stays until
/// its new parent reaps it, if ever).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name in parentheses, which may hold anything.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.split_whitespace().next() != Some("Z"))
    })
}

/// The death watches of process `qemu`: the shells (`sh -c SCRIPT sh PID`) that kill it once
/// digits is gone.
fn watches_of(qemu: u32) -> Vec<u32> {
    let target = qemu.to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
                args.first() == Some(&&b"sh"[..])
                    && args.last() == Some(&target.as_bytes())
                    && args.iter().any(|a| a.windows(4).any(|w| w == b"kill"))
            })
        })
        .collect()
}

/// Waits until `cond` holds, at most `limit`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// Starts `digits ARGS`, waits for its QEMU, sends it `signal`: digits ends by that signal
/// and its QEMU is gone. Returns the QEMU's pid.
fn signal_ends_digits_and_its_qemu(args: &[&str], signal: &str, signo: i32) -> u32 {
    use std::os::unix::process::ExitStatusExt;
    let mut run = Running::quiet(args);
    let pid = run.0.id();
    let StartedQemu { pid: qemu, watch } = run.qemu(&format!("{args:?}: "));
    // Let it settle into its work.
    std::thread::sleep(Duration::from_millis(500));
    let status = std::process::Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut ended = None;
    assert!(
        wait_for(Duration::from_secs(10), || {
            ended = run.0.try_wait().unwrap();
            ended.is_some()
        }),
        "{args:?}: digits still running after SIG{signal}"
    );
    assert_eq!(
        ended.unwrap().signal(),
        Some(signo),
        "{args:?}: digits did not end by SIG{signal}"
    );
    assert!(
        wait_for(Duration::from_secs(5), || !exists(qemu)),
        "{args:?}: QEMU (pid {qemu}) outlived digits after SIG{signal}"
    );
    // Ended and reaped with its QEMU, before it could act.
    assert!(
        !exists(watch),
        "{args:?}: the death watch {watch} outlived digits after SIG{signal}"
    );
    qemu
}

#[test]
fn no_qemu_outlives_device_run_on_any_signal() {
    if !have_qemu("device_cli::no_qemu_outlives_device_run_on_any_signal") {
        return;
    }
    let firmware = firmware_dir().to_str().unwrap().to_owned();
    for (signal, signo) in [("TERM", 15), ("INT", 2), ("HUP", 1)] {
        let addr = free_addr();
        let args = ["device", "run", "--listen", &addr, "--firmware", &firmware];
        signal_ends_digits_and_its_qemu(&args, signal, signo);
        // The port QEMU listened on is free again.
        assert!(
            wait_for(Duration::from_secs(5), || TcpListener::bind(&addr).is_ok()),
            "SIG{signal}: {addr} still bound"
        );
    }
}

/// SIGKILL, which digits cannot catch: the death watch stops QEMU (its port is free again),
/// and ends with it.
#[test]
fn no_qemu_outlives_digits_killed_by_sigkill() {
    use std::os::unix::process::ExitStatusExt;
    if !have_qemu("device_cli::no_qemu_outlives_digits_killed_by_sigkill") {
        return;
    }
    let firmware = firmware_dir().to_str().unwrap().to_owned();
    let addr = free_addr();
    let mut run = Running::quiet(&["device", "run", "--listen", &addr, "--firmware", &firmware]);
    let StartedQemu { pid: qemu, watch } = run.qemu("");
    std::thread::sleep(Duration::from_millis(500));
    run.0.kill().unwrap();
    let ended = run.0.wait().unwrap();
    assert_eq!(ended.signal(), Some(9), "digits did not end by SIGKILL");
    let stopped = wait_for(Duration::from_secs(5), || !running(qemu));
    if !stopped {
        // Not left behind by a failing test.
        std::process::Command::new("kill")
            .args(["-s", "KILL", &qemu.to_string()])
            .status()
            .ok();
    }
    assert!(stopped, "QEMU (pid {qemu}) outlived digits after SIGKILL");
    assert!(
        wait_for(Duration::from_secs(5), || TcpListener::bind(&addr).is_ok()),
        "SIGKILL: {addr} still bound"
    );
    assert!(
        wait_for(Duration::from_secs(5), || !running(watch)),
        "the death watch {watch} outlived its QEMU"
    );
}

/// A command that ends normally ends its QEMU and that QEMU's death watch.
#[test]
fn a_normal_exit_leaves_no_qemu_and_no_death_watch() {
    if !have_qemu("device_cli::a_normal_exit_leaves_no_qemu_and_no_death_watch") {
        return;
    }
    let firmware = firmware_dir().to_str().unwrap().to_owned();
    let mut run = Running::quiet(&[
        "device",
        "eval",
        "--uart",
        "--limit",
        "100",
        "--firmware",
        &firmware,
    ]);
    let StartedQemu { pid: qemu, watch } = run.qemu("");
    assert!(run.0.wait().unwrap().success(), "device eval failed");
    assert!(!exists(qemu), "QEMU (pid {qemu}) outlived digits");
    assert!(!exists(watch), "the death watch {watch} outlived digits");
}

#[test]
fn no_qemu_outlives_a_command_with_a_session() {
    if !have_qemu("device_cli::no_qemu_outlives_a_command_with_a_session") {
        return;
    }
    // Over the UART 500 images take several seconds: the signal comes in the middle.
    let firmware = firmware_dir().to_str().unwrap().to_owned();
    let args = [
        "device",
        "eval",
        "--uart",
        "--limit",
        "500",
        "--firmware",
        &firmware,
    ];
    signal_ends_digits_and_its_qemu(&args, "TERM", 15);
}

#[test]
fn a_panic_stops_the_qemu_it_unwinds_past() {
    if !have_qemu("device_cli::a_panic_stops_the_qemu_it_unwinds_past") {
        return;
    }
    let elf = common::serve_elf();
    let (send, pid) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let (qemu, _link) = host::device::qemu::Qemu::start_with_link(&elf, &[], |_| {}).unwrap();
        send.send(qemu.pid()).unwrap();
        panic!("a failure while the device runs");
    });
    let pid = pid.recv().unwrap();
    assert!(thread.join().is_err(), "the thread did not panic");
    assert!(!exists(pid), "QEMU (pid {pid}) outlived the panic");
    assert!(
        watches_of(pid).is_empty(),
        "QEMU {pid}'s death watch outlived the panic"
    );
}
