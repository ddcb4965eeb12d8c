//! `digits train` end to end on real digits: reproducible model files, both ways of computing
//! gradients and batch normalization learn, clear errors (on the committed MNIST slice), and
//! resume after `kill -9` (on the full MNIST: a run long enough to be killed mid-epoch).

mod common;

use common::{accuracy, full_mnist, run_err, run_ok, slice};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `digits train --data DIR`.
fn train_on(data: &Path) -> Command {
    let mut c = common::digits();
    c.arg("train").arg("--data").arg(data);
    c
}

/// `digits train` on the committed slice of MNIST.
fn digits() -> Command {
    train_on(&slice())
}

/// A short run on the slice's 1,000 training images, enough to exercise every step.
const QUICK: &[&str] = &["--validation", "200", "--epochs", "6"];
/// Long enough to be killed in the middle: 8 epochs of 55,000 images.
const LONGER: &[&str] = &["--validation", "5000", "--epochs", "8"];

#[test]
fn same_seed_and_options_give_a_byte_identical_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    run_ok(digits().args(QUICK).arg("--out").arg(&a));
    run_ok(digits().args(QUICK).arg("--out").arg(&b));
    run_ok(digits().args(QUICK).args(["--seed", "2", "--out"]).arg(&c));
    let (a, b, c) = (
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        std::fs::read(c).unwrap(),
    );
    assert_eq!(a, b, "same seed, different model files");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "checkpoints are removed: {leftovers:?}");
    assert_ne!(a, c, "different seeds, same model file");
}

/// `--validation 0` trains on every image and keeps the last epoch: every epoch line says
/// there is no validation, the metrics have none, `inspect` says which epoch was kept, and a
/// run resumed from its checkpoint ends with the same model.
#[test]
fn without_a_validation_split_the_last_epoch_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (out, metrics) = (dir.path().join("all.digits"), dir.path().join("m.jsonl"));
    // Epochs enough that the run below is stopped before it ends.
    let args = ["--validation", "0", "--epochs", "60", "--batch", "50"];
    let text = run_ok(
        digits()
            .args(args)
            .arg("--metrics")
            .arg(&metrics)
            .arg("--out")
            .arg(&out),
    );
    let epochs: Vec<&str> = text.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 60, "{text}");
    assert!(epochs.iter().all(|l| l.contains("no validation")), "{text}");
    assert!(
        text.contains("last epoch 60 of 60 (no validation split)"),
        "{text}"
    );
    let lines = std::fs::read_to_string(&metrics).unwrap();
    let reports: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 60);
    assert!(
        reports.iter().all(|r| r["val_accuracy"].is_null()),
        "{lines}"
    );
    let shown = run_ok(common::digits().arg("inspect").arg(&out));
    assert!(
        shown.contains("epoch 60 of 60 requested (trained on every training image"),
        "{shown}"
    );

    // Stopped after its first epoch, then resumed: the checkpoint carries "no validation".
    let (resumed, checkpoint) = interrupted(dir.path(), &args);
    let again = run_ok(
        digits()
            .args(args)
            .arg("--resume")
            .arg("--checkpoint")
            .arg(&checkpoint)
            .arg("--out")
            .arg(&resumed),
    );
    assert!(again.contains("resuming after epoch"), "{again}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&resumed).unwrap()
    );
}

