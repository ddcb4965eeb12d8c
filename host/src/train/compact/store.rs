//! A compact network's quantized tensors, owned: what training writes and a model file holds.

use digits_core::compact::{Compact, Layer};
use digits_core::conv::Windows;
use digits_core::lowbit::Bits;
use digits_core::qat::LayerBuffers;

use super::arch::{Arch, LayerBits};

/// One layer's tensors as bytes (see [`Layer`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedLayer {
    /// Inputs.
    pub inputs: usize,
    /// Outputs (of a convolution: windows times units).
    pub outputs: usize,
    /// Bits per weight code.
    pub bits: Bits,
    /// A convolution's windows; `None` for a dense layer.
    pub windows: Option<Windows>,
    /// Packed codes, unit-major.
    pub codes: Vec<u8>,
    /// `i32` biases, little-endian.
    pub bias: Vec<u8>,
    /// Hidden: multiplier and shift per unit; output: `f32` scale per unit.
    pub rescale: Vec<u8>,
}

/// A compact network's tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedNet {
    /// Side of the downsampled input.
    pub side: usize,
    /// The layers, first to last.
    pub layers: Vec<OwnedLayer>,
}

impl digits_core::Classifier<784, 10> for QuantizedNet {
    fn classify(&self, pixels: &[u8; 784]) -> [f32; 10] {
        let mut z = [0.0f32; 10];
        self.view().logits_of_image(pixels, &mut z);
        z
    }
}

impl QuantizedNet {
    /// Zeroed tensors for `arch` with `bits` per layer.
    pub fn zeroed(arch: Arch, bits: LayerBits) -> Self {
        let shapes = arch.layers();
        let windows = arch.windows();
        let last = shapes.len() - 1;
        let layers = (0..shapes.len())
            .map(|k| {
                let ((inputs, outputs), windows, bits) = (shapes[k], windows[k], bits.0[k]);
                let size = Layer::shape(inputs, outputs, bits, windows).tensor_bytes(k == last);
                OwnedLayer {
                    inputs,
                    outputs,
                    bits,
                    windows,
                    codes: vec![0; size.codes],
                    bias: vec![0; size.bias],
                    rescale: vec![0; size.rescale],
                }
            })
            .collect();
        Self {
            side: arch.side,
            layers,
        }
    }

    /// An owned copy of `model`'s tensors.
    pub fn from_view(model: &Compact<'_>) -> Self {
        Self {
            side: model.side,
            layers: model
                .layers
                .iter()
                .map(|l| OwnedLayer {
                    inputs: l.inputs,
                    outputs: l.outputs,
                    bits: l.bits,
                    windows: l.windows,
                    codes: l.codes.to_vec(),
                    bias: l.bias.to_vec(),
                    rescale: l.rescale.to_vec(),
                })
                .collect(),
        }
    }

    /// The layers as `--arch` spells them ([`Compact::write_arch`]).
    pub fn arch(&self) -> String {
        let mut s = String::new();
        self.view()
            .write_arch(&mut s)
            .expect("a String takes any text");
        s
    }

    /// The bits of each layer's codes ([`Compact::write_precision`]).
    pub fn precision(&self) -> String {
        let mut s = String::new();
        self.view()
            .write_precision(&mut s)
            .expect("a String takes any text");
        s
    }

    /// The network, borrowed for inference.
    pub fn view(&self) -> Compact<'_> {
        Compact {
            side: self.side,
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    inputs: l.inputs,
                    outputs: l.outputs,
                    bits: l.bits,
                    windows: l.windows,
                    codes: &l.codes,
                    bias: &l.bias,
                    rescale: &l.rescale,
                })
                .collect(),
        }
    }

    /// Where quantization writes each of four layers.
    pub fn buffers(&mut self) -> [LayerBuffers<'_>; 4] {
        let mut it = self.layers.iter_mut().map(|l| LayerBuffers {
            codes: &mut l.codes,
            bias: &mut l.bias,
            rescale: &mut l.rescale,
        });
        std::array::from_fn(|_| it.next().expect("four layers"))
    }
}
