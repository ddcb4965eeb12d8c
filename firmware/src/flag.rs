//! A flag that lets one caller through at a time: set it, and learn whether it was already set.
//!
//! ARMv6-M (the micro:bit's Cortex-M0) has no atomic read-modify-write, so no
//! `AtomicBool::swap`; on the device the load and the store happen with interrupts off, which
//! is atomic on a single core. The host has the real `swap`.

use core::sync::atomic::{AtomicBool, Ordering};

/// A flag set by [`Flag::set`], cleared by [`Flag::clear`].
pub struct Flag(AtomicBool);

impl Flag {
    /// A clear flag.
    pub const fn new() -> Self {
        Self(AtomicBool::new(false))
    }

    /// Sets the flag; `true` if it was set already.
    pub fn set(&self) -> bool {
        #[cfg(target_os = "none")]
        {
            cortex_m::interrupt::free(|_| {
                let was = self.0.load(Ordering::Acquire);
                self.0.store(true, Ordering::Release);
                was
            })
        }
        #[cfg(not(target_os = "none"))]
        {
            self.0.swap(true, Ordering::AcqRel)
        }
    }

    /// Clears the flag.
    // Only the semihosting logger releases what it took, and it is not built everywhere.
    #[allow(dead_code)]
    pub fn clear(&self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Default for Flag {
    fn default() -> Self {
        Self::new()
    }
}
