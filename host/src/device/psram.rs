//! Data blobs in the device's PSRAM: the host writes the blob (`digits_core::blob`) to a file
//! and QEMU loads it there before the CPU starts, where the `eval` and `serve` firmware find it.
//! Loading takes no time on the device; the UART would take minutes for the test set.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use digits_core::blob::{BLOB_ADDRESS, Contents};

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
}
