//! `digits data fetch`, and the first run of any command that reads the dataset: downloads the
//! files of a dataset from a mirror, verifies each against the official SHA-256 of its
//! decompressed content, and only then moves it into place.
//!
//! What it guarantees, whatever the mirror sends:
//!
//! - A file that is already there and verifies is left alone (not even rewritten), unless
//!   `--force` says to download it anyway.
//! - A download goes to a temporary file in the target directory and is renamed over the
//!   target only once it has verified, so the target is always either the old file or the
//!   complete new one: a corrupt, truncated or oversized download is deleted and the next
//!   mirror is tried, and the file it would have replaced is untouched.
//! - No temporary file is left behind: those of this run are deleted on every error path,
//!   and those of a run that was killed (Ctrl-C) are deleted by the next run. Directories
//!   created for a fetch that got nothing are removed again.
//! - Each download is limited in size ([`MAX_DOWNLOAD_BYTES`]) and time (connect and per-read
//!   timeouts, and an overall limit), so a broken or hostile server cannot fill the disk or
//!   hang the command.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use flate2::bufread::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tempfile::NamedTempFile;

use crate::cli::number::Within;
use crate::data::{self, DataDir, DataError, DatasetKind};

/// Where MNIST is downloaded from when no `--mirror` is given, in the order tried: copies of
/// LeCun's files that the PyTorch and TensorFlow projects host (his own site now often refuses
/// downloads). Any copy will do: the checksums, not the mirror, vouch for the content.
const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Where Fashion-MNIST is downloaded from when no `--mirror` is given: Zalando's own bucket,
/// the address its README gives. It is plain HTTP; the checksums still vouch for the content.
const FASHION_MIRRORS: [&str; 1] = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

/// Largest download accepted for one file. The largest gzipped file, MNIST's training images,
/// is 9.9 MB; anything much larger is not the file asked for, and refusing it early keeps a
/// broken or hostile server from filling the disk.
pub const MAX_DOWNLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// The longest a single download may take, from connecting to the last byte: even a slow
/// link moves 10 MB in that time, while a server trickling one byte at a time (which the
/// per-read timeout does not catch) is given up on.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Temporary files of a download start with this, in the target directory, so that a later
/// run can recognize (and delete) the leftovers of a run that was killed.
const TEMP_PREFIX: &str = ".digits-fetch-";
/// ... and end with this.
const TEMP_SUFFIX: &str = ".tmp";

/// Bytes read from the network at a time.
const CHUNK: usize = 64 * 1024;

/// Seconds to wait for a server to accept the connection or to send more data.
const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// The options of `digits data fetch` besides the data directory and the dataset.
#[derive(clap::Args)]
pub struct FetchArgs {
    /// URL of a directory holding the four .gz files (e.g. http://host/mnist/); repeat to try
    /// several in order [default: the official mirrors of the dataset].
    #[arg(long = "mirror", value_name = "URL")]
    pub mirrors: Vec<String>,
    /// Download every file again, even one that is already there and verifies.
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for a server to accept the connection or to send more data before
    /// giving up on it: 1 to the overall limit of one download (an hour).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = DEFAULT_TIMEOUT_SECS,
        allow_negative_numbers = true,
        value_parser = Within::at_least(1u64).at_most(TOTAL_TIMEOUT.as_secs())
    )]
    pub timeout: u64,
}

/// What became of one file.
enum FetchOutcome {
    /// It was there already and verified.
    Present(PathBuf),
    /// It was downloaded from `url` (`bytes` bytes) and verified.
    Fetched {
        /// Where it now is.
        path: PathBuf,
        /// Where it came from.
        url: String,
        /// Size of the download.
        bytes: u64,
    },
}

/// Why one download attempt failed.
enum FetchFailure {
    /// The mirror could not be reached at all (no such host, connection refused, timeout,
    /// TLS failure): it is not asked again for the other files, so an offline machine gets
    /// one failure per mirror rather than one per mirror and file. Holds why.
    Unreachable(String),
    /// What the mirror sent is not the file (an HTTP error, a broken-off, corrupt or wrong
    /// download): worth trying the next mirror, and this one again for the next file.
    Mirror(String),
    /// Something about this machine (the target directory is not writable, the disk is full):
    /// no mirror would do better, so the command stops.
    Local(anyhow::Error),
}

/// Who is fetching, which decides where the messages go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Voice {
    /// `digits data fetch`: every step on stdout, every failed attempt on stderr.
    Fetch,
    /// The first run of a command that reads the dataset: everything on stderr (its stdout may
    /// be a JSON document), and unreachable mirrors left to its one-line error.
    FirstRun,
}

