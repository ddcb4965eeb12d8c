//! The firmware binaries: where `digits device` gets them ([`Firmware`]: prebuilt ones named by
//! `--firmware`, else built from the project's source with the chosen model embedded), and how
//! tests and development build them ([`build_firmware`]).
//!
//! The firmware embeds its model at build time (`firmware/build.rs`: `DIGITS_MODEL`,
//! `DIGITS_MODEL_INT8`, `DIGITS_MODEL_COMPACT`). The shipped models are built into cargo's usual
//! target directory; any other model in `device-models/` there (so that a user's model does not
//! rebuild the usual firmware), its binaries then kept as `device-models/KIND-DIGEST/NAME`
//! (`device-models/KIND-DIGEST/TARGET/NAME` for another board than the mps2-an386).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::model::{DeviceModel, Reached};
use super::qemu::Board;
use crate::workspace;

/// Where the firmware binaries come from.
pub struct Firmware {
    /// `--firmware DIR`, if given.
    prebuilt: Option<PathBuf>,
    /// The board they are for.
    board: Board,
    /// For the real board (logging over RTT, no semihosting), not QEMU.
    real: bool,
}

impl Firmware {
    /// The binaries in `dir`, else ones built from the source, for the mps2-an386.
    pub fn new(dir: Option<&Path>) -> Self {
        Self {
            prebuilt: dir.map(Path::to_owned),
            board: Board::Mps2An386,
            real: false,
        }
    }

    /// The same for `board`.
    pub fn for_board(self, board: Board) -> Self {
        Self { board, ..self }
    }

    /// The same for the real board rather than QEMU: the firmware's feature `rtt` (defmt over
    /// a debug probe's RTT instead of semihosting, which on a chip without a debugger would
    /// stop it), built into `target/real/`, apart from the QEMU builds.
    pub fn for_real_board(self) -> Self {
        Self { real: true, ..self }
    }

    /// How a device started from these binaries was reached, for [`DeviceModel::check`].
    pub fn reached(&self) -> Reached<'_> {
        match &self.prebuilt {
            Some(dir) => Reached::Prebuilt(dir, self.board),
            None => Reached::Built,
        }
    }

    /// The binary `name` with `model` embedded (`None`: the shipped model): from `--firmware
    /// DIR` as it is (the device's model is checked later), else built (once per model) from
    /// the source.
    pub fn elf(&self, name: &str, model: Option<&DeviceModel>) -> Result<PathBuf> {
        let board_target = self.board.target();
        if let Some(dir) = &self.prebuilt {
            let mut path = dir.join(name);
            // A program of another profile than `release` is where cargo puts it, beside the
            // release directory (where an older build may have left one of its own).
            let beside = dir.join("..").join(Board::profile_of(name)).join(name);
            if beside.is_file() {
                path = beside;
            }
            if !path.is_file() {
                bail!(
                    "no firmware binary {} in --firmware {}: name the directory that `cargo \
                     build -p firmware --release --target {board_target}` writes them to, or \
                     drop --firmware and digits builds them",
                    path.display(),
                    dir.display()
                );
            }
            return Ok(path);
        }
        // The shipped model is the firmware's default: no variable, cargo's usual directory.
        let model = model.filter(|m| !m.shipped);
        let Some(root) = workspace::root() else {
            let variable = match model {
                Some(m) => format!("{}={} ", m.build_variable(), m.absolute_path().display()),
                None => String::new(),
            };
            bail!(
                "no firmware to run: {} (the source tree this digits was built from) is not there \
                 to build one from; pass --firmware DIR, the binaries of `{variable}cargo build \
                 -p firmware --release --target {board_target}` (in \
                 target/{board_target}/release/)",
                workspace::expected_root().display(),
            );
        };
        let target = target_dir(root);
        let target = match self.real {
            true => target.join("real"),
            false => target,
        };
        let Some(model) = model else {
            let profile = Board::profile_of(name);
            if !target.join(board_target).join(profile).join(name).is_file() {
                eprintln!(
                    "building the firmware (once, into {}) ...",
                    target.display()
                );
            }
            return built(
                Build {
                    target_dir: Some(&target),
                    quiet: true,
                    real: self.real,
                    only: self.real.then_some(name),
                    ..Build::new(root, self.board)
                },
                name,
            );
        };
        // Another model: built in a directory of its own (the dependencies are built once for
        // all models; a change of model relinks the firmware), then copied aside by digest.
        let shared = target.join("device-models");
        let mut kept = shared.join(format!("{}-{:016x}", model.kind(), model.digest));
        if self.board != Board::Mps2An386 {
            kept.push(self.board.name());
        }
        kept.push(name);
        if !kept.is_file() {
            eprintln!(
                "building the firmware with {} in it (once per model, into {}) ...",
                model.path.display(),
                shared.display()
            );
        }
        let elf = built(
            Build {
                target_dir: Some(&shared),
                model: Some(model),
                quiet: true,
                real: self.real,
                only: self.real.then_some(name),
                ..Build::new(root, self.board)
            },
            name,
        )?;
        let bytes = std::fs::read(&elf)
            .with_context(|| format!("cannot read the firmware {}", elf.display()))?;
        // The build's own directory, under the workspace's target: made here, not by the user.
        let dir = kept.parent().expect("kept in a directory");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        crate::model_io::write_atomically(&kept, &bytes)?;
        Ok(kept)
    }
}

