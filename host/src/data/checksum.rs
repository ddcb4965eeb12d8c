//! Verifying the files against the official SHA-256 checksums.
//!
//! The checksums are of the decompressed contents, so a raw file and its gzipped form verify
//! alike, whatever the compression level the archive was made with.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::DataError;
use super::mnist::{DatasetKind, FILES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use super::source::read_content;

/// SHA-256 of the decompressed official MNIST files (as in `SHA256SUMS.raw`).
const MNIST_SHA256: [(&str, &str); 4] = [
    (
        TRAIN_IMAGES,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        TRAIN_LABELS,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        TEST_IMAGES,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        TEST_LABELS,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

/// SHA-256 of the decompressed Fashion-MNIST files, computed from Debian's
/// `dataset-fashion-mnist` 0.0~git20200523.55506a9-1 (Zalando's release).
const FASHION_SHA256: [(&str, &str); 4] = [
    (
        TRAIN_IMAGES,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    (
        TRAIN_LABELS,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    (
        TEST_IMAGES,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    (
        TEST_LABELS,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
];

/// The outcome of checking one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCheck {
    /// The file read (raw or `.gz`).
    pub file: PathBuf,
    /// SHA-256 of its decompressed content, lowercase hex.
    pub sha256: String,
    /// The official SHA-256 for this file.
    pub expected: &'static str,
    /// Whether the two agree.
    pub ok: bool,
}

/// What was found for one of the four files.
#[derive(Debug)]
pub enum FileState {
    /// Read and hashed; [`FileCheck::ok`] says whether it matches.
    Checked(FileCheck),
    /// In neither form: the paths tried.
    Missing(Vec<PathBuf>),
    /// There, but it cannot be read or decompressed.
    Unreadable(DataError),
}

/// One of the four files and what was found for it.
#[derive(Debug)]
pub struct FileReport {
    /// Its base name, one of [`FILES`].
    pub name: &'static str,
    /// What was found.
    pub state: FileState,
}

impl FileReport {
    /// Whether the file is there and matches the official checksum.
    pub fn ok(&self) -> bool {
        matches!(&self.state, FileState::Checked(c) if c.ok)
    }

    /// The check, if the file could be read.
    pub fn checked(&self) -> Option<&FileCheck> {
        match &self.state {
            FileState::Checked(c) => Some(c),
            _ => None,
        }
    }
}

/// Verifies the SHA-256 of the decompressed content of each of the four files in `dir`
/// against the official values for `kind`, in the order train images, train labels, test
/// images, test labels. Every file is reported, whatever became of the others: missing,
/// unreadable, or read and (mis)matching.
pub fn check(dir: &Path, kind: DatasetKind) -> Vec<FileReport> {
    FILES
        .into_iter()
        .map(|name| {
            let state = match super::mnist::locate(dir, kind, &[name]) {
                Ok(found) => {
                    let file = found.into_iter().next().expect("one file was asked for");
                    match check_file(file, expected_sha256(kind, name)) {
                        Ok(c) => FileState::Checked(c),
                        Err(e) => FileState::Unreadable(e),
                    }
                }
                Err(DataError::Missing { tried, .. }) => FileState::Missing(tried),
                Err(e) => FileState::Unreadable(e),
            };
            FileReport { name, state }
        })
        .collect()
}

/// Verifies one file, `file` (raw or gzipped), against the official SHA-256 of `name`, one of
/// [`FILES`] of dataset `kind`: lets `digits data fetch` check each file on its own, whether
/// or not the other three are there yet.
pub fn check_one(file: &Path, kind: DatasetKind, name: &str) -> Result<FileCheck, DataError> {
    check_file(file.to_path_buf(), expected_sha256(kind, name))
}

/// Hashes one file's decompressed content and compares it with `expected`.
fn check_file(file: PathBuf, expected: &'static str) -> Result<FileCheck, DataError> {
    let content = read_content(&file)?;
    let sha256 = sha256_hex(&content.bytes);
    let ok = sha256 == expected;
    Ok(FileCheck {
        file,
        sha256,
        expected,
        ok,
    })
}

/// The official SHA-256 of the decompressed content of file `name` (one of [`FILES`]) of
/// dataset `kind`, lowercase hex.
///
/// # Panics
///
/// If `name` is not one of [`FILES`].
pub fn expected_sha256(kind: DatasetKind, name: &str) -> &'static str {
    let table = match kind {
        DatasetKind::Mnist => &MNIST_SHA256,
        DatasetKind::Fashion => &FASHION_SHA256,
    };
    table
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, sha)| *sha)
        .expect("every dataset file has a checksum")
}

/// SHA-256 of `bytes` in lowercase hex, the form `sha256sum` prints.
pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}