impl Voice {
    fn say(self, line: &str) {
        match self {
            Voice::Fetch => println!("{line}"),
            Voice::FirstRun => eprintln!("{line}"),
        }
    }
}

/// What a fetch achieved.
struct Outcome {
    /// Files downloaded.
    fetched: usize,
    /// Files (`NAME.gz`) no mirror gave.
    failed: Vec<String>,
    /// The mirrors that could not be reached, each with why.
    unreachable: Vec<(String, String)>,
    /// Whether any mirror could be reached.
    any_reachable: bool,
}

/// Fetches the four files of `kind` into `dir` (see the module documentation).
///
/// Fails, after trying every file, if any file could not be fetched from any mirror: each
/// failed attempt is printed as it happens, and the error names the files still missing and
/// how else to get them.
pub fn run(dir: &DataDir, kind: DatasetKind, args: &FetchArgs) -> Result<()> {
    let mirrors = mirrors(kind, &args.mirrors)?;
    let path = &dir.path;
    println!("{kind} into {} ({})", path.display(), dir.source);
    let outcome = fetch_files(
        path,
        kind,
        &data::FILES,
        &mirrors,
        Duration::from_secs(args.timeout),
        args.force,
        Voice::Fetch,
    )?;
    if outcome.failed.is_empty() {
        println!(
            "all {} files are there and match the official checksums ({} downloaded)",
            data::FILES.len(),
            outcome.fetched
        );
        return Ok(());
    }
    // What went wrong with each attempt was printed as it happened; this sums it up.
    let offline = if outcome.any_reachable {
        ""
    } else {
        "; no mirror could be reached (is this machine offline?)"
    };
    bail!(
        "could not fetch {} of the {} {kind} files into {}: {} (each mirror's answer is above){offline}; \
         nothing was left half-written and the files already there are untouched\n{}",
        outcome.failed.len(),
        data::FILES.len(),
        path.display(),
        outcome.failed.join(", "),
        how_else(kind)
    )
}

/// Downloads the files `missing` of `kind` into `dir`, where they are not: what the first run
/// of a command that reads the dataset does. Reports on stderr; fails with one line that says
/// what to do, and then leaves nothing half-written (the files it did get are complete and
/// verified, and serve the next run).
pub fn first_run(
    dir: &DataDir,
    kind: DatasetKind,
    missing: &[&'static str],
    given_mirrors: &[String],
) -> Result<()> {
    let mirrors = mirrors(kind, given_mirrors)?;
    let path = &dir.path;
    let files: Vec<String> = missing.iter().map(|name| format!("{name}.gz")).collect();
    eprintln!(
        "{kind}: {} not in {} ({}); downloading {} from {}, verified by the official SHA-256 \
         (`--no-download` to refuse)",
        if missing.len() == data::FILES.len() {
            "the dataset is".to_string()
        } else {
            format!("{} of its files are", missing.len())
        },
        path.display(),
        dir.source,
        files.join(", "),
        mirrors.join(" or ")
    );
    let outcome = fetch_files(
        path,
        kind,
        missing,
        &mirrors,
        Duration::from_secs(DEFAULT_TIMEOUT_SECS),
        false,
        Voice::FirstRun,
    )?;
    if outcome.failed.is_empty() {
        return Ok(());
    }
    let what_to_do = format!(
        "copy {} (gzipped or raw) into {} by other means, try another mirror with \
         `--mirror URL`, or point to files you have with `--data DIR`",
        outcome.failed.join(", "),
        path.display()
    );
    if !outcome.any_reachable {
        let why: Vec<String> = outcome
            .unreachable
            .iter()
            .map(|(mirror, why)| format!("{mirror}: {why}"))
            .collect();
        bail!(
            "{kind} not found in {} and no mirror could be reached ({}); {what_to_do}",
            path.display(),
            why.join("; ")
        );
    }
    bail!(
        "{kind} not found in {} and could not download {} (each mirror's answer is above); \
         {what_to_do}",
        path.display(),
        outcome.failed.join(", ")
    )
}

/// Fetches the files `names` of `kind` into `dir`, creating it if need be; the directories it
/// created are removed again if the fetch got nothing.
fn fetch_files(
    dir: &Path,
    kind: DatasetKind,
    names: &[&'static str],
    mirrors: &[String],
    timeout: Duration,
    force: bool,
    voice: Voice,
) -> Result<Outcome> {
    let created = create_dirs(dir)?;
    remove_leftovers(dir, voice);
    let agent = agent(timeout);
    let mut reachable = vec![true; mirrors.len()];
    let mut outcome = Outcome {
        fetched: 0,
        failed: Vec::new(),
        unreachable: Vec::new(),
        any_reachable: true,
    };
    for &name in names {
        let got = fetch_file(
            &agent,
            dir,
            kind,
            name,
            mirrors,
            &mut reachable,
            &mut outcome.unreachable,
            force,
            voice,
        );
        match got {
            Ok(Some(FetchOutcome::Present(file))) => {
                voice.say(&format!("  ok       {} (already there)", file.display()));
            }
            Ok(Some(FetchOutcome::Fetched { path, url, bytes })) => {
                outcome.fetched += 1;
                voice.say(&format!(
                    "  fetched  {} ({bytes} bytes from {url})",
                    path.display()
                ));
            }
            Ok(None) => outcome.failed.push(format!("{name}.gz")),
            Err(e) => {
                remove_created(&created);
                return Err(e);
            }
        }
    }
    outcome.any_reachable = reachable.iter().any(|&r| r);
    if !outcome.failed.is_empty() {
        // Leave no trace of a fetch that got nothing; fails harmlessly if anything is there.
        remove_created(&created);
    }
    Ok(outcome)
}

/// Creates `dir` and its missing parents; returns those it created, outermost first.
fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut created: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    created.reverse();
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(created)
}

/// Removes the directories `created` (outermost first) as long as they are empty.
fn remove_created(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        if fs::remove_dir(dir).is_err() {
            break;
        }
    }
}

