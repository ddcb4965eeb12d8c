//! The model file of a compact network: format version 2, the same envelope as version 1
//! ([`crate::model_file`]) with a layer list in place of the fixed architecture.
//!
//! ```text
//! "DIGITSNN" | 2 (varint) | side | layers [inputs, outputs, bits]... | metadata
//!            | tensors [codesK, biasK, rescaleK for each layer K]... | CRC-32 (4 bytes, LE)
//! ```
//!
//! Decoding checks, in order: length, magic, version, checksum, envelope, bits, tensor names
//! and sizes, then [`Compact::check`] (shapes chain, ranges that keep the integers in `i32`).
//! The decoded model borrows its tensors from the input: a device runs it from flash as it is.

use heapless::Vec as HVec;
use serde::{Deserialize, Serialize};

use crate::compact::{Compact, Layer, MAX_LAYERS};
use crate::lowbit::Bits;
use crate::model_file::{
    COMPACT_VERSION, MAGIC, Metadata, ModelFile, ModelFileError, TensorBlob, decode, seal, verified,
};

/// Most tensors of a compact model file: three per layer.
pub const MAX_COMPACT_TENSORS: usize = 3 * MAX_LAYERS;

/// Tensor names in file order: codes, biases and rescale of each layer.
const NAMES: [&str; MAX_COMPACT_TENSORS] = [
    "codes1", "bias1", "rescale1", "codes2", "bias2", "rescale2", "codes3", "bias3", "rescale3",
    "codes4", "bias4", "rescale4", "codes5", "bias5", "rescale5", "codes6", "bias6", "rescale6",
    "codes7", "bias7", "rescale7", "codes8", "bias8", "rescale8",
];

/// One layer as the file lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSpec {
    /// Inputs.
    pub inputs: u16,
    /// Units.
    pub outputs: u16,
    /// Bits per weight code.
    pub bits: u8,
}

#[derive(Serialize, Deserialize)]
struct Body<'a> {
    side: u8,
    layers: HVec<LayerSpec, MAX_LAYERS>,
    #[serde(borrow)]
    metadata: Metadata<'a>,
    #[serde(borrow)]
    tensors: HVec<TensorBlob<'a>, MAX_COMPACT_TENSORS>,
}

#[derive(Serialize, Deserialize)]
struct File<'a> {
    magic: [u8; 8],
    version: u16,
    #[serde(borrow)]
    body: Body<'a>,
}

/// A decoded, checked compact model file; the model borrows the input.
#[derive(Clone, Debug, PartialEq)]
pub struct CompactFile<'a> {
    /// The network, ready to run.
    pub model: Compact<'a>,
    /// Provenance.
    pub metadata: Metadata<'a>,
}

/// A model file of either kind.
#[derive(Clone, Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "no heap in the core; one value per file decoded"
)]
pub enum AnyModelFile<'a> {
    /// Version 1: the 784-128-10 network, `f32` or int8.
    Mlp(ModelFile<'a>),
    /// Version 2: a compact network.
    Compact(CompactFile<'a>),
}

/// Writes `model` (which must pass [`Compact::check`]) with `metadata` into `buf`; returns the
/// length used.
pub fn encode_compact(
    model: &Compact<'_>,
    metadata: &Metadata<'_>,
    buf: &mut [u8],
) -> Result<usize, ModelFileError> {
    model.check().map_err(ModelFileError::BadCompact)?;
    let mut layers = HVec::new();
    let mut tensors = HVec::new();
    for (k, l) in model.layers.iter().enumerate() {
        let spec = LayerSpec {
            inputs: l.inputs as u16,
            outputs: l.outputs as u16,
            bits: l.bits.count() as u8,
        };
        layers.push(spec).expect("at most MAX_LAYERS");
        for (t, bytes) in [l.codes, l.bias, l.rescale].into_iter().enumerate() {
            let name = NAMES[3 * k + t];
            tensors
                .push(TensorBlob { name, bytes })
                .expect("three per layer");
        }
    }
    let file = File {
        magic: MAGIC,
        version: COMPACT_VERSION,
        body: Body {
            side: model.side as u8,
            layers,
            metadata: metadata.clone(),
            tensors,
        },
    };
    let room = buf.len().saturating_sub(4);
    let used = postcard::to_slice(&file, &mut buf[..room])
        .map_err(|_| ModelFileError::BufferTooSmall)?
        .len();
    seal(buf, used)
}

/// Bytes needed to encode `model` with this much metadata text.
pub fn compact_len_bound(model: &Compact<'_>, metadata_text: usize) -> usize {
    model.weight_bytes() + MAX_COMPACT_TENSORS * 16 + MAX_LAYERS * 8 + metadata_text + 128
}

/// Verifies and decodes a model file of either version.
pub fn decode_any(bytes: &[u8]) -> Result<AnyModelFile<'_>, ModelFileError> {
    let (version, content) = verified(bytes)?;
    if version != COMPACT_VERSION {
        return decode(bytes).map(AnyModelFile::Mlp);
    }
    let body = match postcard::take_from_bytes::<File<'_>>(content) {
        Ok((file, [])) => file.body,
        _ => return Err(ModelFileError::Malformed),
    };
    let expected = 3 * body.layers.len();
    if body.tensors.len() != expected {
        return Err(ModelFileError::BadTensor {
            index: body.tensors.len().min(expected),
            len: 0,
            expected: 0,
        });
    }
    let mut layers = HVec::new();
    for (k, spec) in body.layers.iter().enumerate() {
        let bits = Bits::from_count(spec.bits as u32).ok_or(ModelFileError::BadBits {
            layer: k + 1,
            bits: spec.bits,
        })?;
        let t = &body.tensors[3 * k..3 * k + 3];
        for (i, blob) in t.iter().enumerate() {
            if blob.name != NAMES[3 * k + i] {
                return Err(ModelFileError::BadTensor {
                    index: 3 * k + i,
                    len: blob.bytes.len(),
                    expected: blob.bytes.len(),
                });
            }
        }
        let layer = Layer {
            inputs: spec.inputs as usize,
            outputs: spec.outputs as usize,
            bits,
            codes: t[0].bytes,
            bias: t[1].bytes,
            rescale: t[2].bytes,
        };
        layers.push(layer).expect("as many as the specs");
    }
    let model = Compact {
        side: body.side as usize,
        layers,
    };
    model.check().map_err(ModelFileError::BadCompact)?;
    Ok(AnyModelFile::Compact(CompactFile {
        model,
        metadata: body.metadata,
    }))
}
