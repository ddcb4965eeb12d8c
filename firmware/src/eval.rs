//! Batch inference: classify every image of a data blob with the model in flash and report
//! what a host needs to check the device bit for bit.
//!
//! The images come in a data blob (`digits_core::blob`): from the PSRAM, where QEMU loads it
//! on the mps2-an386, or from a file on the host, read over semihosting, on boards without one
//! ([`Source`]).
//!
//! # The report
//!
//! One `key values... # comment` line each ([`evaluate`]); every image goes through
//! `Classifier::classify` of `digits-core`, the host's code (`normalize` + `Mlp::logits` for
//! the f32 model, `QuantMlp::logits` for the int8 one, `Compact::logits_of_image` for a compact
//! one), and the report carries:
//! - `model`: the architecture, the precision and the FNV-1a digest of the parameters as read
//!   from flash;
//! - `logits I Z0..Z9`, with flag bit 1: image I's logits as `f32` bits in hex;
//! - `digits FIRST DDDD...`: the predicted digit of every image, 100 to a line;
//! - `logits_fnv64`: FNV-1a over the bits of all logits, image by image (40 bytes each);
//! - `correct`, with labels; `inference_ticks`: the clock's ticks spent in inference.

use core::fmt::{self, Write};
use core::hint::black_box;
use digits_core::blob::{Blob, BlobError, FLAG_LOGITS, Header, IMAGE_LEN};
use digits_core::digest::Fnv64;
use digits_core::softmax::argmax;

use crate::model::FlashModel;

/// Predicted digits per `digits` line.
pub const DIGITS_PER_LINE: usize = 100;

/// The data blob at the start of `memory`, where the host had it loaded; a missing blob's
/// error says how to load one.
pub fn loaded_blob(memory: &[u8]) -> Result<Blob<'_>, &'static str> {
    Blob::parse(memory).map_err(|e| match e {
        BlobError::NoMagic => {
            "bad data blob: it does not start with \"DIGITSEV\" (was one loaded? \
             -device loader,file=BLOB,addr=0x21000000,force-raw=on)"
        }
        e => e.message(),
    })
}

/// Where a data blob's images come from: memory ([`Blob`], the PSRAM) or a file on the host
/// read piece by piece over semihosting (boards without PSRAM).
pub trait Source {
    /// The blob's header, already checked.
    fn header(&self) -> Header;
    /// Image `i` into `image`, and its label if the blob has labels.
    fn read(&mut self, i: usize, image: &mut [u8; IMAGE_LEN]) -> Result<Option<u8>, &'static str>;
}

impl Source for Blob<'_> {
    fn header(&self) -> Header {
        self.header
    }

    fn read(&mut self, i: usize, image: &mut [u8; IMAGE_LEN]) -> Result<Option<u8>, &'static str> {
        *image = *self.images.get(i).ok_or("image index past the blob")?;
        Ok(self.labels.map(|l| l[i]))
    }
}

/// Measures time (or, under `qemu -icount`, instructions) around each inference.
pub trait Stopwatch {
    /// Starts a measurement.
    fn start(&mut self);
    /// Ticks since the last [`Stopwatch::start`].
    fn stop(&mut self) -> u32;
}

/// A stopwatch that always reads 0 (on the host).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoStopwatch;

impl Stopwatch for NoStopwatch {
    fn start(&mut self) {}
    fn stop(&mut self) -> u32 {
        0
    }
}

/// What [`evaluate`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Images classified.
    pub images: u32,
    /// Correct predictions, if the blob has labels.
    pub correct: Option<u32>,
    /// FNV-1a over the bits of all logits.
    pub logits_fnv64: u64,
    /// Stopwatch ticks spent in `classify`, all images together.
    pub inference_ticks: u64,
}

/// Classifies every image of `source` with `model` and writes the report (see the module
/// docs) to `out`. Only the inference is timed, not the reading, bookkeeping and printing.
pub fn evaluate<N: FlashModel>(
    model: &N,
    source: &mut impl Source,
    stopwatch: &mut impl Stopwatch,
    out: &mut impl Write,
) -> Result<Summary, &'static str> {
    report(model, source, stopwatch, out).map_err(|e| match e {
        ReportFailure::Print => "cannot print the report",
        ReportFailure::Read(why) => why,
    })
}