/// The mirrors to try: those given, each checked to be an HTTP(S) URL, else the defaults.
fn mirrors(kind: DatasetKind, given: &[String]) -> Result<Vec<String>> {
    if given.is_empty() {
        let defaults: &[&str] = match kind {
            DatasetKind::Mnist => &MNIST_MIRRORS,
            DatasetKind::Fashion => &FASHION_MIRRORS,
        };
        return Ok(defaults.iter().map(|m| m.to_string()).collect());
    }
    for m in given {
        if !(m.starts_with("http://") || m.starts_with("https://")) {
            bail!(
                "--mirror {m}: expected the http:// or https:// URL of a directory holding the \
                 four .gz files; for files already on this machine use `--data DIR` instead"
            );
        }
    }
    Ok(given.to_vec())
}

/// The URL of `file` in the directory `mirror`, whether or not that ends with a slash.
fn file_url(mirror: &str, file: &str) -> String {
    if mirror.ends_with('/') {
        format!("{mirror}{file}")
    } else {
        format!("{mirror}/{file}")
    }
}

/// The last line of the error message: other ways to get the files.
fn how_else(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Mnist => {
            "try another mirror with `--mirror URL` (a directory holding the four .gz files), \
             or copy the four files (gzipped or raw) onto this machine by other means and \
             point to them with `--data DIR`"
        }
        DatasetKind::Fashion => {
            "install Debian's package instead (`apt-get install dataset-fashion-mnist`, which \
             puts the files in /usr/share/datasets/fashion-mnist), try another mirror with \
             `--mirror URL`, or copy the four files onto this machine by other means and point \
             to them with `--data DIR`"
        }
    }
}

/// An HTTP client with the limits of the module documentation.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(timeout))
        .timeout_per_read(Some(timeout))
        .timeout_per_write(Some(timeout))
        .timeout_global(Some(TOTAL_TIMEOUT))
        .user_agent(concat!("digits/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// Deletes the temporary files that a killed run left in `dir` (a run that ends normally
/// deletes its own). Best effort: a leftover that cannot be deleted is reported, not fatal.
fn remove_leftovers(dir: &Path, voice: Voice) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => voice.say(&format!(
                "  removed  {} (left by an interrupted fetch)",
                path.display()
            )),
            Err(e) => eprintln!(
                "warning: cannot remove {} (left by an interrupted fetch): {e}",
                path.display()
            ),
        }
    }
}

