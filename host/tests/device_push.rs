//! Putting new models on a running device (`digits device push` and `rollback`), end to end
//! with the `serve` firmware in QEMU: the transcript of issue 19 (train, push, info, eval on the
//! device with 10,000 bit-identical logits, rollback), int8 and compact models, and every bad
//! push refused over the UART with the running model still answering with the host's bits.

mod common;

use common::{device_setup, digits, firmware_dir, free_addr, have_qemu, text, workspace};

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use digits_core::model_file;
use digits_core::protocol::{DeviceError, MAX_CHUNK, PROTOCOL_VERSION, Request, Response};
use digits_core::update::{State, UpdateError};
use host::device::link::Link;
use host::device::model::DeviceModel;
use host::device::qemu::{Board, Qemu, Serial};

/// `digits device run`, stopped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        std::process::Command::new("kill")
            .args(["-s", "TERM", &self.0.id().to_string()])
            .status()
            .ok();
        self.0.wait().ok();
    }
}

/// `digits device ARGS` with MNIST at `data`, printed as a transcript.
fn device(data: &Path, args: &[&str]) -> Output {
    let out = digits()
        .current_dir(workspace())
        .env("MNIST_DIR", data)
        .arg("device")
        .args(args)
        .output()
        .expect("run digits");
    println!("$ digits device {}\n{}", args.join(" "), text(&out));
    out
}

fn ok(out: Output) -> String {
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    t
}

fn json(out: Output) -> serde_json::Value {
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {t}"))
}

fn digest_of(path: &Path) -> String {
    format!("{:016x}", DeviceModel::load(Some(path)).unwrap().digest)
}

