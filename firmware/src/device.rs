//! Device glue: semihosting output, QEMU exit status, panic and fault reporting, stack use.
//!
//! Every way a run can end goes through [`exit`], so QEMU's exit status is 0 only for a run
//! that finished and passed; a panic, a HardFault or any unexpected exception exits 1 after
//! printing what happened on the semihosting stderr.

use core::fmt::Write;
use core::panic::PanicInfo;
use cortex_m_rt::{ExceptionFrame, exception};
use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
use cortex_m_semihosting::hio::{self, HostStream};

/// Ends the QEMU run with status 0 (`ok`) or 1.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok { EXIT_SUCCESS } else { EXIT_FAILURE });
    // Not reached under QEMU; without a semihosting host, stop here.
    loop {
        cortex_m::asm::wfi();
    }
}

/// The host's stdout through semihosting (QEMU's stdout).
pub fn stdout() -> HostStream {
    hio::hstdout().unwrap_or_else(|()| exit(false))
}

fn stderr() -> HostStream {
    hio::hstderr().unwrap_or_else(|()| exit(false))
}

/// Runs `job` with stdout, then prints its peak stack use and exits: status 0 and a last line
/// `ok` if it returned `Ok` and the stack stayed clear of the statics, else status 1 with the
/// error on stderr.
pub fn run(job: impl FnOnce(&mut HostStream) -> Result<(), &'static str>) -> ! {
    let mut out = stdout();
    stack::paint();
    let result = job(&mut out);
    let result = match stack::peak() {
        Some(bytes) => {
            writeln!(out, "stack_peak_bytes {bytes}").ok();
            result
        }
        None => Err("stack overflow: the stack reached the statics"),
    };
    match result {
        Ok(()) => {
            writeln!(out, "ok").ok();
            exit(true)
        }
        Err(e) => {
            writeln!(stderr(), "error: {e}").ok();
            exit(false)
        }
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    writeln!(stderr(), "{info}").ok();
    exit(false)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    writeln!(stderr(), "HardFault: {frame:?}").ok();
    exit(false)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    writeln!(stderr(), "unexpected exception or interrupt {irqn}").ok();
    exit(false)
}

/// Peak stack use by painting: the free RAM between the statics and the stack pointer is
/// filled with a pattern, and later the deepest word no longer holding it marks the peak.
/// The stack grows down towards `.bss` with no guard, so an overflow would otherwise silently
/// corrupt the networks.
mod stack {
    const PATTERN: u32 = 0x5A5A_C0DE;

    unsafe extern "C" {
        /// End of `.bss`/`.data` (cortex-m-rt's heap start): the lowest address the stack may use.
        static mut __sheap: u32;
        /// Initial stack pointer (end of RAM).
        static _stack_start: u32;
    }

    fn bottom() -> *mut u32 {
        &raw mut __sheap
    }

    /// Paints from the bottom of the free RAM up to just below the current stack pointer.
    pub fn paint() {
        // Leave a margin for this function's own calls.
        let top = cortex_m::register::msp::read() as usize - 64;
        let mut p = bottom();
        while (p as usize) < top {
            // SAFETY: [__sheap, sp) is RAM that no Rust object owns (no heap, nothing on the
            // stack below sp).
            unsafe {
                p.write_volatile(PATTERN);
                p = p.add(1);
            }
        }
    }

    /// Bytes of stack used so far, `None` if the whole painted area was overwritten.
    pub fn peak() -> Option<usize> {
        let start = &raw const _stack_start as usize;
        let mut p = bottom();
        // SAFETY: reads of RAM between the statics and the stack pointer, painted above.
        while unsafe { p.read_volatile() } == PATTERN {
            p = unsafe { p.add(1) };
        }
        (p != bottom()).then(|| start - p as usize)
    }
}