/// Makes sure file `name` of `kind` is in `dir` and verifies: keeps it if it is there and
/// verifies (unless `force`), else downloads it from the first mirror that gives a file that
/// verifies. `reachable` says which mirrors are still worth asking, and is updated; those found
/// unreachable are added to `unreachable` with why. `None` when no mirror gave the file (each
/// failure is printed, unreachable mirrors only by `digits data fetch`); an error stops the
/// command.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, each argument named"
)]
fn fetch_file(
    agent: &ureq::Agent,
    dir: &Path,
    kind: DatasetKind,
    name: &str,
    mirrors: &[String],
    reachable: &mut [bool],
    unreachable: &mut Vec<(String, String)>,
    force: bool,
    voice: Voice,
) -> Result<Option<FetchOutcome>> {
    // The file the loader would read: the raw form if it is there, else the gzipped one.
    // Replacing that one (and in the same form) is what makes `digits data check` pass.
    let raw = dir.join(name);
    let target = if raw.is_file() {
        raw
    } else {
        dir.join(format!("{name}.gz"))
    };
    if target.is_file() {
        match data::check_one(&target, kind, name) {
            Ok(c) if c.ok && !force => return Ok(Some(FetchOutcome::Present(target))),
            Ok(c) if c.ok => {}
            Ok(c) => voice.say(&format!(
                "  MISMATCH {} (sha256 {}, expected {}): fetching it again",
                target.display(),
                c.sha256,
                c.expected
            )),
            // The message already says to fetch the file again, which is what follows.
            Err(e) => voice.say(&format!("  damaged  {e}")),
        }
    }
    let file = format!("{name}.gz");
    for (mirror, reachable) in mirrors.iter().zip(reachable.iter_mut()) {
        let url = file_url(mirror, &file);
        // Its failure was printed when it happened, for an earlier file.
        if !*reachable {
            continue;
        }
        match download(agent, &url, dir, kind, name) {
            Ok((tmp, bytes)) => {
                install(tmp, &target)?;
                return Ok(Some(FetchOutcome::Fetched {
                    path: target,
                    url,
                    bytes,
                }));
            }
            Err(FetchFailure::Unreachable(why)) => {
                if voice == Voice::Fetch {
                    eprintln!("  failed   {file} from {url}: {why}");
                }
                unreachable.push((mirror.clone(), why));
                *reachable = false;
            }
            Err(FetchFailure::Mirror(message)) => eprintln!("  failed   {message}"),
            Err(FetchFailure::Local(e)) => return Err(e),
        }
    }
    Ok(None)
}

/// Downloads `url` (file `name` of `kind`, gzipped) into a new temporary file in `dir` and
/// verifies it; returns the file and its size. On any error the temporary file is deleted
/// (when the [`NamedTempFile`] is dropped).
fn download(
    agent: &ureq::Agent,
    url: &str,
    dir: &Path,
    kind: DatasetKind,
    name: &str,
) -> std::result::Result<(NamedTempFile, u64), FetchFailure> {
    let file = format!("{name}.gz");
    let fail = |what: String| FetchFailure::Mirror(format!("{file} from {url}: {what}"));
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => fail(format!("the server answered HTTP {code}")),
        // No answer at all: the mirror is down or out of reach.
        ureq::Error::Io(e) => FetchFailure::Unreachable(format!("no answer: {e}")),
        e @ (ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::Timeout(_)
        | ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)) => FetchFailure::Unreachable(format!("no answer: {e}")),
        e => fail(format!("cannot download: {e}")),
    })?;
    let body = response.into_body();
    let announced = body.content_length();
    if let Some(n) = announced
        && n > MAX_DOWNLOAD_BYTES
    {
        return Err(fail(too_large(Some(n))));
    }
    let mut tmp = temp_file(dir).map_err(FetchFailure::Local)?;
    let bar = progress_bar(&file, announced);
    // The limit guards against a server that announces no length (or a false one) and then
    // never stops sending.
    let mut reader = body.into_with_config().limit(MAX_DOWNLOAD_BYTES).reader();
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(fail(read_error(&e, received, announced)));
            }
        };
        tmp.write_all(&buf[..n]).map_err(|e| {
            FetchFailure::Local(anyhow!(
                "cannot write {} while downloading {file}: {e}",
                tmp.path().display()
            ))
        })?;
        received += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    // The client already refuses a body shorter than its Content-Length; checked again here
    // because a truncated file must never be installed, whoever is at fault.
    if let Some(n) = announced
        && received != n
    {
        return Err(fail(format!(
            "the download stopped after {received} of {n} bytes; try again or another --mirror"
        )));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| FetchFailure::Local(anyhow!("cannot write {}: {e}", tmp.path().display())))?;
    verify(tmp.path(), kind, name, &file, url).map_err(FetchFailure::Mirror)?;
    Ok((tmp, received))
}

