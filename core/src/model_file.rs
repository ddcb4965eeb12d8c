//! The model file: a postcard-encoded envelope with a magic, a format version, the architecture,
//! the precision, metadata and the tensors, followed by a CRC-32 of everything before it.
//!
//! ```text
//! "DIGITSNN" | version (varint) | envelope (postcard) ... | CRC-32 (4 bytes, little-endian)
//! ```
//!
//! Decoding checks, in order: length, magic, version, checksum, envelope, architecture,
//! precision, tensor sizes, finiteness, and says what is wrong and what to do. No heap: tensors
//! are borrowed from the input and copied into a model the caller owns.

use core::fmt;

use heapless::Vec as HVec;
use serde::{Deserialize, Serialize};

use crate::params::Params;
use crate::{Mlp, QuantMlp, Scalar};

/// First bytes of every model file.
pub const MAGIC: [u8; 8] = *b"DIGITSNN";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Most tensors an envelope may carry.
pub const MAX_TENSORS: usize = 8;
use crate::crc32::CRC32 as CRC;

/// Layer sizes of an [`Mlp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    /// Inputs (784 for 28x28 images).
    pub input: u32,
    /// Hidden units.
    pub hidden: u32,
    /// Classes.
    pub output: u32,
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.input, self.hidden, self.output)
    }
}

/// How the weights are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    /// 32-bit floats, little-endian.
    F32,
    /// 8-bit integers with per-channel scales.
    Int8,
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
        })
    }
}

/// Where a model came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata<'a> {
    /// Dataset trained on, e.g. `"mnist"`.
    pub dataset: &'a str,
    /// Accuracy on the dataset's test split, if measured.
    pub test_accuracy: Option<f32>,
    /// Seed of the training run.
    pub seed: u64,
    /// Epochs trained.
    pub epochs: u32,
    /// The training options, as text (e.g. JSON).
    pub options: &'a str,
}

/// One tensor's bytes, borrowed from the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorBlob<'a> {
    /// Name, e.g. `"W1"`.
    pub name: &'a str,
    /// Values, little-endian.
    pub bytes: &'a [u8],
}

/// The envelope after the magic and version.
#[derive(Serialize, Deserialize)]
struct Body<'a> {
    architecture: Architecture,
    precision: Precision,
    #[serde(borrow)]
    metadata: Metadata<'a>,
    #[serde(borrow)]
    tensors: HVec<TensorBlob<'a>, MAX_TENSORS>,
}

/// A decoded (and verified) model file; tensors still borrow the input.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile<'a> {
    /// Layer sizes.
    pub architecture: Architecture,
    /// Storage precision.
    pub precision: Precision,
    /// Provenance.
    pub metadata: Metadata<'a>,
    /// The tensors, in model order.
    pub tensors: HVec<TensorBlob<'a>, MAX_TENSORS>,
}

/// What can be wrong with a model file. Every message says what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelFileError {
    /// Shorter than magic + version + checksum.
    TooShort {
        /// File length.
        len: usize,
    },
    /// Does not start with [`MAGIC`].
    BadMagic {
        /// The first bytes found.
        found: [u8; 8],
    },
    /// Written by another format version.
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
    },
    /// The CRC-32 does not match.
    BadChecksum {
        /// Stored in the file.
        stored: u32,
        /// Computed over the contents.
        computed: u32,
    },
    /// The envelope does not decode.
    Malformed,
    /// A compact network (format version 2) given to a reader of the 784-128-10 network.
    CompactModel,
    /// A compact network's layer has codes of an unsupported width.
    BadBits {
        /// The layer, from 1.
        layer: usize,
        /// Its bits per code.
        bits: u8,
    },
    /// A compact network's layers do not make a network that runs.
    BadCompact(crate::compact::CompactError),
    /// The buffer given to [`encode`] is too small.
    BufferTooSmall,
    /// Architecture differs from the one expected.
    WrongArchitecture {
        /// In the file.
        found: Architecture,
        /// Expected by the caller.
        expected: Architecture,
    },
    /// Precision differs from the one expected.
    WrongPrecision {
        /// In the file.
        found: Precision,
        /// Expected by the caller.
        expected: Precision,
    },
    /// A tensor is missing, misnamed or of the wrong size.
    BadTensor {
        /// Index of the tensor.
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// Expected length in bytes.
        expected: usize,
    },
    /// A weight is NaN or infinite.
    NonFinite {
        /// Index of the tensor.
        index: usize,
    },
    /// An int8 tensor holds a value outside its range (a code of -128, a multiplier or shift
    /// that is not normalized, a scale that is not positive).
    OutOfRange {
        /// Index of the tensor.
        index: usize,
    },
}

