//! The Cortex-M4's DSP instructions: `SMLAD` multiplies two pairs of 16-bit halves and adds
//! both products to an accumulator in one instruction. Used by the int8 hidden layer (below)
//! and, as [`Smlad`], by the compact networks' pair kernel (`digits_core::fast::pairs`).
//!
//! The portable kernel (`QuantMlp::hidden_accumulators`) adds one lit pixel's row of 128 weight
//! codes at a time: a byte load and a multiply-accumulate per product. Here two lit pixels go
//! together: their values packed in one word `p1 | p2 << 16`, and, for four hidden units at a
//! time, the two rows' codes unpacked by `SXTB16` (bytes 0 and 2, then 1 and 3, sign-extended
//! to halves) and paired by `PKHBT`/`PKHTB` into `{w1[j], w2[j]}`, so that one `SMLAD` adds
//! `p1 * w1[j] + p2 * w2[j]`. For each pair and four hidden units the loop loads one word of
//! each row and does 8 products in 4 `SMLAD`s, all in registers (what it costs per inference
//! is measured and recorded in `docs/figures.md`, not here, where it would go stale).
//!
//! The sums are integers and the same whatever the order, so this kernel gives exactly the
//! portable kernel's accumulators; `tests/tests/firmware_eval.rs` checks it on the device for
//! all 10,000 test images (the `kernels` report of `eval-int8`).

use core::mem::MaybeUninit;

use digits_core::MnistQuant;
use digits_core::fast::pairs::PairMac;

/// The compact networks' pair multiply-add in one `SMLAD`, where the portable
/// [`digits_core::fast::pairs::Portable`] compiles to two multiply-adds and two bit-field
/// extracts. The device's logits are checked against the host's (byte kernel) for all 10,000
/// test images (`host/tests/device_cli.rs`, `tests/tests/firmware_compact.rs`).
pub struct Smlad;

impl PairMac for Smlad {
    #[inline(always)]
    fn mul_pair(sum: i32, a: u32, c: u32) -> i32 {
        let mut sum = sum;
        // SAFETY: arithmetic on registers only (no memory, no stack). SMLAD may set the Q flag
        // on overflow, which nothing reads (the sums here stay below 2^25).
        unsafe {
            core::arch::asm!(
                "smlad {sum}, {a}, {c}, {sum}",
                sum = inout(reg) sum,
                a = in(reg) a,
                c = in(reg) c,
                options(pure, nomem, nostack),
            );
        }
        sum
    }
}

/// Hidden units.
const HIDDEN: usize = 128;
/// Pixels.
const IN: usize = 784;

/// A row of zero codes, for the unused slots of the pair list.
static ZERO_ROW: [i8; HIDDEN] = [0; HIDDEN];

/// Two lit pixels: their rows of codes and their values packed in one word. `#[repr(C)]`:
/// the assembly reads the two pointers and the word at offsets 0, 4 and 8.
#[derive(Clone, Copy)]
#[repr(C)]
struct Pair<'a> {
    first: &'a [i8; HIDDEN],
    second: &'a [i8; HIDDEN],
    packed: u32,
}

