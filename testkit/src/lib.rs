//! # testkit
//!
//! What the tests of every crate share, so that each question has one answer:
//!
//! - where the full MNIST is ([`full_mnist`]), and the one rule for a test that needs something
//!   this machine may lack ([`needs`]): without it the test skips with a line on stderr saying
//!   why; under `CI=true` it fails instead, so CI can never pass by skipping;
//! - a small slice of the real MNIST committed with the repository ([`slice_dir`], [`slice()`]):
//!   the quick tests run on real digits on any clone, with no network and no `../shared`;
//! - an IDX reader independent of the host's loader ([`read_images`], [`read_labels`]), and
//!   [`random_images`] shaped like MNIST's.
//! - the count of pictures a "not a digit" verdict flags ([`count_flagged`]).

mod flagged;

pub use flagged::{Flagged, count_flagged};

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Pixels of one 28x28 image.
pub const IMAGE_LEN: usize = 784;

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ is in the workspace")
}

/// Whether this is CI (`CI=true`), where nothing may skip.
pub fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The one skip rule. `available` says whether what a test needs is here; if it is not, this
/// prints `SKIPPED <what>: <why>` to stderr (once per test process and `what`) and returns
/// false, or panics with the same line under `CI=true`.
pub fn needs(available: bool, what: &str, why: &str) -> bool {
    if available {
        return true;
    }
    let line = format!("SKIPPED {what}: {why}");
    assert!(!under_ci(), "{line} (and CI=true: nothing may skip)");
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&line) {
        // Straight to stderr: libtest would swallow an `eprintln!` of a passing test.
        std::io::stderr()
            .write_all(format!("{line}\n").as_bytes())
            .ok();
        said.push(line);
    }
    false
}

/// Where to look for the full MNIST, in order: `$MNIST_DIR`, `data/mnist` in the workspace,
/// `../shared/data/mnist` beside it.
pub fn mnist_candidates() -> Vec<PathBuf> {
    let root = workspace();
    std::env::var_os("MNIST_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([root.join("data/mnist"), root.join("../shared/data/mnist")])
        .collect()
}

/// The directory of the full MNIST (all four files, 60,000 + 10,000 images), if there is one.
pub fn find_mnist() -> Option<PathBuf> {
    mnist_candidates().into_iter().find(|dir| {
        FILES.iter().all(|name| idx_path(dir, name).is_some())
            && idx_path(dir, TRAIN_IMAGES).is_some_and(|p| count(&p) == Some(60_000))
    })
}

/// The full MNIST for a test that needs it, under the skip rule of [`needs`].
pub fn full_mnist(what: &str) -> Option<PathBuf> {
    let found = find_mnist();
    let looked: Vec<String> = mnist_candidates()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let why = format!(
        "the full MNIST is not here (looked in {}); set MNIST_DIR or run `digits data fetch`",
        looked.join(", ")
    );
    needs(found.is_some(), what, &why).then(|| found.expect("found"))
}

/// The four files of a dataset directory.
pub const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];
/// Training images.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Training labels.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Test images.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Test labels.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// `dir/name.gz` or `dir/name`, whichever exists.
pub fn idx_path(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.gz")), dir.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// The committed slice of the real MNIST: the first [`SLICE_TRAIN`] training and the first
/// [`SLICE_TEST`] test images with their labels, as the four gzipped IDX files of a data
/// directory (so `digits --data` reads it too). `scripts/make-mnist-slice.py` made it.
pub fn slice_dir() -> PathBuf {
    workspace().join("testkit/data/mnist-slice")
}

/// Training images in the slice.
pub const SLICE_TRAIN: usize = 1000;
/// Test images in the slice.
pub const SLICE_TEST: usize = 500;

/// Images and their labels.
#[derive(Clone, Debug)]
pub struct Labeled {
    /// 28x28 pixels each, row by row.
    pub images: Vec<[u8; IMAGE_LEN]>,
    /// 0-9.
    pub labels: Vec<u8>,
}

/// The two splits of a dataset.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// The training split.
    pub train: Labeled,
    /// The test split.
    pub test: Labeled,
}

/// Reads the four files of `dir`.
pub fn read_dir(dir: &Path) -> Mnist {
    let split = |images: &str, labels: &str| Labeled {
        images: read_images(&need(dir, images)),
        labels: read_labels(&need(dir, labels)),
    };
    Mnist {
        train: split(TRAIN_IMAGES, TRAIN_LABELS),
        test: split(TEST_IMAGES, TEST_LABELS),
    }
}

/// The committed slice, read.
pub fn slice() -> Mnist {
    read_dir(&slice_dir())
}

