//! Quantization-aware training of a [`Deep`] network as a [`Compact`] one.
//!
//! The `f32` weights are the master copy the optimizer updates. Before each step they are
//! quantized ([`Qat::quantize`]): per unit a scale from the root mean square of its weights,
//! low-bit codes ([`crate::lowbit`]), biases in accumulator units, the fixed-point rescale of each
//! hidden unit. The training forward pass *is* the integer inference ([`Compact::forward_traced`]),
//! so the trained network and the deployed one compute the same logits, bit for bit.
//!
//! The backward pass is the straight-through estimator: [`Deep::backward`] of the dequantized
//! network (`shadow`: every weight `scale * level`, every bias `bias * unit`), evaluated at the
//! integer network's values in real units (pre-activation `acc * unit`, activation
//! `code * act_scale`), with the activation clipped at `255 * act_scale`, the largest code. The
//! gradient it gives each dequantized weight is applied to the master weight. That backward
//! pass is checked against central differences in `core/tests/deep_gradcheck.rs`.

use crate::compact::{Compact, Layer, MAX_BIAS, TensorBytes, fixed_point16};
use crate::deep::{Ceilings, Deep, DeepActivations, HIDDEN_LAYERS};
use crate::layer::{DenseKind, LayerKind, Linear};
use crate::lowbit::{self, Bits};
use crate::params::Params;

/// The value of one input code: pixels `0..=255` stand for `[0, 1]`.
pub const INPUT_SCALE: f32 = 1.0 / 255.0;
/// Largest activation code.
pub const ACTIVATION_MAX: f32 = 255.0;

/// Why a network cannot be quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QatError {
    /// A weight, bias or activation scale is NaN or infinite, or a scale is not positive.
    NotFinite,
    /// A hidden unit's rescale does not fit the 16-bit fixed point (a degenerate scale).
    OutOfRange,
    /// An output buffer has the wrong size.
    Buffer,
}

impl core::fmt::Display for QatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            QatError::NotFinite => "the network has a NaN or infinite weight or scale",
            QatError::OutOfRange => "a unit's rescale does not fit the fixed point",
            QatError::Buffer => "a quantized tensor's buffer has the wrong size",
        })
    }
}

/// Where one layer's quantized tensors are written (sizes as [`crate::compact::Layer`] describes them).
#[derive(Debug)]
pub struct LayerBuffers<'a> {
    /// Packed codes, output-major.
    pub codes: &'a mut [u8],
    /// `i32` biases, little-endian.
    pub bias: &'a mut [u8],
    /// Hidden: `u16` multiplier and `u8` shift per unit; output: `f32` scale per unit.
    pub rescale: &'a mut [u8],
}

/// What follows a layer: a hidden activation coded in steps of `act_scale`, or the logits.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Next {
    Hidden { act_scale: f32 },
    Logits,
}

/// Quantizes one layer (dense, or a convolution's shared layer) whose inputs are codes worth
/// `input_scale` each into `out`, and writes the dequantized layer and the accumulator value of
/// each output (`unit`: a convolution's units repeat window by window).
fn quantize_layer<const I: usize, const O: usize, L: Linear<I, O, f32>>(
    layer: &L,
    bits: Bits,
    input_scale: f32,
    next: Next,
    out: &mut LayerBuffers<'_>,
    dequantized: &mut L,
    unit: &mut [f32; O],
) -> Result<(), QatError> {
    let (inputs, units) = (L::ROW, L::UNITS);
    let row = bits.row_bytes(inputs);
    // A convolution's tensors are its shared dense layer's.
    let size = Layer::shape(inputs, units, bits, None).tensor_bytes(next == Next::Logits);
    let has = TensorBytes {
        codes: out.codes.len(),
        bias: out.bias.len(),
        rescale: out.rescale.len(),
    };
    if has != size {
        return Err(QatError::Buffer);
    }
    let finite = |v: &[f32]| v.iter().all(|v| v.is_finite());
    if !(finite(layer.weights()) && finite(layer.bias())) {
        return Err(QatError::NotFinite);
    }
    out.codes.fill(0);
    let (w, b) = (layer.weights(), layer.bias());
    for j in 0..units {
        let column = || (0..inputs).map(|i| w[i * units + j]);
        let sum_sq: f64 = column().map(|v| (v as f64) * (v as f64)).sum();
        let rms = libm::sqrt(sum_sq / inputs as f64) as f32;
        let scale = bits.scale_for_rms(rms);
        let codes = &mut out.codes[j * row..(j + 1) * row];
        for (i, v) in column().enumerate() {
            let c = bits.code(v, scale);
            lowbit::set(codes, bits, i, c);
            dequantized.weights_mut()[i * units + j] = scale * bits.level(c) as f32;
        }
        let u = (input_scale as f64 * scale as f64) as f32;
        for k in (j..O).step_by(units) {
            unit[k] = u;
        }
        let b = libm::round(b[j] as f64 / u as f64).clamp(-MAX_BIAS as f64, MAX_BIAS as f64) as i32;
        out.bias[4 * j..4 * j + 4].copy_from_slice(&b.to_le_bytes());
        dequantized.bias_mut()[j] = b as f32 * u;
        match next {
            Next::Hidden { act_scale } => {
                let (m, shift) =
                    fixed_point16(u as f64 / act_scale as f64).ok_or(QatError::OutOfRange)?;
                let r = &mut out.rescale[3 * j..3 * j + 3];
                r[..2].copy_from_slice(&m.to_le_bytes());
                r[2] = shift;
            }
            Next::Logits => out.rescale[4 * j..4 * j + 4].copy_from_slice(&u.to_le_bytes()),
        }
    }
    Ok(())
}

