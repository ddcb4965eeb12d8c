//! int8 post-training quantization: a trained `f32` [`Mlp`] as 8-bit weight codes with
//! per-output-channel scales, run with integer arithmetic only up to the logits.
//!
//! The integer path, the same on every platform (so host and device agree to the bit):
//! 1. Pixels are used as they are, `0..=255`: the `f32` model's input `p / 255` is folded into
//!    the hidden layer's scales and biases. A zero pixel stays zero and skips its row.
//! 2. Hidden layer: `acc[j] = b1[j] + sum_i p[i] * w1[i][j]` in `i32` (at most
//!    784 x 255 x 127 < 2^25 in magnitude), `w1[i][j]` the weight's code in `-127..=127` for
//!    unit `j`'s scale `s[j] = max_i |W1[i][j]| / 127`.
//! 3. ReLU and requantization to an 8-bit code of the hidden activation (scale
//!    [`QuantMlp::hidden_scale`]): `h[j] = clamp(round(acc[j] * m1[j] / 2^shift1[j]), 0, 255)`,
//!    the ratio of the scales as a 31-bit fixed-point multiplier and a shift (`i64` product).
//! 4. Output layer: `acc2[k] = b2[k] + sum_j h[j] * w2[k][j]` in `i32`, per-logit scales; the
//!    logit is `acc2[k] as f32 * out_scale[k]`, one rounding, the same everywhere.

use crate::params::Params;
use crate::{Dense, Mlp};

/// Largest weight code: codes are symmetric, `-127..=127`.
pub const CODE_MAX: i32 = 127;
/// Largest hidden activation code.
pub const ACTIVATION_MAX: i32 = 255;

/// An [`Mlp`] quantized to int8: what the model file stores with precision `Int8` and what the
/// device runs from flash.
///
/// `#[repr(C)]`, the 4-byte fields first and the byte arrays last, so there is no padding and a
/// build script can lay it out in flash byte for byte.
#[derive(Clone, Debug, PartialEq, bytemuck::Zeroable)]
#[repr(C)]
pub struct QuantMlp<const IN: usize, const HIDDEN: usize, const OUT: usize> {
    /// Hidden biases in accumulator units (pixel x weight code).
    pub b1: [i32; HIDDEN],
    /// Requantization multipliers of the hidden units, in `[2^30, 2^31)`.
    pub m1: [i32; HIDDEN],
    /// Requantization shifts of the hidden units, in `1..=62`.
    pub shift1: [i32; HIDDEN],
    /// Output biases in accumulator units (activation code x weight code).
    pub b2: [i32; OUT],
    /// Scale of each logit's accumulator.
    pub out_scale: [f32; OUT],
    /// The value of one hidden activation code (what code 1 stands for in the `f32` model).
    pub hidden_scale: f32,
    /// Hidden weight codes, input-major: row `i` holds the codes leaving pixel `i`.
    pub w1: [[i8; HIDDEN]; IN],
    /// Output weight codes, output-major: row `k` holds the codes into logit `k`.
    pub w2: [[i8; HIDDEN]; OUT],
}

/// The MNIST network quantized.
pub type MnistQuant = QuantMlp<784, 128, 10>;

/// Why a model cannot be quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantError {
    /// The hidden activation scale is not a positive finite number.
    BadHiddenScale,
    /// A weight or bias is NaN or infinite.
    NotFinite,
    /// A scale ratio too large or too small for a 62-bit shift (a degenerate model).
    OutOfRange,
}

impl core::fmt::Display for QuantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            QuantError::BadHiddenScale => "the hidden activation scale must be positive and finite",
            QuantError::NotFinite => "the model has a NaN or infinite parameter",
            QuantError::OutOfRange => "a scale ratio does not fit the fixed-point requantization",
        })
    }
}

/// `x` rounded half away from zero, saturated to `i32`.
fn round_i32(x: f64) -> i32 {
    let r = libm::round(x);
    if r >= i32::MAX as f64 {
        i32::MAX
    } else if r <= i32::MIN as f64 {
        i32::MIN
    } else {
        r as i32
    }
}

/// `ratio` as `m / 2^shift` with `m` in `[2^30, 2^31)`.
fn fixed_point(ratio: f64) -> Result<(i32, i32), QuantError> {
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(QuantError::OutOfRange);
    }
    let (mut r, mut shift) = (ratio, 0i32);
    while r < (1u64 << 30) as f64 {
        r *= 2.0;
        shift += 1;
        if shift > 62 {
            return Err(QuantError::OutOfRange);
        }
    }
    while r >= (1u64 << 31) as f64 {
        r /= 2.0;
        shift -= 1;
    }
    let mut m = libm::round(r) as i64;
    if m == 1 << 31 {
        m >>= 1;
        shift -= 1;
    }
    if !(1..=62).contains(&shift) {
        return Err(QuantError::OutOfRange);
    }
    Ok((m as i32, shift))
}

