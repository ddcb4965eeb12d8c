//! The host's side of the device (host builds only): start the firmware in QEMU, decode its
//! defmt logs, and talk to it over its UART with the protocol's frames.
//!
//! Shared by the `digits device` commands and the end-to-end tests, so both drive the device
//! the same way.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use defmt_decoder::{DecodeError, Table};
use digits_core::finetune::Gradient;
use digits_core::frame::{self, Feed, FrameReader, MAX_FRAME};
use digits_core::protocol::{
    Classification, DeviceError, DeviceInfo, Evaluation, Request, Response, Stats, Trained, Tuning,
};

/// QEMU's `-device` argument that loads the data blob `path` into the mps2-an386's PSRAM,
/// where `eval` and `serve` read it ([`crate::eval::BLOB_ADDRESS`]).
pub fn blob_loader(path: &Path) -> String {
    format!(
        "loader,file={},addr={:#x},force-raw=on",
        path.display(),
        crate::eval::BLOB_ADDRESS
    )
}

/// The QEMU executable.
pub const QEMU: &str = "qemu-system-arm";
/// How to get it, for error messages.
pub const INSTALL_QEMU: &str = "install it with `sudo apt-get install qemu-system-arm` (Debian/Ubuntu) or your system's \
     QEMU package, which provides qemu-system-arm";
/// The firmware's target.
pub const TARGET: &str = "thumbv7em-none-eabihf";

/// What can go wrong between the host and the device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// QEMU is not installed.
    #[error("{QEMU} not found: {INSTALL_QEMU}")]
    NoQemu,
    /// The firmware ELF is missing or unreadable.
    #[error(
        "cannot read the firmware {path} (build it with \
         `cargo build -p firmware --release --target {TARGET}`)"
    )]
    Firmware {
        /// The ELF's path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The ELF has no defmt table (not this project's firmware?).
    #[error("{path} holds no defmt table: is it a `firmware` binary of this project? ({why})")]
    NoLogTable {
        /// The ELF's path.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// QEMU could not be started or ended before the device was up.
    #[error("QEMU failed: {0}")]
    Qemu(String),
    /// Reading or writing the UART failed.
    #[error("the device's UART")]
    Io(#[from] io::Error),
    /// No reply in time.
    #[error(
        "the device did not answer within {0:?} (a damaged request is dropped without reply; \
         is the device busy or gone?)"
    )]
    Timeout(Duration),
    /// The device answered with an error.
    #[error("{0}")]
    Device(DeviceError),
    /// A reply that does not decode, or does not answer the request.
    #[error("unexpected reply from the device: {0}")]
    Unexpected(String),
}

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

/// Decodes the defmt stream `input` (QEMU's stdout) with the table of `elf`, calling `line`
/// for every message until the stream ends. Damaged frames become a line saying so.
pub fn decode_logs(
    elf: &[u8],
    mut input: impl Read,
    mut line: impl FnMut(LogLine),
) -> Result<(), String> {
    let table = Table::parse(elf)
        .map_err(|e| e.to_string())?
        .ok_or("no .defmt section")?;
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

fn upper(level: &str) -> &'static str {
    match level {
        "error" => "ERROR",
        "warn" => "WARN",
        "info" => "INFO",
        "debug" => "DEBUG",
        _ => "TRACE",
    }
}

/// Whether `qemu-system-arm` runs.
pub fn qemu_available() -> bool {
    Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A QEMU machine the firmware is built for (see the firmware's `board` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    /// Cortex-M4F, [`TARGET`]: every binary.
    Mps2An386,
    /// Cortex-M3 without FPU, 256 KiB flash, 64 KiB RAM: `eval-int8` (the only program whose
    /// model fits).
    Lm3s6965evb,
}

impl Board {
    /// The Rust target that builds for it.
    pub fn target(self) -> &'static str {
        match self {
            Board::Mps2An386 => TARGET,
            Board::Lm3s6965evb => "thumbv7m-none-eabi",
        }
    }

    fn machine(self) -> [&'static str; 4] {
        match self {
            Board::Mps2An386 => ["-M", "mps2-an386", "-cpu", "cortex-m4"],
            Board::Lm3s6965evb => ["-M", "lm3s6965evb", "-cpu", "cortex-m3"],
        }
    }
}

