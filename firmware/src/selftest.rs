//! The self-test a real board runs at power-up, with no host attached: each embedded model
//! classifies the built-in digits ([`crate::DIGIT_7`], [`crate::DIGIT_1`]), and the answers go
//! out as plain text on the board's serial port, where a terminal shows them (the `selftest`
//! program; `digits device hex` makes it a file to flash).
//!
//! The same text comes out on the host (`cargo run -p firmware --bin selftest`), which the
//! tests compare with what the device sends under QEMU.

use core::fmt::{self, Write};
use digits_core::softmax::argmax;

use crate::model::FlashModel;

/// The built-in digits and their labels.
const DIGITS: [(&[u8; 784], u8); 2] = [(&crate::DIGIT_7, 7), (&crate::DIGIT_1, 1)];

/// Writes one model's line: what it is and its answer for each built-in digit; `true` if every
/// answer is right.
pub fn check<N: FlashModel>(model: &N, out: &mut impl Write) -> Result<bool, fmt::Error> {
    model.describe(out)?;
    write!(out, " (parameters {:016x}", model.digest())?;
    if let Some(accuracy) = model.test_accuracy() {
        write!(out, ", {:.2}% on the MNIST test set", 100.0 * accuracy)?;
    }
    write!(out, "):")?;
    let mut right = true;
    for (k, (pixels, label)) in DIGITS.into_iter().enumerate() {
        let digit = argmax(&model.infer(pixels));
        right &= digit == label as usize;
        let separator = if k == 0 { "" } else { "," };
        write!(out, "{separator} a {label} reads as {digit}")?;
        if digit != label as usize {
            write!(out, " (wrong)")?;
        }
    }
    writeln!(out)?;
    Ok(right)
}

/// The whole self-test on `board` with the int8 and the compact model: its text into `out`,
/// `Ok(true)` if every answer is right.
pub fn run(board: &str, out: &mut impl Write) -> Result<bool, fmt::Error> {
    writeln!(
        out,
        "digits {} self-test on {board}",
        env!("CARGO_PKG_VERSION")
    )?;
    let int8 = check(&crate::model::MODEL_INT8, out)?;
    let compact = check(&crate::model::FlashCompact::new(), out)?;
    let right = int8 && compact;
    writeln!(
        out,
        "{}",
        if right {
            "ok: every built-in digit read right"
        } else {
            "FAILED: a built-in digit read wrong"
        }
    )?;
    Ok(right)
}