/// Symmetric scale of `values`: the largest magnitude maps to [`CODE_MAX`] (1 if all zero).
fn scale_of(values: impl Iterator<Item = f32>) -> f64 {
    let max = values.fold(0.0f64, |m, v| m.max(libm::fabs(v as f64)));
    if max > 0.0 {
        max / CODE_MAX as f64
    } else {
        1.0
    }
}

fn code(w: f32, scale: f64) -> i8 {
    round_i32(w as f64 / scale).clamp(-CODE_MAX, CODE_MAX) as i8
}

impl<const IN: usize, const HIDDEN: usize, const OUT: usize> QuantMlp<IN, HIDDEN, OUT> {
    /// All zero (fill it with [`QuantMlp::quantize_into`]); `const` so that a device can keep
    /// one in a static.
    pub const fn zeroed() -> Self {
        Self {
            b1: [0; HIDDEN],
            m1: [0; HIDDEN],
            shift1: [0; HIDDEN],
            b2: [0; OUT],
            out_scale: [0.0; OUT],
            hidden_scale: 0.0,
            w1: [[0; HIDDEN]; IN],
            w2: [[0; HIDDEN]; OUT],
        }
    }

    /// Quantizes `model` into `self`, with hidden activations coded in steps of `hidden_scale`
    /// (choose it from data: activations above `255 * hidden_scale` saturate). `self` is
    /// untouched on error.
    pub fn quantize_into(
        &mut self,
        model: &Mlp<IN, HIDDEN, OUT, f32>,
        hidden_scale: f32,
    ) -> Result<(), QuantError> {
        if !(hidden_scale.is_finite() && hidden_scale > 0.0) {
            return Err(QuantError::BadHiddenScale);
        }
        let finite = |d: &[f32]| d.iter().all(|v| v.is_finite());
        if !(finite(model.hidden.w.as_flattened())
            && finite(&model.hidden.b)
            && finite(model.output.w.as_flattened())
            && finite(&model.output.b))
        {
            return Err(QuantError::NotFinite);
        }
        let sh = hidden_scale as f64;
        // Check every ratio before writing anything.
        let mut fixed = [(0i32, 0i32); HIDDEN];
        for (j, f) in fixed.iter_mut().enumerate() {
            let s = scale_of(model.hidden.w.iter().map(|row| row[j]));
            // The f32 model sees p / 255: a pixel code is worth s / 255 in weight units.
            *f = fixed_point(s / (255.0 * sh))?;
        }
        for (j, &(m, shift)) in fixed.iter().enumerate() {
            let s = scale_of(model.hidden.w.iter().map(|row| row[j]));
            for (q, row) in self.w1.iter_mut().zip(&model.hidden.w) {
                q[j] = code(row[j], s);
            }
            self.b1[j] = round_i32(model.hidden.b[j] as f64 * 255.0 / s);
            self.m1[j] = m;
            self.shift1[j] = shift;
        }
        self.hidden_scale = hidden_scale;
        self.write_output(&model.output, sh);
        Ok(())
    }

    /// Re-codes the output layer from `output`, an `f32` layer acting on the activations
    /// [`QuantMlp::hidden_f32`] (such as a tuned copy of [`QuantMlp::output_dense`]); the hidden
    /// layer stays. The same arithmetic as the output half of [`QuantMlp::quantize_into`].
    /// `self` is untouched on error.
    pub fn set_output(&mut self, output: &Dense<HIDDEN, OUT, f32>) -> Result<(), QuantError> {
        if !(self.hidden_scale.is_finite() && self.hidden_scale > 0.0) {
            return Err(QuantError::BadHiddenScale);
        }
        if !output.all_finite() {
            return Err(QuantError::NotFinite);
        }
        self.write_output(output, self.hidden_scale as f64);
        Ok(())
    }

    /// The output half of quantization, for activations coded in steps of `sh`: per-logit
    /// symmetric weight scale `t`, codes `w / t`, biases `b / (sh t)`, logit scale `sh t`.
    fn write_output(&mut self, output: &Dense<HIDDEN, OUT, f32>, sh: f64) {
        for k in 0..OUT {
            let t = scale_of(output.w.iter().map(|row| row[k]));
            for (q, row) in self.w2[k].iter_mut().zip(&output.w) {
                *q = code(row[k], t);
            }
            self.b2[k] = round_i32(output.b[k] as f64 / (sh * t));
            self.out_scale[k] = (sh * t) as f32;
        }
    }

