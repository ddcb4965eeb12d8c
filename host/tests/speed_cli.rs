//! The fast training path end to end: the same model file on any number of threads and with
//! any vector instruction set, and `digits bench --mode speed` printing its table.

mod common;

use common::{digits, run_ok, slice};

use std::path::Path;

/// Trains on the committed slice (800 images after validation) for 3 epochs with `threads` rayon threads and `simd` forced
/// (`None`: the best the CPU has); returns the model file's bytes.
fn train(dir: &Path, threads: usize, simd: Option<&str>) -> Vec<u8> {
    let out = dir.join(format!("model-{threads}-{}", simd.unwrap_or("best")));
    let mut cmd = digits();
    cmd.arg("train")
        .arg("--data")
        .arg(slice())
        .args(["--validation", "200", "--epochs", "3"])
        .args(["--batch", "64", "--out"])
        .arg(&out)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .env_remove("DIGITS_SIMD");
    if let Some(simd) = simd {
        cmd.env("DIGITS_SIMD", simd);
    }
    run_ok(&mut cmd);
    std::fs::read(out).unwrap()
}

#[test]
fn training_gives_the_same_model_on_one_or_two_threads_and_any_simd() {
    let dir = tempfile::tempdir().unwrap();
    let reference = train(dir.path(), 1, Some("base"));
    for (threads, simd) in [(2, Some("base")), (1, None), (2, None), (2, Some("avx2"))] {
        let model = train(dir.path(), threads, simd);
        assert!(
            model == reference,
            "{threads} threads with SIMD {} gave another model than 1 thread with base",
            simd.unwrap_or("best")
        );
    }
}

#[test]
fn bench_speed_prints_times_rates_and_the_peak() {
    let text = run_ok(
        digits()
            .args([
                "bench",
                "--mode",
                "speed",
                "--epochs",
                "1",
                "--repeats",
                "1",
            ])
            .args(["--batch", "64", "--data"])
            .arg(slice()),
    );
    for expected in [
        "peak",
        "GFLOP/s",
        "train epoch, batch 64",
        "test accuracy after 1 epochs",
        "infer one at a time",
        "infer batch of 500",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
}