/// Cargo's target directory for `workspace`: `CARGO_TARGET_DIR`, else `target/` in it.
fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
}

/// Runs `build` and returns the path of its binary `name`.
fn built(build: Build<'_>, name: &str) -> Result<PathBuf> {
    let elfs = build.run().map_err(anyhow::Error::msg)?;
    match elfs.get(name) {
        Some(path) => Ok(path.clone()),
        None => bail!("building the firmware gave no binary {name}"),
    }
}

/// Builds the firmware binaries (release, for [`TARGET`](super::qemu::TARGET)) with cargo in `workspace`, and
/// returns each binary's path by name. For tests and development, where the source is there.
pub fn build_firmware(workspace: &Path) -> Result<HashMap<String, PathBuf>, String> {
    build_firmware_for(workspace, Board::Mps2An386)
}

/// [`build_firmware`] for `board`.
pub fn build_firmware_for(
    workspace: &Path,
    board: Board,
) -> Result<HashMap<String, PathBuf>, String> {
    Build::new(workspace, board).run()
}

/// One `cargo build` of the firmware.
struct Build<'a> {
    workspace: &'a Path,
    board: Board,
    /// Cargo's `--target-dir`, if not its default.
    target_dir: Option<&'a Path>,
    /// The model to embed, if not the shipped one.
    model: Option<&'a DeviceModel>,
    /// Only errors on stderr (cargo's `--quiet`).
    quiet: bool,
    /// For the real board: the feature `rtt`.
    real: bool,
    /// Only this program, not the board's usual set.
    only: Option<&'a str>,
}

impl<'a> Build<'a> {
    fn new(workspace: &'a Path, board: Board) -> Self {
        Self {
            workspace,
            board,
            target_dir: None,
            model: None,
            quiet: false,
            real: false,
            only: None,
        }
    }

    /// Builds the programs (`serve` with its own profile) and returns each one's path by name.
    fn run(&self) -> Result<HashMap<String, PathBuf>, String> {
        let mut programs: Vec<&str> = match self.only {
            Some(name) => vec![name],
            None => self.board.programs().to_vec(),
        };
        if self.only.is_none() && self.board.serves() {
            programs.push("serve");
        }
        // One cargo run per profile, in the order the profiles first appear.
        let mut elfs = HashMap::new();
        let mut profiles: Vec<&str> = Vec::new();
        for profile in programs.iter().map(|p| Board::profile_of(p)) {
            if !profiles.contains(&profile) {
                profiles.push(profile);
            }
        }
        for profile in profiles {
            let bins: Vec<&str> = programs
                .iter()
                .copied()
                .filter(|p| Board::profile_of(p) == profile)
                .collect();
            elfs.extend(self.cargo(profile, &bins)?);
        }
        Ok(elfs)
    }

    /// One `cargo build` of the programs `bins` with `profile`.
    fn cargo(&self, profile: &str, bins: &[&str]) -> Result<HashMap<String, PathBuf>, String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let target = self.board.target();
        let mut command = Command::new(cargo);
        command
            .current_dir(self.workspace)
            // Flags meant for the host build (e.g. `-C target-cpu=native`) must not reach the
            // device; and only the model chosen here is embedded.
            .env_remove("RUSTFLAGS")
            .env_remove("DIGITS_MODEL")
            .env_remove("DIGITS_MODEL_INT8")
            .env_remove("DIGITS_MODEL_COMPACT")
            .args(["build", "-p", "firmware", "--profile", profile])
            .args(bins.iter().flat_map(|bin| ["--bin", bin]))
            .args([
                "--target",
                target,
                "--message-format=json-render-diagnostics",
            ]);
        let features: Vec<&str> = self
            .board
            .feature()
            .into_iter()
            .chain(self.real.then_some("rtt"))
            .collect();
        if !features.is_empty() {
            command.args(["--features", &features.join(",")]);
        }
        // A board chosen by a feature shares its target with another: a directory of its own
        // keeps each board's binaries (and builds running at once) apart.
        let separate = |dir: &Path| match self.board.feature() {
            Some(_) => dir.join(self.board.name()),
            None => dir.to_owned(),
        };
        match self.target_dir {
            Some(dir) => {
                command.arg("--target-dir").arg(separate(dir));
            }
            None if self.board.feature().is_some() => {
                command
                    .arg("--target-dir")
                    .arg(separate(&target_dir(self.workspace)));
            }
            None => {}
        }
        if self.quiet {
            command.arg("--quiet");
        }
        if let Some(model) = self.model {
            command.env(model.build_variable(), model.absolute_path());
        }
        // The executables' paths come from cargo's messages, wherever the target directory is.
        let out = command
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run cargo to build the firmware: {e}"))?;
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
}
