//! Reading a file's whole content, gunzipping it if needed, within a size limit.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use super::error::DataError;

/// Largest content accepted for one file, after decompression. The largest MNIST file
/// (training images) is 47,040,016 bytes; the margin leaves room for similar datasets while
/// refusing gzip bombs and corrupt headers long before they could exhaust memory.
pub(super) const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Big enough that the whole file is read in a few large syscalls.
const READ_BUFFER: usize = 1 << 20;

/// A file's content, decompressed if the file was gzipped.
pub(super) struct Content {
    /// The (decompressed) bytes.
    pub bytes: Vec<u8>,
    /// Whether the file was gzip-compressed; lets error messages say "decompressed".
    pub gzip: bool,
}

/// Reads all of `path`, decompressing it if it starts with the gzip magic bytes.
pub(super) fn read_content(path: &Path) -> Result<Content, DataError> {
    read_content_limited(path, MAX_FILE_BYTES)
}

/// [`read_content`] with an explicit size limit, so tests can exercise it cheaply.
pub(super) fn read_content_limited(path: &Path, limit: u64) -> Result<Content, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    // A regular file fills the buffer as far as it can, so two bytes are there unless the
    // file is shorter than that (and then it is not gzip).
    let gzip = reader
        .fill_buf()
        .map_err(|e| DataError::io(path, e))?
        .starts_with(&GZIP_MAGIC);
    let bytes = if gzip {
        read_gzip(path, reader, limit)?
    } else {
        read_raw(path, reader, len, limit)?
    };
    Ok(Content { bytes, gzip })
}

/// Reads an uncompressed file whose size the file system reports as `len`.
fn read_raw(path: &Path, reader: impl Read, len: u64, limit: u64) -> Result<Vec<u8>, DataError> {
    let too_large = || DataError::TooLarge {
        file: path.to_path_buf(),
        limit,
        gzip: false,
    };
    if len > limit {
        return Err(too_large());
    }
    // `len <= limit`, which fits in memory, so this single allocation is bounded.
    let mut bytes = Vec::with_capacity(len as usize);
    read_limited(reader, limit, &mut bytes).map_err(|e| DataError::io(path, e))?;
    // The file may have grown since its size was taken.
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Decompresses a gzip file (all members, as `gunzip` does), stopping past `limit` bytes.
fn read_gzip(path: &Path, reader: impl BufRead, limit: u64) -> Result<Vec<u8>, DataError> {
    let mut bytes = Vec::new();
    read_limited(MultiGzDecoder::new(reader), limit, &mut bytes)
        .map_err(|e| gzip_error(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(DataError::TooLarge {
            file: path.to_path_buf(),
            limit,
            gzip: true,
        });
    }
    Ok(bytes)
}

/// Reads to the end or to one byte past `limit`, whichever comes first; one byte more than
/// the limit is enough to tell that the limit was exceeded.
fn read_limited(reader: impl Read, limit: u64, bytes: &mut Vec<u8>) -> io::Result<()> {
    reader.take(limit.saturating_add(1)).read_to_end(bytes)?;
    Ok(())
}

/// Classifies a decompression error: a stream that simply stops is truncated, anything else
/// is corrupt.
fn gzip_error(path: &Path, source: io::Error) -> DataError {
    let file = path.to_path_buf();
    match source.kind() {
        io::ErrorKind::UnexpectedEof => DataError::TruncatedGzip { file, source },
        _ => DataError::CorruptGzip { file, source },
    }
}
