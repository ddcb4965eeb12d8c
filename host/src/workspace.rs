//! The project's source tree this `digits` was built from, when it is still there: where the
//! shipped models and the firmware's source are, whatever the working directory.
//!
//! The path is the one cargo compiled the binary in (`cargo run`, or `cargo install --path
//! host` from a clone). A binary copied elsewhere, or whose clone is gone, has no source tree:
//! the commands that need one then say where they looked and which option to pass instead.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The workspace root, if this binary's source tree is still there.
pub fn root() -> Option<&'static Path> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("firmware/Cargo.toml").is_file().then_some(root)
}

/// Where the workspace root was, for messages when it is gone.
pub fn expected_root() -> PathBuf {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    host.parent().unwrap_or(host).to_owned()
}

/// The shipped f32 model (`firmware/models/mnist.digits`), trained by this project.
pub const SHIPPED_MODEL: &str = "firmware/models/mnist.digits";
/// The shipped model quantized to int8 (`firmware/models/mnist-int8.digits`).
pub const SHIPPED_MODEL_INT8: &str = "firmware/models/mnist-int8.digits";
/// The shipped compact network (`firmware/models/compact.digits`, `digits train --arch`).
pub const SHIPPED_MODEL_COMPACT: &str = "firmware/models/compact.digits";

/// The file `relative` of the source tree (e.g. [`SHIPPED_MODEL`]), or an error that says
/// where it was looked for and to pass `option` instead.
pub fn file(relative: &str, option: &str) -> Result<PathBuf> {
    let path = expected_root().join(relative);
    if root().is_none() || !path.is_file() {
        bail!(
            "{} is not there (the source tree this digits was built from): pass {option}",
            path.display()
        );
    }
    Ok(path)
}
