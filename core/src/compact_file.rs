//! The model file of a compact network: format version 2, the same envelope as version 1
//! ([`crate::model_file`]) with a layer list in place of the fixed architecture; version 3 when
//! a layer is a convolution, each layer then listing its windows.
//!
//! ```text
//! "DIGITSNN" | 2 (varint) | side | layers [inputs, outputs, bits]... | metadata
//!            | tensors [codesK, biasK, rescaleK for each layer K]... | CRC-32 (4 bytes, LE)
//! "DIGITSNN" | 3 (varint) | side | layers [inputs, outputs, bits, windows?]... | (as 2)
//! ```
//!
//! Decoding checks, in order: length, magic, version, checksum, envelope, bits, tensor names
//! and sizes, then [`Compact::check`] (shapes chain, windows fit, ranges that keep the integers
//! in `i32`). The decoded model borrows its tensors from the input: a device runs it from flash
//! as it is.

use heapless::Vec as HVec;
use serde::{Deserialize, Serialize};

use crate::compact::{Compact, Layer, MAX_LAYERS};
use crate::conv::Windows;
use crate::lowbit::Bits;
use crate::model_file::{
    COMPACT_VERSION, MAGIC, Metadata, ModelFile, ModelFileError, TensorBlob, WINDOWS_VERSION,
    decode, seal, verified,
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

/// Where a convolution's windows lie, as the file lists it (see [`Windows`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// Positions along each axis of the input map.
    pub side: u8,
    /// Values per position.
    pub channels: u16,
    /// Positions along each axis of a window.
    pub kernel: u8,
    /// Positions from one window to the next.
    pub stride: u8,
}

/// One layer as a version 3 file lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowedLayerSpec {
    /// Inputs, units and bits, as in version 2.
    pub layer: LayerSpec,
    /// A convolution's windows; `None` for a dense layer.
    pub windows: Option<WindowSpec>,
}

#[derive(Serialize, Deserialize)]
struct Body<'a, L> {
    side: u8,
    layers: HVec<L, MAX_LAYERS>,
    #[serde(borrow)]
    metadata: Metadata<'a>,
    #[serde(borrow)]
    tensors: HVec<TensorBlob<'a>, MAX_COMPACT_TENSORS>,
}

#[derive(Serialize, Deserialize)]
struct File<'a, L> {
    magic: [u8; 8],
    version: u16,
    #[serde(borrow)]
    body: Body<'a, L>,
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
    /// Version 2 or 3: a compact network.
    Compact(CompactFile<'a>),
}

/// Writes the file's content (all but the checksum) into `out`; returns its length.
fn write_content<L: Serialize>(
    version: u16,
    side: u8,
    layers: HVec<L, MAX_LAYERS>,
    metadata: &Metadata<'_>,
    tensors: &HVec<TensorBlob<'_>, MAX_COMPACT_TENSORS>,
    out: &mut [u8],
) -> Result<usize, postcard::Error> {
    let file = File {
        magic: MAGIC,
        version,
        body: Body {
            side,
            layers,
            metadata: metadata.clone(),
            tensors: tensors.clone(),
        },
    };
    postcard::to_slice(&file, out).map(|s| s.len())
}