/// The last `epoch N` line in a run's output: the checkpoint of epoch N was saved before it.
fn last_epoch_reported(text: &str) -> u32 {
    text.lines()
        .filter_map(|l| l.strip_prefix("epoch "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .next_back()
        .unwrap_or(0)
}

/// The `K` of `resuming after epoch K`, if the run resumed.
fn resumed_after(text: &str) -> Option<u32> {
    let rest = text.split("resuming after epoch ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `kill -9` at random moments, again and again, each time followed by `--resume`: every
/// resume restarts from the last epoch reported or the one after (at most the running epoch is
/// lost), no half-written file is ever read, and the final model file is byte-identical to an
/// uninterrupted run's. The moments come from the clock; the seed is printed on failure.
#[test]
fn kill_9_at_random_moments_then_resume_matches_an_uninterrupted_run() {
    let Some(mnist) = full_mnist("train_cli::kill_9_at_random_moments_then_resume") else {
        return;
    };
    let digits = || train_on(&mnist);
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.digits");
    let start = Instant::now();
    run_ok(digits().args(LONGER).arg("--out").arg(&whole));
    let whole_time = start.elapsed();

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut state = seed | 1;
    let mut uniform = || {
        // xorshift64*: enough to spread the kills over the run.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let resumed = dir.path().join("resumed.digits");
    let mut kills = 0;
    // The whole run was timed while other tests may have run: if no kill lands before the
    // run ends, start over with the kills twice as early.
    for attempt in 0..6 {
        let scale = whole_time.div_f64(f64::from(1u32 << attempt));
        let _ = std::fs::remove_file(&resumed);
        let _ = std::fs::remove_file(dir.path().join("resumed.digits.ckpt"));
        let mut reported = None::<u32>;
        for round in 0.. {
            assert!(round < 30, "seed {seed}: the run never finished");
            let mut cmd = digits();
            cmd.args(LONGER).arg("--out").arg(&resumed);
            if round > 0 {
                cmd.arg("--resume");
            }
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let read_all = |mut pipe: Box<dyn std::io::Read + Send>| {
                std::thread::spawn(move || {
                    let mut text = String::new();
                    pipe.read_to_string(&mut text).unwrap();
                    text
                })
            };
            let out = read_all(Box::new(child.stdout.take().unwrap()));
            let err = read_all(Box::new(child.stderr.take().unwrap()));
            // Anywhere from the start-up to well into the epochs.
            let delay = scale.mul_f64(0.05 + 0.6 * uniform());
            let deadline = Instant::now() + delay;
            let finished = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                if Instant::now() >= deadline {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            if finished.is_none() {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
            let text = err.join().unwrap() + &out.join().unwrap();
            match (reported, resumed_after(&text)) {
                // This run resumed from the previous one's checkpoint.
                (Some(last), Some(from)) => assert!(
                    from == last || from == last + 1,
                    "seed {seed}, round {round}: killed after reporting epoch {last}, resumed after \
                     epoch {from}\n{text}"
                ),
                // Killed before the first checkpoint: this run started again.
                (Some(last), None) if text.contains("starting from epoch 1") => assert_eq!(
                    last, 0,
                    "seed {seed}, round {round}: epoch {last} was reported, its checkpoint lost\n{text}"
                ),
                // Killed before it said where it resumed: nothing to check, nothing learned.
                (Some(_), None) if finished.is_none() => continue,
                _ => {}
            }
            reported = Some(last_epoch_reported(&text).max(resumed_after(&text).unwrap_or(0)));
            if let Some(status) = finished {
                assert!(
                    status.success(),
                    "seed {seed}, round {round}: failed\n{text}"
                );
                break;
            }
        }
        if kills > 0 {
            break;
        }
    }
    assert!(
        kills > 0,
        "seed {seed}: every run finished before its kill; the kills must land mid-run"
    );
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&resumed).unwrap(),
        "seed {seed}: {kills} kills, then a different model"
    );
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".digits-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    println!("seed {seed}: {kills} kills at random moments, then the same model");
}

/// A run on the slice stopped (`kill -9`) once its first epoch is reported, so its checkpoint
/// is on disk: `(model file, checkpoint)`.
fn interrupted(dir: &Path, args: &[&str]) -> (PathBuf, PathBuf) {
    let out = dir.join("run.digits");
    let checkpoint = dir.join("run.digits.ckpt");
    let mut child = digits()
        .args(args)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    // The checkpoint is saved before the epoch is reported.
    let reported = stdout.lines().any(|l| l.unwrap().starts_with("epoch "));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        reported && checkpoint.exists() && !out.exists(),
        "not stopped mid-run"
    );
    (out, checkpoint)
}

/// Many epochs, so that the run is stopped long before it ends.
const STOPPED: &[&str] = &["--validation", "200", "--epochs", "200"];

#[test]
fn resume_with_other_options_names_them_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (out, checkpoint) = interrupted(dir.path(), STOPPED);
    let saved = std::fs::read(&checkpoint).unwrap();
    let err = run_err(
        digits()
            .args(STOPPED)
            .args(["--lr", "0.2", "--momentum", "0.5", "--resume", "--out"])
            .arg(&out),
    );
    let line = format!(
        "error: checkpoint {} was made with other options: --lr 0.05 (now 0.2), --momentum 0.9 \
         (now 0.5); resume with the checkpoint's options, or start again without --resume\n",
        checkpoint.display()
    );
    assert_eq!(err, line);
    assert_eq!(std::fs::read(&checkpoint).unwrap(), saved);
    assert!(!out.exists());
}

#[test]
fn a_checkpoint_where_a_model_goes_is_named_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let (out, checkpoint) = interrupted(dir.path(), STOPPED);
    let picture = dir.path().join("digit.png");
    image::GrayImage::new(28, 28).save(&picture).unwrap();
    let said = format!(
        "{} is a training checkpoint, not a model file: finish its run with `digits train \
         --resume --out {}`",
        checkpoint.display(),
        out.display()
    );
    let quantized = dir.path().join("q.digits");
    let commands: [&[&std::ffi::OsStr]; 4] = [
        &["eval".as_ref()],
        &["predict".as_ref(), picture.as_os_str()],
        &["quantize".as_ref(), "--out".as_ref(), quantized.as_os_str()],
        &["inspect".as_ref()],
    ];
    for args in commands {
        let mut cmd = common::digits();
        cmd.current_dir(dir.path())
            .env("MNIST_DIR", slice())
            .args(args);
        if args[0] == "inspect" {
            cmd.arg(&checkpoint);
        } else {
            cmd.arg("--model").arg(&checkpoint);
        }
        let err = run_err(&mut cmd);
        assert!(err.contains(&said), "{args:?}: {err}");
        // Not the checkpoint's first bytes shown as a model's magic number.
        assert!(!err.contains("[44, 49"), "{args:?}: {err}");
    }
    assert!(!quantized.exists());
}

#[test]
fn a_resumed_run_completes_and_removes_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--validation", "200", "--epochs", "40", "--batch", "4"];
    let (out, checkpoint) = interrupted(dir.path(), &args);
    let text = run_ok(digits().args(args).arg("--resume").arg("--out").arg(&out));
    assert!(resumed_after(&text).is_some(), "{text}");
    assert!(out.exists() && !checkpoint.exists(), "{text}");
}

#[test]
fn numeric_gradient_training_learns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("n.digits");
    let text = run_ok(
        digits()
            .args([
                "--validation",
                "200",
                "--epochs",
                "3",
                "--grad",
                "numeric",
                "--out",
            ])
            .arg(&out),
    );
    let acc = accuracy(&text, "test accuracy ");
    assert!(acc > 80.0, "numeric training reached only {acc}%");
}