/// The first `n` test images of the full MNIST if it is here, else of the slice (at most
/// [`SLICE_TEST`]): tests that only want some real digits run on any clone.
pub fn test_digits(n: usize) -> Labeled {
    let dir = find_mnist().unwrap_or_else(slice_dir);
    let mut images = read_images(&need(&dir, TEST_IMAGES));
    let mut labels = read_labels(&need(&dir, TEST_LABELS));
    assert!(
        n <= images.len(),
        "{n} test digits asked for, {} in {}",
        images.len(),
        dir.display()
    );
    images.truncate(n);
    labels.truncate(n);
    Labeled { images, labels }
}

fn need(dir: &Path, name: &str) -> PathBuf {
    idx_path(dir, name).unwrap_or_else(|| panic!("no {name}(.gz) in {}", dir.display()))
}

/// A file's bytes, gunzipped when they start with gzip's magic.
pub fn read_bytes(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out
    } else {
        raw
    }
}

fn count(path: &Path) -> Option<u32> {
    let file = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 8];
    let gz = path.extension().is_some_and(|e| e == "gz");
    if gz {
        flate2::read::GzDecoder::new(file)
            .read_exact(&mut head)
            .ok()?;
    } else {
        std::io::BufReader::new(file).read_exact(&mut head).ok()?;
    }
    Some(u32::from_be_bytes(head[4..8].try_into().expect("4 bytes")))
}

fn word(bytes: &[u8], k: usize, path: &Path) -> u32 {
    let b = bytes
        .get(4 * k..4 * k + 4)
        .unwrap_or_else(|| panic!("{}: truncated IDX header", path.display()));
    u32::from_be_bytes(b.try_into().expect("4 bytes"))
}

/// An IDX images file (raw or gzipped): 28x28 images.
pub fn read_images(path: &Path) -> Vec<[u8; IMAGE_LEN]> {
    let bytes = read_bytes(path);
    assert_eq!(
        word(&bytes, 0, path),
        2051,
        "{}: not IDX images",
        path.display()
    );
    let n = word(&bytes, 1, path) as usize;
    assert_eq!(
        (word(&bytes, 2, path), word(&bytes, 3, path)),
        (28, 28),
        "{}: not 28x28",
        path.display()
    );
    let body = &bytes[16..];
    assert_eq!(
        body.len(),
        n * IMAGE_LEN,
        "{}: wrong length",
        path.display()
    );
    let (images, _) = body.as_chunks::<IMAGE_LEN>();
    images.to_vec()
}

/// An IDX labels file (raw or gzipped).
pub fn read_labels(path: &Path) -> Vec<u8> {
    let bytes = read_bytes(path);
    assert_eq!(
        word(&bytes, 0, path),
        2049,
        "{}: not IDX labels",
        path.display()
    );
    let n = word(&bytes, 1, path) as usize;
    assert_eq!(bytes.len(), 8 + n, "{}: wrong length", path.display());
    bytes[8..].to_vec()
}

/// `n` random images shaped like MNIST's as far as speed and sparsity go: about a fifth of the
/// pixels lit, with full-scale and partial values. The same seed gives the same images.
pub fn random_images(seed: u64, n: usize) -> Vec<[u8; IMAGE_LEN]> {
    // splitmix64: enough for test inputs, and no dependency.
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..n)
        .map(|_| {
            let mut img = [0u8; IMAGE_LEN];
            for p in img.iter_mut() {
                let r = next();
                if r.is_multiple_of(5) {
                    *p = (r >> 8) as u8;
                }
            }
            img
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_slice_is_real_mnist() {
        let s = slice();
        assert_eq!(
            (s.train.images.len(), s.test.images.len()),
            (SLICE_TRAIN, SLICE_TEST)
        );
        assert_eq!(s.train.labels.len(), SLICE_TRAIN);
        // MNIST's first labels, as everyone who has printed them knows.
        assert_eq!(&s.train.labels[..5], &[5, 0, 4, 1, 9]);
        assert_eq!(&s.test.labels[..5], &[7, 2, 1, 0, 4]);
        // And where the full set is here, the slice is its beginning, byte for byte.
        if let Some(dir) = find_mnist() {
            let test = read_images(&need(&dir, TEST_IMAGES));
            assert_eq!(&test[..SLICE_TEST], &s.test.images[..]);
        }
    }

    #[test]
    fn the_skip_rule_skips_or_fails_under_ci() {
        assert!(needs(true, "testkit::self-test", "never printed"));
        let skipped = std::panic::catch_unwind(|| {
            needs(false, "testkit::self-test", "a test of the rule itself")
        });
        match skipped {
            Ok(ran) => assert!(!under_ci() && !ran, "skipped outside CI"),
            Err(_) => assert!(under_ci(), "panicked outside CI"),
        }
    }

    #[test]
    fn random_images_repeat_by_seed_and_are_a_fifth_lit() {
        let a = random_images(9, 20);
        assert_eq!(a, random_images(9, 20));
        assert_ne!(a, random_images(10, 20));
        let lit = a.iter().flatten().filter(|&&p| p > 0).count() as f64;
        let share = lit / (20 * IMAGE_LEN) as f64;
        assert!((0.15..0.25).contains(&share), "{share}");
    }
}
