//! The MNIST test set and the committed model, read on the host side of the comparisons with
//! code independent of the device's.

use super::{notice, under_ci, workspace_root};
use digits_core::model_file;
use digits_core::softmax::argmax;
use digits_core::{MnistMlp, MnistQuant, Params};
use firmware::eval::IMAGE_LEN;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// FNV-1a (64-bit), written out here rather than taken from the firmware crate, so that the
/// host side of every comparison is independent of the device code.
pub fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h = (*h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
}
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Where the MNIST IDX files are, if anywhere.
fn mnist_dir() -> Option<PathBuf> {
    let root = workspace_root();
    let candidates = std::env::var_os("MNIST_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([root.join("data/mnist"), root.join("../shared/data/mnist")]);
    candidates
        .into_iter()
        .find(|dir| idx_path(dir, "t10k-images-idx3-ubyte").is_some())
}

/// `dir/name.gz` or `dir/name`, whichever exists.
fn idx_path(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.gz")), dir.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// An IDX file's contents (gunzipped if it ends in `.gz`) after checking its magic; returns
/// the dimensions and the data.
fn read_idx(dir: &Path, name: &str, magic: u32) -> (Vec<u32>, Vec<u8>) {
    let path = idx_path(dir, name).unwrap_or_else(|| panic!("no {name} in {}", dir.display()));
    let raw = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out
    } else {
        raw
    };
    let word = |k: usize| u32::from_be_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap());
    assert_eq!(
        word(0),
        magic,
        "{}: not an IDX file of this kind",
        path.display()
    );
    let dims: Vec<u32> = (1..=(magic & 0xff) as usize).map(word).collect();
    let data = bytes[4 + 4 * dims.len()..].to_vec();
    let expected: u32 = dims.iter().product();
    assert_eq!(data.len(), expected as usize, "{}: length", path.display());
    (dims, data)
}

/// The MNIST test split: images and labels.
/// The MNIST test images and labels, or `None` (with a notice) when the data is not there
/// outside CI; under CI a missing data set fails the `test`.
pub fn mnist_test_set(test: &str) -> Option<(Vec<[u8; IMAGE_LEN]>, Vec<u8>)> {
    let Some(dir) = mnist_dir() else {
        let hint = "the MNIST test set (t10k-*-ubyte[.gz]) is not in $MNIST_DIR, data/mnist/ \
                    or ../shared/data/mnist/; `cargo run -p host -- data fetch` downloads it";
        assert!(!under_ci(), "CI=true: {hint}");
        static NOTICE: Once = Once::new();
        notice(&NOTICE, &format!("SKIPPED {test}: {hint}\n"));
        return None;
    };
    Some(read_test_set(&dir))
}

fn read_test_set(dir: &Path) -> (Vec<[u8; IMAGE_LEN]>, Vec<u8>) {
    let (dims, pixels) = read_idx(dir, "t10k-images-idx3-ubyte", 0x0803);
    assert_eq!(dims[1..], [28, 28]);
    let (_, labels) = read_idx(dir, "t10k-labels-idx1-ubyte", 0x0801);
    let images: Vec<[u8; IMAGE_LEN]> = pixels
        .chunks_exact(IMAGE_LEN)
        .map(|c| c.try_into().unwrap())
        .collect();
    assert_eq!(images.len(), labels.len());
    (images, labels)
}

/// The model the firmware embedded (`firmware::model::SOURCE`), decoded by `digits-core`.
pub fn model_from_file() -> Box<MnistMlp> {
    let path = firmware::model::SOURCE;
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file = model_file::decode(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut model = Box::new(MnistMlp::zeros());
    file.load_into(&mut *model)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    model
}

/// FNV-1a over every parameter, tensor by tensor (as the device reports it).
pub fn params_fnv(model: &MnistMlp) -> u64 {
    let mut h = FNV_START;
    for k in 0..model.tensor_count() {
        for v in model.tensor(k).data {
            fnv1a(&mut h, &v.to_bits().to_le_bytes());
        }
    }
    h
}

/// The int8 model the firmware embedded (`firmware::model::int8::SOURCE`), decoded by
/// `digits-core`, and the FNV-1a digest of its tensors as stored (what the device reports).
pub fn int8_model_from_file() -> (Box<MnistQuant>, u64) {
    let path = firmware::model::int8::SOURCE;
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file = model_file::decode(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut q = Box::new(MnistQuant::zeroed());
    file.load_int8_into(&mut *q)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut digest = FNV_START;
    for t in &file.tensors {
        fnv1a(&mut digest, t.bytes);
    }
    (q, digest)
}

/// The host's int8 results for a set of images, as the device reports its own.
pub struct Int8Logits {
    /// Each image's logits, as [`super::eval::hex`] prints them.
    pub hex: Vec<String>,
    /// FNV-1a over every logit's bits, in order.
    pub digest: u64,
    /// Images whose largest logit is their label.
    pub correct: usize,
}

/// Classifies `images` with `q` on the host.
pub fn int8_logits(q: &MnistQuant, images: &[[u8; IMAGE_LEN]], labels: &[u8]) -> Int8Logits {
    let mut out = Int8Logits {
        hex: Vec::with_capacity(images.len()),
        digest: FNV_START,
        correct: 0,
    };
    for (pixels, &y) in images.iter().zip(labels) {
        let z = q.logits(pixels);
        for v in z {
            fnv1a(&mut out.digest, &v.to_bits().to_le_bytes());
        }
        out.hex.push(super::eval::hex(&z));
        out.correct += usize::from(argmax(&z) == y as usize);
    }
    out
}