/// The quantized state of a [`Deep`] network during training: the dequantized network and the
/// scales that relate the integer network's values to real ones.
#[derive(Clone, Debug, PartialEq, bytemuck::Zeroable)]
#[zeroable(bound = "")]
pub struct Qat<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    K1: LayerKind<IN, H1> = DenseKind,
    K2: LayerKind<H1, H2> = DenseKind,
> {
    /// Every weight `scale * level`, every bias `bias * unit`: what the integer network
    /// computes with, in real units.
    pub shadow: Deep<IN, H1, H2, H3, OUT, f32, K1, K2>,
    /// The real value of one accumulator unit of each output of the first hidden layer.
    pub unit1: [f32; H1],
    /// Of the second.
    pub unit2: [f32; H2],
    /// Of the third.
    pub unit3: [f32; H3],
    /// The value of one activation code of each hidden layer.
    pub act_scales: [f32; HIDDEN_LAYERS],
}

impl<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
> Qat<IN, H1, H2, H3, OUT, K1, K2>
{
    /// Quantizes `master` with `bits` per layer and hidden activation scales `act_scales`
    /// into `buffers` (one per layer, first to last), and updates the dequantized network.
    /// Nothing is valid on error.
    pub fn quantize(
        &mut self,
        master: &Deep<IN, H1, H2, H3, OUT, f32, K1, K2>,
        bits: [Bits; 4],
        act_scales: [f32; HIDDEN_LAYERS],
        buffers: [LayerBuffers<'_>; 4],
    ) -> Result<(), QatError> {
        if !act_scales.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(QatError::NotFinite);
        }
        self.act_scales = act_scales;
        let [s1, s2, s3] = act_scales;
        let [mut b1, mut b2, mut b3, mut b4] = buffers;
        let hidden = |act_scale| Next::Hidden { act_scale };
        let sh = &mut self.shadow;
        quantize_layer(
            &master.l1,
            bits[0],
            INPUT_SCALE,
            hidden(s1),
            &mut b1,
            &mut sh.l1,
            &mut self.unit1,
        )?;
        quantize_layer(
            &master.l2,
            bits[1],
            s1,
            hidden(s2),
            &mut b2,
            &mut sh.l2,
            &mut self.unit2,
        )?;
        quantize_layer(
            &master.l3,
            bits[2],
            s2,
            hidden(s3),
            &mut b3,
            &mut sh.l3,
            &mut self.unit3,
        )?;
        let mut unit4 = [0.0; OUT];
        quantize_layer(
            &master.out,
            bits[3],
            s3,
            Next::Logits,
            &mut b4,
            &mut sh.out,
            &mut unit4,
        )
    }

    /// The clipping ceilings: the real value of the largest activation code.
    pub fn ceilings(&self) -> Ceilings<f32> {
        Ceilings(self.act_scales.map(|s| s * ACTIVATION_MAX))
    }

    /// One sample through the integer network `model` (quantized from this state): the values
    /// of every layer in real units, for [`Qat::backward`], and the logits, which are the
    /// integer network's own.
    pub fn forward(
        &self,
        model: &Compact<'_>,
        input: &[u8; IN],
        act: &mut DeepActivations<H1, H2, H3, OUT, f32>,
    ) {
        let [s1, s2, s3] = self.act_scales;
        let mut logits = [0.0f32; OUT];
        model.forward_traced(input, &mut logits, |layer, at, acc, codes| {
            let real = |pre: &mut [f32], h: &mut [f32], unit: &[f32], act_scale: f32| {
                let (pre, h, unit) = (&mut pre[at..], &mut h[at..], &unit[at..]);
                for ((p, &a), &u) in pre.iter_mut().zip(acc).zip(unit) {
                    *p = a as f32 * u;
                }
                for (h, &c) in h.iter_mut().zip(codes) {
                    *h = c as f32 * act_scale;
                }
            };
            match layer {
                0 => real(&mut act.pre1, &mut act.h1, &self.unit1, s1),
                1 => real(&mut act.pre2, &mut act.h2, &self.unit2, s2),
                2 => real(&mut act.pre3, &mut act.h3, &self.unit3, s3),
                _ => {}
            }
        });
        act.logits = logits;
    }

    /// The straight-through gradient of one sample, from the gradient `dz` of its logits,
    /// added to `grad` (the master weights' shape).
    pub fn backward(
        &self,
        input: &[u8; IN],
        act: &DeepActivations<H1, H2, H3, OUT, f32>,
        dz: &[f32; OUT],
        grad: &mut Deep<IN, H1, H2, H3, OUT, f32, K1, K2>,
    ) {
        let mut x = [0.0f32; IN];
        crate::pixels::normalize(input, &mut x);
        self.shadow.backward(&x, &self.ceilings(), act, dz, grad);
    }
}

