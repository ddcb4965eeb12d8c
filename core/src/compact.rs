//! Integer inference of a compact network: low-bit weight codes ([`crate::lowbit`]), 8-bit
//! activations, `i32` accumulators, integers up to the logits; one `f32` multiply per logit.
//!
//! A [`Compact`] model borrows its tensors as little-endian bytes, straight from a model file
//! (or flash): no copy, no alignment needs, no heap. Inference from an image keeps the
//! downsampled input on the stack, beside the downsampling's row sums while they are made, then
//! two activation buffers and one accumulator row (see [`SCRATCH_BYTES`]).
//!
//! Layer by layer (`a` the input codes, 8-bit; for the first layer the downsampled pixels):
//! 1. `acc[j] = bias[j] + sum_i a[i] * level[j][i]` in `i32`, `level` odd in `-15..=15`
//!    (at most 784 x 255 x 15 + 2^24 in magnitude);
//! 2. a hidden layer: `a'[j] = clamp(round(acc[j] * m[j] / 2^shift[j]), 0, 255)` (ReLU and
//!    requantization, [`crate::quant::requantize`]), `m[j]` 16 bits;
//! 3. the output layer: `logit[k] = acc[k] as f32 * scale[k]`.
//!
//! [`Layer::accumulate_reference`] is the plain definition of step 1;
//! [`Layer::accumulate_row`] computes the same integers with codes instead of levels
//! (`level = 2 c - max`, so `sum a level = 2 sum a c - max sum a`), a byte of codes at a time;
//! inference takes the row kernel as a type ([`RowKernel`]): this one ([`ByteKernel`]) on the
//! host, [`crate::fast::pairs`] (two products per multiply) on a core with halfword
//! multiply-adds.
//!
//! A hidden layer may be a convolution ([`crate::conv::Windows`]): its units' rows are shared
//! by every window of its input map, each window's values gathered and then read as a dense
//! layer's input, the units' codes written at the window's place in the output map.

use heapless::Vec as HVec;

use crate::conv::Windows;
use crate::downsample::{self, SOURCE_SIDE, area_average_into};
use crate::fast::pairs;
use crate::lowbit::{self, Bits};
use crate::quant::requantize;

/// Most layers a compact model may have.
pub const MAX_LAYERS: usize = 8;
/// Most units in one layer (of a convolution: per window).
pub const MAX_WIDTH: usize = 256;
/// Most outputs of a hidden layer (of a convolution: windows times units).
pub const MAX_ACTIVATIONS: usize = 576;
/// Most values in a convolution's window.
pub const MAX_PATCH: usize = 256;
/// Most inputs of the first layer (a 28x28 image).
pub const MAX_INPUTS: usize = SOURCE_SIDE * SOURCE_SIDE;
/// Largest magnitude of a bias in accumulator units: keeps every accumulator far inside `i32`.
pub const MAX_BIAS: i32 = 1 << 24;
/// Bytes of the stack buffers of one inference from an image, at their peak: the downsampled
/// input, held throughout, and the larger of what comes and goes beside it, first the
/// downsampling's own buffers ([`downsample::SCRATCH_BYTES`]), then two rows of activation
/// codes, the accumulators of one row of units, a window's values and the fast kernel's
/// activation pairs.
pub const SCRATCH_BYTES: usize = MAX_INPUTS + {
    let layers =
        2 * MAX_ACTIVATIONS + MAX_WIDTH * size_of::<i32>() + MAX_PATCH + pairs::PAIRS_BYTES;
    if downsample::SCRATCH_BYTES > layers {
        downsample::SCRATCH_BYTES
    } else {
        layers
    }
};
/// Bytes per unit of a hidden layer's rescale tensor: a `u16` multiplier and a `u8` shift.
pub const HIDDEN_RESCALE_BYTES: usize = 3;
/// Bytes per unit of the output layer's rescale tensor: an `f32` scale.
pub const LOGIT_RESCALE_BYTES: usize = 4;

/// One layer's tensors, borrowed as bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layer<'a> {
    /// Inputs.
    pub inputs: usize,
    /// Outputs: the units of a dense layer, windows times units of a convolution.
    pub outputs: usize,
    /// Bits per weight code.
    pub bits: Bits,
    /// For a convolution, where its windows lie on the input; `None` for a dense layer.
    pub windows: Option<Windows>,
    /// Weight codes, unit-major: row `j` (`bits.row_bytes(self.row_len())` bytes) holds unit `j`'s.
    pub codes: &'a [u8],
    /// Biases in accumulator units, `i32` little-endian, one per unit.
    pub bias: &'a [u8],
    /// Hidden layer: per unit a `u16` multiplier (little-endian) and a `u8` shift; output
    /// layer: per unit an `f32` scale (little-endian).
    pub rescale: &'a [u8],
}

