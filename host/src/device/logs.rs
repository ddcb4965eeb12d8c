//! The device's log: defmt frames on QEMU's stdout, decoded with the ELF's defmt table into
//! lines (the firmware's `logger` writes them), and how `digits device` shows them.

use std::io::{self, Read};

use defmt_decoder::{DecodeError, Table};

/// One decoded log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`; `None` for console output (`println!`).
    pub level: Option<&'static str>,
    /// The message.
    pub text: String,
}

impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.level {
            Some(level) => write!(f, "{level:<5} {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// The defmt table of `elf`, or why there is none.
fn table(elf: &[u8]) -> Result<Table, String> {
    Table::parse(elf)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no .defmt section".to_owned())
}

/// Whether `elf` holds a defmt table the decoder reads.
pub fn check_table(elf: &[u8]) -> Result<(), String> {
    table(elf).map(|_| ())
}

/// Decodes the defmt stream `input` (QEMU's stdout) with the table of `elf`, calling `line`
/// for every message until the stream ends. Damaged frames become a line saying so.
pub fn decode_logs(
    elf: &[u8],
    mut input: impl Read,
    mut line: impl FnMut(LogLine),
) -> Result<(), String> {
    let table = table(elf)?;
    let mut decoder = table.new_stream_decoder();
    let mut buf = [0u8; 4096];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        decoder.received(&buf[..n]);
        loop {
            match decoder.decode() {
                Ok(frame) => line(LogLine {
                    level: frame.level().map(|l| l.as_str()).map(upper),
                    text: frame.display_message().to_string(),
                }),
                Err(DecodeError::UnexpectedEof) => break,
                Err(DecodeError::Malformed) => line(LogLine {
                    level: Some("WARN"),
                    text: "(a damaged log frame from the device)".to_owned(),
                }),
            }
        }
    }
}

/// QEMU's stdout without the line its pty chardev prints before the machine starts ("char
/// device redirected to /dev/pts/3 (label uart0)"), which is not defmt and would decode as a
/// damaged frame. Anything else passes unchanged.
pub fn without_pty_banner(input: impl Read) -> impl Read {
    const BANNER: &[u8] = b"char device redirected to ";
    let mut input = input;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte up to the end of the banner, so that nothing after it is consumed here.
    loop {
        match input.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        let n = head.len().min(BANNER.len());
        if head[..n] != BANNER[..n] {
            break;
        }
        if byte[0] == b'\n' {
            head.clear();
            break;
        }
    }
    io::Cursor::new(head).chain(input)
}

fn upper(level: &str) -> &'static str {
    match level {
        "error" => "ERROR",
        "warn" => "WARN",
        "info" => "INFO",
        "debug" => "DEBUG",
        _ => "TRACE",
    }
}

/// Prints the device's log lines: warnings and errors always, the rest with `--verbose`.
#[derive(Clone, Copy)]
pub struct LogPrinter {
    verbose: bool,
}

impl LogPrinter {
    /// Prints every line if `verbose`, else only warnings and errors.
    pub fn new(verbose: bool) -> Self {
        Self { verbose }
    }

    /// The callback for [`super::qemu::Qemu::start`].
    pub fn sink(self) -> impl FnMut(LogLine) + Send + 'static {
        move |line: LogLine| {
            if self.verbose || matches!(line.level, Some("WARN" | "ERROR")) {
                eprintln!("device: {line}");
            }
        }
    }
}