impl fmt::Display for ModelFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ModelFileError::*;
        match self {
            TooShort { len } => write!(
                f,
                "{len} bytes is too short for a digits model file (truncated?); export it again"
            ),
            BadMagic { found } => write!(
                f,
                "not a digits model file (it starts with {}, a model starts with \"DIGITSNN\"); \
                 train one with `digits train` or pass the right file",
                HexList(found)
            ),
            UnsupportedVersion { found } => write!(
                f,
                "model file format version {found}, but this build reads versions {FORMAT_VERSION} \
                 to {WINDOWS_VERSION}; re-export the model with this version of digits, or update \
                 digits if the file is newer"
            ),
            CompactModel => write!(
                f,
                "the file holds a compact network (format version {COMPACT_VERSION} or \
                 {WINDOWS_VERSION}), which this \
                 reader does not run; use a 784-128-10 model, or `digits eval`/`digits predict`, \
                 which run both"
            ),
            BadBits { layer, bits } => write!(
                f,
                "layer {layer} has {bits}-bit weight codes, but compact networks use 2 or 4; \
                 train it again with `digits train --arch`"
            ),
            BadCompact(e) => write!(
                f,
                "{e}: the compact network does not hold together; train it again with \
                 `digits train --arch`"
            ),
            BadChecksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is \
                 corrupt or truncated; export or copy it again"
            ),
            Malformed => write!(
                f,
                "the model envelope does not decode although its checksum matches; \
                 it was written by an incompatible tool: export it again"
            ),
            BufferTooSmall => write!(f, "output buffer too small for the model file"),
            WrongArchitecture { found, expected } => write!(
                f,
                "the model is {found} but {expected} is expected; use a model trained for {expected}"
            ),
            WrongPrecision { found, expected } => write!(
                f,
                "the model is stored as {found} but {expected} is expected; export it with the \
                 matching precision"
            ),
            BadTensor {
                index,
                len,
                expected,
            } => write!(
                f,
                "tensor {index} has {len} bytes, {expected} expected: the file does not match \
                 its architecture; export it again"
            ),
            NonFinite { index } => write!(
                f,
                "tensor {index} holds NaN or infinite weights: the model diverged in training; \
                 retrain it (lower the learning rate)"
            ),
            OutOfRange { index } => write!(
                f,
                "tensor {index} of the int8 model holds a value out of its range: it was not \
                 written by `digits quantize`; quantize the f32 model again"
            ),
        }
    }
}

impl core::error::Error for ModelFileError {}

/// Architecture of an `Mlp<IN, HIDDEN, OUT>`.
pub const fn architecture_of<const IN: usize, const HIDDEN: usize, const OUT: usize>()
-> Architecture {
    Architecture {
        input: IN as u32,
        hidden: HIDDEN as u32,
        output: OUT as u32,
    }
}

/// Bytes needed to encode an `f32` model with this much metadata text.
pub const fn encoded_len_bound(num_params: usize, metadata_text: usize) -> usize {
    // Floats, plus per tensor a name and a length prefix, plus header, metadata, checksum.
    num_params * 4 + MAX_TENSORS * 16 + metadata_text + 128
}

/// Little-endian bytes of a tensor, serialized without a heap through postcard's byte-sequence
/// encoding (a length, then the bytes).
enum LeBytes<'a> {
    F32(&'a [f32]),
    I32(&'a [i32]),
    I8(&'a [i8]),
}

impl Serialize for LeBytes<'_> {
    fn serialize<Z: serde::Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        match self {
            LeBytes::F32(v) => s.collect_seq(v.iter().flat_map(|v| v.to_le_bytes())),
            LeBytes::I32(v) => s.collect_seq(v.iter().flat_map(|v| v.to_le_bytes())),
            LeBytes::I8(v) => s.collect_seq(v.iter().map(|&v| v as u8)),
        }
    }
}

#[derive(Serialize)]
struct NamedTensor<'a> {
    name: &'a str,
    bytes: LeBytes<'a>,
}

