//! Memory for the page's module: a bump allocator over the wasm linear memory, and
//! [`prepare`], the preprocessing in scratch memory that is handed back when it is done.
//!
//! Only preprocessing allocates per drawing (its buffers scale with the canvas), so the whole
//! allocator can be a pointer that moves up, and down again after each preprocessing: no free
//! lists, a few hundred bytes of wasm instead of a general allocator's several kilobytes.
//! Everything else (the model, the canvas, the samples) is allocated once and kept.

use digits_core::preprocess::{self, Gray, Prepared, PreprocessError};

/// [`preprocess::prepare`], with every allocation it makes released afterwards.
///
/// Releasing is sound because of what runs in between, which is why this is not a general
/// "run any closure in scratch" function (a closure could grow a vector it borrowed, which
/// would then live in released memory). Preprocessing reads `gray` through a shared borrow,
/// keeps nothing (the core has no statics to keep it in) and returns a value that owns no heap
/// memory (`Copy`, checked below).
pub fn prepare(gray: Gray<'_>) -> Result<Prepared, PreprocessError> {
    fn owns_no_heap<T: Copy>(value: T) -> T {
        value
    }
    #[cfg(target_arch = "wasm32")]
    {
        let mark = bump::mark();
        let prepared = owns_no_heap(preprocess::prepare(gray));
        bump::release(mark);
        prepared
    }
    #[cfg(not(target_arch = "wasm32"))]
    owns_no_heap(preprocess::prepare(gray))
}

#[cfg(target_arch = "wasm32")]
mod bump {
    use core::alloc::{GlobalAlloc, Layout};
    use core::arch::wasm32::{memory_grow, memory_size};
    use core::cell::Cell;

    const PAGE: usize = 65_536;

    unsafe extern "C" {
        /// Where the linker's static data ends: the heap starts here.
        static __heap_base: u8;
    }

    /// The first free byte (0 until the first allocation).
    struct Bump {
        top: Cell<usize>,
    }

    // SAFETY: the module runs on one thread (wasm32 without the atomics feature has no
    // threads), so the `Cell` is never shared between threads.
    unsafe impl Sync for Bump {}

    #[global_allocator]
    static HEAP: Bump = Bump { top: Cell::new(0) };

    impl Bump {
        fn top(&self) -> usize {
            match self.top.get() {
                0 => &raw const __heap_base as usize,
                t => t,
            }
        }

        /// Moves the top to `end`, growing the memory when needed; false if it cannot grow.
        fn reach(&self, end: usize) -> bool {
            let have = memory_size(0) * PAGE;
            if end > have && memory_grow(0, (end - have).div_ceil(PAGE)) == usize::MAX {
                return false;
            }
            self.top.set(end);
            true
        }
    }

    // SAFETY: every block returned is `layout.size()` bytes at `layout.align()` inside memory
    // that was grown to hold it, and no two live blocks overlap: the top moves down only past
    // a block being freed, or in `release`, which `prepare` calls once the allocations above
    // the mark are dead.
    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let start = self.top().next_multiple_of(layout.align());
            match start.checked_add(layout.size()) {
                Some(end) if self.reach(end) => start as *mut u8,
                _ => core::ptr::null_mut(),
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // The last block can be taken back at once; the rest waits for `release`.
            if ptr as usize + layout.size() == self.top() {
                self.top.set(ptr as usize);
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // A growing vector is usually the last block: extend it where it is.
            if ptr as usize + layout.size() == self.top() {
                return match (ptr as usize).checked_add(new_size) {
                    Some(end) if self.reach(end) => ptr,
                    _ => core::ptr::null_mut(),
                };
            }
            // SAFETY: the caller's contract for `realloc` is the one `GlobalAlloc`'s default
            // needs; it allocates anew and copies.
            unsafe {
                let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
                if !new.is_null() {
                    core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                }
                new
            }
        }
    }

    pub(super) fn mark() -> usize {
        HEAP.top()
    }

    pub(super) fn release(mark: usize) {
        HEAP.top.set(mark);
    }
}
