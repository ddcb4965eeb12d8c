//! Data blobs in the device's PSRAM: the host writes the blob (`digits_core::blob`) to a file
//! and QEMU loads it there before the CPU starts, where the `eval` and `serve` firmware find it.
//! Loading takes no time on the device; the UART would take minutes for the test set.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use digits_core::blob::{BLOB_ADDRESS, Contents};

use super::qemu::Board;

/// QEMU's `-device` argument that loads the data blob `path` into the mps2-an386's PSRAM, at
/// [`BLOB_ADDRESS`].
pub fn blob_loader(path: &Path) -> String {
    format!(
        "loader,file={},addr={BLOB_ADDRESS:#x},force-raw=on",
        path.display()
    )
}

/// A data blob in a temporary file, deleted when this is dropped: keep it while QEMU runs.
pub struct PsramBlob {
    /// Deleted when dropped.
    file: tempfile::NamedTempFile,
    loader: String,
}

impl PsramBlob {
    /// Writes `contents` as a data blob to a temporary file named `prefix`...`.blob`.
    pub fn write(prefix: &str, contents: &Contents<'_>) -> Result<Self> {
        let mut file = tempfile::Builder::new()
            .prefix(prefix)
            .suffix(".blob")
            .tempfile()?;
        let mut bytes = Vec::with_capacity(contents.header()?.blob_len() as usize);
        contents.write(|piece| bytes.extend_from_slice(piece))?;
        file.write_all(&bytes)?;
        file.flush()?;
        let loader = blob_loader(file.path());
        Ok(Self { file, loader })
    }

    /// The file, for a board without PSRAM that reads it over semihosting.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// QEMU's `-device` argument that loads it.
    pub fn loader(&self) -> &str {
        &self.loader
    }

    /// How `program` on `board` gets the blob: QEMU's arguments that load it into the PSRAM,
    /// or, on a board without, the program's semihosting command line that names the file.
    pub fn for_board<'a>(&'a self, board: Board, program: &'a str) -> Result<BlobArgs<'a>> {
        if board.has_psram() {
            return Ok(BlobArgs {
                qemu: vec!["-device", self.loader()],
                semihosting: vec![],
                how: "psram",
            });
        }
        let path = self
            .path()
            .to_str()
            .context("the data blob's path is not UTF-8")?;
        Ok(BlobArgs {
            qemu: vec![],
            semihosting: vec![program, path],
            how: "semihosting",
        })
    }
}

/// What QEMU and the program are told about a data blob (see [`PsramBlob::for_board`]).
pub struct BlobArgs<'a> {
    /// Extra QEMU arguments.
    pub qemu: Vec<&'a str>,
    /// The program's semihosting command line.
    pub semihosting: Vec<&'a str>,
    /// How the blob gets there, for reports: `psram` or `semihosting`.
    pub how: &'static str,
}
