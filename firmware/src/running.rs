//! The model a slot holds, viewed in place as the type that runs it.
//!
//! A slot's image is the byte layout of [`MnistMlp`] or [`MnistQuant`] (see
//! `digits_core::update`), and the model runs where it lies: viewing the bytes as the type is
//! the one `unsafe` step, in `view`, which checks size and alignment first.

use core::fmt::{self, Write};

use digits_core::compact::Compact;
use digits_core::digest::{compact_digest, int8_digest, params_digest};
use digits_core::update::Kind;
use digits_core::update::slot::Content;
use digits_core::{Classifier, MnistMlp, MnistQuant};

use crate::model::FlashModel;

/// The running model, borrowed from its slot.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "no heap on the device; one value at a time, on the stack"
)]
pub enum Running<'a> {
    /// A 784-128-10 network of `f32`.
    F32(&'a MnistMlp),
    /// A 784-128-10 network of int8 codes.
    Int8(&'a MnistQuant),
    /// A compact network.
    Compact(Compact<'a>),
}

/// Types whose every bit pattern is a valid value and that have no padding, so that any bytes
/// of their size may be viewed as one.
///
/// # Safety
///
/// Only for `#[repr(C)]` types made of integer and `f32` arrays without padding.
unsafe trait Plain: Sized {}

// SAFETY: `Mlp` and `Dense` are `#[repr(C)]` and hold only `f32` arrays (no padding).
unsafe impl Plain for MnistMlp {}
// SAFETY: `QuantMlp` is `#[repr(C)]`: `i32` and `f32` arrays first, then `i8` arrays whose
// sizes are multiples of 4 (no padding).
unsafe impl Plain for MnistQuant {}

/// `bytes` as a `T`, if they are exactly its size and aligned for it.
fn view<T: Plain>(bytes: &[u8]) -> Option<&T> {
    let aligned = (bytes.as_ptr() as usize).is_multiple_of(align_of::<T>());
    if bytes.len() != size_of::<T>() || !aligned {
        return None;
    }
    // SAFETY: size and alignment are checked above, every bit pattern is a valid `T`
    // (`Plain`), and the reference borrows `bytes`, so nothing writes them while it lives (the
    // slots write the flash only through `&mut`).
    Some(unsafe { &*bytes.as_ptr().cast::<T>() })
}

impl<'a> Running<'a> {
    /// The model a verified slot's `content` holds; `None` if its image is misaligned (which a
    /// slot layout never makes).
    pub fn of(content: &Content<'a>) -> Option<Self> {
        Some(match content.kind {
            Kind::F32 => Running::F32(view(content.image)?),
            Kind::Int8 => Running::Int8(view(content.image)?),
            Kind::Compact => Running::Compact(content.compact()?),
        })
    }

    /// The `f32` network, which fine-tuning needs.
    pub fn as_f32(&self) -> Option<&'a MnistMlp> {
        match self {
            Running::F32(m) => Some(m),
            _ => None,
        }
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Running::F32(_) => Kind::F32,
            Running::Int8(_) => Kind::Int8,
            Running::Compact(_) => Kind::Compact,
        }
    }

    /// Logits of one image (the host's bits), with the core's portable kernels: the `SMLAD`
    /// kernels of the `eval` programs give the same bits faster, but do not fit `serve`'s
    /// 64 KiB next to everything else.
    pub fn logits(&self, pixels: &[u8; 784]) -> [f32; 10] {
        match self {
            Running::F32(m) => m.classify(pixels),
            Running::Int8(q) => q.classify(pixels),
            Running::Compact(net) => {
                let mut z = [0.0f32; 10];
                net.logits_of_image(pixels, &mut z);
                z
            }
        }
    }

    /// Architecture and precision as `digits inspect` names them.
    pub fn describe(&self, out: &mut impl Write) -> fmt::Result {
        match self {
            Running::F32(m) => m.describe(out),
            Running::Int8(q) => q.describe(out),
            Running::Compact(net) => {
                net.write_arch(out)?;
                out.write_char(' ')?;
                net.write_precision(out)
            }
        }
    }

    /// FNV-1a over its parameters in model-file order (what the host compares).
    pub fn digest(&self) -> u64 {
        match self {
            Running::F32(m) => params_digest(m),
            Running::Int8(q) => int8_digest(q),
            Running::Compact(net) => compact_digest(net),
        }
    }
}
