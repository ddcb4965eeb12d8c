//! The MNIST dataset: where its four files are and how they make up the two splits.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::DataError;
use super::idx::{IMAGE_PIXELS, read_idx_images, read_idx_labels};

/// Training images.
pub(super) const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Training labels.
pub(super) const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Test images.
pub(super) const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Test labels.
pub(super) const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
/// The four files, in the order `locate` returns them.
pub const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// The environment variable naming the MNIST directory.
const MNIST_DIR_VAR: &str = "MNIST_DIR";
/// Where MNIST is looked for when neither `--data` nor `$MNIST_DIR` says.
const MNIST_DEFAULT_DIR: &str = "data/mnist";
/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
const FASHION_DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Images and their labels, index for index.
#[derive(Clone, Default)]
pub struct Split {
    /// 28x28 grayscale images, row by row, 0 = background.
    pub images: Vec<[u8; IMAGE_PIXELS]>,
    /// Labels 0-9, one per image.
    pub labels: Vec<u8>,
}

/// A whole dataset: the training and the test split.
pub struct Dataset {
    /// The training split (60,000 images in MNIST).
    pub train: Split,
    /// The test split (10,000 images in MNIST).
    pub test: Split,
    /// The directory it was read from.
    #[allow(dead_code, reason = "public API not yet read by the CLI")]
    pub dir: PathBuf,
    /// Which dataset it is.
    pub kind: DatasetKind,
}

/// Which dataset: both have the same format, file names and sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetKind {
    /// LeCun et al.'s handwritten digits.
    Mnist,
    /// Zalando's Fashion-MNIST: clothing in ten classes.
    Fashion,
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::Fashion => "fashion-mnist",
        })
    }
}

impl DatasetKind {
    /// How to get the files, for the message about missing ones.
    pub(super) fn how_to_get(self) -> &'static str {
        match self {
            DatasetKind::Mnist => {
                "get the files with `digits data fetch`, or point to a directory holding them \
                 with `--data DIR` or $MNIST_DIR"
            }
            DatasetKind::Fashion => {
                "install Debian's package (`apt-get install dataset-fashion-mnist`, which puts \
                 the files in /usr/share/datasets/fashion-mnist), or point to a directory \
                 holding them with `--data DIR`"
            }
        }
    }
}

/// A data directory and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    /// The directory.
    pub path: PathBuf,
    /// How it was chosen, for messages: "--data", "$MNIST_DIR" or which default.
    pub source: String,
}

/// Chooses the data directory: the explicit `--data` directory, else (for MNIST) `$MNIST_DIR`,
/// else the default, `data/mnist/` for MNIST and `/usr/share/datasets/fashion-mnist` (Debian's
/// `dataset-fashion-mnist`) for Fashion-MNIST. An empty `$MNIST_DIR` counts as unset.
pub fn resolve_dir(explicit: Option<&Path>, kind: DatasetKind) -> DataDir {
    resolve_dir_from(explicit, kind, std::env::var_os(MNIST_DIR_VAR))
}

/// [`resolve_dir`] with the environment passed in, so it can be tested without touching the
/// process environment.
fn resolve_dir_from(explicit: Option<&Path>, kind: DatasetKind, env: Option<OsString>) -> DataDir {
    let dir = |path: PathBuf, source: &str| DataDir {
        path,
        source: source.to_string(),
    };
    if let Some(path) = explicit {
        return dir(path.to_path_buf(), "--data");
    }
    match kind {
        DatasetKind::Mnist => match env.filter(|v| !v.is_empty()) {
            Some(path) => dir(path.into(), "$MNIST_DIR"),
            None => dir(
                MNIST_DEFAULT_DIR.into(),
                "default; no --data and $MNIST_DIR unset",
            ),
        },
        DatasetKind::Fashion => dir(
            FASHION_DEFAULT_DIR.into(),
            "default for fashion-mnist, Debian package dataset-fashion-mnist",
        ),
    }
}