/// The bytes a layer's tensors have, which its shape alone decides
/// ([`Layer::tensor_bytes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorBytes {
    /// Weight codes: a row per unit.
    pub codes: usize,
    /// Biases: an `i32` per unit.
    pub bias: usize,
    /// Rescales: [`HIDDEN_RESCALE_BYTES`] or (output layer) [`LOGIT_RESCALE_BYTES`] per unit.
    pub rescale: usize,
}

fn word(bytes: &[u8], j: usize) -> [u8; 4] {
    let b = &bytes[4 * j..4 * j + 4];
    [b[0], b[1], b[2], b[3]]
}

impl<'a> Layer<'a> {
    /// A layer of this shape without tensors yet: for [`Layer::tensor_bytes`], and to be given
    /// its tensors.
    pub fn shape(inputs: usize, outputs: usize, bits: Bits, windows: Option<Windows>) -> Self {
        Layer {
            inputs,
            outputs,
            bits,
            windows,
            codes: &[],
            bias: &[],
            rescale: &[],
        }
    }

    /// The bytes its tensors must have (`last`: it is the output layer).
    pub fn tensor_bytes(&self, last: bool) -> TensorBytes {
        let units = self.units();
        let per_unit = if last {
            LOGIT_RESCALE_BYTES
        } else {
            HIDDEN_RESCALE_BYTES
        };
        TensorBytes {
            codes: units * self.bits.row_bytes(self.row_len()),
            bias: size_of::<i32>() * units,
            rescale: per_unit * units,
        }
    }

    /// Values each unit reads: the inputs of a dense layer, a window's of a convolution.
    #[inline]
    pub fn row_len(&self) -> usize {
        self.windows.map_or(self.inputs, |w| w.patch())
    }

    /// Units: rows of codes, biases and rescales.
    #[inline]
    pub fn units(&self) -> usize {
        self.windows
            .map_or(self.outputs, |w| self.outputs / w.positions())
    }