fn seconds_of(t: &str) -> f64 {
    t.split(" in ")
        .nth(1)
        .and_then(|s| s.split(" s:").next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no push time in {t}"))
}

#[test]
fn a_trained_model_is_pushed_evaluated_on_the_device_and_rolled_back() {
    let Some(mnist) = device_setup("device_push::transcript") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let trained = dir.path().join("trained.digits");
    let out = digits()
        .args(["train", "--seed", "7", "--epochs", "1", "--data"])
        .arg(&mnist)
        .arg("--out")
        .arg(&trained)
        .output()
        .unwrap();
    println!(
        "$ digits train --seed 7 --epochs 1 --out trained.digits\n{}",
        text(&out)
    );
    assert!(out.status.success(), "{}", text(&out));

    let addr = free_addr();
    let firmware = firmware_dir().to_str().unwrap().to_owned();
    let _run = Running(
        digits()
            .current_dir(workspace())
            .env("MNIST_DIR", &mnist)
            .args(["device", "run", "--listen", &addr, "--test-set"])
            .args(["--firmware", &firmware])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let info = loop {
        let out = device(&mnist, &["info", "--connect", &addr, "--json"]);
        if out.status.success() || start.elapsed() > Duration::from_secs(30) {
            break json(out);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let shipped = workspace().join("firmware/models/mnist.digits");
    assert_eq!(
        info["model"]["params_fnv64"]
            .as_u64()
            .map(|d| format!("{d:016x}")),
        Some(digest_of(&shipped))
    );

    // Push the trained model: slot B runs it, info says so.
    let trained_str = trained.to_str().unwrap();
    let pushed = ok(device(&mnist, &["push", trained_str, "--connect", &addr]));
    assert!(pushed.contains("slot B runs it (sequence 1)"), "{pushed}");
    let f32_seconds = seconds_of(&pushed);
    let info = ok(device(&mnist, &["info", "--connect", &addr]));
    assert!(
        info.contains("slot A        valid (the previous model"),
        "{info}"
    );
    assert!(info.contains("slot B        running: f32 model"), "{info}");
    assert!(
        info.contains(&format!("parameters digest {}", digest_of(&trained))),
        "{info}"
    );

    // All 10,000 test images on the device, against the host's run of the same file.
    let report = json(device(
        &mnist,
        &["eval", "--connect", &addr, "--model", trained_str, "--json"],
    ));
    assert_eq!(report["images"], 10_000, "{report}");
    assert_eq!(report["same_bits"], 10_000, "{report}");
    assert_eq!(report["path"], "running", "{report}");

    // Back to the factory model, and no further.
    let back = ok(device(&mnist, &["rollback", "--connect", &addr]));
    assert!(
        back.contains("rolled back: slot A runs 784-128-10 f32 again (sequence 0)"),
        "{back}"
    );
    assert!(back.contains(&digest_of(&shipped)), "{back}");
    let again = device(&mnist, &["rollback", "--connect", &addr]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("no previous model to return to"),
        "{}",
        text(&again)
    );

    // The other kinds: pushed, then all their answers the host's.
    let mut times = vec![(
        "f32",
        std::fs::metadata(&trained).unwrap().len(),
        f32_seconds,
    )];
    for (kind, file) in [("int8", "mnist-int8.digits"), ("compact", "compact.digits")] {
        let path = workspace().join("firmware/models").join(file);
        let path_str = path.to_str().unwrap();
        let pushed = ok(device(&mnist, &["push", path_str, "--connect", &addr]));
        times.push((
            kind,
            std::fs::metadata(&path).unwrap().len(),
            seconds_of(&pushed),
        ));
        let report = json(device(
            &mnist,
            &[
                "eval",
                "--connect",
                &addr,
                "--model",
                path_str,
                "--limit",
                "2000",
                "--json",
            ],
        ));
        assert_eq!(report["same_bits"], 2000, "{kind}: {report}");
    }
    for (kind, len, seconds) in times {
        println!(
            "push over the TCP UART: {kind} model of {len} B in {seconds:.1} s ({:.1} KB/s)",
            len as f64 / seconds / 1e3
        );
    }
}

/// A 784-32-2 network (the "not a digit" detector's shape): a valid file of another
/// architecture.
fn detector_file() -> Vec<u8> {
    let mut other: Box<digits_core::Mlp<784, 32, 2>> = Box::new(digits_core::Mlp::zeros());
    other.hidden.b[0] = 1.0;
    let meta = model_file::Metadata {
        dataset: "mnist",
        test_accuracy: None,
        seed: 1,
        epochs: 1,
        options: "",
    };
    let mut buf = vec![0u8; model_file::encoded_len_bound(784 * 32 + 32 + 66, 16)];
    let n = model_file::encode(&*other, &meta, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn model_bytes(name: &str) -> Vec<u8> {
    std::fs::read(workspace().join("firmware/models").join(name)).unwrap()
}

/// The error a request gets.
fn refusal(link: &mut Link, request: &Request<'_>) -> DeviceError {
    match link.call(request).unwrap() {
        Response::Error(e) => e,
        other => panic!("{request:?} was answered {other:?}"),
    }
}

/// The device still runs the factory model and answers with the host's bits.
fn still_serving(link: &mut Link, what: &str) {
    let shipped = workspace().join("firmware/models/mnist.digits");
    let model = DeviceModel::load(Some(&shipped)).unwrap();
    let info = link.info().unwrap();
    let running = info.model.expect("a model runs");
    assert_eq!(
        running.params_fnv64, model.digest,
        "{what}: another model runs"
    );
    let digit = testkit::test_digits(1).images[0];
    let c = link.classify(&digit).unwrap();
    let host = model.weights.classifier().classify(&digit);
    assert_eq!(c.logits.map(f32::to_bits), host.map(f32::to_bits), "{what}");
}

fn chunks(link: &mut Link, file: &[u8], upto: usize) -> Result<(), DeviceError> {
    let mut offset = 0;
    while offset < upto {
        let end = (offset + MAX_CHUNK).min(upto);
        let request = Request::PushChunk {
            offset: offset as u32,
            bytes: &file[offset..end],
        };
        match link.call(&request).unwrap() {
            Response::Push(_) => {}
            Response::Error(e) => return Err(e),
            other => panic!("{other:?}"),
        }
        offset = end;
    }
    Ok(())
}

fn begin(link: &mut Link, len: usize) {
    match link.call(&Request::PushBegin { len: len as u32 }).unwrap() {
        Response::Push(p) => assert_eq!((p.slot, p.received), (1, 0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_pushes_are_refused_over_the_uart_and_the_model_keeps_serving() {
    if !have_qemu("device_push::refusals") {
        return;
    }
    let elf = common::serve_elf();
    let addr: std::net::SocketAddr = free_addr().parse().unwrap();
    let qemu = Qemu::start_on(
        Board::Mps2An386,
        &elf,
        &Serial::Listen(addr),
        &[],
        &[],
        |_| {},
    )
    .unwrap();
    let connect = || {
        let start = Instant::now();
        loop {
            match Link::connect(addr) {
                Ok(mut link) => {
                    link.wait_ready(Link::STARTUP).unwrap();
                    break link;
                }
                Err(e) if start.elapsed() > Duration::from_secs(20) => panic!("{e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    };
    let mut link = connect();
    link.hello().unwrap();
    let compact = model_bytes("compact.digits");
    let int8 = model_bytes("mnist-int8.digits");
    let mut refused = 0;
    let mut check =
        |link: &mut Link, what: &str, e: DeviceError, expected: fn(&DeviceError) -> bool| {
            println!("{what}: {e}");
            assert!(expected(&e), "{what}: {e:?}");
            still_serving(link, what);
            refused += 1;
        };

    // Versions: each side told which to update.
    let e = refusal(
        &mut link,
        &Request::Hello {
            protocol: PROTOCOL_VERSION + 1,
        },
    );
    assert!(
        e.to_string().contains("update the device's firmware"),
        "{e}"
    );
    check(&mut link, "a newer host", e, |e| {
        matches!(e, DeviceError::Version { .. })
    });
    let e = refusal(
        &mut link,
        &Request::Hello {
            protocol: PROTOCOL_VERSION - 1,
        },
    );
    assert!(e.to_string().contains("update digits"), "{e}");
    check(&mut link, "an older host", e, |e| {
        matches!(e, DeviceError::Version { .. })
    });

    let e = refusal(&mut link, &Request::PushBegin { len: 2 << 20 });
    check(&mut link, "larger than a slot", e, |e| {
        matches!(e, DeviceError::Update(UpdateError::TooLarge { .. }))
    });
    let e = refusal(&mut link, &Request::PushCommit);
    check(&mut link, "commit without a push", e, |e| {
        *e == DeviceError::Update(UpdateError::NotStarted)
    });
    let e = refusal(
        &mut link,
        &Request::PushChunk {
            offset: 0,
            bytes: &compact[..100],
        },
    );
    check(&mut link, "a chunk without a push", e, |e| {
        *e == DeviceError::Update(UpdateError::NotStarted)
    });

    // Truncated: announced whole, committed early; then announced short.
    begin(&mut link, compact.len());
    chunks(&mut link, &compact, 5000).unwrap();
    let e = refusal(&mut link, &Request::PushCommit);
    check(&mut link, "a commit before the last byte", e, |e| {
        matches!(e, DeviceError::Update(UpdateError::Incomplete { .. }))
    });
    let short = &compact[..compact.len() - 700];
    begin(&mut link, short.len());
    chunks(&mut link, short, short.len()).unwrap();
    let e = refusal(&mut link, &Request::PushCommit);
    check(&mut link, "a truncated file", e, |e| {
        matches!(e, DeviceError::Update(UpdateError::Model(_)))
    });
    // A flipped bit.
    let mut flipped = int8.clone();
    flipped[50_000] ^= 4;
    begin(&mut link, flipped.len());
    chunks(&mut link, &flipped, flipped.len()).unwrap();
    let e = refusal(&mut link, &Request::PushCommit);
    check(&mut link, "a flipped bit", e, |e| {
        matches!(
            e,
            DeviceError::Update(UpdateError::Model(
                model_file::ModelFileError::BadChecksum { .. }
            ))
        )
    });
    // Another architecture: refused as soon as its header is in.
    let detector = detector_file();
    begin(&mut link, detector.len());
    let e = chunks(&mut link, &detector, detector.len()).unwrap_err();
    check(&mut link, "another architecture", e, |e| {
        matches!(
            e,
            DeviceError::Update(UpdateError::Model(
                model_file::ModelFileError::WrongArchitecture { .. }
            ))
        )
    });
    // Out of order, repeated, too long.
    begin(&mut link, compact.len());
    chunks(&mut link, &compact, MAX_CHUNK).unwrap();
    let e = refusal(
        &mut link,
        &Request::PushChunk {
            offset: 2 * MAX_CHUNK as u32,
            bytes: &compact[..10],
        },
    );
    check(&mut link, "a chunk out of order", e, |e| {
        matches!(e, DeviceError::Update(UpdateError::Offset { .. }))
    });
    let e = refusal(
        &mut link,
        &Request::PushChunk {
            offset: 0,
            bytes: &compact[..MAX_CHUNK],
        },
    );
    check(
        &mut link,
        "a repeated chunk",
        e,
        |e| matches!(e, DeviceError::Update(UpdateError::Offset { expected, got: 0 }) if *expected == MAX_CHUNK as u32),
    );
    let long = vec![0u8; MAX_CHUNK + 1];
    let e = refusal(
        &mut link,
        &Request::PushChunk {
            offset: MAX_CHUNK as u32,
            bytes: &long,
        },
    );
    check(&mut link, "a chunk over the limit", e, |e| {
        matches!(e, DeviceError::BadChunkLength { .. })
    });
    // A push never finished: the link goes away mid-push; a new one finds the old model, and
    // tuning needs an f32 model once a compact one runs.
    begin(&mut link, compact.len());
    chunks(&mut link, &compact, 3 * MAX_CHUNK).unwrap();
    drop(link);
    let mut link = connect();
    still_serving(&mut link, "a push never finished");
    let summary = link.push(&compact, |_, _| {}).unwrap();
    assert_eq!(summary.slot, 1);
    let e = refusal(&mut link, &Request::Reset);
    assert_eq!(
        e,
        DeviceError::NeedsF32 {
            kind: digits_core::update::Kind::Compact
        }
    );
    let info = link.info().unwrap();
    assert_eq!(info.slots.map(|s| s.state), [State::Valid, State::Valid]);
    link.rollback().unwrap();
    still_serving(&mut link, "after a rollback");
    println!("{refused} refusals, each answered with an error and the model still serving");
    qemu.stop().unwrap();
}

/// QEMU's STM32F405 emulates its flash as ROM: a push is refused by the read-back, and the
/// factory model keeps serving.
#[test]
fn a_push_to_read_only_flash_is_refused() {
    if !have_qemu("device_push::read_only") {
        return;
    }
    let elfs =
        host::device::firmware::build_firmware_for(workspace(), Board::Netduinoplus2).unwrap();
    let (qemu, mut link) =
        Qemu::start_with_link_on(Board::Netduinoplus2, &elfs["serve"], &[], &[], |_| {}).unwrap();
    link.wait_ready(Link::STARTUP).unwrap();
    link.hello().unwrap();
    let int8 = model_bytes("mnist-int8.digits");
    let e = link.push(&int8, |_, _| {}).unwrap_err();
    println!("netduinoplus2: {e}");
    assert!(
        e.to_string().contains("the flash did not take a write"),
        "{e}"
    );
    still_serving(&mut link, "read-only flash");
    qemu.stop().unwrap();
}
