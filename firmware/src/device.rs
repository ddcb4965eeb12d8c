//! Device glue: the console, QEMU exit status, panic and fault reporting, stack use, and
//! SysTick as a stopwatch (the same on every Cortex-M; what differs lives in `board`).
//!
//! Everything the device says goes through defmt (see `logger`): logs as leveled messages,
//! reports as [`Console`] lines. Every way a run can end goes through [`exit`], so QEMU's exit
//! status is 0 only for a run that finished and passed; a panic, a HardFault or any unexpected
//! exception logs an error and exits 1.

use core::fmt::{self, Write};
use core::panic::PanicInfo;
use cortex_m_rt::{ExceptionFrame, exception};
#[cfg(not(feature = "rtt"))]
use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};

/// Ends the QEMU run with status 0 (`ok`) or 1. With the `rtt` feature (a real board and a
/// debug probe, no semihosting host to end) it stops here.
pub fn exit(ok: bool) -> ! {
    #[cfg(not(feature = "rtt"))]
    debug::exit(if ok { EXIT_SUCCESS } else { EXIT_FAILURE });
    #[cfg(feature = "rtt")]
    let _ = ok;
    // Not reached under QEMU; without a semihosting host, stop here.
    loop {
        cortex_m::asm::wfi();
    }
}

/// A text console over defmt: every line written becomes one `defmt::println!` frame, which
/// the host prints as that line. For reports, whose lines are data the host parses.
pub struct Console {
    line: [u8; 256],
    len: usize,
}

impl Console {
    /// An empty console.
    pub const fn new() -> Self {
        Self {
            line: [0; 256],
            len: 0,
        }
    }

    fn emit(&mut self) {
        // Only whole `&str`s or whole lines are cut, except a line longer than the buffer,
        // which is cut at a character boundary below.
        let text = core::str::from_utf8(&self.line[..self.len]).unwrap_or("(not UTF-8)");
        defmt::println!("{=str}", text);
        self.len = 0;
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c == '\n' {
                self.emit();
                continue;
            }
            let mut utf8 = [0; 4];
            let bytes = c.encode_utf8(&mut utf8).as_bytes();
            if self.len + bytes.len() > self.line.len() {
                self.emit();
            }
            self.line[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
        Ok(())
    }
}

/// Runs `job` with a [`Console`], then prints its peak stack use and exits: status 0 and a
/// last line `ok` if it returned `Ok` and the stack stayed clear of the statics, else status 1
/// with the error logged.
pub fn run(job: impl FnOnce(&mut Console) -> Result<(), &'static str>) -> ! {
    let mut out = Console::new();
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
            defmt::error!("{=str}", e);
            exit(false)
        }
    }
}

/// The board this firmware is built for.
pub const BOARD: &str = crate::board::NAME;

/// Flash and RAM figures of this program, from the linker's symbols, and the stack's peak so
/// far.
pub fn memory() -> crate::serve::Memory {
    unsafe extern "C" {
        // cortex-m-rt's link.x: the start of flash (the vector table), the end of .rodata, and
        // the start and end of .data (in RAM).
        static __vector_table: u8;
        static __erodata: u8;
        static __sdata: u8;
        static __edata: u8;
    }
    let addr = |p: *const u8| p as usize;
    // The vector table, .text and .rodata run from the start of flash up to __erodata, then
    // come .data's initial values.
    let data = addr(&raw const __edata) - addr(&raw const __sdata);
    let code = addr(&raw const __erodata) - addr(&raw const __vector_table);
    crate::serve::Memory {
        flash_bytes: (code + data) as u32,
        static_ram_bytes: stack::statics() as u32,
        stack_bytes: stack::reserved() as u32,
        stack_peak_bytes: stack::peak().unwrap_or(stack::reserved()) as u32,
    }
}

/// SysTick, clocked by the core clock, as a [`Stopwatch`](crate::eval::Stopwatch).
///
/// Under `qemu -icount shift=N` every instruction advances virtual time by 2^N ns, so ticks
/// count instructions, several to a tick. How many depends on the shift and the clock, so it is
/// not assumed: [`calibrate`] measures it on every run (figures in `docs/figures.md`). Without
/// `-icount` ticks follow the host's wall clock.
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

    /// SysTick, taken from the core's peripherals (`None` if they were taken before).
    pub fn take() -> Option<Self> {
        cortex_m::Peripherals::take().map(|p| Self::new(p.SYST))
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
    defmt::error!("{}", defmt::Display2Format(info));
    exit(false)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!("HardFault: {}", defmt::Debug2Format(frame));
    exit(false)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    defmt::error!("unexpected exception or interrupt {=i16}", irqn);
    exit(false)
}

/// Peak stack use by painting: the free RAM between the statics and the stack pointer is
/// filled with a pattern, and later the deepest word no longer holding it marks the peak.
/// The stack grows down towards `.bss` with no guard, so an overflow would otherwise silently
/// corrupt the networks.
pub mod stack {
    const PATTERN: u32 = 0x5A5A_C0DE;

    unsafe extern "C" {
        /// End of `.bss`/`.data` (cortex-m-rt's heap start): the lowest address the stack may use.
        static mut __sheap: u32;
        /// Initial stack pointer (end of RAM).
        static _stack_start: u32;
    }

    unsafe extern "C" {
        /// Start of `.data`, the first static in RAM.
        static __sdata: u32;
    }

    fn bottom() -> *mut u32 {
        &raw mut __sheap
    }

    /// Bytes between the statics and the end of RAM, which the stack may use.
    pub fn reserved() -> usize {
        &raw const _stack_start as usize - bottom() as usize
    }

    /// Bytes of statics (.data, .bss), from the start of RAM.
    pub fn statics() -> usize {
        bottom() as usize - &raw const __sdata as usize
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

    /// Runs `f` and returns, beside its result, the bytes of stack it used below the caller's
    /// (`None` if it reached the statics). Paints the free RAM anew: the peak of [`peak`] starts
    /// over, so call it before anything deep has run.
    pub fn depth_of<R>(f: impl FnOnce() -> R) -> (R, Option<usize>) {
        let sp = cortex_m::register::msp::read() as usize;
        paint();
        let result = f();
        let start = &raw const _stack_start as usize;
        let depth = peak().map(|used| (used + sp).saturating_sub(start));
        (result, depth)
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
