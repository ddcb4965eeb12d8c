//! The firmware binaries: where `digits device` finds them ([`Firmware`]), and how tests and
//! development build them from the source ([`build_firmware`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

use super::qemu::{Board, TARGET};

/// Where the firmware binaries are.
pub struct Firmware {
    dir: PathBuf,
}

impl Firmware {
    /// The binaries in `dir`, else where `cargo build -p firmware --release --target ...`
    /// puts them (under `$CARGO_TARGET_DIR`, else `target/`).
    pub fn new(dir: Option<&Path>) -> Self {
        let dir = dir.map(Path::to_owned).unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
            Path::new(&target).join(TARGET).join("release")
        });
        Self { dir }
    }

    /// The path of the binary `name`, if it is there; else an error that says how to build it.
    pub fn elf(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        if !path.is_file() {
            bail!(
                "no firmware binary {}: build the firmware with `cargo build -p firmware \
                 --release --target {}`, or name its directory with --firmware DIR",
                path.display(),
                TARGET
            );
        }
        Ok(path)
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
