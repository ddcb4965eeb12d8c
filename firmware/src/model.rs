//! The MNIST model, embedded at build time and read in place from flash.
//!
//! `build.rs` decodes the model file with `digits-core` (`models/mnist.digits`, or the file
//! `DIGITS_MODEL` names; a wrong or corrupt file stops the build with the core's message) and
//! writes its parameters in the memory layout of [`MnistMlp`]. Here those bytes become
//! [`MODEL`], a `static` without interior mutability, which the linker puts in `.rodata`, that
//! is in flash: nothing is copied to RAM, inference reads the weights where they are.
//!
//! # Why a byte image and not generated Rust source
//!
//! Two designs were possible: (a) the build script writes the raw bytes and the firmware views
//! them as an `Mlp`, or (b) it generates Rust source with 101,770 `f32::from_bits(0x...)`
//! constants. (b) needs no `unsafe`, but makes rustc parse, type-check and const-evaluate a
//! 101,770-element expression on every model change; (a) costs one `include_bytes!` and one
//! `transmute`, both checked by the compiler:
//!
//! - `Dense` and `Mlp` are `#[repr(C)]` in `digits-core`, so the layout is defined: `W1` row by
//!   row, `b1`, `W2`, `b2`, all `f32`, no padding, which is the order `build.rs` writes;
//! - the bytes are included as an array of exactly `size_of::<MnistMlp>()` bytes: a blob of
//!   any other size is a type error at compile time;
//! - the `transmute` happens by value in the `static`'s initializer, that is at compile time:
//!   the result is a properly aligned `MnistMlp` (no alignment question as with a pointer cast),
//!   and every bit pattern is a valid `f32` (the build script has rejected NaN and infinities).
//!
//! So the one `unsafe` below is as small as it gets, and there is no runtime cost at all.
//!
//! A compact network ([`FlashCompact`]) needs no `unsafe` at all: the core's integer inference
//! borrows its tensors as little-endian bytes, so they stay the file's bytes in flash and only
//! the layer list (a few hundred bytes) is built, on the stack.

use core::fmt::{self, Write};
use digits_core::compact::{Compact, Layer};
use digits_core::digest::{compact_digest, int8_digest, params_digest};
use digits_core::lowbit::Bits;
use digits_core::{Classifier, MnistMlp, MnistQuant};

mod info {
    include!(concat!(env!("OUT_DIR"), "/model_info.rs"));
}
pub use info::{DATASET, EPOCHS, SOURCE, TEST_ACCURACY, TRAINING_SEED};

/// Where the int8 model came from (`models/mnist-int8.digits` or `DIGITS_MODEL_INT8`).
pub mod int8 {
    include!(concat!(env!("OUT_DIR"), "/model_int8_info.rs"));
}

/// Bytes of [`MODEL`]: 101,770 `f32` parameters, 407,080 bytes.
pub const MODEL_BYTES: usize = size_of::<MnistMlp>();

/// The parameters as `build.rs` laid them out (the target's byte order).
const IMAGE: &[u8; MODEL_BYTES] = include_bytes!(concat!(env!("OUT_DIR"), "/model.bin"));

/// The embedded model, in flash (`.rodata`).
pub static MODEL: MnistMlp = {
    // SAFETY: `MnistMlp` is `#[repr(C)]` and made only of `f32` arrays (no padding, no
    // invalid bit patterns), and `IMAGE` is exactly its size (checked by the type above) and
    // holds its fields in declaration order in the target's byte order (build.rs).
    unsafe { core::mem::transmute::<[u8; MODEL_BYTES], MnistMlp>(*IMAGE) }
};

/// Bytes of [`MODEL_INT8`]: 103,248 (codes, biases, multipliers, shifts, scales).
pub const MODEL_INT8_BYTES: usize = size_of::<MnistQuant>();

/// The int8 model's bytes as `build.rs` laid them out (the target's byte order).
const IMAGE_INT8: &[u8; MODEL_INT8_BYTES] =
    include_bytes!(concat!(env!("OUT_DIR"), "/model_int8.bin"));

/// The embedded int8 model, in flash (`.rodata`); only binaries that use it carry it.
pub static MODEL_INT8: MnistQuant = {
    // SAFETY: `QuantMlp` is `#[repr(C)]` and made only of integer and f32 arrays (no padding:
    // the 4-byte arrays come first; every bit pattern is a valid integer, and the build script
    // has checked the floats are finite), and `IMAGE_INT8` is exactly its size, in its field
    // order and the target's byte order (build.rs).
    unsafe { core::mem::transmute::<[u8; MODEL_INT8_BYTES], MnistQuant>(*IMAGE_INT8) }
};

/// The compact model (`models/compact.digits`, or the file `DIGITS_MODEL_COMPACT` names): where
/// it came from, its input side and its layers.
pub mod compact {
    use digits_core::conv::Windows;

    /// One layer's shape, as `build.rs` found it in the model file.
    #[derive(Clone, Copy, Debug)]
    pub struct LayerShape {
        /// Inputs.
        pub inputs: usize,
        /// Outputs (of a convolution: windows times units).
        pub outputs: usize,
        /// Bits per weight code.
        pub bits: u32,
        /// A convolution's windows; `None` for a dense layer.
        pub windows: Option<Windows>,
    }
    include!(concat!(env!("OUT_DIR"), "/model_compact_info.rs"));
}

/// The compact model's tensors, each layer's codes, biases and rescale one after the other, as
/// its model file holds them (little-endian bytes), in flash (`.rodata`).
static COMPACT_IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model_compact.bin"));

/// The embedded compact network: the core's [`Compact`] over the tensors in flash.
#[derive(Clone, Debug)]
pub struct FlashCompact {
    /// The network, its tensors borrowed from flash.
    pub net: Compact<'static>,
}