impl Dataset {
    /// Loads and validates the four files from `dir`.
    ///
    /// Each file may be raw (`train-images-idx3-ubyte`) or gzipped
    /// (`train-images-idx3-ubyte.gz`); if both exist the raw one is read, since it is what
    /// `gunzip` leaves and needs no decompression. `kind` only labels the result and the
    /// messages: both datasets have the same format.
    pub fn load(dir: &Path, kind: DatasetKind) -> Result<Dataset, DataError> {
        let [train_images, train_labels, test_images, test_labels] = locate(dir, kind)?;
        Ok(Dataset {
            train: read_split(&train_images, &train_labels)?,
            test: read_split(&test_images, &test_labels)?,
            dir: dir.to_path_buf(),
            kind,
        })
    }
}

/// Reads one split and checks that its two files agree on the count.
fn read_split(images_file: &Path, labels_file: &Path) -> Result<Split, DataError> {
    let images = read_idx_images(images_file)?;
    let labels = read_idx_labels(labels_file)?;
    if images.len() != labels.len() {
        return Err(DataError::CountMismatch {
            images_file: images_file.to_path_buf(),
            images: images.len(),
            labels_file: labels_file.to_path_buf(),
            labels: labels.len(),
        });
    }
    Ok(Split { images, labels })
}

/// Finds the four files in `dir` (order of [`FILES`]), raw preferred over gzipped; lists all
/// the missing ones at once rather than one per attempt.
pub(super) fn locate(dir: &Path, kind: DatasetKind) -> Result<[PathBuf; 4], DataError> {
    let mut missing = Vec::new();
    let mut tried = Vec::new();
    let found = FILES.map(|name| {
        let candidates = candidates(dir, name);
        let hit = candidates.iter().find(|path| path.is_file()).cloned();
        if hit.is_none() {
            missing.push(name);
            tried.extend(candidates);
        }
        hit
    });
    match found {
        [Some(a), Some(b), Some(c), Some(d)] => Ok([a, b, c, d]),
        _ => Err(DataError::Missing {
            kind,
            dir: dir.to_path_buf(),
            dir_problem: dir_problem(dir),
            missing,
            tried,
        }),
    }
}

/// Why `dir` cannot hold the files, if the directory itself is the problem; decided when the
/// files are looked for, not when the message is shown.
fn dir_problem(dir: &Path) -> Option<&'static str> {
    if dir.is_dir() {
        None
    } else if dir.exists() {
        Some("that is not a directory")
    } else {
        Some("that directory does not exist")
    }
}

/// The paths a file may have, in order of preference: raw, then gzipped.
fn candidates(dir: &Path, name: &str) -> [PathBuf; 2] {
    [dir.join(name), dir.join(format!("{name}.gz"))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_dir_wins() {
        let d = resolve_dir_from(
            Some(Path::new("/x")),
            DatasetKind::Mnist,
            Some("/env".into()),
        );
        assert_eq!(d.path, Path::new("/x"));
        assert_eq!(d.source, "--data");
        let d = resolve_dir_from(Some(Path::new("/x")), DatasetKind::Fashion, None);
        assert_eq!(d.path, Path::new("/x"));
    }

    #[test]
    fn mnist_dir_env_then_default() {
        let d = resolve_dir_from(None, DatasetKind::Mnist, Some("/env".into()));
        assert_eq!(
            (d.path.as_path(), d.source.as_str()),
            (Path::new("/env"), "$MNIST_DIR")
        );
        let d = resolve_dir_from(None, DatasetKind::Mnist, Some("".into()));
        assert_eq!(d.path, Path::new("data/mnist"));
        let d = resolve_dir_from(None, DatasetKind::Mnist, None);
        assert_eq!(d.path, Path::new("data/mnist"));
        assert!(d.source.starts_with("default"));
    }

    #[test]
    fn fashion_ignores_mnist_dir() {
        let d = resolve_dir_from(None, DatasetKind::Fashion, Some("/env".into()));
        assert_eq!(d.path, Path::new("/usr/share/datasets/fashion-mnist"));
        assert!(d.source.contains("dataset-fashion-mnist"));
    }

    #[test]
    fn kind_display() {
        assert_eq!(DatasetKind::Mnist.to_string(), "mnist");
        assert_eq!(DatasetKind::Fashion.to_string(), "fashion-mnist");
    }
}
