//! A small client of QEMU's machine protocol (QMP) on a unix socket (`-qmp unix:PATH`): ask
//! where a chardev went (the UART's pseudo-terminal), stop and continue the machine, save its
//! memory, quit. One command at a time; events in between are skipped.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::error::Error;

/// A QMP session, past the greeting and the capabilities negotiation.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

/// How long a command may take: QEMU answers in milliseconds, so this only ends a hung one.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

impl Qmp {
    /// Connects to the QMP socket at `path`, reads QEMU's greeting and enters command mode.
    pub fn connect(path: &Path) -> Result<Self, Error> {
        let stream = UnixStream::connect(path)
            .map_err(|e| Error::Qmp(format!("cannot connect to {}: {e}", path.display())))?;
        Self::over(stream)
    }

    /// A session on a connected socket.
    pub fn over(stream: UnixStream) -> Result<Self, Error> {
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        let mut qmp = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.next_message()?;
        if greeting.get("QMP").is_none() {
            return Err(Error::Qmp(format!("no greeting but {greeting}")));
        }
        qmp.execute("qmp_capabilities", Value::Null)?;
        Ok(qmp)
    }

    /// Runs `command` with `arguments` (`Value::Null`: none) and returns what it returned;
    /// QEMU's refusal is an error that names the command and says why.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, Error> {
        let mut request = json!({ "execute": command });
        if !arguments.is_null() {
            request["arguments"] = arguments;
        }
        let mut line = request.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).map_err(io)?;
        loop {
            let mut message = self.next_message()?;
            if message.get("event").is_some() {
                continue;
            }
            if let Some(value) = message.get_mut("return") {
                return Ok(value.take());
            }
            let error = &message["error"];
            let why = error["desc"].as_str().unwrap_or("no reason given");
            let class = error["class"].as_str().unwrap_or("an error");
            return Err(Error::Qmp(format!("`{command}` failed ({class}): {why}")));
        }
    }

    /// The host side of the chardev `label`, as QEMU names it (`pty:/dev/pts/3`,
    /// `unix:/tmp/…`).
    pub fn chardev(&mut self, label: &str) -> Result<String, Error> {
        let chardevs = self.execute("query-chardev", Value::Null)?;
        chardevs
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["label"] == label)
            .and_then(|c| c["filename"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| Error::Qmp(format!("no chardev {label:?} in {chardevs}")))
    }

    /// The pseudo-terminal of the pty chardev `label` (`-chardev pty,id=LABEL`).
    pub fn pty(&mut self, label: &str) -> Result<PathBuf, Error> {
        let name = self.chardev(label)?;
        name.strip_prefix("pty:")
            .map(PathBuf::from)
            .ok_or_else(|| Error::Qmp(format!("chardev {label:?} is {name}, not a pty")))
    }

    /// Stops the machine (its CPU and devices; QEMU keeps running).
    pub fn stop(&mut self) -> Result<(), Error> {
        self.execute("stop", Value::Null).map(drop)
    }

    /// Lets a stopped machine go on.
    pub fn cont(&mut self) -> Result<(), Error> {
        self.execute("cont", Value::Null).map(drop)
    }

    /// Saves `size` bytes of memory from `address`, as the CPU sees it, to `file` (written
    /// by QEMU). Unlike `pmemsave`, this reads flash that a board maps on its own (the
    /// micro:bit's).
    pub fn memsave(&mut self, address: u64, size: u64, file: &Path) -> Result<(), Error> {
        // QEMU resolves a relative name against its own working directory, not ours.
        let file = std::path::absolute(file).map_err(io)?;
        let filename = file
            .to_str()
            .ok_or_else(|| Error::Qmp(format!("{} is not UTF-8", file.display())))?;
        self.execute(
            "memsave",
            json!({ "val": address, "size": size, "filename": filename }),
        )
        .map(drop)
    }

    /// Ends QEMU (it answers, then exits).
    pub fn quit(mut self) -> Result<(), Error> {
        self.execute("quit", Value::Null).map(drop)
    }

    /// The next JSON message from QEMU.
    fn next_message(&mut self) -> Result<Value, Error> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).map_err(io)?;
        if n == 0 {
            return Err(Error::Qmp("QEMU closed the connection".into()));
        }
        serde_json::from_str(&line)
            .map_err(|e| Error::Qmp(format!("not JSON ({e}): {}", line.trim_end())))
    }
}

fn io(e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            Error::Qmp(format!("no answer within {REPLY_TIMEOUT:?}"))
        }
        _ => Error::Qmp(e.to_string()),
    }
}