impl FlashCompact {
    /// The layer list over the tensors in flash (which `build.rs` checked with the core's
    /// decoder and [`Compact::check`]).
    pub fn new() -> Self {
        let mut net = Compact {
            side: compact::SIDE,
            layers: Default::default(),
        };
        let mut rest = COMPACT_IMAGE;
        let last = compact::LAYERS.len() - 1;
        for (k, shape) in compact::LAYERS.iter().enumerate() {
            let bits = Bits::from_count(shape.bits).expect("build.rs took 2 or 4 bits");
            let mut layer = Layer::shape(shape.inputs, shape.outputs, bits, shape.windows);
            let size = layer.tensor_bytes(k == last);
            let (codes, after) = rest.split_at(size.codes);
            let (bias, after) = after.split_at(size.bias);
            let (rescale, after) = after.split_at(size.rescale);
            rest = after;
            (layer.codes, layer.bias, layer.rescale) = (codes, bias, rescale);
            net.layers
                .push(layer)
                .expect("build.rs took at most MAX_LAYERS");
        }
        Self { net }
    }
}

impl Default for FlashCompact {
    fn default() -> Self {
        Self::new()
    }
}

impl Classifier<784, 10> for FlashCompact {
    /// The core's [`Compact::logits_of_image`], as the host runs it; on the Cortex-M4F with
    /// the pair kernel and `SMLAD` (the same logits, bit for bit).
    fn classify(&self, pixels: &[u8; 784]) -> [f32; 10] {
        let mut z = [0.0f32; 10];
        #[cfg(dsp)]
        self.net
            .logits_of_image_with::<digits_core::fast::pairs::Pairs<crate::dsp::Smlad>>(
                pixels, &mut z,
            );
        #[cfg(not(dsp))]
        self.net.logits_of_image(pixels, &mut z);
        z
    }
}

/// A model embedded in flash and run in place, of any kind: its weights, the metadata its model
/// file carried, and the fastest kernel this target has for it.
pub trait FlashModel: Classifier<784, 10> + Sync {
    /// Writes its architecture and precision, e.g. `784-128-10 int8`.
    fn describe(&self, out: &mut impl Write) -> fmt::Result;
    /// FNV-1a over its parameters in model-file order ([`params_digest`], [`int8_digest`],
    /// [`compact_digest`]).
    fn digest(&self) -> u64;
    /// Where it came from, for [`crate::serve::info`].
    fn dataset(&self) -> &'static str;
    /// Its test accuracy as recorded in its model file.
    fn test_accuracy(&self) -> Option<f32>;
    /// The `f32` network, which fine-tuning needs (its hidden activations as floats).
    fn as_f32(&self) -> Option<&MnistMlp>;
    /// Logits of one image the fastest way this target has (the same bits as
    /// [`Classifier::classify`]).
    fn infer(&self, pixels: &[u8; 784]) -> [f32; 10] {
        self.classify(pixels)
    }
    /// Whether this target's fast kernel agrees with the portable one on `pixels`; `None`
    /// where there is only the portable one.
    fn check_kernel(&self, pixels: &[u8; 784]) -> Option<bool> {
        let _ = pixels;
        None
    }
}

impl FlashModel for MnistMlp {
    fn describe(&self, out: &mut impl Write) -> fmt::Result {
        out.write_str("784-128-10 f32")
    }
    fn digest(&self) -> u64 {
        params_digest(self)
    }
    fn dataset(&self) -> &'static str {
        DATASET
    }
    fn test_accuracy(&self) -> Option<f32> {
        TEST_ACCURACY
    }
    fn as_f32(&self) -> Option<&MnistMlp> {
        Some(self)
    }
}

impl FlashModel for MnistQuant {
    fn describe(&self, out: &mut impl Write) -> fmt::Result {
        out.write_str("784-128-10 int8")
    }
    fn digest(&self) -> u64 {
        int8_digest(self)
    }
    fn dataset(&self) -> &'static str {
        int8::DATASET
    }
    fn test_accuracy(&self) -> Option<f32> {
        int8::TEST_ACCURACY
    }
    fn as_f32(&self) -> Option<&MnistMlp> {
        None
    }
    #[cfg(dsp)]
    fn infer(&self, pixels: &[u8; 784]) -> [f32; 10] {
        crate::dsp::logits(self, pixels)
    }
    #[cfg(dsp)]
    fn check_kernel(&self, pixels: &[u8; 784]) -> Option<bool> {
        let (mut dsp, mut portable) = ([0i32; 128], [0i32; 128]);
        crate::dsp::hidden_accumulators(self, pixels, &mut dsp);
        self.hidden_accumulators(pixels, &mut portable);
        let mut h = [0u8; 128];
        self.requantize_hidden(&portable, &mut h);
        Some(
            dsp == portable
                && crate::dsp::output_accumulators(self, &h) == self.output_accumulators(&h),
        )
    }
}

impl FlashModel for FlashCompact {
    /// As `digits inspect` names it: `16x16-56-56-56-10 4-bit` (`4/4/2/4-bit` for mixed bits).
    fn describe(&self, out: &mut impl Write) -> fmt::Result {
        self.net.write_arch(out)?;
        out.write_char(' ')?;
        self.net.write_precision(out)
    }
    fn digest(&self) -> u64 {
        compact_digest(&self.net)
    }
    fn dataset(&self) -> &'static str {
        compact::DATASET
    }
    fn test_accuracy(&self) -> Option<f32> {
        compact::TEST_ACCURACY
    }
    fn as_f32(&self) -> Option<&MnistMlp> {
        None
    }
}
