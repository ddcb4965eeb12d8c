//! What can go wrong while finding, reading or validating the data files.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use super::mnist::DatasetKind;

/// A data file that is missing, unreadable or not what MNIST promises.
///
/// Every message names the file (its full path, so also the directory the loader looked in)
/// and says what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// One or more of the four files exist in neither raw nor gzipped form.
    #[error("{}", missing_message(*.kind, .dir, *.dir_problem, .missing, .tried))]
    Missing {
        /// Which dataset was looked for.
        kind: DatasetKind,
        /// The directory searched.
        dir: PathBuf,
        /// What is wrong with the directory itself, if anything ("does not exist").
        dir_problem: Option<&'static str>,
        /// Base names of the files not found.
        missing: Vec<&'static str>,
        /// Every path tried for the missing files, in the order tried.
        tried: Vec<PathBuf>,
    },
    /// The file exists but could not be opened or read.
    #[error("{}: cannot read: {source}", .file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The (decompressed) content is larger than any MNIST-format file can be.
    #[error(
        "{}: larger than {limit} bytes{}; no MNIST file is that large, refusing to read it",
        .file.display(),
        if *.gzip { " once decompressed" } else { "" }
    )]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// The limit that was exceeded, in bytes.
        limit: u64,
        /// Whether the file is gzip-compressed.
        gzip: bool,
    },
    /// The gzip stream ends before its end marker: the download was cut short.
    #[error("{}: truncated gzip data ({source}); the file is incomplete, fetch it again", .file.display())]
    TruncatedGzip {
        /// The file.
        file: PathBuf,
        /// The decompressor's error.
        source: io::Error,
    },
    /// The gzip stream is damaged (bad header, bad deflate data or CRC mismatch).
    #[error("{}: corrupt gzip data ({source}); fetch the file again", .file.display())]
    CorruptGzip {
        /// The file.
        file: PathBuf,
        /// The decompressor's error.
        source: io::Error,
    },
    /// The IDX magic number is not the one for this kind of file.
    #[error(
        "{}: not an IDX {expected_what} file: magic number is {found} ({found:#010x}){}, expected {expected} ({expected:#010x})",
        .file.display(),
        magic_hint(*.found)
    )]
    BadMagic {
        /// The file.
        file: PathBuf,
        /// What the file should hold ("images" or "labels").
        expected_what: &'static str,
        /// The magic number required.
        expected: u32,
        /// The magic number found.
        found: u32,
    },
    /// The images are not 28x28.
    #[error("{}: images are {rows}x{cols} pixels, expected 28x28", .file.display())]
    BadDims {
        /// The file.
        file: PathBuf,
        /// Rows declared in the header.
        rows: u32,
        /// Columns declared in the header.
        cols: u32,
    },
    /// The header declares more items than any file under the size limit could hold.
    #[error(
        "{}: the header declares {count} {what}, which would take {bytes} bytes, more than the {limit}-byte limit; the header is corrupt",
        .file.display()
    )]
    CountTooLarge {
        /// The file.
        file: PathBuf,
        /// The count in the header.
        count: u32,
        /// "images" or "labels".
        what: &'static str,
        /// The size that count implies, header included.
        bytes: u64,
        /// The size limit.
        limit: u64,
    },
    /// The content ends before what its header declares.
    #[error(
        "{}: truncated: expected {expected} bytes ({what}), found only {actual}{}",
        .file.display(),
        if *.gzip { " after decompression" } else { "" }
    )]
    Truncated {
        /// The file.
        file: PathBuf,
        /// What the expected bytes are, e.g. "the IDX header".
        what: String,
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        actual: u64,
        /// Whether the file is gzip-compressed.
        gzip: bool,
    },
    /// The content goes on after the items its header declares.
    #[error(
        "{}: {} unexpected bytes after the {count} {what} the header declares (expected {expected} bytes, found {actual}{})",
        .file.display(),
        .actual - .expected,
        if *.gzip { " after decompression" } else { "" }
    )]
    TrailingBytes {
        /// The file.
        file: PathBuf,
        /// The count in the header.
        count: u32,
        /// "images" or "labels".
        what: &'static str,
        /// Bytes the header implies.
        expected: u64,
        /// Bytes present.
        actual: u64,
        /// Whether the file is gzip-compressed.
        gzip: bool,
    },
    /// A label outside 0-9.
    #[error("{}: label {label} at index {index} is out of range 0-9", .file.display())]
    BadLabel {
        /// The file.
        file: PathBuf,
        /// Position of the first bad label.
        index: usize,
        /// Its value.
        label: u8,
    },
    /// The images file and the labels file of one split disagree on the count.
    #[error(
        "{} holds {images} images but {} holds {labels} labels; the two files must come from the same split",
        .images_file.display(),
        .labels_file.display()
    )]
    CountMismatch {
        /// The images file.
        images_file: PathBuf,
        /// Number of images.
        images: usize,
        /// The labels file.
        labels_file: PathBuf,
        /// Number of labels.
        labels: usize,
    },
}

impl DataError {
    /// Wraps an I/O error with the file it happened on.
    pub(super) fn io(file: &Path, source: io::Error) -> Self {
        DataError::Io {
            file: file.to_path_buf(),
            source,
        }
    }
}

/// The multi-line message for [`DataError::Missing`]: what is missing, every path tried, and
/// how to get the files.
fn missing_message(
    kind: DatasetKind,
    dir: &Path,
    dir_problem: Option<&str>,
    missing: &[&str],
    tried: &[PathBuf],
) -> String {
    let mut msg = format!(
        "{kind} data not found: no {} (raw or .gz) in {}",
        missing.join(", "),
        dir.display()
    );
    if let Some(problem) = dir_problem {
        let _ = write!(msg, " ({problem})");
    }
    msg.push_str("\n  tried:");
    for path in tried {
        // Writing to a String cannot fail.
        let _ = write!(msg, "\n    {}", path.display());
    }
    msg.push_str("\n  ");
    msg.push_str(kind.how_to_get());
    msg
}

/// A hint for magic numbers that betray a common mix-up.
fn magic_hint(found: u32) -> &'static str {
    match found {
        0x0000_0801 => ", that of an IDX labels file",
        0x0000_0803 => ", that of an IDX images file",
        _ => "",
    }
}
