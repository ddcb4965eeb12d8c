//! QEMU as a process: which machine, how the device's UART is wired, start, wait, stop. The
//! device's output (its defmt log stream on QEMU's stdout) is decoded on a thread of its own
//! ([`super::logs`]); QEMU's monitor, when asked for, is a [`Qmp`] client.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::children::Guarded;
use super::error::Error;
use super::link::Link;
use super::logs::{self, LogLine};
use super::qmp::Qmp;

/// The QEMU executable.
pub const QEMU: &str = "qemu-system-arm";
/// How to get it, for error messages.
pub const INSTALL_QEMU: &str = "install it with `sudo apt-get install qemu-system-arm` (Debian/Ubuntu) or your system's \
     QEMU package, which provides qemu-system-arm";
/// The firmware's target (the [`Board::Mps2An386`]'s).
pub const TARGET: &str = "thumbv7em-none-eabihf";

/// Whether `qemu-system-arm` runs.
pub fn qemu_available() -> bool {
    Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// [`Error::NoQemu`] unless QEMU runs: a command checks this first, so that a missing QEMU
/// is reported as such rather than as a failure to start it.
pub fn require_qemu() -> Result<(), Error> {
    if qemu_available() {
        Ok(())
    } else {
        Err(Error::NoQemu)
    }
}

/// A QEMU machine the firmware is built for (see the firmware's `board` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Board {
    /// Cortex-M4F, [`TARGET`]: every program; data blobs loaded into its PSRAM.
    #[value(
        name = "mps2-an386",
        help = "Cortex-M4F (FPU, DSP instructions), QEMU's FPGA image: every program"
    )]
    Mps2An386,
    /// STM32F405: Cortex-M4F, 1 MiB of flash, 128 KiB of RAM, [`TARGET`] with the firmware's
    /// feature `netduinoplus2`: every program but `boot`; data blobs read from a host file over
    /// semihosting.
    #[value(
        name = "netduinoplus2",
        help = "STM32F405 (Cortex-M4F), 1 MiB of flash: every model, serve and fine-tuning"
    )]
    Netduinoplus2,
    /// Cortex-M3 without FPU, 256 KiB flash, 64 KiB RAM: `eval-int8` and `eval-compact` (the
    /// programs whose models fit); the data blob is read from a host file over semihosting.
    #[value(
        name = "lm3s6965evb",
        help = "Cortex-M3 (no FPU, no DSP instructions), 256 KiB of flash: int8 and compact models"
    )]
    Lm3s6965evb,
    /// BBC micro:bit v1 (nRF51822): Cortex-M0, 256 KiB flash, 16 KiB RAM: `eval-int8` and
    /// `eval-compact`; the data blob is read from a host file over semihosting.
    #[value(
        name = "microbit",
        help = "BBC micro:bit v1 (nRF51822, Cortex-M0), 16 KiB of RAM: int8 and compact models"
    )]
    Microbit,
}

impl Board {
    /// The Rust target that builds for it.
    pub fn target(self) -> &'static str {
        match self {
            Board::Mps2An386 | Board::Netduinoplus2 => TARGET,
            Board::Lm3s6965evb => "thumbv7m-none-eabi",
            Board::Microbit => "thumbv6m-none-eabi",
        }
    }

    /// QEMU's name of the machine.
    pub fn name(self) -> &'static str {
        match self {
            Board::Mps2An386 => "mps2-an386",
            Board::Netduinoplus2 => "netduinoplus2",
            Board::Lm3s6965evb => "lm3s6965evb",
            Board::Microbit => "microbit",
        }
    }

    /// The firmware's cargo feature that selects it, if its target alone does not.
    pub fn feature(self) -> Option<&'static str> {
        (self == Board::Netduinoplus2).then_some("netduinoplus2")
    }

    /// Whether it has PSRAM that QEMU loads data blobs into (else the firmware reads them from
    /// a host file over semihosting).
    pub fn has_psram(self) -> bool {
        self == Board::Mps2An386
    }

    /// Whether its flash holds the f32 784-128-10 model (407 KB).
    pub fn fits_f32(self) -> bool {
        matches!(self, Board::Mps2An386 | Board::Netduinoplus2)
    }

    /// Whether it runs `serve` (the protocol over its UART), which carries the f32 model.
    pub fn serves(self) -> bool {
        self.fits_f32()
    }

    /// The programs built for it with the release profile: those whose model and memory fit
    /// (`serve`, where it runs, has a profile of its own: [`Board::profile_of`]).
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            Board::Mps2An386 => &[
                "boot",
                "eval",
                "eval-int8",
                "eval-compact",
                "selftest",
                "panic",
                "hardfault",
            ],
            // `boot` trains a 784-16-10 network with its gradient and momentum: 150 KB of RAM.
            Board::Netduinoplus2 => &[
                "eval",
                "eval-int8",
                "eval-compact",
                "selftest",
                "panic",
                "hardfault",
            ],
            Board::Lm3s6965evb => &["eval-int8", "eval-compact"],
            Board::Microbit => &["eval-int8", "eval-compact", "selftest"],
        }
    }

    /// The cargo profile `program` is built with: `serve` has one of its own (Cargo.toml:
    /// optimized for size, to fit its 64 KiB before the model slots), the others `release`.
    pub fn profile_of(program: &str) -> &'static str {
        match program {
            "serve" => "serve",
            _ => "release",
        }
    }

    fn machine(self) -> [&'static str; 4] {
        match self {
            Board::Mps2An386 => ["-M", "mps2-an386", "-cpu", "cortex-m4"],
            Board::Netduinoplus2 => ["-M", "netduinoplus2", "-cpu", "cortex-m4"],
            Board::Lm3s6965evb => ["-M", "lm3s6965evb", "-cpu", "cortex-m3"],
            Board::Microbit => ["-M", "microbit", "-cpu", "cortex-m0"],
        }
    }
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
    /// A pseudo-terminal of QEMU's, which the host opens as a serial port (`digits device run
    /// --pty`); QMP says which ([`Qmp::pty`] of [`UART`]). QEMU drops what the device sends
    /// while no one holds the terminal.
    Pty,
}

