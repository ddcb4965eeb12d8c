//! The IDX format of the MNIST files: a big-endian header (magic number, item count, and for
//! images the rows and columns), then the items, one byte per pixel or label.

use std::path::Path;

use super::error::DataError;
use super::source::{Content, MAX_FILE_BYTES, read_content};

/// Pixels in one 28x28 image.
pub const IMAGE_PIXELS: usize = 28 * 28;

/// Rows and columns of an image.
const IMAGE_SIDE: u32 = 28;

/// The two kinds of IDX file MNIST is made of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IdxKind {
    /// `idx3-ubyte`: unsigned bytes in three dimensions (count, rows, columns).
    Images,
    /// `idx1-ubyte`: unsigned bytes in one dimension (count).
    Labels,
}

impl IdxKind {
    /// The magic number: 0x08 for unsigned bytes, then the number of dimensions.
    fn magic(self) -> u32 {
        match self {
            IdxKind::Images => 2051,
            IdxKind::Labels => 2049,
        }
    }

    /// Header length: the magic number and one u32 per dimension.
    fn header_len(self) -> usize {
        match self {
            IdxKind::Images => 16,
            IdxKind::Labels => 8,
        }
    }

    /// Bytes per item.
    fn item_len(self) -> u64 {
        match self {
            IdxKind::Images => IMAGE_PIXELS as u64,
            IdxKind::Labels => 1,
        }
    }

    /// Plural noun for messages.
    fn what(self) -> &'static str {
        match self {
            IdxKind::Images => "images",
            IdxKind::Labels => "labels",
        }
    }
}

/// Reads and validates an IDX images file (raw or gzipped): magic 2051, 28x28, exact length.
pub fn read_idx_images(path: &Path) -> Result<Vec<[u8; IMAGE_PIXELS]>, DataError> {
    let content = read_content(path)?;
    parse_images(path, &content)
}

/// Reads and validates an IDX labels file (raw or gzipped): magic 2049, exact length, 0-9.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let content = read_content(path)?;
    parse_labels(path, &content)
}

/// An IDX images file's bytes (magic 2051, count, 28, 28, pixels): what the readers accept.
pub fn idx_images_bytes(images: &[[u8; IMAGE_PIXELS]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + images.len() * IMAGE_PIXELS);
    for word in [
        IdxKind::Images.magic(),
        images.len() as u32,
        IMAGE_SIDE,
        IMAGE_SIDE,
    ] {
        out.extend(word.to_be_bytes());
    }
    out.extend(images.as_flattened());
    out
}

/// An IDX labels file's bytes (magic 2049, count, labels).
pub fn idx_labels_bytes(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend(IdxKind::Labels.magic().to_be_bytes());
    out.extend((labels.len() as u32).to_be_bytes());
    out.extend(labels);
    out
}

/// Validates an images file's content and splits it into images.
fn parse_images(path: &Path, content: &Content) -> Result<Vec<[u8; IMAGE_PIXELS]>, DataError> {
    let body = validated_body(path, content, IdxKind::Images)?;
    let (images, rest) = body.as_chunks::<IMAGE_PIXELS>();
    debug_assert!(rest.is_empty(), "length validated above");
    Ok(images.to_vec())
}

/// Validates a labels file's content and returns the labels.
fn parse_labels(path: &Path, content: &Content) -> Result<Vec<u8>, DataError> {
    let labels = validated_body(path, content, IdxKind::Labels)?;
    if let Some((index, &label)) = labels.iter().enumerate().find(|&(_, &l)| l > 9) {
        return Err(DataError::BadLabel {
            file: path.to_path_buf(),
            index,
            label,
        });
    }
    Ok(labels.to_vec())
}

/// Checks the header and the length of `content` and returns the bytes after the header,
/// exactly `count` items long.
fn validated_body<'a>(
    path: &Path,
    content: &'a Content,
    kind: IdxKind,
) -> Result<&'a [u8], DataError> {
    let bytes = &content.bytes[..];
    let truncated = |what: &str, expected: u64| DataError::Truncated {
        file: path.to_path_buf(),
        what: what.to_string(),
        expected,
        actual: bytes.len() as u64,
        gzip: content.gzip,
    };
    // Magic first (it only needs 4 bytes), so a file of the wrong kind is called that.
    let magic = be_u32(bytes, 0).ok_or_else(|| truncated("the IDX magic number", 4))?;
    check_magic(path, magic, kind)?;
    let header_len = kind.header_len();
    if bytes.len() < header_len {
        return Err(truncated("the IDX header", header_len as u64));
    }
    if kind == IdxKind::Images {
        check_dims(path, bytes)?;
    }
    let count = be_u32(bytes, 4).expect("header length checked");
    let expected = expected_len(path, count, kind)?;
    let actual = bytes.len() as u64;
    if actual < expected {
        let what = format!(
            "the {header_len}-byte header and the {count} {} it declares",
            kind.what()
        );
        return Err(truncated(&what, expected));
    }
    if actual > expected {
        return Err(DataError::TrailingBytes {
            file: path.to_path_buf(),
            count,
            what: kind.what(),
            expected,
            actual,
            gzip: content.gzip,
        });
    }
    Ok(&bytes[header_len..])
}

/// Fails unless `magic` is the one for `kind`.
fn check_magic(path: &Path, magic: u32, kind: IdxKind) -> Result<(), DataError> {
    if magic == kind.magic() {
        return Ok(());
    }
    Err(DataError::BadMagic {
        file: path.to_path_buf(),
        expected_what: kind.what(),
        expected: kind.magic(),
        found: magic,
    })
}

/// Fails unless the images header (at least 16 bytes) declares 28x28 images.
fn check_dims(path: &Path, header: &[u8]) -> Result<(), DataError> {
    let rows = be_u32(header, 8).expect("header length checked");
    let cols = be_u32(header, 12).expect("header length checked");
    if rows == IMAGE_SIDE && cols == IMAGE_SIDE {
        return Ok(());
    }
    Err(DataError::BadDims {
        file: path.to_path_buf(),
        rows,
        cols,
    })
}

/// The exact file length `count` items imply, refusing counts no file within the size limit
/// could hold (so a corrupt header is named as such instead of as a truncated file).
fn expected_len(path: &Path, count: u32, kind: IdxKind) -> Result<u64, DataError> {
    // Cannot overflow: u32::MAX * 784 + 16 < 2^42.
    let bytes = kind.header_len() as u64 + u64::from(count) * kind.item_len();
    if bytes > MAX_FILE_BYTES {
        return Err(DataError::CountTooLarge {
            file: path.to_path_buf(),
            count,
            what: kind.what(),
            bytes,
            limit: MAX_FILE_BYTES,
        });
    }
    Ok(bytes)
}

/// The big-endian u32 at `offset`, if the slice is long enough.
fn be_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let field = bytes.get(offset..offset + 4)?;
    Some(u32::from_be_bytes(field.try_into().expect("4 bytes")))
}