/// Writes `model` (which must pass [`Compact::check`]) with `metadata` into `buf`: version 2,
/// or 3 when a layer is a convolution. Returns the length used.
pub fn encode_compact(
    model: &Compact<'_>,
    metadata: &Metadata<'_>,
    buf: &mut [u8],
) -> Result<usize, ModelFileError> {
    model.check().map_err(ModelFileError::BadCompact)?;
    let mut tensors = HVec::new();
    for (k, l) in model.layers.iter().enumerate() {
        for (t, bytes) in [l.codes, l.bias, l.rescale].into_iter().enumerate() {
            let name = NAMES[3 * k + t];
            tensors
                .push(TensorBlob { name, bytes })
                .expect("three per layer");
        }
    }
    let spec = |l: &Layer<'_>| LayerSpec {
        inputs: l.inputs as u16,
        outputs: l.outputs as u16,
        bits: l.bits.count() as u8,
    };
    let room = buf.len().saturating_sub(4);
    let (side, out) = (model.side as u8, &mut buf[..room]);
    let written = if model.layers.iter().all(|l| l.windows.is_none()) {
        let layers: HVec<LayerSpec, MAX_LAYERS> = model.layers.iter().map(spec).collect();
        write_content(COMPACT_VERSION, side, layers, metadata, &tensors, out)
    } else {
        let layers: HVec<WindowedLayerSpec, MAX_LAYERS> = model
            .layers
            .iter()
            .map(|l| WindowedLayerSpec {
                layer: spec(l),
                windows: l.windows.map(|w| WindowSpec {
                    side: w.side as u8,
                    channels: w.channels as u16,
                    kernel: w.kernel as u8,
                    stride: w.stride as u8,
                }),
            })
            .collect();
        write_content(WINDOWS_VERSION, side, layers, metadata, &tensors, out)
    };
    let used = written.map_err(|_| ModelFileError::BufferTooSmall)?;
    seal(buf, used)
}

/// Bytes needed to encode `model` with this much metadata text.
pub fn compact_len_bound(model: &Compact<'_>, metadata_text: usize) -> usize {
    model.weight_bytes() + MAX_COMPACT_TENSORS * 16 + MAX_LAYERS * 8 + metadata_text + 128
}

/// Verifies and decodes a model file of any version.
pub fn decode_any(bytes: &[u8]) -> Result<AnyModelFile<'_>, ModelFileError> {
    match decode_compact(bytes) {
        Err(ModelFileError::CompactModel) => decode(bytes).map(AnyModelFile::Mlp),
        other => other.map(AnyModelFile::Compact),
    }
}

/// Verifies and decodes a compact network's file (versions 2 and 3); a file of the 784-128-10
/// network (version 1) is [`ModelFileError::CompactModel`]'s opposite case, reported as that
/// error, which [`decode_any`] takes as its cue.
pub fn decode_compact(bytes: &[u8]) -> Result<CompactFile<'_>, ModelFileError> {
    let (version, content) = verified(bytes)?;
    let body = match version {
        COMPACT_VERSION => match postcard::take_from_bytes::<File<'_, LayerSpec>>(content) {
            Ok((file, [])) => {
                let b = file.body;
                let layers = b.layers.iter().map(|&layer| WindowedLayerSpec {
                    layer,
                    windows: None,
                });
                Body {
                    side: b.side,
                    layers: layers.collect(),
                    metadata: b.metadata,
                    tensors: b.tensors,
                }
            }
            _ => return Err(ModelFileError::Malformed),
        },
        WINDOWS_VERSION => {
            match postcard::take_from_bytes::<File<'_, WindowedLayerSpec>>(content) {
                Ok((file, [])) => file.body,
                _ => return Err(ModelFileError::Malformed),
            }
        }
        _ => return Err(ModelFileError::CompactModel),
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
        let WindowedLayerSpec {
            layer: spec,
            windows,
        } = *spec;
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
            windows: windows.map(|w| Windows {
                side: w.side as usize,
                channels: w.channels as usize,
                kernel: w.kernel as usize,
                stride: w.stride as usize,
            }),
            codes: t[0].bytes,
            bias: t[1].bytes,
            rescale: t[2].bytes,
        };
        // `expect` would format the layer with `Debug`: kilobytes of the page's module.
        if layers.push(layer).is_err() {
            unreachable!("as many layers as the specs");
        }
    }
    let model = Compact {
        side: body.side as usize,
        layers,
    };
    model.check().map_err(ModelFileError::BadCompact)?;
    Ok(CompactFile {
        model,
        metadata: body.metadata,
    })
}
