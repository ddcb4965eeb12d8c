//! A compact layer's row of units, two products per multiply: equals
//! [`Layer::accumulate_row`] bit for bit (`fast::pairs::tests::pairs_equal_the_byte_kernel`;
//! whole networks in `core/tests/compact.rs`; on the Cortex-M4F, with its `SMLAD`, the device's
//! 10,000 logits against the host's).
//!
//! The byte kernel unpacks each code on its own. Here a word of codes (8 four-bit or 16
//! two-bit ones) is split by a shift and a mask into halfword pairs, `(c[k], c[k + half])`,
//! and the activations are laid out once per row in the same pairs, so a unit's dot product is
//! one load, then a shift-and-mask and a pair multiply-add ([`PairMac`]) per two products. All
//! values are small (activations `0..=255`, codes `0..=15`), so the signed halfword products
//! are the unsigned ones and every sum is the byte kernel's. Inference runs it as
//! [`Pairs`]`<M>`, a [`RowKernel`], where the core has a pair multiply-add (the firmware on the
//! Cortex-M4F); elsewhere the byte kernel is as fast or faster (docs/figures.md).

use core::marker::PhantomData;

use crate::compact::{Layer, RowKernel};
use crate::lowbit::{self, Bits};

/// Inputs laid out as pairs at a time: a multiple of both word sizes (8 and 16 codes), small
/// enough to keep the pairs on the stack beside the inference's buffers.
const BLOCK: usize = 64;

/// Stack bytes of the activation pairs.
pub const PAIRS_BYTES: usize = BLOCK / 2 * size_of::<u32>();

/// Two halfword products summed, `a.lo * c.lo + a.hi * c.hi`, each half a signed 16-bit value
/// (`SMLAD` on an Armv7E-M core; the halves here are at most 255).
pub trait PairMac {
    /// `sum + a.lo * c.lo + a.hi * c.hi`.
    fn mul_pair(sum: i32, a: u32, c: u32) -> i32;
}

/// [`PairMac`] in plain arithmetic. On the Cortex-M4 the compiler makes it `SMLABB` + `SMLATT`,
/// each after a bit-field extract; the firmware has one `SMLAD` instead.
pub struct Portable;

impl PairMac for Portable {
    #[inline(always)]
    fn mul_pair(sum: i32, a: u32, c: u32) -> i32 {
        sum + (a as i16 as i32) * (c as i16 as i32)
            + ((a >> 16) as i16 as i32) * ((c >> 16) as i16 as i32)
    }
}

/// This module's kernel with the pair multiply-add `M`, as a [`RowKernel`].
pub struct Pairs<M>(PhantomData<M>);

impl<M: PairMac> RowKernel for Pairs<M> {
    #[inline]
    fn accumulate_row(layer: &Layer<'_>, input: &[u8], acc: &mut [i32]) {
        accumulate_row::<M>(layer, input, acc);
    }
}

/// Every unit on one row of values ([`Layer::row_len`] of them), as
/// [`Layer::accumulate_row`]: `acc[j] = bias[j] + 2 sum a c - max sum a`.
///
/// Not inlined, unlike the other fast paths (which the host compiles into its AVX functions):
/// this one is integer code for the microcontroller, and each inlined copy would add its
/// activation pairs to the caller's stack.
#[inline(never)]
pub fn accumulate_row<M: PairMac>(layer: &Layer<'_>, input: &[u8], acc: &mut [i32]) {
    let n = layer.row_len();
    let input = &input[..n];
    let acc = &mut acc[..layer.units()];
    // The word's shape in constants, so that its pairs unroll.
    let whole = match layer.bits {
        Bits::Four => dots::<M, 4>(layer, input, acc),
        Bits::Two => dots::<M, 2>(layer, input, acc),
    };
    let offset = layer.bits.max_level() * input.iter().map(|&a| a as i32).sum::<i32>();
    for (j, dot) in acc.iter_mut().enumerate() {
        let row = layer.row(j);
        for (e, &a) in input.iter().enumerate().skip(whole) {
            *dot += a as i32 * lowbit::get(row, layer.bits, e) as i32;
        }
        *dot = layer.bias(j) + 2 * *dot - offset;
    }
}

/// `acc[j] = sum a c` over the inputs that fill whole words of `BITS`-bit codes; returns how
/// many inputs that is.
#[inline(always)]
fn dots<M: PairMac, const BITS: usize>(layer: &Layer<'_>, input: &[u8], acc: &mut [i32]) -> usize {
    let per_word = 32 / BITS;
    let half = per_word / 2;
    let mask = ((1u32 << BITS) - 1) * 0x0001_0001;
    acc.fill(0);
    let whole = input.len() / per_word * per_word;
    let mut pairs = [0u32; BLOCK / 2];
    for start in (0..whole).step_by(BLOCK) {
        let block = &input[start..whole.min(start + BLOCK)];
        for (group, values) in pairs
            .chunks_exact_mut(half)
            .zip(block.chunks_exact(per_word))
        {
            for (k, pair) in group.iter_mut().enumerate() {
                *pair = values[k] as u32 | (values[half + k] as u32) << 16;
            }
        }
        let pairs = &pairs[..block.len() / 2];
        let first = start * BITS / 8;
        let bytes = block.len() * BITS / 8;
        for (j, dot) in acc.iter_mut().enumerate() {
            let codes = &layer.row(j)[first..first + bytes];
            let mut sum = *dot;
            for (word, group) in codes.chunks_exact(4).zip(pairs.chunks_exact(half)) {
                let word = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                for (k, &pair) in group.iter().enumerate() {
                    sum = M::mul_pair(sum, pair, (word >> (BITS * k)) & mask);
                }
            }
            *dot = sum;
        }
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    #[test]
    fn pairs_equal_the_byte_kernel() {
        let mut rng = Rng::new(5);
        let mut codes = [0u8; 64 * 392];
        let mut bias = [0u8; 4 * 64];
        let mut input = [0u8; 784];
        let mut cases = 0;
        for bits in [Bits::Two, Bits::Four] {
            // Every tail length, a whole block and more than one, the longest row.
            let lengths = (1..=40).chain([63, 64, 65, 127, 128, 129, 256, 784]);
            for inputs in lengths {
                let units = 1 + rng.below(64) as usize;
                for b in codes.iter_mut() {
                    *b = rng.below(256) as u8;
                }
                for b in bias.iter_mut() {
                    *b = rng.below(256) as u8;
                }
                // Keep the biases small, as a model's (|bias| <= 2^24): the top byte of each.
                for j in 0..units {
                    bias[4 * j + 3] = 0;
                }
                for (i, a) in input.iter_mut().enumerate() {
                    *a = match i % 3 {
                        0 => rng.below(256) as u8,
                        1 => 255,
                        _ => 0,
                    };
                }
                let layer = Layer {
                    inputs,
                    outputs: units,
                    bits,
                    windows: None,
                    codes: &codes[..units * bits.row_bytes(inputs)],
                    bias: &bias[..4 * units],
                    rescale: &[],
                };
                let (mut fast, mut bytes) = ([0i32; 64], [0i32; 64]);
                accumulate_row::<Portable>(&layer, &input, &mut fast);
                layer.accumulate_row(&input, &mut bytes);
                assert_eq!(fast[..units], bytes[..units], "{bits}, {inputs} inputs");
                cases += 1;
            }
        }
        assert_eq!(cases, 2 * 48);
    }
}