/// Builds the firmware binaries (release, for [`TARGET`]) with cargo in `workspace`, and
/// returns each binary's path by name. For tests and development, where the source is there.
pub fn build_firmware(workspace: &Path) -> Result<HashMap<String, PathBuf>, String> {
    build_firmware_for(workspace, Board::Mps2An386)
}

/// [`build_firmware`] for `board`.
pub fn build_firmware_for(
    workspace: &Path,
    board: Board,
) -> Result<HashMap<String, PathBuf>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = board.target();
    let bins: &[&str] = match board {
        Board::Mps2An386 => &["--bins"],
        Board::Lm3s6965evb => &["--bin", "eval-int8"],
    };
    // The executables' paths come from cargo's messages, wherever the target directory is.
    let out = Command::new(cargo)
        .current_dir(workspace)
        // Flags meant for the host build (e.g. `-C target-cpu=native`) must not reach the device.
        .env_remove("RUSTFLAGS")
        .args(["build", "-p", "firmware", "--release"])
        .args(bins)
        .args([
            "--target",
            target,
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the firmware failed ({}); is the target installed? \
             `rustup target add {target}`",
            out.status
        ));
    }
    let mut elfs = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let (Some(name), Some(exe)) =
            (msg["target"]["name"].as_str(), msg["executable"].as_str())
        {
            elfs.insert(name.to_owned(), PathBuf::from(exe));
        }
    }
    Ok(elfs)
}

/// How the device's UART0 is connected.
#[derive(Clone, Debug)]
pub enum Serial {
    /// Not at all.
    None,
    /// QEMU connects to this address (a listener of ours).
    ConnectTo(SocketAddr),
    /// QEMU listens on this address; clients come and go (`digits device run`).
    Listen(SocketAddr),
}