/// Writes the envelope and its checksum into `buf`; returns the length used.
fn encode_file(
    architecture: Architecture,
    precision: Precision,
    metadata: &Metadata<'_>,
    tensors: &[NamedTensor<'_>],
    buf: &mut [u8],
) -> Result<usize, ModelFileError> {
    #[derive(Serialize)]
    struct File<'a> {
        magic: [u8; 8],
        version: u16,
        architecture: Architecture,
        precision: Precision,
        metadata: &'a Metadata<'a>,
        tensors: &'a [NamedTensor<'a>],
    }
    let file = File {
        magic: MAGIC,
        version: FORMAT_VERSION,
        architecture,
        precision,
        metadata,
        tensors,
    };
    if buf.len() < 4 {
        return Err(ModelFileError::BufferTooSmall);
    }
    let body_room = buf.len() - 4;
    let used = postcard::to_slice(&file, &mut buf[..body_room])
        .map_err(|_| ModelFileError::BufferTooSmall)?
        .len();
    let crc = CRC.checksum(&buf[..used]);
    buf[used..used + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(used + 4)
}

/// Writes `model` with `metadata` as an `f32` model file into `buf`; returns the length used.
pub fn encode<const IN: usize, const HIDDEN: usize, const OUT: usize>(
    model: &Mlp<IN, HIDDEN, OUT, f32>,
    metadata: &Metadata<'_>,
    buf: &mut [u8],
) -> Result<usize, ModelFileError> {
    let tensor = |k: usize| {
        let t = model.tensor(k);
        NamedTensor {
            name: t.name,
            bytes: LeBytes::F32(t.data),
        }
    };
    encode_file(
        architecture_of::<IN, HIDDEN, OUT>(),
        Precision::F32,
        metadata,
        &[tensor(0), tensor(1), tensor(2), tensor(3)],
        buf,
    )
}

/// Names of an int8 model's tensors, in file order.
pub const INT8_TENSORS: [&str; 8] = [
    "W1",
    "b1",
    "m1",
    "shift1",
    "W2",
    "b2",
    "out_scale",
    "hidden_scale",
];

/// Writes the quantized `model` with `metadata` as an `Int8` model file into `buf`; returns
/// the length used.
pub fn encode_int8<const IN: usize, const HIDDEN: usize, const OUT: usize>(
    model: &QuantMlp<IN, HIDDEN, OUT>,
    metadata: &Metadata<'_>,
    buf: &mut [u8],
) -> Result<usize, ModelFileError> {
    let hidden_scale = [model.hidden_scale];
    let bytes = [
        LeBytes::I8(model.w1.as_flattened()),
        LeBytes::I32(&model.b1),
        LeBytes::I32(&model.m1),
        LeBytes::I32(&model.shift1),
        LeBytes::I8(model.w2.as_flattened()),
        LeBytes::I32(&model.b2),
        LeBytes::F32(&model.out_scale),
        LeBytes::F32(&hidden_scale),
    ];
    let mut tensors: HVec<NamedTensor<'_>, MAX_TENSORS> = HVec::new();
    for (name, bytes) in INT8_TENSORS.into_iter().zip(bytes) {
        tensors
            .push(NamedTensor { name, bytes })
            .map_err(|_| ModelFileError::BufferTooSmall)?;
    }
    encode_file(
        architecture_of::<IN, HIDDEN, OUT>(),
        Precision::Int8,
        metadata,
        &tensors,
        buf,
    )
}

/// The format version of compact networks (a layer list, low-bit codes:
/// [`crate::compact_file`]). Version 1 (this module) holds the 784-128-10 network.
pub const COMPACT_VERSION: u16 = 2;
/// The format version of compact networks with convolution layers: version 2 with each
/// layer's windows ([`crate::compact_file`]). Networks without them are still written as 2.
pub const WINDOWS_VERSION: u16 = 3;

/// Checks length, magic, version (1 or [`COMPACT_VERSION`]) and checksum; returns the version
/// and the content the checksum covers.
pub(crate) fn verified(bytes: &[u8]) -> Result<(u16, &[u8]), ModelFileError> {
    // Magic (8) + version (at least 1) + checksum (4).
    if bytes.len() < 13 {
        if bytes.len() >= 8 && bytes[..8] != MAGIC {
            return Err(ModelFileError::BadMagic {
                found: bytes[..8].try_into().expect("8 bytes"),
            });
        }
        return Err(ModelFileError::TooShort { len: bytes.len() });
    }
    if bytes[..8] != MAGIC {
        return Err(ModelFileError::BadMagic {
            found: bytes[..8].try_into().expect("8 bytes"),
        });
    }
    let (version, _) =
        postcard::take_from_bytes::<u16>(&bytes[8..]).map_err(|_| ModelFileError::Malformed)?;
    if !(FORMAT_VERSION..=WINDOWS_VERSION).contains(&version) {
        return Err(ModelFileError::UnsupportedVersion { found: version });
    }
    let (content, stored) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes(stored.try_into().expect("4 bytes"));
    let computed = CRC.checksum(content);
    if stored != computed {
        return Err(ModelFileError::BadChecksum { stored, computed });
    }
    Ok((version, content))
}

