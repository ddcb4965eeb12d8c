//! `digits web` started for a test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `digits web` on a free loopback port; killed when dropped.
pub struct WebServer {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// The second line it printed (model and transfer).
    pub summary: String,
}

impl WebServer {
    pub fn start(model: Option<&Path>) -> WebServer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_digits"));
        cmd.args(["web", "--listen", "127.0.0.1:0"]);
        if let Some(m) = model {
            cmd.arg("--model").arg(m);
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("digits runs");
        let mut lines = BufReader::new(child.stdout.take().expect("piped"));
        let mut first = String::new();
        lines.read_line(&mut first).expect("a line");
        let address = first
            .trim()
            .strip_prefix("serving http://")
            .and_then(|a| a.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        let mut summary = String::new();
        lines.read_line(&mut summary).expect("a line");
        WebServer {
            child,
            address,
            summary,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
