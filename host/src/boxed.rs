//! Large models on the heap without passing through the stack.
//!
//! `Mlp<784, 128, 10, f64>` is 814 KB: built on the stack and then boxed, it can overflow a
//! thread's stack in unoptimized builds. These are allocated zeroed, directly on the heap.

use digits_core::{Mlp, MlpBn, QuantMlp};

/// Types made only of numeric arrays, for which all-zero bits is a valid value.
///
/// # Safety
/// Implement only for types whose every field is a float or an integer (or arrays or structs
/// of them).
pub unsafe trait Zeroable: Sized {}

// SAFETY: Mlp and MlpBn hold only `[S; N]` arrays of an IEEE float type.
unsafe impl<const I: usize, const H: usize, const O: usize> Zeroable for Mlp<I, H, O, f32> {}
unsafe impl<const I: usize, const H: usize, const O: usize> Zeroable for Mlp<I, H, O, f64> {}
unsafe impl<const I: usize, const H: usize, const O: usize> Zeroable for MlpBn<I, H, O, f32> {}
unsafe impl<const I: usize, const H: usize, const O: usize> Zeroable for MlpBn<I, H, O, f64> {}

// SAFETY: QuantMlp holds only arrays of integers and f32: all-zero bits is valid.
unsafe impl<const I: usize, const H: usize, const O: usize> Zeroable for QuantMlp<I, H, O> {}

/// A zeroed `T` on the heap.
pub fn zeroed<T: Zeroable>() -> Box<T> {
    // SAFETY: `T: Zeroable` promises all-zero bits is a valid `T`.
    unsafe { Box::<T>::new_zeroed().assume_init() }
}
