//! Device glue: semihosting output, QEMU exit status, panic and fault reporting, stack use,
//! the PSRAM where QEMU loads data, and SysTick as a stopwatch.
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

/// Where QEMU's mps2-an386 has its 16 MiB of PSRAM.
pub const PSRAM_START: usize = 0x2100_0000;
/// Bytes of PSRAM.
pub const PSRAM_LEN: usize = 16 << 20;

/// The PSRAM, where the host has QEMU load data before the CPU starts:
/// `-device loader,file=BLOB,addr=0x21000000,force-raw=on`. (QEMU's board only: `memory.x`
/// stands for a part without it.)
pub fn psram() -> &'static [u8] {
    // SAFETY: mps2-an386 maps 16 MiB of RAM at PSRAM_START. memory.x gives the linker nothing
    // there, so no Rust object lives in it and this program never writes it: a shared slice of
    // it stays valid and unchanged for the whole run.
    unsafe { core::slice::from_raw_parts(PSRAM_START as *const u8, PSRAM_LEN) }
}

/// SysTick, clocked by the core clock (25 MHz on mps2-an386), as a
/// [`Stopwatch`](crate::eval::Stopwatch).
///
/// Under `qemu -icount shift=N` every instruction advances virtual time by 2^N ns, so ticks
/// count instructions: one tick per 40 instructions at `shift=0`, per 5 at `shift=3`
/// ([`calibrate`] measures the ratio). Without `-icount` ticks follow the host's wall clock.
pub struct SysTick {
    start: u32,
}

impl SysTick {
    /// Takes SysTick over and starts it, free-running over its whole 24-bit range.
    pub fn new(mut syst: cortex_m::peripheral::SYST) -> Self {
        use cortex_m::peripheral::syst::SystClkSource;
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_counter();
        Self { start: 0 }
    }
}

impl crate::eval::Stopwatch for SysTick {
    fn start(&mut self) {
        self.start = cortex_m::peripheral::SYST::get_current();
    }

    /// Ticks since `start`; right while under 2^24 ticks (0.67 s at 25 MHz).
    fn stop(&mut self) -> u32 {
        // The counter counts down and wraps from 0 to the reload value.
        self.start
            .wrapping_sub(cortex_m::peripheral::SYST::get_current())
            & 0x00FF_FFFF
    }
}

/// Instructions of the calibration loop.
pub const CALIBRATION_INSTRUCTIONS: u32 = 2_000_000;

/// Ticks of `stopwatch` for a loop of exactly [`CALIBRATION_INSTRUCTIONS`] instructions, to
/// turn ticks into instructions.
pub fn calibrate(stopwatch: &mut impl crate::eval::Stopwatch) -> u32 {
    let iterations = CALIBRATION_INSTRUCTIONS / 2;
    stopwatch.start();
    // SAFETY: a register-only countdown loop: two instructions per iteration (subs, bne).
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) iterations => _,
            options(nomem, nostack),
        );
    }
    stopwatch.stop()
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
