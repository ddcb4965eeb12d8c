//! Runtime choice of the vector instructions the host's hot loops are compiled for.
//!
//! The core's kernels are plain Rust, inlined always; here they are instantiated inside
//! functions compiled for AVX2 or AVX-512, chosen at run time from what the CPU has. The
//! arithmetic is the same (Rust never contracts `a * b + c` into a fused multiply-add and never
//! reorders floating-point sums; where the training kernels fuse them, [`Fused`], that is
//! exactly specified too: the instruction with AVX2 or AVX-512, the C library's exact `fmaf`
//! on the baseline), so every choice gives bit-identical results; only the speed differs.
//! `DIGITS_SIMD=base|avx2|avx512` forces one (to compare, or to test).

use digits_core::fast::mul_add::MulAdd;

use std::sync::OnceLock;

/// An instruction set the hot loops can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// The x86-64 baseline (SSE2), or whatever the target has elsewhere.
    Base,
    /// AVX2 (256-bit registers).
    Avx2,
    /// AVX-512 (512-bit registers; F, VL and BW).
    Avx512,
}

impl Simd {
    /// Name as `DIGITS_SIMD` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Base => "base",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        }
    }

    /// The best this CPU has.
    pub fn best() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Simd::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Simd::Avx2;
            }
        }
        Simd::Base
    }

    /// `DIGITS_SIMD` when set (and supported, else the best with a warning), else the best.
    /// Decided once per process.
    pub fn current() -> Simd {
        static CHOICE: OnceLock<Simd> = OnceLock::new();
        *CHOICE.get_or_init(|| {
            let best = Simd::best();
            let Ok(want) = std::env::var("DIGITS_SIMD") else {
                return best;
            };
            let asked = match want.as_str() {
                "base" => Simd::Base,
                "avx2" => Simd::Avx2,
                "avx512" => Simd::Avx512,
                other => {
                    eprintln!(
                        "warning: DIGITS_SIMD={other} is not base|avx2|avx512; using {}",
                        best.name()
                    );
                    return best;
                }
            };
            if asked > best {
                eprintln!(
                    "warning: DIGITS_SIMD={} is not supported by this CPU; using {}",
                    asked.name(),
                    best.name()
                );
                return best;
            }
            asked
        })
    }
}

/// The fused multiply-add of `std` (`f32::mul_add`): one instruction inside [`dispatch`] with
/// AVX2 or AVX-512, the C library's `fmaf` (exact, slow) on the baseline.
#[derive(Clone, Copy, Debug)]
pub struct Fused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl PartialOrd for Simd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        (*self as u8).partial_cmp(&(*other as u8))
    }
}

/// Runs `f` compiled for the instruction set `Simd::current()`. `f` should call only code
/// marked `#[inline(always)]` where speed matters, so that it is compiled into `f`.
#[inline(always)]
pub fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    match Simd::current() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `current` chose AVX-512 only if the CPU has avx512f, avx512vl, avx512bw, avx2
        // and fma.
        Simd::Avx512 => unsafe { avx512(f) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `current` chose AVX2 only if the CPU has avx2 and fma.
        Simd::Avx2 => unsafe { avx2(f) },
        _ => f(),
    }
}

#[cfg(target_arch = "x86_64")]
// avx512bw: byte compares straight into a mask register (finding the lit pixels).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx2,fma")]
fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
