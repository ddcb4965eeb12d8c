//! A death watch: a small shell process that kills one of our children once this process is
//! gone, however it ended, SIGKILL included (which no handler of ours ever sees).
//!
//! The shell waits on a `read` from its standard input, a pipe whose only writer is this
//! process (`std` opens pipes close-on-exec, so no other child inherits the writing end). The
//! kernel closes that end when we end; the `read` returns, and the shell kills the child. When
//! we end the child ourselves, we end its watch first ([`DeathWatch::dismiss`]): the shell
//! never signals a process id that may have been reused since.

use std::io;
use std::process::{Child, Command, Stdio};

/// The shell's script: its `$1` is the process to kill. It ignores the signals a terminal
/// sends to the whole foreground group, so that it outlives us when they end us.
const SCRIPT: &str = "trap '' INT TERM HUP; read -r _; kill -KILL \"$1\" 2>/dev/null";

/// A shell that kills process `pid` when this process ends; see the module's documentation.
pub struct DeathWatch {
    shell: Child,
}

impl DeathWatch {
    /// Starts the watch over process `pid`.
    pub fn start(pid: u32) -> io::Result<Self> {
        let shell = Command::new("sh")
            .args(["-c", SCRIPT, "sh", &pid.to_string()])
            .stdin(Stdio::piped())
            // Not the terminal's or a caller's pipes: the shell must hold nothing open.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::other(format!(
                    "cannot start `sh`, which stops QEMU if digits is killed: {e}"
                ))
            })?;
        Ok(Self { shell })
    }

    /// Ends the watch without it killing anything (SIGKILL to the shell, then reaped).
    pub fn dismiss(&mut self) {
        // An error here means it has exited already; `wait` reaps it either way.
        self.shell.kill().ok();
        self.shell.wait().ok();
    }
}

impl Drop for DeathWatch {
    fn drop(&mut self) {
        self.dismiss();
    }
}