/// The chardev label of the device's UART0, for [`Qmp::chardev`].
pub const UART: &str = "uart0";

impl Serial {
    /// QEMU's arguments after `-serial`.
    fn args(&self) -> Vec<String> {
        let socket = |addr: &SocketAddr, server: &str| {
            vec![
                format!("chardev:{UART}"),
                "-chardev".to_owned(),
                format!(
                    "socket,id={UART},host={},port={},{server}",
                    addr.ip(),
                    addr.port()
                ),
            ]
        };
        match self {
            Serial::None => vec!["null".to_owned()],
            Serial::ConnectTo(addr) => socket(addr, "server=off"),
            Serial::Listen(addr) => socket(addr, "server=on,wait=off"),
            Serial::Pty => vec![
                format!("chardev:{UART}"),
                "-chardev".to_owned(),
                format!("pty,id={UART}"),
            ],
        }
    }
}

/// A QEMU running a firmware; killed when dropped, or when a signal ends this process
/// ([`super::children`]).
pub struct Qemu {
    child: Guarded,
    logs: Option<JoinHandle<Result<(), String>>>,
    stderr: Arc<Mutex<String>>,
    /// Where the QMP socket is, if any: removed after QEMU ends.
    scratch: Option<tempfile::TempDir>,
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
        Self::launch(board, elf, None, serial, extra, semihosting_args, log)
    }

    /// Boots `board` from `memory`, a copy of its flash from address 0 (as [`Qmp::memsave`]
    /// saved it: the firmware and what it wrote since), not from the ELF; `elf`, the program
    /// in that copy, decodes its logs. The UART is connected to the returned [`Link`].
    pub fn boot_memory_with_link_on(
        board: Board,
        elf: &Path,
        memory: &Path,
        log: impl FnMut(LogLine) + Send + 'static,
    ) -> Result<(Self, Link), Error> {
        Self::link_up(board, elf, Some(memory), &[], &[], log)
    }

    /// Starts QEMU with `elf` as its kernel, or `memory` loaded at address 0 (the M-profile
    /// core then resets from the vector table there).
    fn launch(
        board: Board,
        elf: &Path,
        memory: Option<&Path>,
        serial: &Serial,
        extra: &[&str],
        semihosting_args: &[&str],
        log: impl FnMut(LogLine) + Send + 'static,
    ) -> Result<Self, Error> {
        let boot = match memory {
            None => vec!["-kernel".into(), elf.as_os_str().to_owned()],
            Some(memory) => {
                let path = std::path::absolute(memory)?;
                // QEMU's option syntax: a comma inside a value is written twice.
                let file = path.to_string_lossy().replace(',', ",,");
                vec![
                    "-device".into(),
                    std::ffi::OsString::from(format!("loader,file={file},addr=0")),
                ]
            }
        };
        let image = std::fs::read(elf).map_err(|source| Error::Firmware {
            path: elf.to_owned(),
            source,
        })?;
        // Check the table now rather than on the log thread, where an error would be lost.
        logs::check_table(&image).map_err(|why| Error::NoLogTable {
            path: elf.to_owned(),
            why,
        })?;
        let mut semihosting = "enable=on,target=native".to_owned();
        for arg in semihosting_args {
            // QEMU's option syntax: a comma inside a value is written twice.
            semihosting.push_str(&format!(",arg={}", arg.replace(',', ",,")));
        }
        let mut command = Command::new(QEMU);
        command
            .args(board.machine())
            .args(["-display", "none", "-monitor", "none"])
            .args(["-semihosting-config", &semihosting])
            .arg("-serial")
            .args(serial.args())
            .args(extra)
            .args(boot)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (child, pipes) = Guarded::spawn(&mut command).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NoQemu,
            _ => Error::Qemu(format!("cannot start {QEMU}: {e}")),
        })?;
        let stdout = pipes.stdout.expect("piped");
        let pty = matches!(serial, Serial::Pty);
        let logs = thread::spawn(move || {
            if pty {
                logs::decode_logs(&image, logs::without_pty_banner(stdout), log)
            } else {
                logs::decode_logs(&image, stdout, log)
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = pipes.stderr.expect("piped");
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
            scratch: None,
        })
    }

    /// [`Qemu::start_on`] with QEMU's monitor on a socket of its own, connected: for what
    /// only the monitor tells or does (where a pty went, stop, memory dumps, quit).
    pub fn start_with_qmp_on(
        board: Board,
        elf: &Path,
        serial: &Serial,
        extra: &[&str],
        semihosting_args: &[&str],
        log: impl FnMut(LogLine) + Send + 'static,
    ) -> Result<(Self, Qmp), Error> {
        let scratch = tempfile::Builder::new()
            .prefix("digits-qmp-")
            .tempdir()
            .map_err(|e| Error::Qemu(format!("no directory for its monitor socket: {e}")))?;
        let socket = scratch.path().join("qmp.sock");
        // QEMU's option syntax: a comma inside a value is written twice.
        let qmp_arg = format!(
            "unix:{},server=on,wait=off",
            socket.to_string_lossy().replace(',', ",,")
        );
        let extra = [extra, &["-qmp", &qmp_arg]].concat();
        let mut qemu = Self::start_on(board, elf, serial, &extra, semihosting_args, log)?;
        qemu.scratch = Some(scratch);
        // QEMU creates the socket before the machine starts; retry until it has.
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match UnixStream::connect(&socket) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() > deadline => {
                    return Err(Error::Qemu(format!(
                        "its monitor socket {} did not open within 20 s: {e}",
                        socket.display()
                    )));
                }
                Err(_) => {}
            }
            if let Some(status) = qemu.child.try_wait()? {
                return Err(Error::Qemu(format!(
                    "it exited ({status}) before opening its monitor: {}",
                    qemu.stderr_text()
                )));
            }
            thread::sleep(Duration::from_millis(5));
        };
        let qmp = Qmp::over(stream)?;
        Ok((qemu, qmp))
    }

    /// Starts `elf` on `board` with its UART on a pseudo-terminal; returns QEMU, its monitor
    /// and the terminal's path, for [`super::link::Link::open_serial`].
    pub fn start_pty_on(
        board: Board,
        elf: &Path,
        extra: &[&str],
        semihosting: &[&str],
        log: impl FnMut(LogLine) + Send + 'static,
    ) -> Result<(Self, Qmp, PathBuf), Error> {
        let (qemu, mut qmp) =
            Self::start_with_qmp_on(board, elf, &Serial::Pty, extra, semihosting, log)?;
        let pts = qmp.pty(UART)?;
        Ok((qemu, qmp, pts))
    }

    /// Starts `elf` on the mps2-an386 with its UART connected to the returned [`Link`].
    pub fn start_with_link(
        elf: &Path,
        extra: &[&str],
        log: impl FnMut(LogLine) + Send + 'static,
    ) -> Result<(Self, Link), Error> {
        Self::start_with_link_on(Board::Mps2An386, elf, extra, &[], log)
    }

    /// [`Qemu::start_with_link`] on `board`, with `semihosting_args` as the program's
    /// semihosting command line.
    pub fn start_with_link_on(
        board: Board,
        elf: &Path,
        extra: &[&str],
        semihosting_args: &[&str],
        log: impl FnMut(LogLine) + Send + 'static,
    ) -> Result<(Self, Link), Error> {
        Self::link_up(board, elf, None, extra, semihosting_args, log)
    }

    /// [`Qemu::launch`] with the UART connected to the returned [`Link`].
    fn link_up(
        board: Board,
        elf: &Path,
        memory: Option<&Path>,
        extra: &[&str],
        semihosting_args: &[&str],
        log: impl FnMut(LogLine) + Send + 'static,
    ) -> Result<(Self, Link), Error> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let serial = Serial::ConnectTo(addr);
        let qemu = Self::launch(board, elf, memory, &serial, extra, semihosting_args, log)?;
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

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops QEMU and waits until every log line was decoded.
    pub fn stop(mut self) -> Result<(), Error> {
        self.child.kill()?;
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
