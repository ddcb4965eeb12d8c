//! Model files on disk: written atomically, read with errors that name the file.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use digits_core::compact_file::{self, AnyModelFile, compact_len_bound, decode_any};
use digits_core::model_file::{self, Metadata, Precision};
use digits_core::params::Params;
use digits_core::{Classifier, MnistMlp, MnistQuant};

use crate::train::aligned::ModelBox;
use crate::train::compact::store::QuantizedNet;

/// Provenance of a model, owned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provenance {
    /// Dataset trained on.
    pub dataset: String,
    /// Test accuracy, if measured.
    pub test_accuracy: Option<f32>,
    /// Training seed.
    pub seed: u64,
    /// Epochs trained.
    pub epochs: u32,
    /// Training options (JSON).
    pub options: String,
}

/// A model read from a file, with what the file says about it.
pub struct Loaded {
    /// The weights.
    pub model: ModelBox,
    /// The metadata.
    pub provenance: Provenance,
    /// File size in bytes.
    pub bytes: usize,
}

/// A network of either precision, as a model file holds it.
pub enum Weights {
    /// `f32` weights.
    F32(ModelBox),
    /// int8 codes (`digits quantize`).
    Int8(Box<MnistQuant>),
    /// A compact network, low-bit codes (`digits train --arch`).
    Compact(Box<QuantizedNet>),
}

impl Weights {
    /// The network as a classifier of 8-bit images.
    pub fn classifier(&self) -> &(dyn Classifier<784, 10> + Sync) {
        match self {
            Weights::F32(m) => &**m,
            Weights::Int8(q) => &**q,
            Weights::Compact(c) => &**c,
        }
    }
}

/// A model file of either precision, read.
pub struct LoadedWeights {
    /// The network.
    pub weights: Weights,
    /// The metadata.
    pub provenance: Provenance,
    /// File size in bytes.
    pub bytes: usize,
    /// The file as read and verified (what a push sends: not read again, so not another file).
    pub file: Vec<u8>,
}

/// Reads and verifies a model file of either precision.
pub fn load_weights(path: &Path) -> Result<LoadedWeights> {
    let bytes = read_bounded(path, MAX_MODEL_FILE_BYTES, "model file")?;
    not_a_checkpoint(path, &bytes)?;
    let (weights, provenance) = decode_weights(path, &bytes)?;
    Ok(LoadedWeights {
        weights,
        provenance,
        bytes: bytes.len(),
        file: bytes,
    })
}

/// The network and metadata of model-file `bytes` of either precision, read from `path`.
fn decode_weights(path: &Path, bytes: &[u8]) -> Result<(Weights, Provenance)> {
    let context = || format!("model file {}", path.display());
    let file = match decode_any(bytes).with_context(context)? {
        AnyModelFile::Mlp(file) => file,
        AnyModelFile::Compact(c) => {
            if c.model.classes() != 10 {
                bail!(
                    "model file {}: the compact network has {} classes, digits needs 10",
                    path.display(),
                    c.model.classes()
                );
            }
            let weights = Weights::Compact(Box::new(QuantizedNet::from_view(&c.model)));
            return Ok((weights, provenance(&c.metadata)));
        }
    };
    let weights = match file.precision {
        Precision::F32 => {
            let mut model: ModelBox = ModelBox::zeroed();
            file.load_into(&mut *model).with_context(context)?;
            Weights::F32(model)
        }
        Precision::Int8 => {
            let mut model: Box<MnistQuant> = bytemuck::zeroed_box();
            file.load_int8_into(&mut *model).with_context(context)?;
            Weights::Int8(model)
        }
    };
    Ok((weights, provenance(&file.metadata)))
}

fn provenance(m: &Metadata<'_>) -> Provenance {
    Provenance {
        dataset: m.dataset.to_string(),
        test_accuracy: m.test_accuracy,
        seed: m.seed,
        epochs: m.epochs,
        options: m.options.to_string(),
    }
}

fn metadata(p: &Provenance) -> Metadata<'_> {
    Metadata {
        dataset: &p.dataset,
        test_accuracy: p.test_accuracy,
        seed: p.seed,
        epochs: p.epochs,
        options: &p.options,
    }
}

