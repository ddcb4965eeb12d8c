//! The MNIST dataset: its four files in a directory and how they make up the two splits.

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
/// The test split's files, images then labels.
const TEST_FILES: [&str; 2] = [TEST_IMAGES, TEST_LABELS];

/// Which splits a command reads: one that only evaluates needs, and downloads, only the test
/// files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Splits {
    /// The training and the test split.
    Both,
    /// The test split alone.
    Test,
}

impl Splits {
    /// The files these splits are made of, in the order of [`FILES`].
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Splits::Both => &FILES,
            Splits::Test => &TEST_FILES,
        }
    }
}

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

/// The test split alone: what the commands that only evaluate read.
pub struct TestSet {
    /// The test split (10,000 images in MNIST).
    pub test: Split,
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

impl Dataset {
    /// Loads and validates the four files from `dir`.
    ///
    /// Each file may be raw (`train-images-idx3-ubyte`) or gzipped
    /// (`train-images-idx3-ubyte.gz`); if both exist the raw one is read, since it is what
    /// `gunzip` leaves and needs no decompression. `kind` only labels the result and the
    /// messages: both datasets have the same format.
    pub fn load(dir: &Path, kind: DatasetKind) -> Result<Dataset, DataError> {
        let files = locate(dir, kind, Splits::Both.files())?;
        Ok(Dataset {
            train: read_split(&files[0], &files[1])?,
            test: read_split(&files[2], &files[3])?,
            dir: dir.to_path_buf(),
            kind,
        })
    }
}

impl TestSet {
    /// Loads and validates the test split's two files from `dir`, as [`Dataset::load`] does;
    /// the training files need not be there.
    pub fn load(dir: &Path, kind: DatasetKind) -> Result<TestSet, DataError> {
        let files = locate(dir, kind, Splits::Test.files())?;
        Ok(TestSet {
            test: read_split(&files[0], &files[1])?,
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

/// Finds the files `names` (some of [`FILES`]) in `dir`, in that order, raw preferred over
/// gzipped; lists all the missing ones at once rather than one per attempt.
pub(super) fn locate(
    dir: &Path,
    kind: DatasetKind,
    names: &[&'static str],
) -> Result<Vec<PathBuf>, DataError> {
    let mut missing = Vec::new();
    let mut tried = Vec::new();
    let mut found = Vec::with_capacity(names.len());
    for &name in names {
        let candidates = candidates(dir, name);
        match candidates.iter().find(|path| path.is_file()) {
            Some(hit) => found.push(hit.clone()),
            None => {
                missing.push(name);
                tried.extend(candidates);
            }
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    Err(DataError::Missing {
        kind,
        dir: dir.to_path_buf(),
        dir_problem: dir_problem(dir),
        missing,
        tried,
    })
}

/// Whether all four files are in `dir` (raw or gzipped), whatever their content.
pub(super) fn holds_all(dir: &Path) -> bool {
    FILES
        .iter()
        .all(|name| candidates(dir, name).iter().any(|p| p.is_file()))
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
    fn kind_display() {
        assert_eq!(DatasetKind::Mnist.to_string(), "mnist");
        assert_eq!(DatasetKind::Fashion.to_string(), "fashion-mnist");
    }
}