/// The message for a download larger than [`MAX_DOWNLOAD_BYTES`].
fn too_large(announced: Option<u64>) -> String {
    let size = announced.map_or("more".to_string(), |n| format!("{n} bytes, more"));
    format!(
        "the server sends {size} than the {MAX_DOWNLOAD_BYTES}-byte limit for one file; no \
         dataset file is that large, refusing it; try another --mirror"
    )
}

/// Describes an error while reading the body, after `received` bytes.
fn read_error(e: &io::Error, received: u64, announced: Option<u64>) -> String {
    let over_limit = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|u| matches!(u, ureq::Error::BodyExceedsLimit(_)));
    if over_limit {
        return too_large(None);
    }
    let of = announced.map_or(String::new(), |n| format!(" of {n}"));
    format!(
        "the download broke off after {received}{of} bytes ({e}); try again or another --mirror"
    )
}

/// A new, empty temporary file in `dir`, readable like any file the user creates (tempfile's
/// default is owner-only, and the file keeps its permissions when it is renamed into place).
fn temp_file(dir: &Path) -> Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    builder
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))
}

/// A progress bar for downloading `file`: bytes, rate and time left when the size is known,
/// a spinner otherwise. Drawn on stderr only when that is a terminal.
fn progress_bar(file: &str, len: Option<u64>) -> ProgressBar {
    let (bar, template) = match len {
        Some(n) => (
            ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
            "  {msg} [{bar:30}] {bytes}/{total_bytes}  {binary_bytes_per_sec}  ETA {eta}",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "  {msg} {spinner} {bytes}  {binary_bytes_per_sec}",
        ),
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(file.to_string());
    bar
}

/// Checks a downloaded file: gzip data whose decompressed content has the official SHA-256
/// of `name`. The messages name the file and the URL it came from, not the temporary file,
/// which is about to be deleted.
fn verify(
    tmp: &Path,
    kind: DatasetKind,
    name: &str,
    file: &str,
    url: &str,
) -> std::result::Result<(), String> {
    let fail = |what: String| format!("{file} from {url}: {what}");
    // The file is stored under a .gz name, so it must be gzip; and a mirror that answers with
    // something else (an HTML error page with status 200) is best told as such.
    let mut magic = Vec::with_capacity(2);
    File::open(tmp)
        .and_then(|f| f.take(2).read_to_end(&mut magic))
        .map_err(|e| fail(format!("cannot read the download back: {e}")))?;
    if magic != [0x1f, 0x8b] {
        let start: Vec<String> = magic.iter().map(|b| format!("{b:02x}")).collect();
        return Err(fail(format!(
            "not gzip data (it starts with [{}]); the mirror sent something else; try another \
             --mirror",
            start.join(" ")
        )));
    }
    let check = data::check_one(tmp, kind, name).map_err(|e| {
        fail(match e {
            DataError::TruncatedGzip { source, .. } => format!(
                "truncated gzip data ({source}): the download is incomplete; try again or another \
             --mirror"
            ),
            DataError::CorruptGzip { source, .. } => {
                format!("corrupt gzip data ({source}); try another --mirror")
            }
            DataError::TooLarge { limit, .. } => format!(
                "larger than {limit} bytes once decompressed; no dataset file is that large; try \
             another --mirror"
            ),
            other => format!("cannot verify the download: {other}"),
        })
    })?;
    if !check.ok {
        return Err(format!(
            "checksum mismatch for {file} from {url}: expected sha256 {}, got {} (of the \
             decompressed content); try another --mirror",
            check.expected, check.sha256
        ));
    }
    Ok(())
}

/// Moves the verified download `tmp` into place at `target`, atomically: a reader of `target`
/// sees the old file or the new one, never a mix. A raw `target` (the loader reads the raw
/// form when there is one) gets the decompressed content, written to a temporary file first.
fn install(tmp: NamedTempFile, target: &Path) -> Result<()> {
    let gz = target.extension().is_some_and(|e| e == "gz");
    let file = if gz {
        tmp
    } else {
        let dir = target.parent().unwrap_or(Path::new("."));
        let mut raw = temp_file(dir)?;
        let reader = tmp.reopen()?;
        // Already verified, so it decompresses, and to a bounded size.
        io::copy(&mut MultiGzDecoder::new(BufReader::new(reader)), &mut raw)
            .and_then(|_| raw.as_file().sync_all())
            .with_context(|| format!("cannot write the decompressed {}", target.display()))?;
        raw
    };
    file.persist(target).with_context(|| {
        format!(
            "cannot move the new file into place at {}",
            target.display()
        )
    })?;
    Ok(())
}
