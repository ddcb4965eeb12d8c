//! Models and per-sample rows on the heap, zeroed and on cache lines, without unsafe code.
//!
//! Large models never pass through the stack (`Mlp<784, 128, 10, f64>` is 814 KB, more than
//! a thread's stack should carry in an unoptimized build): they are allocated zeroed, directly
//! on the heap, by [`bytemuck::zeroed_box`], for any type whose all-zero bits the compiler
//! knows to be a valid value (`bytemuck::Zeroable`, derived in the core).

use bytemuck::{Pod, Zeroable};

/// A zeroed `T` on the heap, starting on a cache line (64 bytes); it dereferences to the `T`
/// like a `Box<T>`.
///
/// Why: the hot loops read the first layer's weights a row of 128 `f32` (512 bytes, eight
/// 64-byte vectors) at a time. A plain `Box<MnistMlp>` is only 16-byte aligned by the
/// allocator, and then every vector load of a row straddles two cache lines (figures in
/// docs/figures.md). The core's types keep their packed `#[repr(C)]` layout, which the
/// firmware lays out in flash (the device has no data cache for this to matter).
#[derive(Clone, Debug, PartialEq)]
pub struct AlignedBox<T>(Box<CacheLine<T>>);

/// A `T` at the start of a cache line.
#[derive(Clone, Debug, PartialEq, Zeroable)]
#[repr(C, align(64))]
struct CacheLine<T>(T);

impl<T: Zeroable> AlignedBox<T> {
    /// All zero.
    pub fn zeroed() -> Self {
        Self(bytemuck::zeroed_box())
    }
}

impl<T> std::ops::Deref for AlignedBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.0
    }
}

impl<T> std::ops::DerefMut for AlignedBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0.0
    }
}

/// The f32 MNIST network on the heap, cache-line aligned: what the fast paths are given.
pub type ModelBox = AlignedBox<digits_core::MnistMlp>;

/// Sixteen floats on one cache line: the unit [`AlignedRows`] is made of.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// Rows of `N` floats, each starting on a cache line: a batch's per-sample vectors, read and
/// written a 64-byte vector at a time by the training step (see [`AlignedBox`] for why).
/// Dereferences to `[[f32; N]]`. A row is whole cache lines (`N` a multiple of 16, checked
/// at compile time in [`AlignedRows::zeros`]), so consecutive rows leave no gaps.
#[derive(Clone, Debug)]
pub struct AlignedRows<const N: usize>(Vec<Line>);

impl<const N: usize> AlignedRows<N> {
    /// `len` rows of zeros.
    pub fn zeros(len: usize) -> Self {
        const { assert!(N.is_multiple_of(16), "rows must be whole cache lines") };
        Self(vec![Line([0.0; 16]); len * (N / 16)])
    }
}

impl<const N: usize> std::ops::Deref for AlignedRows<N> {
    type Target = [[f32; N]];
    fn deref(&self) -> &[[f32; N]] {
        bytemuck::cast_slice::<Line, f32>(&self.0).as_chunks().0
    }
}

impl<const N: usize> std::ops::DerefMut for AlignedRows<N> {
    fn deref_mut(&mut self) -> &mut [[f32; N]] {
        bytemuck::cast_slice_mut::<Line, f32>(&mut self.0)
            .as_chunks_mut()
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_boxes_start_on_a_cache_line_and_are_zero() {
        for _ in 0..8 {
            let m = ModelBox::zeroed();
            let at = &m.hidden.w[0] as *const _ as usize;
            assert_eq!(at % 64, 0, "weights at {at:#x}");
            assert!(m.hidden.w.as_flattened().iter().all(|&w| w == 0.0));
            // Interleave other allocations so the allocator's offsets vary.
            std::hint::black_box(vec![0u8; 24]);
        }
    }

    #[test]
    fn aligned_rows_start_on_cache_lines_and_are_zero() {
        let mut rows = AlignedRows::<128>::zeros(5);
        assert_eq!(rows.len(), 5);
        for (k, row) in rows.iter().enumerate() {
            assert_eq!(row.as_ptr() as usize % 64, 0, "row {k}");
            assert!(row.iter().all(|&x| x == 0.0));
        }
        rows[4][127] = 1.5;
        rows[0][0] = 2.5;
        let flat = rows.as_flattened();
        assert_eq!((flat[0], flat[5 * 128 - 1], flat.len()), (2.5, 1.5, 640));
        assert!(AlignedRows::<16>::zeros(0).is_empty());
    }
}
