//! How the training kernels compute `a * b + c`: rounded twice, or once (fused).
//!
//! Plain Rust arithmetic rounds the product and then the sum, on every platform (the compiler
//! never fuses them), which is what the per-sample reference path and the device compute. A
//! fused multiply-add rounds once: it is as exactly specified by IEEE 754, so it too gives
//! the same bits everywhere, and where the CPU has the instruction it does the work of two in
//! one. The batch training kernels take the choice as a type parameter; the host passes the
//! CPU's instruction (through `std`), the core offers the exact software version for tests.
//!
//! [`Separate`] is the reference's `a * b + c` (it is that expression); [`FusedSoft`] rounds
//! once, where [`Separate`] rounds twice (`tests::fused_rounds_once`).

/// `a * b + c`, computed one way or the other.
pub trait MulAdd {
    /// `a * b + c`.
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// Rounded twice: `a * b`, then `+ c`. Bit-identical to the per-sample reference.
#[derive(Clone, Copy, Debug)]
pub struct Separate;

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Rounded once, in software (`libm::fmaf`): exact, slow; the same bits as a CPU's fused
/// multiply-add instruction.
#[derive(Clone, Copy, Debug)]
pub struct FusedSoft;

impl MulAdd for FusedSoft {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        libm::fmaf(a, b, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(1 + 2^-12)^2 - (1 + 2^-11)` is exactly `2^-24`: the product rounded first (to
    /// `1 + 2^-11`, a tie to even) loses it.
    #[test]
    fn fused_rounds_once() {
        let a = 1.0 + f32::powi(2.0, -12);
        let c = -(1.0 + f32::powi(2.0, -11));
        assert_eq!(Separate::mul_add(a, a, c), 0.0);
        assert_eq!(FusedSoft::mul_add(a, a, c), f32::powi(2.0, -24));
    }
}
