//! `digits data` and the data options every command shares: where the files are, which
//! dataset, loading it with a line that says what was read from where, and, on a first run
//! that finds no files, downloading them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::fetch;
use super::shift;
use super::{DataDir, DataError, Dataset, DatasetKind, FileState, Splits, TestSet};

#[derive(Subcommand)]
pub enum DataCommand {
    /// Verify the SHA-256 of the four files' contents against the official values; every file
    /// is reported, and any missing, damaged or different one fails the check.
    Check {
        #[command(flatten)]
        data: DataDirArgs,
        /// Print one JSON document on stdout instead of the text.
        #[arg(long)]
        json: bool,
    },
    /// Download the four files where missing or damaged, with the official checksums verified
    /// before any file is moved into place.
    Fetch {
        #[command(flatten)]
        data: DataDirArgs,
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
        /// Directory to write the four IDX files into (created if its parent exists).
        #[arg(long, value_name = "DIR", value_parser = crate::cli::output::Output::DIR)]
        out: PathBuf,
    },
}

/// Where the data is: the options of `digits data check` and `data fetch`.
#[derive(Args)]
pub struct DataDirArgs {
    /// Directory with the four IDX files (gzipped or raw) [default: $MNIST_DIR, else
    /// $XDG_DATA_HOME/digits/mnist, else ~/.local/share/digits/mnist].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Which dataset.
    #[arg(long, value_enum, default_value_t = DatasetArg::Mnist)]
    dataset: DatasetArg,
}

/// The data options of every command that reads the dataset: where it is, and whether a run
/// that finds no files there may download them.
#[derive(Args)]
pub struct DataArgs {
    #[command(flatten)]
    place: DataDirArgs,
    /// Never download: fail if the files are not there.
    #[arg(long)]
    no_download: bool,
    /// Where to download missing files from: the URL of a directory holding the .gz files;
    /// repeat to try several in order [default: the official mirrors of the dataset].
    #[arg(long = "mirror", value_name = "URL", conflicts_with = "no_download")]
    mirrors: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DatasetArg {
    /// Handwritten digits.
    Mnist,
    /// Zalando's Fashion-MNIST (Debian package dataset-fashion-mnist).
    Fashion,
}

impl DataDirArgs {
    /// Where the files are: `--data`, else `$MNIST_DIR`, else the default.
    pub fn dir(&self) -> DataDir {
        super::resolve_dir(self.data.as_deref(), self.kind())
    }

    fn kind(&self) -> DatasetKind {
        dataset_kind(self.dataset)
    }

    fn dataset_name(&self) -> &'static str {
        match self.dataset {
            DatasetArg::Mnist => "MNIST",
            DatasetArg::Fashion => "Fashion-MNIST",
        }
    }
}

impl DataArgs {
    /// MNIST in `dir` (else where it is by default), downloaded if missing: for commands
    /// whose data option is their own.
    pub fn mnist_at(dir: Option<PathBuf>) -> Self {
        DataArgs {
            place: DataDirArgs {
                data: dir,
                dataset: DatasetArg::Mnist,
            },
            no_download: false,
            mirrors: Vec::new(),
        }
    }

    /// Where the files are: `--data`, else `$MNIST_DIR`, else the default.
    pub fn dir(&self) -> DataDir {
        self.place.dir()
    }
}

pub fn dataset_kind(arg: DatasetArg) -> DatasetKind {
    match arg {
        DatasetArg::Mnist => DatasetKind::Mnist,
        DatasetArg::Fashion => DatasetKind::Fashion,
    }
}

