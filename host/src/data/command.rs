//! `digits data` and the data options every command shares: where the files are, which
//! dataset, and loading it with a line that says what was read from where.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};

use super::fetch;
use super::shift;
use super::{Dataset, DatasetKind};

#[derive(Subcommand)]
pub enum DataCommand {
    /// Verify the SHA-256 of the four files' contents against the official values.
    Check {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Download the four files where missing or damaged, with the official checksums verified
    /// before any file is moved into place.
    Fetch {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        fetch: fetch::FetchArgs,
    },
    /// Write MNIST as a new writer would have drawn it (slanted, rotated, heavier strokes):
    /// a data directory for `--data`, to test adaptation (`digits device finetune`).
    Shift {
        #[command(flatten)]
        data: DataArgs,
        /// Which writer: the same seed gives the same writer and the same files.
        #[arg(long, default_value_t = 1)]
        writer: u64,
        /// Directory to write the four IDX files into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Where the data is.
#[derive(Args)]
pub struct DataArgs {
    /// Directory with the four IDX files (gzipped or raw); else $MNIST_DIR, else data/mnist/.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Which dataset.
    #[arg(long, value_enum, default_value_t = DatasetArg::Mnist)]
    dataset: DatasetArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DatasetArg {
    /// Handwritten digits.
    Mnist,
    /// Zalando's Fashion-MNIST (Debian package dataset-fashion-mnist).
    Fashion,
}

impl DataArgs {
    /// Where the files are: `--data`, else `$MNIST_DIR`, else the default.
    pub fn dir(&self) -> super::DataDir {
        super::resolve_dir(self.data.as_deref(), dataset_kind(self.dataset))
    }

    fn dataset_name(&self) -> &'static str {
        match self.dataset {
            DatasetArg::Mnist => "MNIST",
            DatasetArg::Fashion => "Fashion-MNIST",
        }
    }
}

pub fn dataset_kind(arg: DatasetArg) -> DatasetKind {
    match arg {
        DatasetArg::Mnist => DatasetKind::Mnist,
        DatasetArg::Fashion => DatasetKind::Fashion,
    }
}

pub fn load(args: &DataArgs) -> Result<Dataset> {
    let kind = dataset_kind(args.dataset);
    let dir = super::resolve_dir(args.data.as_deref(), kind);
    let start = Instant::now();
    let dataset = Dataset::load(&dir.path, kind)?;
    eprintln!(
        "{kind}: {} training and {} test images from {} ({}) in {:.2} s",
        dataset.train.labels.len(),
        dataset.test.labels.len(),
        dir.path.display(),
        dir.source,
        start.elapsed().as_secs_f64()
    );
    Ok(dataset)
}

/// Runs a `digits data` subcommand.
pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Check { data: args } => check(&args),
        DataCommand::Fetch { data: args, fetch } => {
            let kind = dataset_kind(args.dataset);
            fetch::run(
                &super::resolve_dir(args.data.as_deref(), kind),
                kind,
                &fetch,
            )
        }
        DataCommand::Shift { data, writer, out } => {
            let dataset = load(&data)?;
            let writer = shift::Writer::from_seed(writer);
            shift::write_dataset(&dataset, &writer, &out)?;
            println!(
                "wrote {} by writer {} (slant {:+.2}, rotation {:+.1} degrees, heaviness {:.2}) \
                 to {}; e.g. `digits eval --data {} --model firmware/models/mnist.digits`",
                data.dataset_name(),
                writer.seed,
                writer.slant,
                writer.rotation_deg,
                writer.heaviness,
                out.display(),
                out.display()
            );
            Ok(())
        }
    }
}

fn check(args: &DataArgs) -> Result<()> {
    let kind = dataset_kind(args.dataset);
    let dir = super::resolve_dir(args.data.as_deref(), kind);
    println!("{kind} in {} ({})", dir.path.display(), dir.source);
    let checks = super::check(&dir.path, kind)?;
    for c in &checks {
        if c.ok {
            println!("  ok        {}  {}", c.sha256, c.file.display());
        } else {
            println!(
                "  MISMATCH  {}  {} (expected {})",
                c.sha256,
                c.file.display(),
                c.expected
            );
        }
    }
    let bad = checks.iter().filter(|c| !c.ok).count();
    if bad > 0 {
        anyhow::bail!(
            "{bad} of {} files do not match the official checksums: fetch them again (`digits data fetch`)",
            checks.len()
        );
    }
    println!("all {} files match the official checksums", checks.len());
    Ok(())
}