    /// The `f32` activations that the hidden codes of `pixels` stand for: each code times
    /// [`QuantMlp::hidden_scale`]. The input of [`QuantMlp::output_dense`].
    pub fn hidden_f32(&self, pixels: &[u8; IN]) -> [f32; HIDDEN] {
        let mut codes = [0u8; HIDDEN];
        self.hidden_codes(pixels, &mut codes);
        codes.map(|c| c as f32 * self.hidden_scale)
    }

    /// The output layer as an `f32` [`Dense`] acting on [`QuantMlp::hidden_f32`]: weight
    /// `w2[k][j] * t[k]` and bias `b2[k] * hidden_scale * t[k]`, with `t[k]` logit `k`'s weight
    /// scale; its logits are the int8 ones up to `f32` rounding.
    ///
    /// Exactly undone by [`QuantMlp::set_output`]: for a model that `set_output` or
    /// `quantize_into` wrote (so every column with a nonzero code has one of magnitude
    /// [`CODE_MAX`]) and whose output biases are below `2^23` in magnitude, `set_output` of
    /// this layer restores every code, bias and scale bit for bit. It takes care because `t[k]`
    /// is not stored, only `out_scale[k] = f32(hidden_scale * t[k])`, and `set_output` derives
    /// `t` from the column's largest weight `M` as `M / 127` in `f64`. So `M` is the `f32`
    /// nearest `127 out_scale / hidden_scale`: it is the maximum the model was quantized from,
    /// or a neighbour only when that neighbour gives the same `out_scale` (rounding `M` moves
    /// the product by less than rounding `out_scale` did); a few neighbours are checked as well,
    /// in case a binade edge breaks that argument. Every other weight and the bias are `f64`
    /// products of that same `t`, rounded once to `f32`: off by at most `127 * 2^-24` of a code
    /// and `|b2| * 2^-24` of a bias step, which `set_output`'s rounding removes.
    pub fn output_dense(&self) -> Dense<HIDDEN, OUT, f32> {
        let sh = self.hidden_scale as f64;
        let mut dense = Dense::zeros();
        for k in 0..OUT {
            let t = self.output_weight_scale(k);
            for (row, &c) in dense.w.iter_mut().zip(&self.w2[k]) {
                row[k] = (c as f64 * t) as f32;
            }
            dense.b[k] = (self.b2[k] as f64 * (sh * t)) as f32;
        }
        dense
    }

    /// Logit `k`'s weight scale `t` as `write_output` would derive it from
    /// [`QuantMlp::output_dense`]'s column (see there).
    fn output_weight_scale(&self, k: usize) -> f64 {
        if self.w2[k].iter().all(|&c| c == 0) {
            // `scale_of`'s convention for an all-zero column.
            return 1.0;
        }
        let sh = self.hidden_scale as f64;
        let scale_from = |m: f32| m as f64 / CODE_MAX as f64;
        let guess = (CODE_MAX as f64 * self.out_scale[k] as f64 / sh) as f32;
        // Neighbours in order of distance: 0, +1, -1, +2, -2, ... units in the last place.
        const SEARCH_ULPS: i32 = 2;
        (0..=2 * SEARCH_ULPS)
            .map(|n| if n % 2 == 1 { n / 2 + 1 } else { -(n / 2) })
            .filter_map(|d| guess.to_bits().checked_add_signed(d).map(f32::from_bits))
            .map(scale_from)
            .find(|&t| (sh * t) as f32 == self.out_scale[k])
            // Not a model `set_output` wrote: the nearest approximation.
            .unwrap_or_else(|| scale_from(guess))
    }

    /// The hidden accumulators `sum_i p[i] * w1[i][j]` (without bias), skipping zero pixels.
    ///
    /// The nonzero pixels are gathered first; then eight accumulators at a time stay in
    /// registers while every lit pixel's eight codes are added: on a Cortex-M that is about two
    /// instructions (a byte load and a multiply-accumulate) per product.
    pub fn hidden_accumulators(&self, pixels: &[u8; IN], acc: &mut [i32; HIDDEN]) {
        let mut lit = [(0u16, 0u16); IN];
        let mut n = 0;
        for (i, &p) in pixels.iter().enumerate() {
            if p != 0 {
                lit[n] = (i as u16, p as u16);
                n += 1;
            }
        }
        let lit = &lit[..n];
        const LANES: usize = 8;
        let (blocks, rest) = acc.as_chunks_mut::<LANES>();
        for (b, block) in blocks.iter_mut().enumerate() {
            let mut a = [0i32; LANES];
            for &(i, p) in lit {
                let codes = &self.w1[i as usize][b * LANES..b * LANES + LANES];
                for (a, &c) in a.iter_mut().zip(codes) {
                    *a += p as i32 * c as i32;
                }
            }
            *block = a;
        }
        let done = HIDDEN - rest.len();
        for (j, a) in rest.iter_mut().enumerate() {
            *a = lit
                .iter()
                .map(|&(i, p)| p as i32 * self.w1[i as usize][done + j] as i32)
                .sum();
        }
    }