/// A QEMU running a firmware; killed when dropped.
pub struct Qemu {
    child: Child,
    logs: Option<JoinHandle<Result<(), String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Qemu {
    /// Starts `elf` on the mps2-an386 with `serial`, plus `extra` QEMU arguments, sending every
    /// decoded log line to `log` (on another thread).
    pub fn start(
        elf: &Path,
        serial: &Serial,
        extra: &[&str],
        log: impl FnMut(LogLine) + Send + 'static,
    ) -> Result<Self, Error> {
        Self::start_on(Board::Mps2An386, elf, serial, extra, &[], log)
    }

    /// [`Qemu::start`] on `board`, with `semihosting_args` as the program's semihosting
    /// command line (`SYS_GET_CMDLINE`).
    pub fn start_on(
        board: Board,
        elf: &Path,
        serial: &Serial,
        extra: &[&str],
        semihosting_args: &[&str],
        log: impl FnMut(LogLine) + Send + 'static,
    ) -> Result<Self, Error> {
        let image = std::fs::read(elf).map_err(|source| Error::Firmware {
            path: elf.to_owned(),
            source,
        })?;
        // Check the table now rather than on the log thread, where an error would be lost.
        Table::parse(&image)
            .map_err(|e| e.to_string())
            .and_then(|t| t.map(|_| ()).ok_or_else(|| "no .defmt section".to_owned()))
            .map_err(|why| Error::NoLogTable {
                path: elf.to_owned(),
                why,
            })?;
        let serial_args = match serial {
            Serial::None => "null".to_owned(),
            Serial::ConnectTo(addr) => format!(
                "chardev:uart0 -chardev socket,id=uart0,host={},port={},server=off",
                addr.ip(),
                addr.port()
            ),
            Serial::Listen(addr) => format!(
                "chardev:uart0 -chardev socket,id=uart0,host={},port={},server=on,wait=off",
                addr.ip(),
                addr.port()
            ),
        };
        let mut semihosting = "enable=on,target=native".to_owned();
        for arg in semihosting_args {
            // QEMU's option syntax: a comma inside a value is written twice.
            semihosting.push_str(&format!(",arg={}", arg.replace(',', ",,")));
        }
        let mut child = Command::new(QEMU)
            .args(board.machine())
            .args(["-display", "none", "-monitor", "none"])
            .args(["-semihosting-config", &semihosting])
            .arg("-serial")
            .args(serial_args.split(' '))
            .args(extra)
            .arg("-kernel")
            .arg(elf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => Error::NoQemu,
                _ => Error::Qemu(format!("cannot start {QEMU}: {e}")),
            })?;
        let stdout = child.stdout.take().expect("piped");
        let logs = thread::spawn(move || decode_logs(&image, stdout, log));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut s = String::new();
            pipe.read_to_string(&mut s).ok();
            sink.lock().expect("stderr").push_str(&s);
        });
        Ok(Self {
            child,
            logs: Some(logs),
            stderr,
        })
    }

    /// Starts `elf` with its UART connected to the returned [`Link`].
    pub fn start_with_link(
        elf: &Path,
        extra: &[&str],
        log: impl FnMut(LogLine) + Send + 'static,
    ) -> Result<(Self, Link), Error> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut qemu = Self::start(elf, &Serial::ConnectTo(addr), extra, log)?;
        listener.set_nonblocking(true)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(status) = qemu.child.try_wait()? {
                return Err(Error::Qemu(format!(
                    "it exited ({status}) before connecting the UART: {}",
                    qemu.stderr_text()
                )));
            }
            if Instant::now() > deadline {
                return Err(Error::Qemu(
                    "it did not connect the UART within 20 s".into(),
                ));
            }
            thread::sleep(Duration::from_millis(5));
        };
        stream.set_nonblocking(false)?;
        Ok((qemu, Link::new(stream)?))
    }

    /// What QEMU wrote on stderr so far.
    pub fn stderr_text(&self) -> String {
        // Give the reader thread a moment after an exit.
        thread::sleep(Duration::from_millis(20));
        self.stderr.lock().expect("stderr").trim().to_owned()
    }

    /// Waits for QEMU to exit by itself, at most `timeout` (`Duration::MAX`: for ever);
    /// returns its exit code (`None` if killed by a signal) after the last log line was
    /// decoded.
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<i32>, Error> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.join_logs()?;
                return Ok(status.code());
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(Error::Qemu(format!("still running after {timeout:?}")));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops QEMU and waits until every log line was decoded.
    pub fn stop(mut self) -> Result<(), Error> {
        self.child.kill().ok();
        self.child.wait()?;
        self.join_logs()
    }

    fn join_logs(&mut self) -> Result<(), Error> {
        if let Some(logs) = self.logs.take() {
            logs.join()
                .map_err(|_| Error::Qemu("the log decoder panicked".into()))?
                .map_err(|e| Error::Qemu(format!("decoding the device's logs: {e}")))?;
        }
        Ok(())
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The protocol over a byte stream to the device's UART.
///
/// Requests are answered in order, one reply each (see `firmware::serve`), so a request waits
/// for its reply before the next goes out. Every frame is sent after a `0x00`, which ends
/// whatever noise came before as a frame of its own, skipped by the device.
pub struct Link {
    stream: TcpStream,
    reader: Box<FrameReader<MAX_FRAME>>,
    /// Bytes read but not yet fed to `reader`.
    inbox: Vec<u8>,
    /// The payload of the last reply.
    payload: Vec<u8>,
    timeout: Duration,
}

impl Link {
    /// How long [`Link::call`] waits for a reply by default: a classification takes about
    /// 50 ms under QEMU, nearly all of it moving 800 bytes through the emulated UART.
    pub const TIMEOUT: Duration = Duration::from_secs(10);

    /// A link over `stream`.
    pub fn new(stream: TcpStream) -> Result<Self, Error> {
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            reader: Box::new(FrameReader::new()),
            inbox: Vec::new(),
            payload: Vec::new(),
            timeout: Self::TIMEOUT,
        })
    }

    /// Connects to a device whose UART listens at `addr` (`digits device run`).
    pub fn connect(addr: SocketAddr) -> Result<Self, Error> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        Self::new(stream)
    }

    /// Sets how long to wait for a reply.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Writes `bytes` as they are (for tests that inject noise).
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Sends one request.
    pub fn send(&mut self, request: &Request<'_>) -> Result<(), Error> {
        let mut scratch = [0u8; MAX_FRAME];
        let mut out = [0u8; MAX_FRAME + 1];
        let (delimiter, rest) = out.split_at_mut(1);
        delimiter[0] = 0;
        let n = frame::encode(request, &mut scratch, rest)
            .map_err(|e| Error::Unexpected(format!("cannot frame the request: {e}")))?
            .len();
        self.write_raw(&out[..=n])
    }

    /// Waits for the next intact reply (damaged frames from the device are skipped).
    pub fn receive(&mut self) -> Result<Response<'_>, Error> {
        let deadline = Instant::now() + self.timeout;
        'frame: loop {
            for (i, &b) in self.inbox.iter().enumerate() {
                if let Feed::Frame(payload) = self.reader.push(b) {
                    self.payload.clear();
                    self.payload.extend_from_slice(payload);
                    self.inbox.drain(..=i);
                    break 'frame;
                }
            }
            self.inbox.clear();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout(self.timeout));
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut buf = [0u8; 2048];
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the device closed the connection",
                    )));
                }
                Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Error::Timeout(self.timeout));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        frame::decode(&self.payload).map_err(|e| Error::Unexpected(format!("{e}")))
    }

    /// Sends `request` and waits for its reply.
    pub fn call(&mut self, request: &Request<'_>) -> Result<Response<'_>, Error> {
        self.send(request)?;
        self.receive()
    }

    /// Ping with `nonce`; checks the echo.
    pub fn ping(&mut self, nonce: u32) -> Result<(), Error> {
        match self.call(&Request::Ping { nonce })? {
            Response::Pong { nonce: n } if n == nonce => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Who the device is.
    pub fn info(&mut self) -> Result<DeviceInfo<'_>, Error> {
        match self.call(&Request::Info)? {
            Response::Info(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    /// Classifies one image on the device.
    pub fn classify(&mut self, pixels: &[u8]) -> Result<Classification, Error> {
        match self.call(&Request::Classify { pixels })? {
            Response::Classified(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// The device's counters.
    pub fn stats(&mut self) -> Result<Stats, Error> {
        match self.call(&Request::Stats)? {
            Response::Stats(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Starts fine-tuning over from the flash weights.
    pub fn reset(&mut self) -> Result<Tuning, Error> {
        match self.call(&Request::Reset)? {
            Response::Tuning(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// Sends one labeled sample for the next training step.
    pub fn sample(&mut self, label: u8, pixels: &[u8]) -> Result<Tuning, Error> {
        match self.call(&Request::Sample { label, pixels })? {
            Response::Tuning(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// One training step on the samples sent since the last.
    pub fn train(
        &mut self,
        method: Gradient,
        learning_rate: f32,
        momentum: f32,
    ) -> Result<Trained, Error> {
        let request = Request::Train {
            method,
            learning_rate,
            momentum,
        };
        match self.call(&request)? {
            Response::Trained(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// Classifies images `first..first + count` of the data blob in the device's PSRAM.
    pub fn evaluate(&mut self, first: u32, count: u32) -> Result<Evaluation, Error> {
        match self.call(&Request::Evaluate { first, count })? {
            Response::Evaluated(e) => Ok(e),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(response: Response<'_>) -> Error {
    match response {
        Response::Error(e) => Error::Device(e),
        other => Error::Unexpected(format!("{other:?}")),
    }
}