/// Loads both splits, downloading what is missing unless `--no-download`.
pub fn load(args: &DataArgs) -> Result<Dataset> {
    let kind = args.place.kind();
    let dir = obtain(args, Splits::Both)?;
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

/// Loads the test split alone, for the commands that only evaluate: the training files need
/// not be there, and are not downloaded.
pub fn load_test(args: &DataArgs) -> Result<TestSet> {
    let kind = args.place.kind();
    let dir = obtain(args, Splits::Test)?;
    let start = Instant::now();
    let set = TestSet::load(&dir.path, kind)?;
    eprintln!(
        "{kind}: {} test images from {} ({}) in {:.2} s",
        set.test.labels.len(),
        dir.path.display(),
        dir.source,
        start.elapsed().as_secs_f64()
    );
    Ok(set)
}

/// The data directory, with the files of `splits` that are missing from it downloaded first,
/// unless `--no-download` says to fail instead.
fn obtain(args: &DataArgs, splits: Splits) -> Result<DataDir> {
    let kind = args.place.kind();
    let dir = args.dir();
    match super::mnist::locate(&dir.path, kind, splits.files()) {
        Ok(_) => {}
        Err(e @ DataError::Missing { .. }) if args.no_download => anyhow::bail!(
            "{e}\n  (--no-download was given: without it they are downloaded into {})",
            dir.path.display()
        ),
        Err(DataError::Missing { missing, .. }) => {
            fetch::first_run(&dir, kind, &missing, &args.mirrors)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(dir)
}

/// Runs a `digits data` subcommand.
pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Check { data: args, json } => check(&args, json),
        DataCommand::Fetch { data: args, fetch } => fetch::run(&args.dir(), args.kind(), &fetch),
        DataCommand::Shift { data, writer, out } => {
            let dataset = load(&data)?;
            let writer = shift::Writer::from_seed(writer);
            crate::cli::output::create_dir("--out", &out)?;
            shift::write_dataset(&dataset, &writer, &out)?;
            println!(
                "wrote {} by writer {} (slant {:+.2}, rotation {:+.1} degrees, heaviness {:.2}) \
                 to {}; e.g. `digits eval --data {} --model firmware/models/mnist.digits`",
                data.place.dataset_name(),
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

/// `digits data check`: every file's state, as text or as one JSON document; fails if any
/// file is not there and right.
fn check(args: &DataDirArgs, json: bool) -> Result<()> {
    let kind = args.kind();
    let dir = args.dir();
    let reports = super::check(&dir.path, kind);
    if json {
        let files: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                let mut file = match &r.state {
                    FileState::Checked(c) => json!({
                        "status": if c.ok { "ok" } else { "mismatch" },
                        "path": c.file,
                        "sha256": c.sha256,
                    }),
                    FileState::Missing(tried) => json!({"status": "missing", "tried": tried}),
                    FileState::Unreadable(e) => {
                        json!({"status": "unreadable", "problem": e.to_string()})
                    }
                };
                file["name"] = json!(r.name);
                file["expected_sha256"] = json!(super::expected_sha256(kind, r.name));
                file
            })
            .collect();
        let report = json!({
            "dataset": kind.to_string(),
            "dir": dir.path,
            "source": dir.source,
            "ok": reports.iter().all(|r| r.ok()),
            "files": files,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{kind} in {} ({})", dir.path.display(), dir.source);
        for r in &reports {
            match &r.state {
                FileState::Checked(c) if c.ok => {
                    println!("  ok        {}  {}", c.sha256, c.file.display());
                }
                FileState::Checked(c) => println!(
                    "  MISMATCH  {}  {} (expected {})",
                    c.sha256,
                    c.file.display(),
                    c.expected
                ),
                FileState::Missing(tried) => {
                    let tried: Vec<String> =
                        tried.iter().map(|p| p.display().to_string()).collect();
                    println!("  missing   {} (tried {})", r.name, tried.join(", "));
                }
                FileState::Unreadable(e) => println!("  damaged   {e}"),
            }
        }
    }
    let bad = reports.iter().filter(|r| !r.ok()).count();
    if bad > 0 {
        let data = args
            .data
            .as_ref()
            .map_or(String::new(), |d| format!(" --data {}", d.display()));
        anyhow::bail!(
            "{bad} of the {} {kind} files are missing, damaged or not the official ones: fetch \
             them with `digits data fetch{data}`",
            reports.len()
        );
    }
    if !json {
        println!("all {} files match the official checksums", reports.len());
    }
    Ok(())
}
