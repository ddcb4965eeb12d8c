//! `digits device predict`: people's pictures of digits, preprocessed on the host as `digits
//! predict` does, classified on the device.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use digits_core::softmax::softmax;

use super::firmware::Firmware;
use super::logs::LogPrinter;
use super::session::Session;
use crate::evaluate::predict::{top3, top3_text};
use crate::evaluate::preprocess;

/// Runs `digits device predict` on `images`; a picture that cannot be read is reported and
/// skipped, and makes the command fail at the end.
pub fn run(
    firmware: &Firmware,
    connect: Option<SocketAddr>,
    logs: LogPrinter,
    images: &[PathBuf],
) -> Result<()> {
    let mut session = Session::open(firmware, connect, logs)?;
    let mut failed = 0;
    for path in images {
        let pixels = preprocess::load_gray(path)
            .map_err(anyhow::Error::from)
            .and_then(|gray| Ok(preprocess::to_mnist(&gray)?));
        let pixels = match pixels.with_context(|| path.display().to_string()) {
            Ok(pixels) => pixels,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
                continue;
            }
        };
        let c = session.link.classify(&pixels)?;
        let mut p = [0.0f32; 10];
        softmax(&c.logits, &mut p);
        println!(
            "{}: {}  (on the device; top-3: {})",
            path.display(),
            c.digit,
            top3_text(&top3(&p))
        );
    }
    session.close()?;
    if failed > 0 {
        bail!(
            "{failed} of {} images could not be recognized",
            images.len()
        );
    }
    Ok(())
}
