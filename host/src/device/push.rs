//! `digits device push` and `digits device rollback`: a new model onto a running device, and
//! back to the one before (the device's two flash slots: `digits_core::update`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;

use super::Reach;
use super::info::slot_name;
use super::model::DeviceModel;
use super::session::Session;

/// Options of `digits device push`.
#[derive(Args)]
pub struct PushArgs {
    /// The model file: f32, int8 or compact (`digits train`, `digits quantize`, `digits train
    /// --arch`, or the browser page's download).
    #[arg(value_name = "MODEL")]
    model: PathBuf,
    #[command(flatten)]
    reach: Reach,
}

/// Options of `digits device rollback`.
#[derive(Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    reach: Reach,
}

/// Runs `digits device push`: the file is read and checked first, then sent in chunks; the
/// device checks it whole before it runs it, and keeps its model otherwise.
pub fn run_push(args: &PushArgs) -> Result<()> {
    let model = DeviceModel::load(Some(&args.model))?;
    let mut session = Session::open(&args.reach, None, "push")?;
    let started = Instant::now();
    let summary = session.push(&model)?;
    let seconds = started.elapsed().as_secs_f64();
    let runs = session.link.info()?.model.map(|m| m.params_fnv64);
    if runs != Some(model.digest) {
        bail!(
            "the device took {} but runs another model (digest {:016x?}): a firmware bug, \
             report it",
            model.path.display(),
            runs
        );
    }
    let len = model.file.len();
    println!(
        "pushed {} ({len} B, {} model) in {seconds:.1} s: slot {} runs it (sequence {}), \
         parameters digest {:016x}",
        model.path.display(),
        model.kind(),
        slot_name(summary.slot),
        summary.header.map_or(0, |h| h.seq),
        model.digest
    );
    if args.reach.attached().is_none() {
        eprintln!(
            "note: the device this command started stops now; to keep one running, start it with \
             `digits device run` and push with --connect"
        );
    }
    session.close()
}

/// Runs `digits device rollback`.
pub fn run_rollback(args: &RollbackArgs) -> Result<()> {
    let mut session = Session::open(&args.reach, None, "rollback")?;
    let summary = session.link.rollback()?;
    let info = session.link.info()?;
    match &info.model {
        Some(m) => println!(
            "rolled back: slot {} runs {} again (sequence {}), parameters digest {:016x}",
            slot_name(summary.slot),
            m.description,
            summary.header.map_or(0, |h| h.seq),
            m.params_fnv64
        ),
        None => bail!("the device rolled back but runs no model: a firmware bug, report it"),
    }
    session.close()
}