    /// The packed codes of unit `j`.
    #[inline]
    pub fn row(&self, j: usize) -> &'a [u8] {
        let n = self.bits.row_bytes(self.row_len());
        &self.codes[j * n..(j + 1) * n]
    }

    /// Bias of unit `j`.
    #[inline]
    pub fn bias(&self, j: usize) -> i32 {
        i32::from_le_bytes(word(self.bias, j))
    }

    /// Multiplier and shift of hidden unit `j`.
    #[inline]
    pub fn multiplier(&self, j: usize) -> (i32, i32) {
        let r = &self.rescale[HIDDEN_RESCALE_BYTES * j..];
        (u16::from_le_bytes([r[0], r[1]]) as i32, r[2] as i32)
    }

    /// Scale of logit `k` (output layer).
    #[inline]
    pub fn logit_scale(&self, k: usize) -> f32 {
        f32::from_le_bytes(word(self.rescale, k))
    }

    /// Weight bytes: codes, biases and rescale.
    pub fn weight_bytes(&self) -> usize {
        self.codes.len() + self.bias.len() + self.rescale.len()
    }

    /// `acc[j] = bias[j] + sum_i input[i] * level[j][i]`, the definition, code by code; for a
    /// convolution `acc[p * units + j]` for window `p`, its values found by
    /// [`Windows::source`].
    pub fn accumulate_reference(&self, input: &[u8], acc: &mut [i32]) {
        let units = self.units();
        for (k, acc) in acc[..self.outputs].iter_mut().enumerate() {
            let (p, j) = (k / units, k % units);
            let row = self.row(j);
            *acc = self.bias(j)
                + (0..self.row_len())
                    .map(|e| {
                        let a = match self.windows {
                            Some(w) => input[w.source(p, e)],
                            None => input[e],
                        };
                        a as i32 * self.bits.level(lowbit::get(row, self.bits, e))
                    })
                    .sum::<i32>();
        }
    }

    /// The same integers as [`Layer::accumulate_reference`]: window by window (gathered), each
    /// by [`Layer::accumulate_row`].
    pub fn accumulate(&self, input: &[u8], acc: &mut [i32]) {
        match self.windows {
            None => self.accumulate_row(input, acc),
            Some(w) => {
                let mut patch = [0u8; MAX_PATCH];
                let units = self.units();
                for (p, acc) in acc[..self.outputs].chunks_exact_mut(units).enumerate() {
                    w.gather(input, p, &mut patch);
                    self.accumulate_row(&patch, acc);
                }
            }
        }
    }

    /// Every unit on one row of values ([`Layer::row_len`] of them: the input of a dense
    /// layer, a window's of a convolution), from the codes a byte at a time:
    /// `sum a level = 2 sum a c - max sum a`.
    pub fn accumulate_row(&self, input: &[u8], acc: &mut [i32]) {
        let n = self.row_len();
        let input = &input[..n];
        let sum: i32 = input.iter().map(|&a| a as i32).sum();
        let offset = self.bits.max_level() * sum;
        let per_byte = 8 / self.bits.count() as usize;
        let whole = n / per_byte;
        let (chunks, tail) = input.split_at(whole * per_byte);
        for (j, acc) in acc[..self.units()].iter_mut().enumerate() {
            let row = self.row(j);
            let mut dot: u32 = match self.bits {
                Bits::Four => chunks
                    .chunks_exact(2)
                    .zip(row)
                    .map(|(a, &b)| a[0] as u32 * (b & 15) as u32 + a[1] as u32 * (b >> 4) as u32)
                    .sum(),
                Bits::Two => chunks
                    .chunks_exact(4)
                    .zip(row)
                    .map(|(a, &b)| {
                        a[0] as u32 * (b & 3) as u32
                            + a[1] as u32 * ((b >> 2) & 3) as u32
                            + a[2] as u32 * ((b >> 4) & 3) as u32
                            + a[3] as u32 * (b >> 6) as u32
                    })
                    .sum(),
            };
            for (t, &a) in tail.iter().enumerate() {
                dot += a as u32 * lowbit::get(row, self.bits, whole * per_byte + t) as u32;
            }
            *acc = self.bias(j) + 2 * dot as i32 - offset;
        }
    }

    /// Hidden layer: ReLU and requantization of one row of units' accumulators to 8-bit codes.
    pub fn requantize(&self, acc: &[i32], out: &mut [u8]) {
        for (j, (o, &a)) in out[..self.units()].iter_mut().zip(acc).enumerate() {
            let (m, shift) = self.multiplier(j);
            *o = requantize(a, m, shift);
        }
    }
}

/// How inference computes a layer's row of units: [`Layer::accumulate_row`]'s integers, by
/// whichever way is fastest on the core at hand ([`Compact::logits_of_image_with`]).
pub trait RowKernel {
    /// `acc[j] = bias[j] + sum_i input[i] * level[j][i]` for the layer's units, as
    /// [`Layer::accumulate_row`].
    fn accumulate_row(layer: &Layer<'_>, input: &[u8], acc: &mut [i32]);
}

/// The byte kernel, [`Layer::accumulate_row`]: the one the host runs.
pub struct ByteKernel;

impl RowKernel for ByteKernel {
    #[inline]
    fn accumulate_row(layer: &Layer<'_>, input: &[u8], acc: &mut [i32]) {
        layer.accumulate_row(input, acc);
    }
}

/// Why a compact model cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CompactError {
    /// No layers, or more than [`MAX_LAYERS`].
    Depth,
    /// The input side is not in `1..=28`, or the first layer's inputs are not `side^2`.
    Input,
    /// Layer `index`'s inputs differ from the outputs of the one before, it is wider than
    /// [`MAX_WIDTH`] (or [`MAX_ACTIVATIONS`] in all), or it is a convolution whose windows do
    /// not fit its input or its outputs, are larger than [`MAX_PATCH`], or that comes last.
    Shape {
        /// The layer.
        index: usize,
    },
    /// Layer `index` has a tensor of the wrong size.
    Size {
        /// The layer.
        index: usize,
    },
    /// Layer `index` holds a bias beyond [`MAX_BIAS`], a multiplier below `2^15`, a shift
    /// outside `1..=62` or a logit scale that is not positive and finite.
    Range {
        /// The layer.
        index: usize,
    },
}