/// Encodes an int8 model file in memory.
pub fn encode_int8(model: &MnistQuant, p: &Provenance) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; MnistQuant::stored_bytes() + 1024 + p.dataset.len() + p.options.len()];
    let n = model_file::encode_int8(model, &metadata(p), &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Encodes a compact network's model file (format version 2) in memory.
pub fn encode_compact(net: &QuantizedNet, p: &Provenance) -> Result<Vec<u8>> {
    let model = net.view();
    let mut buf = vec![0u8; compact_len_bound(&model, p.dataset.len() + p.options.len())];
    let n = compact_file::encode_compact(&model, &metadata(p), &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Encodes a model file in memory.
pub fn encode(model: &MnistMlp, p: &Provenance) -> Result<Vec<u8>> {
    let meta = metadata(p);
    let mut buf =
        vec![
            0u8;
            model_file::encoded_len_bound(model.num_params(), p.dataset.len() + p.options.len())
        ];
    let n = model_file::encode(model, &meta, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced, then
/// renamed over the target, so a reader never sees half a file. The directory must exist:
/// none is created behind the user's back (the options naming outputs check it first,
/// [`crate::cli::output`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "cannot write {}: the directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    remove_dead_writers_files(dir);
    // Readable like any file the user creates (tempfile's default is owner-only).
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    let mut tmp = builder
        .prefix(&prefix)
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot move the new file into place at {}", path.display()))?;
    Ok(())
}

/// Start of the name of [`write_atomically`]'s temporary files: then the writer's process id.
const TEMP_PREFIX: &str = ".digits-";

/// Deletes the temporary files of [`write_atomically`] in `dir` whose writer is dead (killed
/// between creating and renaming one: `kill -9`, a power cut). A live writer's, this process's
/// included, are left alone. Where there is no `/proc` to ask, nothing is deleted. Best effort:
/// a file that cannot be deleted stays.
fn remove_dead_writers_files(dir: &Path) {
    let proc = Path::new("/proc/self");
    if !proc.exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        // Only `.digits-<pid>-...`: other temporary files of digits have a word there.
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            std::fs::remove_file(entry.path()).ok();
        }
    }
}

/// Saves a model file atomically.
pub fn save(path: &Path, model: &MnistMlp, p: &Provenance) -> Result<()> {
    write_atomically(path, &encode(model, p)?)
}

/// Reads and verifies a model file.
pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = read_bounded(path, MAX_MODEL_FILE_BYTES, "model file")?;
    not_a_checkpoint(path, &bytes)?;
    decode(&bytes).with_context(|| format!("model file {}", path.display()))
}

/// Verifies and decodes model-file bytes.
pub fn decode(bytes: &[u8]) -> Result<Loaded> {
    let file = model_file::decode(bytes)?;
    let mut model: ModelBox = ModelBox::zeroed();
    file.load_into(&mut *model)?;
    Ok(Loaded {
        model,
        provenance: provenance(&file.metadata),
        bytes: bytes.len(),
    })
}

/// Refuses a training checkpoint given where a model file goes, saying what it is and how its
/// run is finished.
fn not_a_checkpoint(path: &Path, bytes: &[u8]) -> Result<()> {
    if !crate::train::checkpoint::is_checkpoint(bytes) {
        return Ok(());
    }
    // The default checkpoint is the model file + ".ckpt": then `--out` names both.
    let name = path.to_string_lossy();
    let resume = match name.strip_suffix(".ckpt") {
        Some(out) if !out.is_empty() => format!("--out {out}"),
        _ => format!("--checkpoint {name}"),
    };
    anyhow::bail!(
        "{name} is a training checkpoint, not a model file: finish its run with \
         `digits train --resume {resume}` (and the run's other options), which writes the model"
    )
}

/// Largest model file read: 40 times the f32 MNIST model (407,356 bytes), so that a wrong
/// path (a disk image, a video) is refused at once instead of read into memory.
pub const MAX_MODEL_FILE_BYTES: u64 = 16 << 20;

/// `path` for a message, with its absolute form when relative: a relative default such as
/// `model.digits`, read outside the directory it was meant for, says where it was looked for.
pub fn where_is(path: &Path) -> String {
    match std::path::absolute(path) {
        Ok(abs) if path.is_relative() => format!("{} ({})", path.display(), abs.display()),
        _ => path.display().to_string(),
    }
}

/// Reads `path` whole if it holds at most `limit` bytes; a larger file is refused before
/// anything is allocated, with a message that names the `what`, its size and the limit.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", where_is(path)))?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {what} {}", path.display()))?
        .len();
    let too_large = |len: u64| {
        anyhow::anyhow!(
            "{what} {} is {len} bytes, more than any {what} digits writes (limit {limit} bytes); \
             is it the right file?",
            path.display()
        )
    };
    if len > limit {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // One byte past the limit tells a file that grew since its size was taken.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod bounded_tests {
    use super::*;

    #[test]
    fn a_dead_writers_temporary_file_is_removed_and_a_live_ones_kept() {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // Above Linux's largest process id: never alive.
        let dead = dir.path().join(".digits-999999999-abc");
        let mine = dir
            .path()
            .join(format!(".digits-{}-abc", std::process::id()));
        let other_kind = dir.path().join(".digits-check-abc");
        for f in [&dead, &mine, &other_kind] {
            std::fs::write(f, b"x").unwrap();
        }
        write_atomically(&dir.path().join("out.bin"), b"bytes").unwrap();
        assert!(!dead.exists());
        assert!(mine.exists() && other_kind.exists());
        assert_eq!(std::fs::read(dir.path().join("out.bin")).unwrap(), b"bytes");
    }

    /// A 10 GB file (sparse: it takes no disk space) is refused by its size (the message
    /// gives the size from the file system; a read would have stopped one byte past the
    /// limit); a file within the limit is read whole.
    #[test]
    fn a_huge_file_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge.digits");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(10 << 30)
            .unwrap();
        let err = format!("{:#}", load_weights(&huge).err().expect("refused"));
        assert!(
            err.contains("huge.digits")
                && err.contains("10737418240 bytes")
                && err.contains("limit"),
            "{err}"
        );
        let small = dir.path().join("small");
        std::fs::write(&small, [7u8; 100]).unwrap();
        assert_eq!(read_bounded(&small, 100, "file").unwrap(), [7u8; 100]);
        let err = format!("{:#}", read_bounded(&small, 99, "file").unwrap_err());
        assert!(
            err.contains("100 bytes") && err.contains("limit 99"),
            "{err}"
        );
    }

    /// A missing directory is an error, and none is created; an existing one gets the file.
    #[test]
    fn writing_creates_no_directory() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("no/such/m.digits");
        let err = format!("{:#}", write_atomically(&deep, b"x").unwrap_err());
        assert!(
            err.contains(&format!(
                "the directory {} does not exist",
                dir.path().join("no/such").display()
            )),
            "{err}"
        );
        assert!(!dir.path().join("no").exists());
        let here = dir.path().join("m.digits");
        write_atomically(&here, b"x").unwrap();
        assert_eq!(std::fs::read(&here).unwrap(), b"x");
    }

    /// A checkpoint where a model file goes is named as one, with the command that finishes
    /// its run (not shown as bytes that are not a model's magic number).
    #[test]
    fn a_checkpoint_is_not_taken_for_a_model() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("m.digits.ckpt");
        crate::train::checkpoint::Checkpoint {
            config: "{}".into(),
            epochs_done: 1,
            rng: [1; 4],
            model: vec![],
            running: vec![],
            velocity: vec![],
            best_accuracy: Some(0.5),
            best_epoch: 1,
            best_model: vec![],
            history: vec![],
        }
        .save(&ckpt)
        .unwrap();
        for err in [load(&ckpt).err(), load_weights(&ckpt).err()] {
            let err = format!("{:#}", err.expect("refused"));
            assert_eq!(
                err,
                format!(
                    "{} is a training checkpoint, not a model file: finish its run with \
                     `digits train --resume --out {}` (and the run's other options), which \
                     writes the model",
                    ckpt.display(),
                    dir.path().join("m.digits").display()
                )
            );
        }
    }
}