enum ReportFailure {
    Print,
    Read(&'static str),
}

impl From<fmt::Error> for ReportFailure {
    fn from(_: fmt::Error) -> Self {
        ReportFailure::Print
    }
}

fn report<N: FlashModel>(
    model: &N,
    source: &mut impl Source,
    stopwatch: &mut impl Stopwatch,
    out: &mut impl Write,
) -> Result<Summary, ReportFailure> {
    let header = source.header();
    let count = header.count as usize;
    let has_labels = header.has_labels();
    let mut out = Buffered::new(out);
    let out = &mut out;
    write!(out, "model ")?;
    model.describe(out)?;
    writeln!(out, " params_fnv64 {:016x}", model.digest())?;
    let with_labels = if has_labels { "yes" } else { "no" };
    writeln!(out, "images {count} labels {with_labels}")?;

    let print_logits = header.flags & FLAG_LOGITS != 0;
    let mut digest = Fnv64::new();
    let mut correct = 0u32;
    let mut ticks = 0u64;
    let mut digits = [b'0'; DIGITS_PER_LINE];
    let (mut kernels_checked, mut kernels_agree) = (0u32, 0u32);
    let mut image = [0u8; IMAGE_LEN];
    for i in 0..count {
        let label = source.read(i, &mut image).map_err(ReportFailure::Read)?;
        let pixels = &image;
        // black_box keeps the work between the two clock readings.
        stopwatch.start();
        let z = black_box(model.infer(black_box(pixels)));
        ticks += stopwatch.stop() as u64;
        if let Some(same) = model.check_kernel(pixels) {
            kernels_checked += 1;
            kernels_agree += same as u32;
        }

        let digit = argmax(&z);
        digest.write_f32s(&z);
        if let Some(label) = label {
            correct += (label as usize == digit) as u32;
        }
        if print_logits {
            write!(out, "logits {i}")?;
            for v in z {
                write!(out, " {:08x}", v.to_bits())?;
            }
            writeln!(out)?;
        }
        digits[i % DIGITS_PER_LINE] = b'0' + digit as u8;
        let n = i % DIGITS_PER_LINE + 1;
        if n == DIGITS_PER_LINE || i + 1 == count {
            let line = core::str::from_utf8(&digits[..n]).expect("ASCII digits");
            writeln!(out, "digits {} {line}", i + 1 - n)?;
        }
    }
    let summary = Summary {
        images: count as u32,
        correct: has_labels.then_some(correct),
        logits_fnv64: digest.finish(),
        inference_ticks: ticks,
    };
    writeln!(out, "logits_fnv64 {:016x}", summary.logits_fnv64)?;
    if let Some(correct) = summary.correct {
        let n = summary.images;
        // Basis points, rounded, in integers: no float formatting needed.
        let bp = (correct as u64 * 10_000 + n as u64 / 2) / n as u64;
        let (whole, frac) = (bp / 100, bp % 100);
        writeln!(
            out,
            "correct {correct} of {n} # accuracy {whole}.{frac:02}%"
        )?;
    }
    writeln!(out, "inference_ticks {ticks} # classify, all images")?;
    if kernels_checked > 0 {
        writeln!(
            out,
            "kernels {kernels_agree} of {kernels_checked} # images whose DSP hidden accumulators equal the portable kernel's"
        )?;
    }
    out.flush()?;
    Ok(summary)
}

/// Collects output in a buffer and writes it on in pieces of up to 1 KiB: over semihosting
/// every `write_str` is a trap to the host, and a report is thousands of small pieces.
pub struct Buffered<'w, W: Write> {
    inner: &'w mut W,
    buf: [u8; 1024],
    len: usize,
}

impl<'w, W: Write> Buffered<'w, W> {
    /// An empty buffer in front of `inner`.
    pub fn new(inner: &'w mut W) -> Self {
        Self {
            inner,
            buf: [0; 1024],
            len: 0,
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> fmt::Result {
        // Only whole `&str`s are ever copied in, so the buffer is valid UTF-8.
        let s = core::str::from_utf8(&self.buf[..self.len]).map_err(|_| fmt::Error)?;
        self.inner.write_str(s)?;
        self.len = 0;
        Ok(())
    }
}

impl<W: Write> Write for Buffered<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.len + s.len() > self.buf.len() {
            self.flush()?;
        }
        if s.len() > self.buf.len() {
            return self.inner.write_str(s);
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

/// The `eval` programs on the device: classify the blob (in the PSRAM, or read over
/// semihosting) with `model`, report, and add the calibration, the instructions per inference
/// and the RAM: the statics and the stack one inference takes (`inference_stack_bytes`, of the
/// built-in [`crate::DIGIT_7`], measured first, before the report's own buffers take any).
#[cfg(target_os = "none")]
pub fn device_main<N: FlashModel>(model: &N) -> ! {
    use crate::device::{self, CALIBRATION_INSTRUCTIONS, stack};
    device::run(|out| {
        let (_, inference_stack) = stack::depth_of(|| black_box(model.infer(&crate::DIGIT_7)));
        writeln!(out, "static_ram_bytes {} # .data + .bss", stack::statics())
            .map_err(|_| "cannot print")?;
        let inference_stack = inference_stack.ok_or("stack overflow in one inference")?;
        writeln!(
            out,
            "inference_stack_bytes {inference_stack} # one inference, below its caller"
        )
        .map_err(|_| "cannot print")?;
        let mut source = crate::board::eval_source()?;
        let mut clock = crate::board::stopwatch().ok_or("peripherals taken")?;
        let calibration = device::calibrate(&mut clock);
        let summary = evaluate(model, &mut source, &mut clock, out)?;
        writeln!(
            out,
            "calibration_ticks {calibration} # for {CALIBRATION_INSTRUCTIONS} instructions"
        )
        .map_err(|_| "cannot print")?;
        if calibration > 0 {
            // instructions = ticks * CALIBRATION_INSTRUCTIONS / calibration, per image, in
            // tenths (integers only).
            let tenths = summary.inference_ticks * CALIBRATION_INSTRUCTIONS as u64 * 10
                / (calibration as u64 * summary.images as u64);
            writeln!(
                out,
                "instructions_per_inference {}.{} # exact only under qemu -icount",
                tenths / 10,
                tenths % 10
            )
            .map_err(|_| "cannot print")?;
        }
        Ok(())
    })
}

/// The `eval` programs on the host: the report of the blob file named on the command line,
/// without timings, for comparison.
#[cfg(not(target_os = "none"))]
pub fn host_main<N: FlashModel>(model: &N) -> std::process::ExitCode {
    use std::process::ExitCode;

    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: eval BLOB (a data blob, see digits_core::blob)");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let mut blob = match loaded_blob(&bytes) {
        Ok(blob) => blob,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::string::String::new();
    if let Err(e) = evaluate(model, &mut blob, &mut NoStopwatch, &mut out) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    std::print!("{out}");
    std::println!("ok");
    ExitCode::SUCCESS
}