impl core::fmt::Display for CompactError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CompactError::Depth => write!(f, "a compact model has 1 to {MAX_LAYERS} layers"),
            CompactError::Input => write!(
                f,
                "the input side must be 1 to 28 and the first layer take side x side inputs"
            ),
            CompactError::Shape { index } => write!(
                f,
                "layer {} does not take the previous layer's outputs, has more than {MAX_WIDTH} units, or has windows that do not fit",
                index + 1
            ),
            CompactError::Size { index } => {
                write!(f, "layer {} has a tensor of the wrong size", index + 1)
            }
            CompactError::Range { index } => write!(
                f,
                "layer {} holds a bias, multiplier, shift or scale out of its range",
                index + 1
            ),
        }
    }
}

/// A compact network: the input side (the 28x28 image is area-averaged to `side x side`) and
/// its layers, all hidden but the last.
#[derive(Clone, Debug, PartialEq)]
pub struct Compact<'a> {
    /// Side of the downsampled input image.
    pub side: usize,
    /// The layers, first to last.
    pub layers: HVec<Layer<'a>, MAX_LAYERS>,
}

impl<'a> Compact<'a> {
    /// Checks shapes, sizes and ranges: a model that passes runs without overflow or panic.
    pub fn check(&self) -> Result<(), CompactError> {
        self.check_shapes()?;
        let last = self.layers.len() - 1;
        for (index, l) in self.layers.iter().enumerate() {
            let units = l.units();
            let biases = (0..units).all(|j| l.bias(j).unsigned_abs() <= MAX_BIAS as u32);
            let rescale = if index == last {
                (0..units).all(|k| {
                    let s = l.logit_scale(k);
                    s.is_finite() && s > 0.0
                })
            } else {
                (0..units).all(|j| {
                    let (m, shift) = l.multiplier(j);
                    m >= 1 << 15 && (1..=62).contains(&shift)
                })
            };
            if !(biases && rescale) {
                return Err(CompactError::Range { index });
            }
        }
        Ok(())
    }

    /// Checks the shapes and the tensors' sizes only (what a network has before its values are
    /// known).
    pub fn check_shapes(&self) -> Result<(), CompactError> {
        if self.layers.is_empty() {
            return Err(CompactError::Depth);
        }
        if !(1..=SOURCE_SIDE).contains(&self.side) || self.layers[0].inputs != self.side * self.side
        {
            return Err(CompactError::Input);
        }
        let last = self.layers.len() - 1;
        for (index, l) in self.layers.iter().enumerate() {
            let chained = index == 0 || l.inputs == self.layers[index - 1].outputs;
            let fits = match l.windows {
                None => (1..=MAX_WIDTH).contains(&l.outputs),
                Some(w) => {
                    w.is_valid()
                        && index != last
                        && w.inputs() == l.inputs
                        && w.patch() <= MAX_PATCH
                        && l.outputs <= MAX_ACTIVATIONS
                        && l.outputs % w.positions() == 0
                        && (1..=MAX_WIDTH).contains(&(l.outputs / w.positions()))
                }
            };
            if !(chained && fits) {
                return Err(CompactError::Shape { index });
            }
            let has = TensorBytes {
                codes: l.codes.len(),
                bias: l.bias.len(),
                rescale: l.rescale.len(),
            };
            if has != l.tensor_bytes(index == last) {
                return Err(CompactError::Size { index });
            }
        }
        Ok(())
    }

    /// Weight bytes of every layer: everything inference reads but the input side.
    pub fn weight_bytes(&self) -> usize {
        self.layers.iter().map(Layer::weight_bytes).sum()
    }

    /// Writes the layers as `digits train --arch` spells them: `16x16-56-56-56-10`, or with
    /// windows of the first layer `16x16-w8s4-32-16-64-10` (units per window).
    pub fn write_arch(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        write!(out, "{0}x{0}", self.side)?;
        if let Some(w) = self.layers.first().and_then(|l| l.windows) {
            write!(out, "-w{}s{}", w.kernel, w.stride)?;
        }
        for l in &self.layers {
            write!(out, "-{}", l.units())?;
        }
        Ok(())
    }

    /// Writes the bits of the weight codes: `4-bit` when every layer has the same, else one per
    /// layer, `2/4/4/4-bit`.
    pub fn write_precision(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        let layers = &self.layers;
        if layers.windows(2).all(|w| w[0].bits == w[1].bits) {
            write!(out, "{}", layers.first().map_or(0, |l| l.bits.count()))?;
        } else {
            for (k, l) in layers.iter().enumerate() {
                let sep = if k == 0 { "" } else { "/" };
                write!(out, "{sep}{}", l.bits.count())?;
            }
        }
        out.write_str("-bit")
    }

