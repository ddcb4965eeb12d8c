//! Every command refuses a bad option before it works: one `error:` line that names the option
//! (and the path) and what would be valid, a failed exit, and nothing written, not a model, a
//! checkpoint, a metrics file or a directory. On the committed MNIST slice, any clone.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{slice, workspace};
use testkit::{SLICE_TEST, SLICE_TRAIN};

/// Every file under `dir` with its contents, and every directory (as `None`).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut all = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                all.insert(path.clone(), None);
                todo.push(path);
            } else {
                all.insert(path.clone(), Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    all
}

/// A refusal: the arguments, and what its one error line must say (the last fragment is the
/// cause, which must be said once).
struct Case {
    args: Vec<String>,
    says: Vec<String>,
    /// Whether the refusal needs the data (the training set's size) and so comes after it is
    /// read; all others come before.
    after_loading: bool,
}

fn case(args: &str, says: &[&str]) -> Case {
    Case {
        args: args.split_whitespace().map(str::to_string).collect(),
        says: says.iter().map(|s| s.to_string()).collect(),
        after_loading: false,
    }
}

fn after_loading(args: &str, says: &[String]) -> Case {
    Case {
        says: says.to_vec(),
        after_loading: true,
        ..case(args, &[])
    }
}

/// Runs every case in one scratch directory (the working directory, where the default outputs
/// go) and checks each refusal.
fn check_all(cases: Vec<Case>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // What the cases point at: a directory, a model file, a picture.
    std::fs::create_dir(d.join("dir")).unwrap();
    std::fs::create_dir(d.join("clash.digits.ckpt")).unwrap();
    std::fs::copy(
        workspace().join("firmware/models/mnist.digits"),
        d.join("model.digits"),
    )
    .unwrap();
    image::GrayImage::new(28, 28)
        .save(d.join("digit.png"))
        .unwrap();
    let before = tree(d);
    let mut failures = Vec::new();
    for case in cases {
        let out = common::digits()
            .current_dir(d)
            .env("MNIST_DIR", slice())
            .args(&case.args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        let cause = case.says.last().expect("a cause");
        let mut wrong = Vec::new();
        if out.status.success() {
            wrong.push("succeeded".to_string());
        }
        if errors.len() != 1 {
            wrong.push(format!("{} error lines", errors.len()));
        }
        for s in &case.says {
            if !errors.first().is_some_and(|e| e.contains(s.as_str())) {
                wrong.push(format!("does not say {s:?}"));
            }
        }
        if err.matches(cause.as_str()).count() > 1 {
            wrong.push(format!("says {cause:?} more than once"));
        }
        // `N training and M test images from DIR`, or `M test images from DIR` (the test
        // split alone).
        let loaded = err.contains("test images from");
        if loaded != case.after_loading {
            wrong.push(format!("data read: {loaded}"));
        }
        if tree(d) != before {
            wrong.push("wrote something".into());
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "digits {}: {}\n{err}",
                case.args.join(" "),
                wrong.join(", ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn train_refuses_nonsense_options_before_reading_the_data() {
    let t = |args: &str| format!("train {args}");
    let mut cases = vec![
        case(
            &t("--lr 0"),
            &["'0' for '--lr <LR>'", "must be a finite number > 0"],
        ),
        case(
            &t("--lr nan"),
            &["'nan' for '--lr <LR>'", "a finite number > 0"],
        ),
        case(
            &t("--lr inf"),
            &["'inf' for '--lr <LR>'", "a finite number > 0"],
        ),
        case(
            &t("--lr -1"),
            &["'-1' for '--lr <LR>'", "a finite number > 0"],
        ),
        case(
            &t("--momentum 1.5"),
            &[
                "'1.5' for '--momentum",
                "must be a finite number >= 0 and < 1",
            ],
        ),
        case(&t("--momentum -0.5"), &["--momentum", ">= 0 and < 1"]),
        case(&t("--weight-decay nan"), &["--weight-decay", "at least 0"]),
        case(
            &t("--epochs 0"),
            &["'0' for '--epochs", "a whole number, at least 1"],
        ),
        case(
            &t("--batch 0"),
            &["'0' for '--batch", "a whole number, at least 1"],
        ),
        case(
            &t("--validation -1"),
            &["'-1' for '--validation", "at least 0"],
        ),
        case(&t("--limit 0"), &["'0' for '--limit", "at least 1"]),
        case(&t("--grad numeric --step 0"), &["'0' for '--step", "> 0"]),
        case(&t("--step 0.1"), &["--step", "add --grad numeric"]),
        case(&t("--grad numeric --batchnorm"), &["drop --batchnorm"]),
        case(
            &t("--limit 100 --validation 100"),
            &["--validation 100", "--limit 100", "from 0 to 99"],
        ),
        case(
            &t("--limit 100 --validation 50 --batch 51"),
            &["--batch 51", "after --validation 50", "from 1 to 50"],
        ),
        case(
            &t("--out dir"),
            &["'dir' for '--out <FILE>'", "is a directory"],
        ),
        case(
            &t("--checkpoint dir"),
            &["'dir' for '--checkpoint", "is a directory"],
        ),
        case(
            &t("--out new/sub/m.digits"),
            &["--out", "the directory new/sub does not exist"],
        ),
        case(
            &t("--metrics new/m.jsonl"),
            &["--metrics", "the directory new does not exist"],
        ),
        case(
            &t("--out clash.digits"),
            &[
                "--checkpoint (the --out file + .ckpt) clash.digits.ckpt",
                "is a directory",
            ],
        ),
        case(
            &t("--out a.digits --checkpoint ./a.digits"),
            &["--out and --checkpoint are the same file"],
        ),
        case(
            &t("--out a.digits --metrics dir/../a.digits"),
            &["--out and --metrics are the same file"],
        ),
        case(
            &t("--resume --checkpoint model.digits --out x.digits"),
            &["model.digits", "is a model file", "not a checkpoint"],
        ),
        after_loading(
            &t("--validation 200 --batch 100000"),
            &[
                "--batch 100000".into(),
                format!("the training set has {SLICE_TRAIN} images"),
                format!("from 1 to {}", SLICE_TRAIN - 200),
            ],
        ),
        after_loading(
            &t(&format!("--validation {SLICE_TRAIN}")),
            &[
                format!("--validation {SLICE_TRAIN}"),
                format!("from 0 to {}", SLICE_TRAIN - 1),
            ],
        ),
        after_loading(
            &t(&format!("--validation 200 --limit {}", SLICE_TRAIN + 1)),
            &[
                format!("--limit {}", SLICE_TRAIN + 1),
                format!("from 1 to {SLICE_TRAIN}"),
            ],
        ),
    ];
    // Even root may not create files in /sys.
    if cfg!(target_os = "linux") {
        cases.push(case(
            &t("--metrics /sys/m.jsonl"),
            &[
                "'/sys/m.jsonl' for '--metrics",
                "cannot create files in /sys: permission denied",
            ],
        ));
    }
    check_all(cases);
}

#[test]
fn the_other_commands_refuse_nonsense_options_before_working() {
    check_all(vec![
        case(
            "eval --plots new/p",
            &["'new/p' for '--plots <DIR>'", "new does not exist"],
        ),
        case(
            "eval --plots model.digits",
            &["--plots", "exists and is not a directory"],
        ),
        case(
            "predict --show new/x digit.png",
            &["'new/x' for '--show <DIR>'", "new does not exist"],
        ),
        case(
            "quantize --out dir",
            &["'dir' for '--out <FILE>'", "is a directory"],
        ),
        case(
            "quantize --out new/q.digits",
            &["--out", "the directory new does not exist"],
        ),
        case(
            "quantize --calibration 0",
            &["'0' for '--calibration", "at least 1"],
        ),
        case(
            "quantize --model model.digits --out model.digits",
            &["--out model.digits is the --model file"],
        ),
        case(
            "bench --lr nan",
            &["'nan' for '--lr", "a finite number > 0"],
        ),
        case("bench --batch 32,0", &["'0' for '--batch", "at least 1"]),
        case("bench --epochs 0", &["'0' for '--epochs", "at least 1"]),
        case("bench --repeats 0", &["'0' for '--repeats", "at least 1"]),
        case("bench --step -0.01", &["'-0.01' for '--step", "> 0"]),
        case(
            "bench --mode not-a-digit --train-detector new/d.digits",
            &[
                "'new/d.digits' for '--train-detector <FILE>'",
                "new does not exist",
            ],
        ),
        case(
            "bench --mode not-a-digit --train-detector dir",
            &["'dir' for '--train-detector <FILE>'", "is a directory"],
        ),
        case(
            "data shift --out new/shifted",
            &["'new/shifted' for '--out <DIR>'", "new does not exist"],
        ),
        case(
            "data shift --out model.digits",
            &[
                "'model.digits' for '--out <DIR>'",
                "exists and is not a directory",
            ],
        ),
        case("gradcheck --batch 0", &["'0' for '--batch", "at least 1"]),
        case("gradcheck --batch -4", &["'-4' for '--batch", "at least 1"]),
        case("gradcheck --sample 0", &["'0' for '--sample", "at least 1"]),
        case(
            "gradcheck --offset -1",
            &["'-1' for '--offset", "at least 0"],
        ),
        after_loading(
            &format!("gradcheck --offset {SLICE_TEST}"),
            &[
                format!("--offset {SLICE_TEST}"),
                format!(
                    "from 0 to {} (the test split has {SLICE_TEST} images)",
                    SLICE_TEST - 1
                ),
            ],
        ),
        after_loading(
            &format!("gradcheck --offset {} --batch 11", SLICE_TEST - 10),
            &[
                "--batch 11".to_string(),
                format!(
                    "from 1 to 10 (the test split has {SLICE_TEST} images, 10 from --offset {})",
                    SLICE_TEST - 10
                ),
            ],
        ),
        case(
            "data fetch --timeout 0",
            &["'0' for '--timeout <SECS>'", "from 1 to 3600"],
        ),
        case(
            "data fetch --timeout 1e9",
            &["'1e9' for '--timeout <SECS>'", "from 1 to 3600"],
        ),
        case("device eval --limit 0", &["'0' for '--limit", "at least 1"]),
        case("device finetune --shift s --lr nan", &["--lr", "> 0"]),
        case(
            "device finetune --shift s --momentum 1",
            &["'1' for '--momentum", ">= 0 and < 1"],
        ),
        case(
            "device finetune --shift s --batch 33",
            &["--batch", "from 1 to 32"],
        ),
        case(
            "device finetune --shift s --epochs 0",
            &["--epochs", "at least 1"],
        ),
        case(
            "device finetune --shift s --limit 0",
            &["--limit", "at least 1"],
        ),
    ]);
}
