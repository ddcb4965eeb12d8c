//! The BBC micro:bit v1: a Nordic nRF51822 (Cortex-M0: ARMv6-M, no FPU, no DSP instructions,
//! no SysTick on the real chip), 256 KiB of flash and 16 KiB of RAM (`memory/microbit.x`), as
//! QEMU's `microbit` emulates it. Registers through Nordic's PAC (`nrf51-pac`).
//!
//! - **Clock.** The core runs at 16 MHz from the internal oscillator, as after reset; the UART
//!   starts the crystal for an exact baud rate, waiting for it a bounded time ([`uart`]). Time
//!   is measured with TIMER0 at 16 MHz ([`Timer`]): the nRF51's Cortex-M0 has no SysTick.
//! - **Data.** No PSRAM: the `eval` programs read the data blob from a host file over
//!   semihosting ([`HostBlob`]).
//! - **Serial.** UART0 to the interface chip's USB serial port ([`uart`]), for the self-test's
//!   answers. `serve` does not run here: the f32 model it serves does not fit the flash.

pub mod uart;

pub use super::host_blob::HostBlob;
pub use uart::{BAUD, Uart};

use nrf51_pac as pac;

/// The board's name, as `Info` reports it.
pub const NAME: &str = "microbit";

/// The data blob in the host file named on the semihosting command line.
pub fn eval_source() -> Result<HostBlob, &'static str> {
    HostBlob::open()
}

/// TIMER0 (`None` if the peripherals were taken before).
pub fn stopwatch() -> Option<Timer> {
    pac::Peripherals::take().map(|p| Timer::new(p.TIMER0))
}

/// TIMER0 as a free-running 32-bit counter at 16 MHz, read by capture, as a
/// [`Stopwatch`](crate::eval::Stopwatch).
pub struct Timer {
    timer: pac::TIMER0,
    start: u32,
}

impl Timer {
    /// Takes TIMER0 over and starts it: timer mode, 32 bits, prescaler 0 (16 MHz).
    pub fn new(timer: pac::TIMER0) -> Self {
        // SAFETY (each `bits` below): writing 1 triggers a task; the prescaler takes 0-9.
        timer.tasks_stop.write(|w| unsafe { w.bits(1) });
        timer.mode.write(|w| w.mode().timer());
        timer.bitmode.write(|w| w.bitmode()._32bit());
        timer.prescaler.write(|w| unsafe { w.prescaler().bits(0) });
        timer.tasks_clear.write(|w| unsafe { w.bits(1) });
        timer.tasks_start.write(|w| unsafe { w.bits(1) });
        Self { timer, start: 0 }
    }

    fn now(&self) -> u32 {
        // SAFETY: writing 1 triggers the capture task.
        self.timer.tasks_capture[0].write(|w| unsafe { w.bits(1) });
        self.timer.cc[0].read().bits()
    }
}

impl crate::eval::Stopwatch for Timer {
    fn start(&mut self) {
        self.start = self.now();
    }

    fn stop(&mut self) -> u32 {
        self.now().wrapping_sub(self.start)
    }
}
