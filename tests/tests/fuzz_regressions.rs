//! The fuzz targets' corpora replayed through their properties (`tests::fuzz`), on stable Rust
//! and without fuzzing: the seeds (`fuzz/seeds/`), a minimized slice of what the fuzzers
//! found (`fuzz/corpus-min/`), and every input that once broke a property
//! (`fuzz/regressions/`, kept forever). See `fuzz/README.md`.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files directly in `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Replays every input of `target` (and of `extra` directories) through `property`; asserts
/// that at least `min_seeds` seeds and `min_found` inputs found by fuzzing were there, so that
/// the test cannot pass on empty directories.
fn replay(target: &str, property: fn(&[u8]), extra: &[&str], min_seeds: usize, min_found: usize) {
    let root = fuzz_dir();
    let seeds = files(&root.join("seeds").join(target));
    let found = files(&root.join("corpus-min").join(target));
    let regressions = files(&root.join("regressions").join(target));
    let others: Vec<PathBuf> = extra.iter().flat_map(|d| files(&root.join(d))).collect();
    assert!(
        seeds.len() >= min_seeds,
        "{target}: {} seeds, expected at least {min_seeds} (cargo run -p tests --example fuzz_seeds)",
        seeds.len()
    );
    assert!(
        found.len() >= min_found,
        "{target}: {} inputs in fuzz/corpus-min, expected at least {min_found}",
        found.len()
    );
    let all = [&seeds, &found, &regressions, &others];
    for path in all.iter().flat_map(|v| v.iter()) {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A panic names the input, to reproduce with `cargo +nightly fuzz run TARGET FILE`.
        let result = std::panic::catch_unwind(|| property(&bytes));
        assert!(
            result.is_ok(),
            "{target}: {} breaks the property",
            path.display()
        );
    }
    println!(
        "{target}: replayed {} seeds, {} found by fuzzing, {} regressions, {} others",
        seeds.len(),
        found.len(),
        regressions.len(),
        others.len()
    );
}

#[test]
fn model_file_corpus() {
    replay(
        "model_file",
        tests::fuzz::model_file,
        &["../firmware/models"],
        3,
        20,
    );
}

#[test]
fn frames_corpus() {
    replay("frames", tests::fuzz::frames, &[], 10, 50);
}

#[test]
fn serve_corpus() {
    replay("serve", tests::fuzz::serve, &[], 9, 50);
}

#[test]
fn idx_corpus() {
    replay("idx", tests::fuzz::idx, &[], 4, 20);
}

#[test]
fn picture_corpus() {
    replay("picture", tests::fuzz::picture, &[], 4, 20);
}