/// A run whose loss becomes NaN and one whose loss explodes (finite, far above a guess's):
/// both stop in their first epoch with advice, and write no model, checkpoint or metrics.
#[test]
fn a_diverging_run_stops_early_with_advice_and_writes_nothing() {
    for (lr, seen) in [
        ("1e4", "a batch's loss is "),
        ("5", "the mean loss reached"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("d.digits");
        let err = run_err(
            digits()
                .args(["--validation", "200", "--epochs", "30", "--lr", lr, "--out"])
                .arg(&out)
                .arg("--metrics")
                .arg(dir.path().join("m.jsonl")),
        );
        let lr: f64 = lr.parse().unwrap();
        assert!(
            err.contains("training diverged in epoch 1: ")
                && err.contains(seen)
                && err.contains(&format!(
                    "lower --lr (now {lr}) or add --batchnorm. No model written"
                )),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// A run that diverges after it wrote its checkpoint removes it: resuming it with the same
/// options would only diverge again. Its checkpoint is made to diverge: momentum buffers that
/// are not numbers.
#[test]
fn a_run_that_diverges_later_removes_its_checkpoint() {
    use host::train::checkpoint::Checkpoint;
    let dir = tempfile::tempdir().unwrap();
    let (out, path) = interrupted(dir.path(), STOPPED);
    let mut checkpoint = Checkpoint::load(&path).unwrap();
    for tensor in &mut checkpoint.velocity {
        tensor.fill(f32::NAN);
    }
    checkpoint.save(&path).unwrap();
    let err = run_err(
        digits()
            .args(STOPPED)
            .arg("--resume")
            .arg("--out")
            .arg(&out),
    );
    assert!(
        err.contains("training diverged in epoch")
            && err.contains("No model written, and the run's checkpoint removed"),
        "{err}"
    );
    assert!(!path.exists() && !out.exists());
}

/// The first words of the "not learning" stop.
const NOT_LEARNING: &str = "training is not learning: after epoch ";

/// A rate so high that the loss stays finite but the accuracy stays at chance: the run stops
/// once it has taken enough steps to be judged, with advice, and leaves no model or
/// checkpoint.
#[test]
fn a_run_that_does_not_learn_stops_with_advice_and_writes_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.digits");
    let err = run_err(
        digits()
            .args([
                "--validation",
                "200",
                "--epochs",
                "30",
                "--lr",
                "2",
                "--out",
            ])
            .arg(&out),
    );
    assert!(
        err.contains(NOT_LEARNING)
            && err.contains("lower --lr (now 2) or add --batchnorm. No model written, and the run's checkpoint removed"),
        "{err}"
    );
    // Stopped at the first epoch judged, long before the last.
    let epoch: u32 = err[err.find(NOT_LEARNING).unwrap() + NOT_LEARNING.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(epoch < 30, "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Healthy runs judged after their first epoch (four images a step: enough steps in one
/// epoch of the slice) train on: plain, on distorted images, with batch normalization, by
/// central differences.
#[test]
fn healthy_runs_are_judged_and_go_on() {
    for extra in [
        &[][..],
        &["--augment"],
        &["--batchnorm"],
        &["--grad", "numeric"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("h.digits");
        let text = run_ok(
            digits()
                .args(["--validation", "200", "--epochs", "2", "--batch", "4"])
                .args(extra)
                .arg("--out")
                .arg(&out),
        );
        assert!(out.exists(), "{extra:?}: {text}");
    }
}

/// A checkpoint resumed with momentum gone wild (large but finite): here its first steps
/// drive the hidden biases so far below zero that no hidden unit fires again. The loss stays
/// that of a guess, the accuracy at chance, and the run stops in its first resumed epoch,
/// removing the checkpoint.
#[test]
fn a_resumed_run_with_wild_momentum_stops_and_removes_its_checkpoint() {
    use host::train::checkpoint::Checkpoint;
    let dir = tempfile::tempdir().unwrap();
    // Four images a step: every epoch is judged.
    let args = ["--validation", "200", "--epochs", "200", "--batch", "4"];
    let (out, path) = interrupted(dir.path(), &args);
    let mut checkpoint = Checkpoint::load(&path).unwrap();
    let done = checkpoint.epochs_done;
    // The tensors are W1, b1, W2, b2; a positive velocity lowers its parameter.
    checkpoint.velocity[1].fill(WILD);
    checkpoint.save(&path).unwrap();
    let err = run_err(digits().args(args).arg("--resume").arg("--out").arg(&out));
    assert!(
        err.contains(&format!("{NOT_LEARNING}{} ", done + 1))
            && err.contains("No model written, and the run's checkpoint removed"),
        "{err}"
    );
    assert!(!path.exists() && !out.exists());
}

/// A velocity of this size throws the hidden biases far below any pixel sum.
const WILD: f32 = 1e5;

#[test]
fn batchnorm_training_learns_and_folds_into_a_plain_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bn.digits");
    let text = run_ok(
        digits()
            .args(QUICK)
            .arg("--batchnorm")
            .arg("--out")
            .arg(&out),
    );
    let acc = accuracy(&text, "test accuracy ");
    assert!(acc > 80.0, "batch-norm training reached only {acc}%");
    // The folded model is an ordinary 784-128-10 model file.
    let inspect = Command::new(env!("CARGO_BIN_EXE_digits"))
        .arg("inspect")
        .arg(&out)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        info.contains("784-128-10")
            && info
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["batchnorm", "true"]),
        "{info}"
    );
}