/// Seals `content` (magic, version, body) in `buf` with its checksum; returns the length.
pub(crate) fn seal(buf: &mut [u8], used: usize) -> Result<usize, ModelFileError> {
    if buf.len() < used + 4 {
        return Err(ModelFileError::BufferTooSmall);
    }
    let crc = CRC.checksum(&buf[..used]);
    buf[used..used + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(used + 4)
}

/// Verifies and decodes a model file of the 784-128-10 network (version 1); a compact network
/// (version 2) is refused with [`ModelFileError::CompactModel`].
pub fn decode(bytes: &[u8]) -> Result<ModelFile<'_>, ModelFileError> {
    let (version, content) = verified(bytes)?;
    if version != FORMAT_VERSION {
        return Err(ModelFileError::CompactModel);
    }
    #[derive(Deserialize)]
    struct File<'a> {
        _magic: [u8; 8],
        _version: u16,
        #[serde(borrow)]
        body: Body<'a>,
    }
    let file: File<'_> = match postcard::take_from_bytes(content) {
        Ok((file, [])) => file,
        _ => return Err(ModelFileError::Malformed),
    };
    let body = file.body;
    Ok(ModelFile {
        architecture: body.architecture,
        precision: body.precision,
        metadata: body.metadata,
        tensors: body.tensors,
    })
}

/// What a version 1 file says before its tensors.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Prefix<'a> {
    /// Layer sizes.
    pub architecture: Architecture,
    /// Storage precision.
    pub precision: Precision,
    /// Provenance.
    #[serde(borrow)]
    pub metadata: Metadata<'a>,
}

/// Decodes what a version 1 file says before its tensors, from its first bytes (a model slot
/// keeps them in its envelope: [`crate::update`]), without the checksum.
pub fn decode_prefix(bytes: &[u8]) -> Result<Prefix<'_>, ModelFileError> {
    #[derive(Deserialize)]
    struct Head<'a> {
        magic: [u8; 8],
        version: u16,
        #[serde(borrow)]
        prefix: Prefix<'a>,
    }
    let (head, _) =
        postcard::take_from_bytes::<Head<'_>>(bytes).map_err(|_| ModelFileError::Malformed)?;
    if head.magic != MAGIC || head.version != FORMAT_VERSION {
        return Err(ModelFileError::Malformed);
    }
    Ok(head.prefix)
}

/// The value checks of a version 1 file's tensor `index` (its little-endian `bytes`): `f32`
/// weights finite; int8 codes in `-127..=127`, multipliers in `[2^30, 2^31)`, shifts in
/// `1..=62`, scales positive and finite ([`INT8_TENSORS`] order).
pub fn check_tensor(
    precision: Precision,
    index: usize,
    bytes: &[u8],
) -> Result<(), ModelFileError> {
    let words = || {
        bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    };
    let floats = || bytes.chunks_exact(4).map(f32_le);
    let in_range = match (precision, index) {
        (Precision::F32, _) => {
            if floats().any(|v| !v.is_finite()) {
                return Err(ModelFileError::NonFinite { index });
            }
            true
        }
        (Precision::Int8, 0 | 4) => bytes.iter().all(|&b| b != 0x80),
        (Precision::Int8, 2) => words().all(|m| m >= 1 << 30),
        (Precision::Int8, 3) => words().all(|s| (1..=62).contains(&s)),
        (Precision::Int8, 6 | 7) => {
            if floats().any(|v| !v.is_finite()) {
                return Err(ModelFileError::NonFinite { index });
            }
            floats().all(|v| v > 0.0)
        }
        (Precision::Int8, _) => true,
    };
    if in_range {
        Ok(())
    } else {
        Err(ModelFileError::OutOfRange { index })
    }
}

