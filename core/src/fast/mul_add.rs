//! How the training kernels compute `a * b + c`: rounded twice, or once (fused).
//!
//! Plain Rust arithmetic rounds the product and then the sum, on every platform (the compiler
//! never fuses them), which is what the per-sample reference path and the device compute. A
//! fused multiply-add rounds once: it is as exactly specified by IEEE 754, so it too gives
//! the same bits everywhere, and where the CPU has the instruction it does the work of two in
//! one. The batch training kernels take the choice as a type parameter; the host passes the
//! CPU's instruction (through `std`), the core offers the exact software version for tests.

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