/// `acc[t] += p1 * first[AT + t] + p2 * second[AT + t]` for `t` in `0..4`, over all `pairs`,
/// `packed = p1 | p2 << 16`: one pass over the pairs per block of four units, all in
/// registers, so that the accumulators never go to memory inside the loop.
#[inline(always)]
fn block<const AT: usize>(pairs: &[Pair<'_>], acc: &mut [i32]) {
    let [mut acc0, mut acc1, mut acc2, mut acc3] = [0i32; 4];
    if !pairs.is_empty() {
        let range = pairs.as_ptr_range();
        // SAFETY: reads only: each `Pair` (two row pointers and a word, `#[repr(C)]`, 12 bytes)
        // from `range`, which holds at least one, and the word at byte `AT` of each row
        // (AT + 4 <= 128 bytes: checked at compile time below; the Cortex-M4 loads unaligned
        // words). No stack; SMLAD may set the Q flag, which nothing reads (and |sum| < 2^25
        // cannot overflow).
        const { assert!(AT + 4 <= HIDDEN) };
        unsafe {
            core::arch::asm!(
                "2:",
                "ldr {p}, [{pp}, #8]",
                "ldrd {r1}, {r2}, [{pp}], #12",
                "ldr {a}, [{r1}, #{at}]",
                "ldr {b}, [{r2}, #{at}]",
                "sxtb16 {r1}, {a}",
                "sxtb16 {a}, {a}, ror #8",
                "sxtb16 {r2}, {b}",
                "sxtb16 {b}, {b}, ror #8",
                "pkhbt {t}, {r1}, {r2}, lsl #16",
                "smlad {acc0}, {t}, {p}, {acc0}",
                "pkhtb {t}, {r2}, {r1}, asr #16",
                "smlad {acc2}, {t}, {p}, {acc2}",
                "pkhbt {t}, {a}, {b}, lsl #16",
                "smlad {acc1}, {t}, {p}, {acc1}",
                "pkhtb {t}, {b}, {a}, asr #16",
                "smlad {acc3}, {t}, {p}, {acc3}",
                "cmp {pp}, {end}",
                "bne 2b",
                at = const AT,
                pp = inout(reg) range.start => _,
                end = in(reg) range.end,
                r1 = out(reg) _,
                r2 = out(reg) _,
                p = out(reg) _,
                a = out(reg) _,
                b = out(reg) _,
                t = out(reg) _,
                acc0 = inout(reg) acc0,
                acc1 = inout(reg) acc1,
                acc2 = inout(reg) acc2,
                acc3 = inout(reg) acc3,
                options(readonly, nostack),
            );
        }
    }
    acc[AT..AT + 4].copy_from_slice(&[acc0, acc1, acc2, acc3]);
}

/// The hidden accumulators `sum_i p[i] * w1[i][j]` of `pixels`, as
/// `QuantMlp::hidden_accumulators` computes them, with `SMLAD`.
pub fn hidden_accumulators(model: &MnistQuant, pixels: &[u8; IN], acc: &mut [i32; HIDDEN]) {
    // Not initialized: zeroing the whole list (room for every pixel paired) on every image
    // would cost stores for pairs never used; only the first `n` are written and read.
    let mut pairs = [const { MaybeUninit::<Pair<'_>>::uninit() }; IN / 2];
    let mut n = 0;
    let mut pending: Option<(&[i8; HIDDEN], u32)> = None;
    for (row, &p) in model.w1.iter().zip(pixels) {
        if p == 0 {
            continue;
        }
        match pending.take() {
            None => pending = Some((row, p as u32)),
            Some((first, p1)) => {
                pairs[n].write(Pair {
                    first,
                    second: row,
                    packed: p1 | (p as u32) << 16,
                });
                n += 1;
            }
        }
    }
    // An odd pixel out pairs with a zero row.
    if let Some((first, p1)) = pending {
        pairs[n].write(Pair {
            first,
            second: &ZERO_ROW,
            packed: p1,
        });
        n += 1;
    }
    // SAFETY: the first `n` elements were written above.
    let pairs: &[Pair<'_>] = unsafe { core::slice::from_raw_parts(pairs.as_ptr().cast(), n) };
    macro_rules! blocks {
        ($($at:literal)*) => { $( block::<$at>(pairs, acc); )* };
    }
    blocks!(0 4 8 12 16 20 24 28 32 36 40 44 48 52 56 60 64 68 72 76 80 84 88 92 96 100 104 108
        112 116 120 124);
}

/// `b2[k] + sum_j h[j] * w2[k][j]` for every logit `k`, as `QuantMlp::output_accumulators`
/// computes them: four codes of `h` (unsigned, `UXTB16`) against four of a row (`SXTB16`) in
/// two `SMLAD`s.
pub fn output_accumulators(model: &MnistQuant, h: &[u8; HIDDEN]) -> [i32; 10] {
    let mut out = model.b2;
    let (hw, _) = h.as_chunks::<4>();
    for (o, row) in out.iter_mut().zip(&model.w2) {
        let (ww, _) = row.as_chunks::<4>();
        let mut acc = *o;
        for (hq, wq) in hw.iter().zip(ww) {
            let hq = u32::from_le_bytes(*hq);
            let wq = u32::from_le_bytes(wq.map(|c| c as u8));
            // SAFETY: register-only arithmetic; the Q flag SMLAD may set is never read (and
            // |sum| < 2^24 cannot overflow).
            unsafe {
                core::arch::asm!(
                    "uxtb16 {h02}, {h}",
                    "uxtb16 {h13}, {h}, ror #8",
                    "sxtb16 {w02}, {w}",
                    "sxtb16 {w13}, {w}, ror #8",
                    "smlad {acc}, {h02}, {w02}, {acc}",
                    "smlad {acc}, {h13}, {w13}, {acc}",
                    h = in(reg) hq,
                    w = in(reg) wq,
                    h02 = out(reg) _,
                    h13 = out(reg) _,
                    w02 = out(reg) _,
                    w13 = out(reg) _,
                    acc = inout(reg) acc,
                    options(pure, nomem, nostack),
                );
            }
        }
        *o = acc;
    }
    out
}

/// Logits of `pixels` with the DSP kernels: the int8 model's integer path, bit for bit.
pub fn logits(model: &MnistQuant, pixels: &[u8; IN]) -> [f32; 10] {
    let mut acc = [0i32; HIDDEN];
    hidden_accumulators(model, pixels, &mut acc);
    let mut h = [0u8; HIDDEN];
    model.requantize_hidden(&acc, &mut h);
    let out = output_accumulators(model, &h);
    let mut z = [0.0f32; 10];
    for ((z, &a), &s) in z.iter_mut().zip(&out).zip(&model.out_scale) {
        *z = a as f32 * s;
    }
    z
}