    /// Classes (the last layer's units).
    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// The forward pass from the input codes (`side * side` downsampled pixels), writing the
    /// logits and calling `trace(layer, offset, accumulators, codes)` for each row of units: a
    /// dense layer's one, a convolution's one per window (`offset` is where its outputs start;
    /// the codes are empty for the output layer). The model must pass [`Compact::check`].
    pub fn forward_traced(
        &self,
        input: &[u8],
        logits: &mut [f32],
        trace: impl FnMut(usize, usize, &[i32], &[u8]),
    ) {
        self.forward_traced_with::<ByteKernel>(input, logits, trace);
    }

    /// [`Compact::forward_traced`] with the row kernel `K`. Not inlined: its buffers then never
    /// share a frame with the downsampling's, which comes before (RAM on the device).
    #[inline(never)]
    pub fn forward_traced_with<K: RowKernel>(
        &self,
        input: &[u8],
        logits: &mut [f32],
        mut trace: impl FnMut(usize, usize, &[i32], &[u8]),
    ) {
        let mut acc = [0i32; MAX_WIDTH];
        let mut patch = [0u8; MAX_PATCH];
        // The first layer reads the input; hidden codes go back and forth between two rows.
        let mut rows = [[0u8; MAX_ACTIVATIONS]; 2];
        let last = self.layers.len() - 1;
        for (index, l) in self.layers.iter().enumerate() {
            let [a, b] = &mut rows;
            let (from, to) = if index % 2 == 0 { (&*b, a) } else { (&*a, b) };
            let from = if index == 0 { input } else { from };
            let units = l.units();
            if index == last {
                K::accumulate_row(l, from, &mut acc);
                for (k, z) in logits[..units].iter_mut().enumerate() {
                    *z = acc[k] as f32 * l.logit_scale(k);
                }
                trace(index, 0, &acc[..units], &[]);
                continue;
            }
            let windows = l.windows.map_or(1, |w| w.positions());
            for p in 0..windows {
                let row = match l.windows {
                    Some(w) => {
                        w.gather(from, p, &mut patch);
                        &patch[..]
                    }
                    None => from,
                };
                K::accumulate_row(l, row, &mut acc);
                let out = &mut to[p * units..(p + 1) * units];
                l.requantize(&acc, out);
                trace(index, p * units, &acc[..units], out);
            }
        }
    }

    /// Logits from the input codes (`side * side` downsampled pixels).
    pub fn logits(&self, input: &[u8], logits: &mut [f32]) {
        self.forward_traced(input, logits, |_, _, _, _| {});
    }

    /// Logits of a 28x28 image: downsampled, then [`Compact::logits`].
    pub fn logits_of_image(&self, image: &[u8; MAX_INPUTS], logits: &mut [f32]) {
        self.logits_of_image_with::<ByteKernel>(image, logits);
    }

    /// [`Compact::logits_of_image`] with the row kernel `K` (the same logits, bit for bit).
    pub fn logits_of_image_with<K: RowKernel>(&self, image: &[u8; MAX_INPUTS], logits: &mut [f32]) {
        let mut input = [0u8; MAX_INPUTS];
        let n = self.side * self.side;
        area_average_into(image, self.side, &mut input[..n]);
        self.forward_traced_with::<K>(&input[..n], logits, |_, _, _, _| {});
    }
}

/// `ratio` as `m / 2^shift` with `m` in `[2^15, 2^16)` and `shift` in `1..=62`, if it fits.
pub fn fixed_point16(ratio: f64) -> Option<(u16, u8)> {
    if !(ratio.is_finite() && ratio > 0.0) {
        return None;
    }
    let (mut r, mut shift) = (ratio, 0i32);
    while r < 32768.0 {
        r *= 2.0;
        shift += 1;
        if shift > 62 {
            return None;
        }
    }
    while r >= 65536.0 {
        r /= 2.0;
        shift -= 1;
    }
    let mut m = libm::round(r) as u32;
    if m == 1 << 16 {
        m >>= 1;
        shift -= 1;
    }
    (1..=62).contains(&shift).then_some((m as u16, shift as u8))
}