impl ModelFile<'_> {
    /// Checks that the file holds a network of `architecture` stored as `precision`.
    fn expect(
        &self,
        architecture: Architecture,
        precision: Precision,
    ) -> Result<(), ModelFileError> {
        if self.architecture != architecture {
            return Err(ModelFileError::WrongArchitecture {
                found: self.architecture,
                expected: architecture,
            });
        }
        if self.precision != precision {
            return Err(ModelFileError::WrongPrecision {
                found: self.precision,
                expected: precision,
            });
        }
        Ok(())
    }

    /// Copies the weights into `model`, after checking architecture, precision, tensor sizes
    /// and that every weight is finite. `model` is untouched on error.
    pub fn load_into<const IN: usize, const HIDDEN: usize, const OUT: usize, S: Scalar>(
        &self,
        model: &mut Mlp<IN, HIDDEN, OUT, S>,
    ) -> Result<(), ModelFileError> {
        self.expect(architecture_of::<IN, HIDDEN, OUT>(), Precision::F32)?;
        if self.tensors.len() != model.tensor_count() {
            return Err(ModelFileError::BadTensor {
                index: self.tensors.len().min(model.tensor_count()),
                len: 0,
                expected: 0,
            });
        }
        // Check everything before writing anything.
        for (k, blob) in self.tensors.iter().enumerate() {
            let expected = model.tensor(k).data.len() * 4;
            if blob.bytes.len() != expected || blob.name != model.tensor(k).name {
                return Err(ModelFileError::BadTensor {
                    index: k,
                    len: blob.bytes.len(),
                    expected,
                });
            }
            check_tensor(Precision::F32, k, blob.bytes)?;
        }
        for (k, blob) in self.tensors.iter().enumerate() {
            for (w, c) in model
                .tensor_mut(k)
                .data
                .iter_mut()
                .zip(blob.bytes.chunks_exact(4))
            {
                *w = S::from_f64(f32_le(c) as f64);
            }
        }
        Ok(())
    }
}

fn f32_le(c: &[u8]) -> f32 {
    f32::from_le_bytes([c[0], c[1], c[2], c[3]])
}

/// Bytes as `{:02x?}` writes them (`[44, 49, 47]`), without the `Debug` machinery, which is
/// kilobytes of the page's module.
struct HexList<'a>(&'a [u8]);

impl fmt::Display for HexList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, b) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{b:02x}")?;
        }
        f.write_str("]")
    }
}

impl ModelFile<'_> {
    /// Copies an int8 model's tensors into `model`, after checking architecture, precision,
    /// tensor names and sizes, and every value's range (codes in `-127..=127`, multipliers in
    /// `[2^30, 2^31)`, shifts in `1..=62`, scales positive and finite). `model` is untouched
    /// on error.
    pub fn load_int8_into<const IN: usize, const HIDDEN: usize, const OUT: usize>(
        &self,
        model: &mut QuantMlp<IN, HIDDEN, OUT>,
    ) -> Result<(), ModelFileError> {
        self.expect(architecture_of::<IN, HIDDEN, OUT>(), Precision::Int8)?;
        // Element sizes and counts, in file order.
        let shapes = [
            (1, IN * HIDDEN),
            (4, HIDDEN),
            (4, HIDDEN),
            (4, HIDDEN),
            (1, OUT * HIDDEN),
            (4, OUT),
            (4, OUT),
            (4, 1),
        ];
        if self.tensors.len() != shapes.len() {
            return Err(ModelFileError::BadTensor {
                index: self.tensors.len().min(shapes.len()),
                len: 0,
                expected: 0,
            });
        }
        let t = &self.tensors;
        for (index, ((blob, (size, count)), name)) in
            t.iter().zip(shapes).zip(INT8_TENSORS).enumerate()
        {
            if blob.bytes.len() != size * count || blob.name != name {
                return Err(ModelFileError::BadTensor {
                    index,
                    len: blob.bytes.len(),
                    expected: size * count,
                });
            }
        }
        let words = |k: usize| {
            t[k].bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        };
        let floats = |k: usize| t[k].bytes.chunks_exact(4).map(f32_le);
        for (index, blob) in t.iter().enumerate() {
            check_tensor(Precision::Int8, index, blob.bytes)?;
        }
        for (q, &b) in model.w1.as_flattened_mut().iter_mut().zip(t[0].bytes) {
            *q = b as i8;
        }
        for (dst, k) in [
            (&mut model.b1, 1),
            (&mut model.m1, 2),
            (&mut model.shift1, 3),
        ] {
            for (d, v) in dst.iter_mut().zip(words(k)) {
                *d = v;
            }
        }
        for (q, &b) in model.w2.as_flattened_mut().iter_mut().zip(t[4].bytes) {
            *q = b as i8;
        }
        for (d, v) in model.b2.iter_mut().zip(words(5)) {
            *d = v;
        }
        for (d, v) in model.out_scale.iter_mut().zip(floats(6)) {
            *d = v;
        }
        model.hidden_scale = floats(7).next().expect("one value");
        Ok(())
    }
}