/// The dequantized network of a quantized model, for checking the straight-through gradient at
/// a model's own weights. A model keeps no activation scales, so one activation code is taken
/// to be worth [`INPUT_SCALE`], as one input code is (every ceiling 1): the `shadow` that
/// [`Qat::quantize`] makes with those scales, each hidden unit's weight scale read from its
/// fixed-point rescale. Scaling a layer's activations leaves the logits as they are, so this is
/// the network the model's integers compute, in real units. `None` when the model's layers are
/// not this network's shapes.
pub fn dequantize<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
>(
    model: &Compact<'_>,
    net: &mut Deep<IN, H1, H2, H3, OUT, f32, K1, K2>,
) -> Option<Ceilings<f32>> {
    let shapes = layer_shapes::<IN, H1, H2, H3, OUT>();
    let windows = [
        <K1::Of<f32> as Linear<IN, H1, f32>>::WINDOWS,
        <K2::Of<f32> as Linear<H1, H2, f32>>::WINDOWS,
        None,
        None,
    ];
    if model.layers.len() != shapes.len()
        || model
            .layers
            .iter()
            .zip(shapes)
            .zip(windows)
            .any(|((l, s), w)| (l.inputs, l.outputs) != s || l.windows != w)
    {
        return None;
    }
    let last = shapes.len() - 1;
    for (k, layer) in model.layers.iter().enumerate() {
        // What one level and one bias unit of unit `j` are worth: from its rescale to 8-bit
        // codes (hidden), or its logit scale times the value of an activation code (last).
        let worth = |j: usize| -> (f64, f64) {
            if k == last {
                let s = layer.logit_scale(j) as f64;
                (s / INPUT_SCALE as f64, s)
            } else {
                let (m, shift) = layer.multiplier(j);
                let r = m as f64 / libm::exp2(shift as f64);
                (r, r * INPUT_SCALE as f64)
            }
        };
        let weights = net.tensor_mut(2 * k).data;
        let units = layer.units();
        for j in 0..units {
            let (level, _) = worth(j);
            let row = layer.row(j);
            for i in 0..layer.row_len() {
                let c = lowbit::get(row, layer.bits, i);
                weights[i * units + j] = (level * layer.bits.level(c) as f64) as f32;
            }
        }
        for (j, b) in net.tensor_mut(2 * k + 1).data.iter_mut().enumerate() {
            *b = (worth(j).1 * layer.bias(j) as f64) as f32;
        }
    }
    Some(Ceilings([1.0; HIDDEN_LAYERS]))
}

/// The (inputs, outputs) of a [`Deep`] network's layers, first to last.
pub fn layer_shapes<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
>() -> [(usize, usize); 4] {
    [(IN, H1), (H1, H2), (H2, H3), (H3, OUT)]
}