    /// The hidden activation codes of `pixels`: accumulate, add the bias, ReLU, requantize.
    pub fn hidden_codes(&self, pixels: &[u8; IN], codes: &mut [u8; HIDDEN]) {
        let mut acc = [0i32; HIDDEN];
        self.hidden_accumulators(pixels, &mut acc);
        self.requantize_hidden(&acc, codes);
    }

    /// Hidden codes from the accumulators of [`QuantMlp::hidden_accumulators`] (or of any
    /// kernel that computes the same sums, such as a device's DSP one).
    pub fn requantize_hidden(&self, acc: &[i32; HIDDEN], codes: &mut [u8; HIDDEN]) {
        for (j, code) in codes.iter_mut().enumerate() {
            *code = requantize(
                acc[j].saturating_add(self.b1[j]),
                self.m1[j],
                self.shift1[j],
            );
        }
    }

    /// The output accumulators of hidden codes `h`: `b2[k] + sum_j h[j] * w2[k][j]`.
    pub fn output_accumulators(&self, h: &[u8; HIDDEN]) -> [i32; OUT] {
        let mut out = self.b2;
        for (o, row) in out.iter_mut().zip(&self.w2) {
            *o += h
                .iter()
                .zip(row)
                .map(|(&h, &w)| h as i32 * w as i32)
                .sum::<i32>();
        }
        out
    }

    /// Logits of `pixels` (8-bit, as in MNIST), integer arithmetic up to the last multiply.
    pub fn logits(&self, pixels: &[u8; IN]) -> [f32; OUT] {
        let mut acc = [0i32; HIDDEN];
        self.hidden_accumulators(pixels, &mut acc);
        self.logits_from_accumulators(&acc)
    }

    /// The logits from the hidden accumulators: requantize, output layer, scale.
    pub fn logits_from_accumulators(&self, hidden: &[i32; HIDDEN]) -> [f32; OUT] {
        let mut h = [0u8; HIDDEN];
        self.requantize_hidden(hidden, &mut h);
        let acc = self.output_accumulators(&h);
        let mut z = [0.0f32; OUT];
        for ((z, &a), &s) in z.iter_mut().zip(&acc).zip(&self.out_scale) {
            *z = a as f32 * s;
        }
        z
    }

    /// Parameters stored: codes, biases, multipliers, shifts and scales.
    pub const fn stored_bytes() -> usize {
        core::mem::size_of::<Self>()
    }
}

/// `clamp(round(v * m / 2^shift), 0, 255)`, rounding half up; 0 for `v <= 0` (ReLU).
#[inline]
pub fn requantize(v: i32, m: i32, shift: i32) -> u8 {
    if v <= 0 {
        return 0;
    }
    let scaled = (v as i64 * m as i64 + (1i64 << (shift - 1))) >> shift;
    scaled.min(ACTIVATION_MAX as i64) as u8
}

/// A network that turns 8-bit pixels into logits: the `f32` [`Mlp`] (through
/// [`crate::pixels::normalize`]) or the int8 [`QuantMlp`]. What evaluation code on host and
/// device is written against, so it runs either precision.
pub trait Classifier<const IN: usize, const OUT: usize> {
    /// Logits of one image.
    fn classify(&self, pixels: &[u8; IN]) -> [f32; OUT];
}

impl<const IN: usize, const HIDDEN: usize, const OUT: usize> Classifier<IN, OUT>
    for Mlp<IN, HIDDEN, OUT, f32>
{
    fn classify(&self, pixels: &[u8; IN]) -> [f32; OUT] {
        let mut x = [0.0f32; IN];
        crate::pixels::normalize(pixels, &mut x);
        self.logits(&x)
    }
}

impl<const IN: usize, const HIDDEN: usize, const OUT: usize> Classifier<IN, OUT>
    for QuantMlp<IN, HIDDEN, OUT>
{
    fn classify(&self, pixels: &[u8; IN]) -> [f32; OUT] {
        self.logits(pixels)
    }
}
